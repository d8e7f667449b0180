/**
 * The ratchet's watch on the real Temporal dev server: the real ratchetWorkflow (production bundle) and the
 * real watch (activities/ratchet/watch.ts) over a scripted PR (the VM's agent simulated: a poll answers
 * from `world`). What it proves:
 *   - quiet polls never reach the workflow: dozens of polls, a history that does not grow with them;
 *   - a poll that matters is decided at once (a CI failure → one dispatch within a poll or two);
 *   - a wake cancels the watch and polls now, even with a long poll interval;
 *   - a handOff during a watch answers at once, and nothing polled after it is applied;
 *   - after watchMaxMs a quiet watch reports anyway (the view's last decision is refreshed).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { buildPullRequestSnapshot } from '@factory-factory/core/github';
import { GhPrViewSchema, type PullRequestSnapshot } from '@factory-factory/core/protocol';
import { initialRatchetMemory } from '@factory-factory/core/ratchet';
import type { Client } from '@temporalio/client';
import type { RatchetActivities } from '../../activities/ratchet/types.js';
import { watchPullRequestWith } from '../../activities/ratchet/watch.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultRatchetSettings,
  handOffUpdate,
  type RatchetSettings,
  type RatchetView,
  ratchetViewQuery,
  wakeSignal,
} from '../../workflows/ratchet/messages.js';
import { ratchetWorkflow } from '../../workflows/ratchet/workflow.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import { connectTestTemporal, uniqueSuffix } from '../support/services.js';
import { eventually } from '../support/vm.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The PR as gh in the VM would report it, made into a snapshot by core (as the agent does). */
function pr(world: World): PullRequestSnapshot {
  const view = GhPrViewSchema.parse({
    number: 7,
    url: 'https://github.com/acme/app/pull/7',
    state: world.merged ? 'MERGED' : 'OPEN',
    headRefName: 'feature',
    headRefOid: world.headSha,
    baseRefName: 'main',
    mergeStateStatus: 'CLEAN',
    reviewDecision: '',
    statusCheckRollup: [
      {
        __typename: 'CheckRun',
        name: 'test',
        workflowName: 'CI',
        status: 'COMPLETED',
        conclusion: world.failingRun === null ? 'SUCCESS' : 'FAILURE',
        startedAt: '2024-01-02T03:05:00Z',
        detailsUrl: `https://github.com/acme/app/actions/runs/${world.failingRun ?? 1}/job/1`,
      },
    ],
    reviews: [],
    comments: [],
  });
  return buildPullRequestSnapshot({ host: 'github.com', owner: 'acme', repo: 'app' }, view, [], 'ffc-user');
}

type World = { headSha: string; failingRun: number | null; merged: boolean };

/** The VM's side, simulated: polls answered from the world (counted), dispatches recorded. */
class ScriptedVm {
  world: World = { headSha: 'a'.repeat(40), failingRun: null, merged: false };
  polls = 0;
  readonly dispatches: { dispatchId: string; prompt: string }[] = [];

  activities(): RatchetActivities {
    const pollPullRequest: RatchetActivities['pollPullRequest'] = async () => {
      this.polls++;
      return { kind: 'snapshot', snapshot: pr(this.world) };
    };
    return {
      pollPullRequest,
      watchPullRequest: watchPullRequestWith(pollPullRequest),
      wakeVmForPoll: async () => {},
      dispatchFixer: async ({ dispatchId, prompt }) => {
        if (!this.dispatches.some((d) => d.dispatchId === dispatchId))
          this.dispatches.push({ dispatchId, prompt });
        return { sessionId: `session-${dispatchId}` };
      },
      checkFixer: async () => ({ outcome: 'RUNNING', detail: null }),
      stopFixer: async () => ({ stopped: false, sessionId: null }),
      recordRatchetView: async (view: RatchetView) => ({ written: true, version: view.version }),
    } satisfies RatchetActivities;
  }
}

