/**
 * `ffc ratchet`, the desktop side of the handoff, as a user runs it: the real ffc binary, the real gh on
 * the host against core's fake GitHub (unix socket), the real Claude Code CLI against the fake Anthropic
 * API, fixers running in a real local checkout. What it proves:
 * - a CI failure on a DESKTOP workspace starts exactly one local fixer, in the checkout, with the fixer
 *   prompt; polling the same failure again starts none; a new push failing the same check starts another;
 * - a CLOUD workspace is never polled (gh is not even asked about its PR);
 * - while a desktop fixer works, `ffc send` refuses with the api's 409 message (exit 4) before contacting
 *   any api, and once it ended the sent state carries the dispatch key;
 * - a send marks the workspace CLOUD before the api hears of it (the desktop loop then leaves it alone).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortableWorkspaceStateSchema, safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { WorkspaceStore } from '../../cli/src/workspace-store.js';
import { claudeBinPath } from '../../core/test/support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import {
  checkRun,
  type FakeGitHub,
  type FakePullRequestInput,
  startFakeGitHub,
} from '../../core/test/support/fake-github.js';
import { GH_BINARY } from '../../core/test/support/gh-harness.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import { freshConfigDir, isReadableErrorLine, runFfc } from './run-ffc.js';

const CycleLineSchema = z.object({
  type: z.literal('cycle'),
  workspaceId: z.string(),
  outcome: z.string(),
  decision: z.object({ action: z.string(), reason: z.string(), key: z.string().nullable() }).nullable(),
  dispatched: z.object({ sessionId: z.string(), key: z.string() }).nullable(),
});
const EndedLineSchema = z.object({
  type: z.literal('fixer_ended'),
  workspaceId: z.string(),
  sessionId: z.string(),
  outcome: z.enum(['COMPLETED', 'DIED']),
});
const LineSchema = z.union([CycleLineSchema, EndedLineSchema]);
const DryRunSchema = z.object({ state: PortableWorkspaceStateSchema });
const AddedSchema = z.object({ workspace: z.object({ id: z.string(), prUrl: z.string().nullable() }) });

const REPO = 'octo/widgets';
const FIXER_ACTIVE = 'Fixer session active — wait or stop it first';

describe('ffc ratchet: the desktop ratchet with the real gh and the real claude', function () {
  this.timeout(5 * 60_000);
  let sandbox: GitSandbox;
  let gh: FakeGitHub;
  let anthropic: FakeAnthropic;
  let configDir: string;
  let checkout: string;
  let otherCheckout: string;
  let workspaceId: string;
  let pr7: FakePullRequestInput = {
    number: 7,
    headRefName: 'feature/widgets',
    checks: [checkRun('unit-tests', 'FAILURE')],
  };
  /** Changes the PR of the main checkout on the fake GitHub (a push, a new CI result). */
  const updatePr7 = (changes: Partial<FakePullRequestInput>) => {
    pr7 = { ...pr7, ...changes };
    gh.upsertPullRequest(REPO, pr7);
  };

  before(async () => {
    sandbox = createGitSandbox();
    gh = await startFakeGitHub({
      fixtures: {
        repos: {
          [REPO]: {
            pulls: [pr7, { number: 8, headRefName: 'other-branch', checks: [checkRun('lint', 'FAILURE')] }],
          },
        },
      },
    });
    anthropic = await startFakeAnthropic();
    const remoteUrl = await sandbox.createRemote(
      REPO,
      { 'README.md': 'widgets\n' },
      { 'feature/widgets': { 'widget.txt': 'one\n' }, 'other-branch': { 'other.txt': 'two\n' } },
    );
    // Checkouts whose origin names GitHub, so gh finds their PR (and the fixer's push could only go there).
    checkout = join(sandbox.dir, 'checkout');
    otherCheckout = join(sandbox.dir, 'other-checkout');
    await sandbox.git(['clone', '--quiet', '--branch', 'feature/widgets', remoteUrl, checkout]);
    await sandbox.git(['clone', '--quiet', '--branch', 'other-branch', remoteUrl, otherCheckout]);
    for (const dir of [checkout, otherCheckout]) {
      await sandbox.git(['remote', 'set-url', 'origin', `https://github.com/${REPO}.git`], dir);
    }
    configDir = freshConfigDir();
  });

  after(async () => {
    await gh?.close();
    await anthropic?.close();
    sandbox?.cleanup();
  });

  /** ffc with gh routed to the fake GitHub and claude to the fake Anthropic; no api is reachable. */
  const env = () => ({
    ...gh.ghEnv(),
    ...sandbox.env,
    FFC_CONFIG_DIR: configDir,
    FFC_STATE_DIR: '',
    FFC_API_URL: 'http://127.0.0.1:1',
    FFC_API_KEY: 'no-api-in-this-test',
    FFC_GH_PATH: GH_BINARY,
    FFC_CLAUDE_PATH: claudeBinPath(),
    ANTHROPIC_BASE_URL: anthropic.url,
    ANTHROPIC_API_KEY: 'sk-fake-ffc-ratchet',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
    // The fake GitHub's leak guard proxies everything else; the fake Anthropic is on loopback.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  });
  const ffc = (args: string[]) => runFfc(args, { env: env(), killAfterMs: 3 * 60_000 });
  const store = () => new WorkspaceStore(join(configDir, 'state'));

  async function ratchetOnce() {
    const result = await ffc(['ratchet', '--once', '--json']);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout
      .trim()
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => {
        const parsed = safeParseJson(LineSchema, line);
        assert.ok(parsed.ok, `${parsed.ok ? '' : parsed.error.message}: ${line}`);
        return parsed.value;
      });
  }
  const cycleFor = (lines: z.output<typeof LineSchema>[], id: string) => {
    const found = lines.filter((l) => l.type === 'cycle' && l.workspaceId === id);
    assert.equal(found.length, 1, JSON.stringify(lines));
    const line = found[0];
    assert.ok(line?.type === 'cycle');
    return line;
  };
  /** Conversations the fake Anthropic saw start with a fixer prompt (the first request of each). */
  const fixerConversations = () =>
    anthropic.requests.filter(
      (r) => r.messages.length === 1 && r.lastUserText.includes('You are the ratchet fixer'),
    );

  it('tracks a local checkout as a DESKTOP workspace with its PR found by gh', async () => {
    const added = await ffc(['ratchet', 'add', checkout, '--json']);
    assert.equal(added.code, 0, added.stderr);
    const parsed = safeParseJson(AddedSchema, added.stdout);
    assert.ok(parsed.ok, added.stdout);
    assert.equal(parsed.value.workspace.prUrl, `https://github.com/${REPO}/pull/7`);
    workspaceId = parsed.value.workspace.id;
    const stored = await store().get(workspaceId);
    assert.equal(stored?.location, 'DESKTOP');
    assert.equal(stored?.ratchet.enabled, true);
  });

  it('a CI failure starts exactly one fixer, in the checkout, with the fixer prompt', async () => {
    // The fixer's one tool call proves where it ran: the file appears in the checkout.
    anthropic.script(turns.bash('git rev-parse --abbrev-ref HEAD > fixer-was-here.txt', 'Mark the checkout'));
    const lines = await ratchetOnce();
    const cycle = cycleFor(lines, workspaceId);
    assert.equal(cycle.decision?.action, 'TRIGGER_FIXER');
    assert.equal(cycle.decision?.reason, 'ci_failed');
    assert.ok(cycle.dispatched, 'a fixer was dispatched');
    const ended = lines.filter((l) => l.type === 'fixer_ended');
    assert.deepEqual(
      ended.map((e) => (e.type === 'fixer_ended' ? [e.sessionId, e.outcome] : [])),
      [[cycle.dispatched.sessionId, 'COMPLETED']],
    );
    const conversations = fixerConversations();
    assert.equal(conversations.length, 1);
    assert.match(conversations[0]?.lastUserText ?? '', /unit-tests/);
    assert.match(conversations[0]?.lastUserText ?? '', /pull request #7/);
    // The push rule names the head the fixer started from (a human's later push is never overwritten).
    assert.match(conversations[0]?.lastUserText ?? '', /2222222222222222222222222222222222222222/);
    assert.ok(existsSync(join(checkout, 'fixer-was-here.txt')), 'the fixer ran in the checkout');

    const stored = await store().get(workspaceId);
    assert.equal(stored?.ratchet.lastDispatchKey, cycle.dispatched.key);
    assert.equal(stored?.ratchet.dispatchOutcome, 'COMPLETED');
    assert.equal(stored?.activeFixer, null);
    assert.equal(stored?.ratchet.dispatchTimesMs.length, 1);
  });

  it('the same failure polled again starts nothing', async () => {
    const before = anthropic.requests.length;
    const lines = await ratchetOnce();
    const cycle = cycleFor(lines, workspaceId);
    assert.equal(cycle.dispatched, null);
    assert.equal(cycle.decision?.action, 'WAITING');
    assert.equal(anthropic.requests.length, before, 'claude was not asked anything');
  });

  it('a new push that fails the same check starts a new fixer', async () => {
    updatePr7({ headSha: '3333333333333333333333333333333333333333' });
    const lines = await ratchetOnce();
    const cycle = cycleFor(lines, workspaceId);
    assert.equal(cycle.decision?.action, 'TRIGGER_FIXER', JSON.stringify(cycle));
    assert.equal(fixerConversations().length, 2);
  });

  it('never polls a CLOUD workspace', async () => {
    const added = await ffc(['ratchet', 'add', otherCheckout, '--json']);
    assert.equal(added.code, 0, added.stderr);
    const parsed = safeParseJson(AddedSchema, added.stdout);
    assert.ok(parsed.ok);
    const otherId = parsed.value.workspace.id;
    // What `ffc send` records before the api hears of it (the api is not part of this test).
    await store().update((all) => {
      const entry = all.get(otherId);
      if (entry) all.set(otherId, { ...entry, location: 'CLOUD' });
    });
    const asked = () => gh.requests.filter((r) => r.path.includes('/pulls/8')).length;
    const askedBefore = asked();
    const conversations = fixerConversations().length;
    const lines = await ratchetOnce();
    assert.equal(cycleFor(lines, otherId).outcome, 'skipped_cloud');
    assert.equal(asked(), askedBefore, 'gh was not asked about the CLOUD workspace’s PR');
    assert.equal(fixerConversations().length, conversations);
    // The DESKTOP one was still polled in the same cycle.
    assert.equal(cycleFor(lines, workspaceId).outcome, 'decided');
  });

  it('refuses to send while its desktop fixer works, and sends the dispatch key once it ended', async () => {
    // A fixer that works until the test lets it finish.
    const gate = mkdtempSync(join(tmpdir(), 'ffc-ratchet-gate-'));
    const release = join(gate, 'release');
    anthropic.script(turns.bash(`while [ ! -e ${release} ]; do sleep 0.2; done`, 'Work until released'));
    updatePr7({ checks: [checkRun('integration', 'FAILURE')] });
    const running = ffc(['ratchet', '--once', '--json']);
    try {
      const deadline = Date.now() + 120_000;
      while ((await store().get(workspaceId))?.activeFixer == null) {
        assert.ok(Date.now() < deadline, 'the fixer never became active');
        await new Promise((r) => setTimeout(r, 100));
      }
      const refused = await ffc(['send', checkout, '--no-pr', '--no-wait']);
      assert.equal(refused.code, 4, refused.stderr);
      assert.ok(isReadableErrorLine(refused.stderr), refused.stderr);
      assert.ok(refused.stderr.includes(FIXER_ACTIVE), refused.stderr);
      assert.equal(
        (await store().get(workspaceId))?.location,
        'DESKTOP',
        'a refused send hands nothing over',
      );
    } finally {
      writeFileSync(release, '');
    }
    const done = await running;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /"type":"fixer_ended".*"outcome":"COMPLETED"/);

    const stored = await store().get(workspaceId);
    assert.equal(stored?.activeFixer, null);
    const dry = await ffc(['send', checkout, '--no-pr', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const state = safeParseJson(DryRunSchema, dry.stdout);
    assert.ok(state.ok, dry.stdout);
    assert.equal(state.value.state.ratchetLastCiRunId, stored?.ratchet.lastDispatchKey);
    assert.ok(state.value.state.ratchetDispatchKeys.includes(stored?.ratchet.lastDispatchKey ?? '-'));
    assert.equal(state.value.state.ratchetEnabled, true);
  });

  it('a send marks the workspace CLOUD before the api answers, and the desktop loop leaves it', async () => {
    // No api answers at 127.0.0.1:1: the send may have arrived, so the workspace stays CLOUD (a pull settles it).
    const sent = await ffc(['send', checkout, '--no-pr', '--no-wait']);
    assert.equal(sent.code, 5, sent.stderr);
    assert.equal((await store().get(workspaceId))?.location, 'CLOUD');
    updatePr7({ checks: [checkRun('e2e', 'FAILURE')] });
    const conversations = fixerConversations().length;
    const lines = await ratchetOnce();
    assert.equal(cycleFor(lines, workspaceId).outcome, 'skipped_cloud');
    assert.equal(fixerConversations().length, conversations);
  });
});
