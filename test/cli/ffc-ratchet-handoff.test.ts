/**
 * The desktop ratchet's cycle (cli/src/ratchet/cycle.ts) in-process, with the clock in the test's hands:
 * the real gh against core's fake GitHub through core's GitHubClient, the real claude against the fake
 * Anthropic through the ClaudeFixerRunner `ffc ratchet` uses. What it proves:
 * - after a pull, the desktop resumes from the cloud's memory: a key the cloud dispatched is not dispatched
 *   again here, while one the cloud did not handle is (the control that shows the check can fail);
 * - a send that marks the workspace CLOUD while gh is answering wins: the cycle dispatches nothing;
 * - the daily cap (1 here) holds back the next dispatch within 24 h, visible as `daily_cap`; a day later
 *   it is dispatched.
 * The api's part of send/pull (409s, the cloud loop) is the workspace and e2e tests'; here the pulled
 * state is built as the api returns it (PortableWorkspaceStateSchema) with the key the cloud computed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGhRunner, GitHubClient } from '@factory-factory/core/github';
import { DEFAULT_REVIEW_TRUST_POLICY, snapshotKey } from '@factory-factory/core/ratchet';
import { DesktopRatchet, type SnapshotSource } from '../../cli/src/ratchet/cycle.js';
import { ClaudeFixerRunner } from '../../cli/src/ratchet/fixer.js';
import { pulledWorkspace, sentRatchetFields } from '../../cli/src/ratchet/handoff.js';
import { StoredRatchetSchema, WorkspaceStore } from '../../cli/src/workspace-store.js';
import { claudeBinPath, claudeTestEnv, TempDirs } from '../../core/test/support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../core/test/support/fake-anthropic.js';
import {
  checkRun,
  type FakeGitHub,
  type FakePullRequestInput,
  startFakeGitHub,
} from '../../core/test/support/fake-github.js';
import { GH_BINARY } from '../../core/test/support/gh-harness.js';
import { portableWorkspaceState } from '../support/portable-state.js';

const REPO = 'octo/widgets';
const PR_URL = `https://github.com/${REPO}/pull/7`;
const HOUR = 3_600_000;

describe('desktop ratchet cycle: resuming after a pull, racing a send, the daily cap', function () {
  this.timeout(4 * 60_000);
  const dirs = new TempDirs();
  let gh: FakeGitHub;
  let anthropic: FakeAnthropic;
  let github: GitHubClient;
  let fixers: ClaudeFixerRunner;
  let pr: FakePullRequestInput;
  let checkoutDir: string;

  const setPr = (changes: Partial<FakePullRequestInput>) => {
    pr = { ...pr, ...changes };
    gh.upsertPullRequest(REPO, pr);
  };
  const fixerConversations = () =>
    anthropic.requests.filter(
      (r) => r.messages.length === 1 && r.lastUserText.includes('You are the ratchet fixer'),
    ).length;

  before(async () => {
    pr = { number: 7, headRefName: 'feature/widgets', checks: [checkRun('unit-tests', 'FAILURE')] };
    gh = await startFakeGitHub({ fixtures: { repos: { [REPO]: { pulls: [pr] } } } });
    anthropic = await startFakeAnthropic();
    github = new GitHubClient({ runner: createGhRunner({ env: gh.ghEnv(), ghPath: GH_BINARY }) });
    fixers = new ClaudeFixerRunner({
      claudePath: claudeBinPath(),
      env: {
        ...claudeTestEnv({ fakeUrl: anthropic.url, home: dirs.make('claude-home') }),
        NO_PROXY: '127.0.0.1,localhost',
      },
      timeoutMs: 2 * 60_000,
    });
    checkoutDir = dirs.make('checkout');
  });

  after(async () => {
    await fixers?.stopAll();
    await gh?.close();
    await anthropic?.close();
    dirs.cleanup();
  });

  /** A store holding one DESKTOP workspace on PR 7 (as `ffc ratchet add` records it). */
  async function freshStore(): Promise<WorkspaceStore> {
    const store = new WorkspaceStore(mkdtempSync(join(tmpdir(), 'ffc-ratchet-store-')));
    await store.update((all) => {
      all.set('ws-desktop', {
        id: 'ws-desktop',
        name: 'widgets/feature/widgets',
        checkoutDir,
        repoUrl: `https://github.com/${REPO}.git`,
        branchName: 'feature/widgets',
        location: 'DESKTOP',
        prUrl: PR_URL,
        ratchet: StoredRatchetSchema.parse({ enabled: true }),
        activeFixer: null,
        lastDecision: null,
        problem: null,
      });
    });
    return store;
  }

  const ratchetOver = (store: WorkspaceStore, source: SnapshotSource = github, maxDispatchesPerDay = 10) =>
    new DesktopRatchet({
      store,
      github: source,
      fixers,
      settings: { trust: DEFAULT_REVIEW_TRUST_POLICY, maxDispatchesPerDay },
    });

  /** The portable state `POST /api/workspaces/:id/pull` answers, after the cloud's ratchet ran. */
  function pulledState(sent: ReturnType<typeof sentRatchetFields>, cloud: { lastKey: string | null }) {
    return portableWorkspaceState('ws-desktop', {
      name: 'widgets/feature/widgets',
      repoUrl: `https://github.com/${REPO}.git`,
      branchName: 'feature/widgets',
      baseBranch: null,
      prUrl: PR_URL,
      prNumber: 7,
      ratchetEnabled: sent.ratchetEnabled,
      ratchetState: 'CI_FAILED',
      ratchetLastCiRunId: cloud.lastKey,
      prReviewLastCheckedAt: sent.prReviewLastCheckedAt,
      ratchetDispatchKeys: [
        ...sent.ratchetDispatchKeys,
        ...(cloud.lastKey && cloud.lastKey !== sent.ratchetLastCiRunId ? [cloud.lastKey] : []),
      ],
    });
  }

  /** Desktop dispatches for the first failure, sends; in the cloud a new push fails; then the pull. */
  async function roundTrip(cloudHandledTheNewFailure: boolean) {
    setPr({
      headSha: '2222222222222222222222222222222222222222',
      checks: [checkRun('unit-tests', 'FAILURE')],
    });
    const store = await freshStore();
    const ratchet = ratchetOver(store);
    const first = await ratchet.cycle(Date.now());
    assert.equal(first[0]?.decision?.action, 'TRIGGER_FIXER');
    await ratchet.idle();

    // Send: CLOUD here, the fields travel.
    const sent = await store.update((all) => {
      const entry = all.get('ws-desktop');
      assert.ok(entry);
      all.set('ws-desktop', { ...entry, location: 'CLOUD' });
      return sentRatchetFields(entry, false);
    });
    assert.equal(sent.ratchetLastCiRunId, first[0]?.dispatched?.key);
    assert.equal(sent.ratchetActiveSessionId, null);

    // In the cloud: a push that fails the same check (a new key), which the cloud's ratchet dispatches.
    setPr({ headSha: '4444444444444444444444444444444444444444' });
    const cloudKey = snapshotKey(
      await github.getPullRequestSnapshot(PR_URL, { trust: DEFAULT_REVIEW_TRUST_POLICY }),
    );
    assert.notEqual(cloudKey, sent.ratchetLastCiRunId);
    const whileInCloud = await ratchet.cycle(Date.now());
    assert.equal(whileInCloud[0]?.outcome, 'skipped_cloud');

    const state = pulledState(sent, {
      lastKey: cloudHandledTheNewFailure ? cloudKey : sent.ratchetLastCiRunId,
    });
    await store.update((all) => {
      all.set('ws-desktop', pulledWorkspace(all.get('ws-desktop') ?? null, state, checkoutDir));
    });
    const before = fixerConversations();
    const resumed = await ratchet.cycle(Date.now());
    await ratchet.idle();
    return { resumed: resumed[0], newFixers: fixerConversations() - before, cloudKey };
  }

  it('after a pull, a key the cloud handled is not dispatched again on the desktop', async () => {
    const { resumed, newFixers } = await roundTrip(true);
    assert.equal(resumed?.outcome, 'decided');
    assert.equal(resumed?.decision?.action, 'WAITING', JSON.stringify(resumed));
    assert.equal(resumed?.dispatched, null);
    assert.equal(newFixers, 0);
  });

  it('after a pull, a failure the cloud did not handle is dispatched on the desktop (control)', async () => {
    const { resumed, newFixers, cloudKey } = await roundTrip(false);
    assert.equal(resumed?.decision?.action, 'TRIGGER_FIXER', JSON.stringify(resumed));
    assert.equal(resumed?.dispatched?.key, cloudKey);
    assert.equal(newFixers, 1);
  });

  it('a send that lands while gh is answering wins: nothing is dispatched', async () => {
    setPr({ headSha: '5555555555555555555555555555555555555555', checks: [checkRun('lint', 'FAILURE')] });
    const store = await freshStore();
    // The real snapshot, and the send (CLOUD under the lock) between gh's answer and the decision.
    const racingSend: SnapshotSource = {
      getPullRequestSnapshot: async (url, options) => {
        const snapshot = await github.getPullRequestSnapshot(url, options);
        await store.update((all) => {
          const entry = all.get('ws-desktop');
          if (entry) all.set('ws-desktop', { ...entry, location: 'CLOUD' });
        });
        return snapshot;
      },
    };
    const before = fixerConversations();
    const reports = await ratchetOver(store, racingSend).cycle(Date.now());
    assert.equal(reports[0]?.outcome, 'skipped_cloud');
    const stored = await store.get('ws-desktop');
    assert.equal(stored?.ratchet.lastDispatchKey, null);
    assert.equal(stored?.activeFixer, null);
    assert.equal(fixerConversations(), before);
  });

  it('the daily cap holds back a dispatch within 24 h and shows why; a day later it runs', async () => {
    setPr({
      headSha: '6666666666666666666666666666666666666666',
      checks: [checkRun('unit-tests', 'FAILURE')],
    });
    const store = await freshStore();
    const ratchet = ratchetOver(store, github, 1);
    const t0 = Date.parse('2031-05-01T08:00:00Z');
    const first = await ratchet.cycle(t0);
    assert.equal(first[0]?.decision?.action, 'TRIGGER_FIXER');
    await ratchet.idle();

    setPr({ headSha: '7777777777777777777777777777777777777777' });
    const capped = await ratchet.cycle(t0 + 2 * HOUR);
    assert.equal(capped[0]?.decision?.action, 'WAITING');
    assert.equal(capped[0]?.decision?.reason, 'daily_cap');
    assert.equal((await store.get('ws-desktop'))?.lastDecision?.reason, 'daily_cap');

    const nextDay = await ratchet.cycle(t0 + 25 * HOUR);
    assert.equal(nextDay[0]?.decision?.action, 'TRIGGER_FIXER', JSON.stringify(nextDay));
    await ratchet.idle();
    assert.equal((await store.get('ws-desktop'))?.ratchet.dispatchTimesMs.length, 1, 'older times trimmed');
  });
});