describe('ratchet actor: watched polls (real Temporal, the real watch over a scripted VM)', function () {
  this.timeout(120_000);
  let temporal: Client;
  let vm: ScriptedVm;
  let worker: RunningTestWorker;
  const started: string[] = [];

  beforeEach(async () => {
    temporal = await connectTestTemporal();
    vm = new ScriptedVm();
    worker = await startTestWorker(vm.activities());
  });

  afterEach(async () => {
    for (const id of started.splice(0))
      await temporal.workflow
        .getHandle(workflowIds.ratchet(id))
        .terminate('test over')
        .catch(() => undefined);
    await worker.stop();
    await temporal.connection.close();
  });

  async function start(settings: Partial<RatchetSettings>) {
    const workspaceId = `ws-watch-${uniqueSuffix()}`;
    started.push(workspaceId);
    return temporal.workflow.start(ratchetWorkflow, {
      workflowId: workflowIds.ratchet(workspaceId),
      taskQueue: worker.taskQueue,
      args: [
        {
          workspaceId,
          userId: 'user-watch',
          memory: initialRatchetMemory({ enabled: true }),
          settings: { ...defaultRatchetSettings, searchAttributes: false, ...settings },
        },
      ],
    });
  }

  const until = (what: string, holds: () => boolean | Promise<boolean>, timeoutMs = 20_000) =>
    eventually(what, async () => ((await holds()) ? true : undefined), timeoutMs, 20);
  const viewOf = (handle: { query: (q: typeof ratchetViewQuery) => Promise<RatchetView> }) =>
    handle.query(ratchetViewQuery);

  it('keeps quiet polls from the workflow and decides the first one that matters at once', async () => {
    const handle = await start({ pollIntervalMs: 100 });
    await until('a few polls', () => vm.polls >= 3);
    const settled = (await handle.describe()).historyLength;
    const pollsBefore = vm.polls;
    await sleep(3_000);
    const quietPolls = vm.polls - pollsBefore;
    const grown = (await handle.describe()).historyLength - settled;
    assert.ok(quietPolls >= 15, `the watch went on polling: ${quietPolls} polls in 3 s`);
    assert.ok(grown <= 2, `${quietPolls} quiet polls added ${grown} history events`);

    const failedAt = performance.now();
    vm.world = { ...vm.world, failingRun: 41 };
    await until('the dispatch', () => vm.dispatches.length === 1);
    const gapMs = performance.now() - failedAt;
    assert.ok(
      gapMs < 2_000,
      `a failure the watch saw is dispatched within a few polls, took ${gapMs.toFixed(0)} ms`,
    );
    assert.ok(vm.dispatches[0]?.prompt.includes(vm.world.headSha), 'the prompt names the head');
    await until('the fixer in the view', async () => (await viewOf(handle)).activeFixer?.sessionId != null);
    assert.equal(vm.dispatches.length, 1, 'one dispatch, whatever the watch polled meanwhile');
  });

  it('a wake cancels a long watch and polls now', async () => {
    // A poll interval far longer than the test: only the wake can make another poll happen.
    const handle = await start({ pollIntervalMs: 10 * 60_000 });
    await until('the first decision', async () => (await viewOf(handle)).lastDecision?.reason === 'clean');
    await sleep(500);
    const pollsBefore = vm.polls;
    assert.equal(vm.dispatches.length, 0);
    vm.world = { ...vm.world, failingRun: 42 };
    const wokenAt = performance.now();
    await handle.signal(wakeSignal);
    await until('the dispatch', () => vm.dispatches.length === 1);
    const gapMs = performance.now() - wokenAt;
    assert.ok(gapMs < 2_000, `wake → dispatch took ${gapMs.toFixed(0)} ms`);
    assert.equal(vm.polls, pollsBefore + 1, 'the wake made exactly one poll');
    if (shouldRecordHistories()) await recordHistory(temporal, handle.workflowId, 'ratchet-watch-wake');
  });

  it('a handOff during a watch answers at once, and nothing is dispatched after it', async () => {
    const handle = await start({ pollIntervalMs: 10 * 60_000 });
    await until('the first decision', async () => (await viewOf(handle)).lastDecision?.reason === 'clean');
    const askedAt = performance.now();
    const handedOff = await handle.executeUpdate(handOffUpdate);
    const answerMs = performance.now() - askedAt;
    assert.ok(answerMs < 2_000, `handOff answered in ${answerMs.toFixed(0)} ms`);
    assert.equal(handedOff.view.endedReason, 'handed_off');
    const result = await handle.result();
    assert.equal(result.view.endedReason, 'handed_off');
    vm.world = { ...vm.world, failingRun: 43 };
    await sleep(1_000);
    assert.equal(vm.dispatches.length, 0);
    if (shouldRecordHistories()) await recordHistory(temporal, handle.workflowId, 'ratchet-watch-handoff');
  });

  it('a quiet watch still reports after watchMaxMs: the view stays fresh, the history small', async () => {
    const handle = await start({ pollIntervalMs: 100, watchMaxMs: 1_000 });
    await until('the first decision', async () => (await viewOf(handle)).lastDecision !== null);
    const first = (await viewOf(handle)).lastDecision?.atMs ?? 0;
    const pollsBefore = vm.polls;
    const eventsBefore = (await handle.describe()).historyLength;
    await sleep(3_500);
    const latest = (await viewOf(handle)).lastDecision?.atMs ?? 0;
    assert.ok(latest - first >= 1_000, `the last decision was refreshed (${latest - first} ms later)`);
    const polls = vm.polls - pollsBefore;
    const events = (await handle.describe()).historyLength - eventsBefore;
    assert.ok(polls >= 10, `${polls} polls in 3.5 s`);
    // An activity per poll costs at least six events (scheduled, started, completed, a workflow task).
    assert.ok(
      events <= polls * 2,
      `${events} events for ${polls} polls: the watch reported about once a second`,
    );
  });
});
