/**
 * The ratchet handoff with both sides real, through the real api (issue 12: "pull → the cloud loop ended,
 * state preserved, the desktop loop resumes without re-dispatching the handled key").
 *
 * Desktop: the real `ffc` binary — `ffc ratchet add`, `ffc ratchet --once --json` (the desktop ratchet, the
 * host's real gh against core's fake GitHub, the host's real claude against a fake Anthropic API of its own),
 * `ffc send`, `ffc pull` — over a local checkout whose origin names the fake GitHub's repository.
 * Cloud: test/support/ratchet-rig.ts (the production api and worker processes, a real VM whose gh is logged
 * in to the same fake GitHub, the VM's claude against the cloud's fake Anthropic API), read only through the
 * public routes: POST …/ratchet/wake, GET /api/workspaces/:id (`ratchet`), the fixer sessions in the VM.
 *
 * Two fake Anthropic APIs, one per side, so every fixer prompt is counted on the side that ran it. Keys:
 * K1 (head1 fails) → one desktop fixer; send → the cloud starts from K1 and does not dispatch it; K2 (a new
 * push fails) → the desktop skips the CLOUD workspace, one cloud fixer; pull → the loop ended, the desktop
 * holds K2 and does not dispatch it; K3 (another push fails) → one desktop fixer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { PullResultSchema, WorkspaceAnswerSchema } from '../../api/contract/workspaces.js';
import { LocalWorkspaceSchema, WorkspaceStore } from '../../cli/src/workspace-store.js';
import { claudeBinPath } from '../../core/test/support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { GH_BINARY } from '../../core/test/support/gh-harness.js';
import { workflowIds } from '../../workflows/ids.js';
import type { RatchetView } from '../../workflows/ratchet/messages.js';
import { type FfcResult, freshConfigDir, isReadableErrorLine, runFfc } from '../cli/run-ffc.js';
import { git } from '../support/cloud-rig.js';
import { FAKE_REPO, failingCheck, prUrl, type RatchetRig, startRatchetRig } from '../support/ratchet-rig.js';
import { eventually } from '../support/vm.js';

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
const RatchetLineSchema = z.union([CycleLineSchema, EndedLineSchema]);
type RatchetLine = z.output<typeof RatchetLineSchema>;
const PulledSchema = PullResultSchema.extend({ local: LocalWorkspaceSchema.nullable() });

const FIXER_ACTIVE = 'Fixer session active — wait or stop it first';
const FIXER_PROMPT_START = 'You are the ratchet fixer';
const PR_NUMBER = 301;
const BRANCH = 'rt-handoff';
const CHECK = 'unit-roundtrip';

/** The line of a fixer prompt that names the head commit it starts from. */
const headLine = (sha: string) => `Head commit of the pull request: \`${sha}\``;

describe('e2e: the ratchet round trip desktop → cloud → desktop (real ffc ratchet, send, pull; real api, worker, VM)', function () {
  this.timeout(8 * 60_000);
  let rig: RatchetRig;
  let desktopClaude: FakeAnthropic;
  let home: string;
  let configDir: string;
  let checkout: string;
  let workspaceId: string;
  /** The PR's head commits: head1 (K1), then one per failing push. */
  let head1: string;
  /** The dispatch keys, in order: K1 (desktop), K2 (cloud), K3 (desktop). */
  const keys: string[] = [];

  before(async () => {
    rig = await startRatchetRig('rt');
    desktopClaude = await startFakeAnthropic();
    home = mkdtempSync(join(tmpdir(), 'ffc-rt-home-'));
    writeFileSync(
      join(home, '.gitconfig'),
      '[user]\n\tname = Desktop Dev\n\temail = desktop@example.invalid\n[advice]\n\tdetachedHead = false\n',
    );
    configDir = freshConfigDir();
    workspaceId = `ws-rt-${rig.cloud.suffix}`;
    head1 = rig.newBranch(BRANCH);
    checkout = join(home, 'app');
    rig.cloud.cloneOnHost(checkout, BRANCH);
    // Its origin names the fake GitHub's repository, so the host's gh finds the PR of this branch.
    git(checkout, 'remote', 'set-url', 'origin', `https://github.com/${FAKE_REPO}.git`);
  });

  after(async () => {
    await rig?.stop();
    await desktopClaude?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** The desktop: gh to the fake GitHub, claude to the desktop's fake Anthropic, the rig's api. */
  const env = () => ({
    ...rig.github.ghEnv(),
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    FFC_CONFIG_DIR: configDir,
    FFC_STATE_DIR: '',
    FFC_API_URL: rig.cloud.api.url,
    FFC_API_KEY: rig.cloud.user.key,
    FFC_GH_PATH: GH_BINARY,
    FFC_CLAUDE_PATH: claudeBinPath(),
    ANTHROPIC_BASE_URL: desktopClaude.url,
    ANTHROPIC_API_KEY: 'sk-fake-desktop-ratchet',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
    // The fake GitHub's leak guard proxies everything else; the api and the fake Anthropic are on loopback.
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  });
  const ffc = (args: string[], killAfterMs = 3 * 60_000): Promise<FfcResult> =>
    runFfc(args, { env: env(), cwd: home, killAfterMs });
  const store = () => new WorkspaceStore(join(configDir, 'state'));
  const local = async () => {
    const entry = await store().get(workspaceId);
    assert.ok(entry, `${workspaceId} is in the local store`);
    return entry;
  };

  const parseRatchetLines = (result: FfcResult): RatchetLine[] => {
    assert.equal(result.code, 0, result.stderr);
    return result.stdout
      .trim()
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => {
        const parsed = safeParseJson(RatchetLineSchema, line);
        assert.ok(parsed.ok, `${parsed.ok ? '' : parsed.error.message}: ${line}`);
        return parsed.value;
      });
  };
  const ratchetOnce = async () => parseRatchetLines(await ffc(['ratchet', '--once', '--json']));
  const onlyCycle = (lines: RatchetLine[]) => {
    const cycles = lines.filter((l) => l.type === 'cycle');
    assert.equal(cycles.length, 1, `one workspace, one cycle line: ${JSON.stringify(lines)}`);
    const [cycle] = cycles;
    assert.ok(cycle?.type === 'cycle' && cycle.workspaceId === workspaceId, JSON.stringify(lines));
    return cycle;
  };
  const endedFixers = (lines: RatchetLine[]) =>
    lines.flatMap((l) => (l.type === 'fixer_ended' ? [[l.sessionId, l.outcome]] : []));

  /** First messages of fixer conversations (one per fixer) a fake Anthropic API received. */
  const fixerPrompts = (fake: FakeAnthropic) =>
    fake.requests
      .filter((r) => r.messages.length === 1 && r.lastUserText.includes(FIXER_PROMPT_START))
      .map((r) => r.lastUserText);

  /** A new commit on the PR's branch whose CI fails (run `runId`); returns its sha. */
  const failingPush = (file: string, runId: number): string => {
    const head = rig.pushHumanCommit(BRANCH, file, `${file}\n`);
    rig.setPullRequest({
      number: PR_NUMBER,
      headRefName: BRANCH,
      headSha: head,
      checks: [failingCheck(CHECK, runId)],
    });
    return head;
  };

  /** Wakes the cloud ratchet until it takes the wake (it runs once the workspace is READY). */
  async function wake(): Promise<void> {
    await eventually(`the ratchet of ${workspaceId} to take a wake`, async () => {
      const woke = await rig.wake(workspaceId);
      if (woke.status === 202) return true;
      assert.equal(woke.status, 409, woke.text);
      return undefined;
    });
  }

  /**
   * Waits for the cloud view to satisfy `accept`, waking the ratchet between looks (a wake makes it poll
   * now, or look at a working fixer now).
   */
  function cloudView(what: string, accept: (view: RatchetView) => boolean): Promise<RatchetView> {
    let last: RatchetView | null = null;
    return eventually(
      what,
      async () => {
        last = (await rig.liveView(workspaceId).catch(() => null)) ?? (await rig.ratchetView(workspaceId));
        if (last !== null && accept(last)) return last;
        await rig.wake(workspaceId);
        return undefined;
      },
      3 * 60_000,
      500,
    ).catch((err: unknown) => {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}; last view: ${JSON.stringify(last)}`,
      );
    });
  }

  it('K1: one desktop fixer with the prompt for head1; ffc send is refused while it works', async () => {
    rig.setPullRequest({
      number: PR_NUMBER,
      headRefName: BRANCH,
      headSha: head1,
      checks: [failingCheck(CHECK, 9101)],
    });
    const added = await ffc(['ratchet', 'add', checkout, '--id', workspaceId, '--json']);
    assert.equal(added.code, 0, added.stderr);
    const tracked = await local();
    assert.equal(tracked.location, 'DESKTOP');
    assert.equal(tracked.prUrl, prUrl(PR_NUMBER), 'the host gh found the PR');
    assert.equal(tracked.ratchet.enabled, true);

    // The fixer works until the test lets it finish: a send meanwhile is refused before the api hears of it.
    const gate = join(home, 'release-k1');
    desktopClaude.script(turns.bash(`while [ ! -e ${gate} ]; do sleep 0.2; done`, 'Work until released'));
    const running = ffc(['ratchet', '--once', '--json']);
    try {
      await eventually('the desktop fixer to be active', async () =>
        (await local()).activeFixer !== null ? true : undefined,
      );
      const refused = await ffc(['send', checkout, '--id', workspaceId, '--repo-url', rig.cloud.repoUrlInVm]);
      assert.equal(refused.code, 4, refused.stderr);
      assert.ok(isReadableErrorLine(refused.stderr), refused.stderr);
      assert.ok(refused.stderr.includes(FIXER_ACTIVE), refused.stderr);
      assert.equal((await local()).location, 'DESKTOP', 'a refused send hands nothing over');
      const inCloud = await rig.cloud.http(`/api/workspaces/${workspaceId}`);
      assert.equal(inCloud.status, 404, 'nothing reached the api');
    } finally {
      writeFileSync(gate, '');
    }
    const lines = parseRatchetLines(await running);
    const cycle = onlyCycle(lines);
    assert.equal(cycle.decision?.action, 'TRIGGER_FIXER', JSON.stringify(cycle));
    assert.equal(cycle.decision?.reason, 'ci_failed');
    assert.ok(cycle.dispatched, 'a fixer was dispatched');
    assert.ok(cycle.dispatched.key.includes(`head:${head1}`), cycle.dispatched.key);
    assert.deepEqual(endedFixers(lines), [[cycle.dispatched.sessionId, 'COMPLETED']]);
    keys.push(cycle.dispatched.key);

    const prompts = fixerPrompts(desktopClaude);
    assert.equal(prompts.length, 1, 'exactly one desktop fixer');
    assert.ok(prompts[0]?.includes(headLine(head1)), prompts[0]);
    assert.ok(prompts[0]?.includes(`pull request #${PR_NUMBER}`), prompts[0]);
    assert.equal(fixerPrompts(rig.cloud.fake).length, 0, 'no cloud fixer');

    const after = await local();
    assert.equal(after.activeFixer, null);
    assert.equal(after.ratchet.lastDispatchKey, keys[0]);
    assert.equal(after.ratchet.dispatchOutcome, 'COMPLETED');
  });

  it('send → CLOUD here, the cloud ratchet starts from K1 and does not dispatch it again', async () => {
    const sent = await ffc([
      'send',
      checkout,
      '--id',
      workspaceId,
      '--repo-url',
      rig.cloud.repoUrlInVm,
      '--json',
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    const answer = safeParseJson(WorkspaceAnswerSchema, sent.stdout);
    assert.ok(answer.ok, sent.stdout);
    assert.equal(answer.value.workspace.id, workspaceId);
    assert.equal(answer.value.workspace.status, 'READY');
    assert.equal(answer.value.workspace.location, 'CLOUD');
    assert.equal(answer.value.workspace.prUrl, prUrl(PR_NUMBER), 'the send carried the PR');
    assert.equal(answer.value.workspace.ratchetEnabled, true, 'the desktop had the ratchet on');
    assert.equal((await local()).location, 'CLOUD');

    // The cloud has polled K1 (a decision on its key) and handed it to nobody.
    await wake();
    const polled = await cloudView(
      'a cloud decision on K1',
      (view) => view.lastDecision !== null && view.activeFixer === null && view.phase === 'polling',
    );
    assert.equal(polled.lastDispatchKey, keys[0], 'the cloud starts from the sent dedup key');
    assert.equal(polled.lastDecision?.key, keys[0], 'it decided on the PR as K1');
    assert.equal(polled.lastDecision?.action, 'WAITING', JSON.stringify(polled.lastDecision));
    assert.equal(polled.dispatchesToday, 0, 'no cloud dispatch');
    assert.deepEqual(await rig.fixerSessions(workspaceId), [], 'no fixer session in the VM');
    assert.equal(fixerPrompts(rig.cloud.fake).length, 0, 'no cloud fixer prompt');
    const shown = await rig.ratchetView(workspaceId);
    assert.equal(shown?.lastDispatchKey, keys[0], 'GET /api/workspaces/:id shows the handed-over key');
  });

  it('K2: the desktop loop skips the CLOUD workspace; the cloud runs exactly one fixer for head2', async () => {
    const head2 = failingPush('k2.txt', 9102);
    const lines = await ratchetOnce();
    assert.equal(onlyCycle(lines).outcome, 'skipped_cloud', JSON.stringify(lines));
    assert.deepEqual(endedFixers(lines), []);
    assert.equal(fixerPrompts(desktopClaude).length, 1, 'no new desktop fixer');
    assert.equal((await local()).ratchet.lastDispatchKey, keys[0], 'the desktop memory is untouched');

    await wake();
    const done = await cloudView(
      'the cloud fixer for K2 to end',
      (view) => view.dispatchesToday >= 1 && view.activeFixer === null && view.phase === 'polling',
    );
    assert.equal(done.dispatchesToday, 1, 'exactly one cloud dispatch');
    assert.ok(done.lastDispatchKey?.includes(`head:${head2}`), JSON.stringify(done));
    assert.notEqual(done.lastDispatchKey, keys[0]);
    keys.push(done.lastDispatchKey ?? '-');
    const sessions = await rig.fixerSessions(workspaceId);
    assert.equal(sessions.length, 1, 'one fixer session in the VM');
    const prompts = fixerPrompts(rig.cloud.fake);
    assert.equal(prompts.length, 1, 'exactly one cloud fixer prompt');
    assert.ok(prompts[0]?.includes(headLine(head2)), prompts[0]);
    assert.equal(fixerPrompts(desktopClaude).length, 1, 'still one desktop fixer');
  });

  it('pull → the cloud loop ended with K2 kept; the desktop does not re-dispatch K2, and K3 gets one desktop fixer', async () => {
    const pulled = await ffc(['pull', workspaceId, '--json']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const answer = safeParseJson(PulledSchema, pulled.stdout);
    assert.ok(answer.ok, pulled.stdout);
    assert.equal(answer.value.state.location, 'DESKTOP');
    assert.equal(answer.value.state.ratchetLastCiRunId, keys[1], 'the cloud’s key comes back');
    assert.ok(answer.value.state.ratchetDispatchKeys.includes(keys[0] ?? '-'), 'K1 is still remembered');
    assert.ok(answer.value.state.ratchetDispatchKeys.includes(keys[1] ?? '-'));
    assert.equal(answer.value.local?.location, 'DESKTOP');
    assert.equal(answer.value.local?.ratchet.lastDispatchKey, keys[1]);

    const stored = await local();
    assert.equal(stored.location, 'DESKTOP');
    assert.equal(stored.ratchet.lastDispatchKey, keys[1], 'the local store holds K2');
    assert.ok(stored.ratchet.dispatchKeys.includes(keys[0] ?? '-'));
    assert.equal(stored.ratchet.enabled, true);

    // The handOff ended the loop before the pull answered (nothing is dispatched after it); the execution
    // itself closes a moment later, after its last view write (a cancelled watch's late answer can make the
    // server retry that final workflow task once).
    await eventually(
      'the cloud loop to close',
      async () => {
        const described = await rig.cloud.temporal.workflow
          .getHandle(workflowIds.ratchet(workspaceId))
          .describe();
        return described.status.name === 'COMPLETED' ? true : undefined;
      },
      10_000,
    );
    const ended = await rig.ratchetView(workspaceId);
    assert.equal(ended?.phase, 'ended');
    assert.equal(ended?.endedReason, 'handed_off');
    const woke = await rig.wake(workspaceId);
    assert.equal(woke.status, 409, `nothing left to wake: ${woke.text}`);

    // K2 is still what the PR shows: the desktop resumes without handing it to a fixer.
    const resumed = await ratchetOnce();
    const cycle = onlyCycle(resumed);
    assert.equal(cycle.outcome, 'decided', JSON.stringify(cycle));
    assert.equal(cycle.decision?.key, keys[1], 'the desktop sees the PR as K2');
    assert.equal(cycle.decision?.action, 'WAITING', JSON.stringify(cycle));
    assert.equal(cycle.dispatched, null);
    assert.deepEqual(endedFixers(resumed), []);
    assert.equal(fixerPrompts(desktopClaude).length, 1, 'no desktop fixer for K2');

    // A new failing push: the desktop's own again.
    const head3 = failingPush('k3.txt', 9103);
    const lines = await ratchetOnce();
    const third = onlyCycle(lines);
    assert.equal(third.decision?.action, 'TRIGGER_FIXER', JSON.stringify(third));
    assert.ok(third.dispatched, 'a fixer was dispatched');
    assert.ok(third.dispatched.key.includes(`head:${head3}`), third.dispatched.key);
    assert.deepEqual(endedFixers(lines), [[third.dispatched.sessionId, 'COMPLETED']]);
    const prompts = fixerPrompts(desktopClaude);
    assert.equal(prompts.length, 2, 'exactly one more desktop fixer');
    assert.ok(prompts[1]?.includes(headLine(head3)), prompts[1]);
    assert.equal(fixerPrompts(rig.cloud.fake).length, 1, 'still one cloud fixer');
    assert.equal((await local()).ratchet.lastDispatchKey, third.dispatched.key);
  });
});
