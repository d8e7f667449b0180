/**
 * Both ratchets on one PR, randomly interleaved: the desktop's (cli/src/ratchet: DesktopRatchet over a real
 * WorkspaceStore, ffc's handoff functions) and the cloud's (the real ratchetWorkflow from the production
 * bundle on Temporal's time-skipping server), each deciding with core/ratchet. A seeded schedule mixes CI
 * events (pushes that start a run, runs that fail or pass, re-runs, force-pushes back to an earlier failing
 * commit whose key was seen before, mostly one the other side fixed), fixer ends and deaths (and fixers that
 * hang until the cloud's timeout stops them), sends and pulls (a send racing a desktop cycle), restarts of
 * the cloud worker and of the desktop process, GitHub outages, and dispatch acknowledgements lost after
 * the VM took the dispatch (the activity retried with the same dispatch id).
 *
 * Asserted for every seed:
 *   - at most one dispatch per key across both sides: a key is dispatched again only after its previous
 *     fixer died (a retry), never while one works, at most 1 + MAX_FIXER_RETRIES times;
 *   - never two fixers at work at once for the workspace;
 *   - no failing key missed: whenever the schedule goes quiet (no pending CI, fixers ended), a PR whose
 *     current head fails has had that key dispatched by one side or the other.
 *
 * Simulated, for speed (thousands of polls per run): the transport of a poll (gh's JSON is made from the
 * scenario and turned into a snapshot by core's own buildPullRequestSnapshot, not fetched by gh), the VM
 * agent behind the cloud activities (dispatch idempotent on its dispatch id, like the agent's
 * ratchet.dispatch), and the fixers (they end after a drawn time, COMPLETED or DIED, and may push). The
 * decisions, memories, the workflow and the handoff mappings (ffc's sentRatchetFields/pulledWorkspace, the
 * workspace actor's ratchetMemoryFromSource/portableWithRatchet) are the real ones.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPullRequestSnapshot } from '@factory-factory/core/github';
import {
  GhPrViewSchema,
  type PortableWorkspaceState,
  type PullRequestSnapshot,
} from '@factory-factory/core/protocol';
import {
  initialRatchetMemory,
  MAX_FIXER_RETRIES,
  type RatchetMemory,
  snapshotKey,
} from '@factory-factory/core/ratchet';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { RatchetActivities } from '../../activities/ratchet/types.js';
import { watchPullRequestWith } from '../../activities/ratchet/watch.js';
import { DesktopRatchet } from '../../cli/src/ratchet/cycle.js';
import type { FixerEnd, FixerJob, FixerRunner } from '../../cli/src/ratchet/fixer.js';
import { pulledWorkspace, sentRatchetFields, storedRatchetOf } from '../../cli/src/ratchet/handoff.js';
import { type LocalWorkspace, WorkspaceStore } from '../../cli/src/workspace-store.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  handOffUpdate,
  RatchetErrorType,
  RatchetMemorySchema,
  type RatchetSettings,
  type RatchetView,
  ratchetViewQuery,
} from '../../workflows/ratchet/messages.js';
import { ratchetWorkflow } from '../../workflows/ratchet/workflow.js';
import { portableWithRatchet, ratchetMemoryFromSource } from '../../workflows/workspace/state.js';
import { portableWorkspaceState } from '../support/portable-state.js';
import { uniqueSuffix } from '../support/services.js';
import { createTimeSkippingEnvironment } from '../support/temporal-test-server.js';
import { workflowBundle } from '../support/worker.js';

/** Seeds run by CI; each is one independent schedule of STEPS_PER_SEED events. */
const SEEDS = Array.from({ length: 10 }, (_, i) => 1000 + i * 7919);
const STEPS_PER_SEED = 45;
const QUIET_EVERY = 9;

const OWNER = 'acme';
const REPO = 'app';
const PR_NUMBER = 42;
const PR_URL = `https://github.com/${OWNER}/${REPO}/pull/${PR_NUMBER}`;
const VIEWER = 'ffc-user';

const cloudSettings: RatchetSettings = {
  pollIntervalMs: 30_000,
  suspendedPollIntervalMs: 5 * 60_000,
  maxDispatchesPerDay: 1000,
  // Above the longest drawn fixer (6 min), so only a hung one reaches it, and short: the wait for a hung
  // fixer's timeout is a run of fixer checks and polls, each a workflow task replayed in full (no cache),
  // and at 20 min with a check every 10 s one such wait cost 150 s of real time in a seed.
  fixerTimeoutMs: 8 * 60_000,
  fixerCheckIntervalMs: 30_000,
  trust: { triggerMode: 'changes_requested', trustedBots: [] },
  // Every poll reported: a watch's sleeps are the activity's real time, which this server does not skip.
  // The watch itself (quiet polls kept from the workflow) is tested in ratchet-watch.test.ts.
  watchMaxMs: 0,
  searchAttributes: false,
  // Short runs: the worker keeps no cache (below), so every workflow task replays its run's history, and a
  // seed's cost grew with it (one seed spent 92 s in a single 20-minute hung-fixer wait at the 2000-event
  // default). At 200 the actor also continues as new several times per seed, among the sends, pulls and
  // restarts, so its carried state is under the same assertions.
  maxHistoryEvents: 200,
};

/**
 * A seed's own time-skipping server and the worker it runs at the moment (a restart replaces it). Across
 * 40 seeds on a 2-core machine a seed took 4–67 s (median about 28 s); CI's 10, with force-pushes back,
 * took 5–59 s. One that stalls (a broken handoff can leave a side waiting forever) fails after
 * SEED_TIMEOUT_MS instead of holding CI.
 */
const SEED_TIMEOUT_MS = 5 * 60_000;

type RunningWorker = { stop: () => Promise<void> };

class SeedResources {
  private current: RunningWorker | null = null;
  private released: Promise<void> | null = null;

  constructor(readonly env: TestWorkflowEnvironment) {}

  /** Runs the worker; its stop can be called any number of times and by anyone. */
  track(worker: Worker): RunningWorker {
    const running = worker.run();
    // Observed here so a worker that fails on its own (its server gone) is not an unhandled rejection.
    running.catch(() => undefined);
    let stopping: Promise<void> | null = null;
    const handle: RunningWorker = {
      stop: () => {
        if (stopping === null) {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          stopping = running.then(() => undefined);
        }
        return stopping;
      },
    };
    this.current = handle;
    return handle;
  }

  /** Stops the worker, then the server (once, whoever asks first). */
  release(): Promise<void> {
    this.released ??= (async () => {
      await this.current?.stop().catch(() => undefined);
      await this.env.teardown().catch(() => undefined);
    })();
    return this.released;
  }
}

/** mulberry32: small, seedable, good enough to draw a schedule. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (p: number) => next() < p,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
  };
}
type Rng = ReturnType<typeof rng>;

type Side = 'cloud' | 'desktop';
type FixerState = 'RUNNING' | 'COMPLETED' | 'DIED';
type SimFixer = {
  id: string;
  side: Side;
  key: string | null;
  startedAtMs: number;
  durationMs: number;
  /** HANG: never ends by itself (the cloud's fixer timeout stops it). */
  planned: 'COMPLETED' | 'DIED' | 'HANG';
  pushes: boolean;
  state: FixerState;
  /** A desktop fixer's promise, settled when it ends (never for one whose ffc process was killed). */
  finish?: (end: FixerEnd) => void;
  /** Its ffc process was killed: the next desktop ratchet sees an orphan and records DIED. */
  orphaned?: boolean;
};

/** A commit and the CI run GitHub shows for it. */
type CommitRun = { headSha: string; runId: number };

/** One PR, one check ("test"), CI run ids and head shas drawn in order (never reused). */
class PullRequestWorld {
  private shaSeq = 0;
  private runSeq = 100;
  runId = this.runSeq;
  headSha = this.nextSha();
  ci: 'PENDING' | 'FAILURE' | 'SUCCESS' = 'FAILURE';
  private pendingUntilMs = 0;
  private pendingResult: 'FAILURE' | 'SUCCESS' = 'FAILURE';
  /** Answer polls with an outage (GitHub unreachable) while set. */
  outage = false;
  /** Every commit whose CI run settled on FAILURE, so a force-push can bring one back. */
  private readonly settledFailures: CommitRun[] = [{ headSha: this.headSha, runId: this.runId }];

  private nextSha(): string {
    this.shaSeq += 1;
    return this.shaSeq.toString(16).padStart(40, 'a');
  }

  push(nowMs: number, result: 'FAILURE' | 'SUCCESS', ciMs: number): void {
    this.headSha = this.nextSha();
    this.rerun(nowMs, result, ciMs);
  }

  rerun(nowMs: number, result: 'FAILURE' | 'SUCCESS', ciMs: number): void {
    this.runSeq += 1;
    this.runId = this.runSeq;
    this.ci = 'PENDING';
    this.pendingResult = result;
    this.pendingUntilMs = nowMs + ciMs;
  }

  advance(nowMs: number, force = false): void {
    if (this.ci === 'PENDING' && (force || nowMs >= this.pendingUntilMs)) {
      this.ci = this.pendingResult;
      if (this.ci === 'FAILURE') this.settledFailures.push({ headSha: this.headSha, runId: this.runId });
    }
  }

  /**
   * Someone force-pushes the branch back to an earlier failing commit (a revert of the fixer's work, a
   * rebase gone wrong). CI does not build a commit it has built, so GitHub shows that commit's old run
   * again and the PR's key is one a side may already have dispatched: neither side may dispatch it again
   * (the memory's dispatch keys, and the keys each handoff carries across). Mostly it goes back to a commit
   * whose key is in `preferredKeys` (the caller passes the keys the side not at the wheel dispatched, so
   * only the handoff's carried keys stop a second fixer), else to any earlier failing commit. Returns the
   * key it went back to, or null when no earlier failing commit differs from the current head.
   */
  forcePushBack(r: Rng, preferredKeys: ReadonlySet<string>): string | null {
    const earlier = this.settledFailures.filter(
      (head) => !(this.ci === 'FAILURE' && head.headSha === this.headSha && head.runId === this.runId),
    );
    const preferred = earlier.filter((head) => preferredKeys.has(this.keyAt(head)));
    const pool = preferred.length > 0 && r.chance(0.75) ? preferred : earlier;
    const back = pool[r.int(0, pool.length - 1)];
    if (back === undefined) return null;
    this.headSha = back.headSha;
    this.runId = back.runId;
    this.ci = 'FAILURE';
    return this.keyAt(back);
  }

  /** The key a side sees while the PR is at that failing commit. */
  keyAt(failure: CommitRun): string {
    return snapshotKey(this.snapshotAt(failure, 'FAILURE'));
  }

  /** What gh would print, made into core's snapshot by core's own code. */
  snapshot(): PullRequestSnapshot {
    return this.snapshotAt({ headSha: this.headSha, runId: this.runId }, this.ci);
  }

  private snapshotAt(at: CommitRun, ci: PullRequestWorld['ci']): PullRequestSnapshot {
    const running = ci === 'PENDING';
    const view = GhPrViewSchema.parse({
      number: PR_NUMBER,
      url: PR_URL,
      state: 'OPEN',
      isDraft: false,
      reviewDecision: '',
      mergedAt: null,
      mergeStateStatus: 'CLEAN',
      headRefName: 'feature-x',
      headRefOid: at.headSha,
      baseRefName: 'main',
      statusCheckRollup: [
        {
          __typename: 'CheckRun',
          name: 'test',
          workflowName: 'CI',
          status: running ? 'IN_PROGRESS' : 'COMPLETED',
          conclusion: running ? '' : ci,
          startedAt: '2024-01-02T03:05:00Z',
          completedAt: running ? '0001-01-01T00:00:00Z' : '2024-01-02T03:07:00Z',
          detailsUrl: `https://github.com/${OWNER}/${REPO}/actions/runs/${at.runId}/job/1`,
        },
      ],
      reviews: [],
      comments: [],
    });
    return buildPullRequestSnapshot({ host: 'github.com', owner: OWNER, repo: REPO }, view, [], VIEWER);
  }
}

type Dispatch = { side: Side; id: string; key: string | null; atMs: number };

/** One seed's run: the world, both sides, the log. */
class Scenario {
  readonly world = new PullRequestWorld();
  readonly fixers = new Map<string, SimFixer>();
  readonly dispatches: Dispatch[] = [];
  /** Cloud dispatch id → key, from the views the workflow records (the dispatch input has no key). */
  readonly cloudKeys = new Map<string, string>();
  /** The next new cloud dispatch loses its acknowledgement after the VM took it. */
  loseNextAck = false;
  nowMs = 0;
  location: 'DESKTOP' | 'CLOUD' = 'DESKTOP';
  readonly violations: string[] = [];
  /** Every cloud run that recorded a view: the sends' runs and the runs they continued as new into. */
  readonly cloudRuns = new Set<string>();
  /** The runs the sends started. */
  readonly sentRuns = new Set<string>();

  constructor(
    readonly seed: number,
    readonly r: Rng,
    readonly workspaceId: string,
  ) {}

  /** The fixers at work, on one side or on both. */
  running(side?: Side): SimFixer[] {
    return [...this.fixers.values()].filter(
      (f) => f.state === 'RUNNING' && !f.orphaned && (side === undefined || f.side === side),
    );
  }

  /** Runs that recorded a view but that no send started: each is a continue-as-new. */
  continuedAsNewRuns(): number {
    return [...this.cloudRuns].filter((run) => !this.sentRuns.has(run)).length;
  }

  startFixer(side: Side, id: string, key: string | null): SimFixer {
    const known = this.fixers.get(id);
    if (known) return known;
    const others = this.running();
    if (others.length > 0)
      this.violations.push(
        `${side} fixer ${id} started while ${others.map((f) => `${f.side}:${f.id}`).join(', ')} worked`,
      );
    const roll = this.r.next();
    const fixer: SimFixer = {
      id,
      side,
      key,
      startedAtMs: this.nowMs,
      durationMs: this.r.int(5_000, 6 * 60_000),
      planned: roll < 0.65 ? 'COMPLETED' : roll < 0.93 ? 'DIED' : side === 'cloud' ? 'HANG' : 'DIED',
      pushes: this.r.chance(0.5),
      state: 'RUNNING',
    };
    this.fixers.set(id, fixer);
    this.dispatches.push({ side, id, key, atMs: this.nowMs });
    return fixer;
  }

  endFixer(fixer: SimFixer, state: 'COMPLETED' | 'DIED', quiet: boolean): void {
    if (fixer.state !== 'RUNNING') return;
    fixer.state = state;
    if (state === 'COMPLETED' && fixer.pushes && !quiet)
      this.world.push(this.nowMs, this.r.chance(0.5) ? 'FAILURE' : 'SUCCESS', this.r.int(10_000, 4 * 60_000));
    fixer.finish?.({ outcome: state, detail: state === 'DIED' ? 'simulated death' : null });
  }

  /** Ends the fixers whose time is up (in a quiet phase: every fixer that can end, now). */
  endDueFixers(quiet: boolean): SimFixer[] {
    const ended: SimFixer[] = [];
    for (const fixer of this.running()) {
      const due = quiet || this.nowMs >= fixer.startedAtMs + fixer.durationMs;
      if (!due || fixer.planned === 'HANG') continue;
      this.endFixer(fixer, quiet ? 'COMPLETED' : fixer.planned, quiet);
      ended.push(fixer);
    }
    return ended;
  }

  // ---- the cloud side's activities: the VM agent simulated, idempotent on the dispatch id ----

  activities(): RatchetActivities {
    const pollPullRequest: RatchetActivities['pollPullRequest'] = async () => {
      if (this.world.outage) return { kind: 'unavailable', message: 'simulated GitHub outage' };
      return { kind: 'snapshot', snapshot: this.world.snapshot() };
    };
    return {
      pollPullRequest,
      watchPullRequest: watchPullRequestWith(pollPullRequest),
      wakeVmForPoll: async () => {},
      dispatchFixer: async ({ dispatchId }) => {
        const isNew = !this.fixers.has(dispatchId);
        const fixer = this.startFixer('cloud', dispatchId, this.cloudKeys.get(dispatchId) ?? null);
        if (isNew && this.loseNextAck) {
          this.loseNextAck = false;
          // The VM took the dispatch; the answer never reached the worker. The retry must not send twice.
          throw ApplicationFailure.retryable('simulated lost acknowledgement', 'SimulatedLostAck');
        }
        return { sessionId: `session-${fixer.id}` };
      },
      checkFixer: async ({ dispatchId }) => {
        const fixer = this.fixers.get(dispatchId);
        if (!fixer) return { outcome: 'DIED', detail: 'no such fixer in the VM' };
        return { outcome: fixer.state, detail: null };
      },
      stopFixer: async () => {
        const working = this.running('cloud');
        for (const fixer of working) this.endFixer(fixer, 'DIED', false);
        return { stopped: working.length > 0, sessionId: working[0] ? `session-${working[0].id}` : null };
      },
      recordRatchetView: async (view: RatchetView) => {
        const run = Context.current().info.workflowExecution?.runId;
        if (run) this.cloudRuns.add(run);
        if (view.activeFixer) this.cloudKeys.set(view.activeFixer.dispatchId, view.activeFixer.key);
        return { written: true, version: view.version };
      },
    } satisfies RatchetActivities;
  }
}

/** The desktop's fixers: started by DesktopRatchet, ended by the schedule. */
class SimDesktopFixers implements FixerRunner {
  private readonly mine = new Set<string>();
  constructor(private readonly scenario: Scenario) {}
  start(job: FixerJob): Promise<FixerEnd> {
    const fixer = this.scenario.startFixer('desktop', job.sessionId, null);
    this.mine.add(job.sessionId);
    return new Promise((resolve) => {
      fixer.finish = (end) => {
        this.mine.delete(job.sessionId);
        resolve(end);
      };
    });
  }
  isRunning(sessionId: string): boolean {
    return this.mine.has(sessionId);
  }
  /** This ffc process is killed: its fixers die with it and never report. */
  kill(): void {
    for (const id of this.mine) {
      const fixer = this.scenario.fixers.get(id);
      if (fixer) {
        fixer.orphaned = true;
        fixer.finish = undefined;
      }
    }
    this.mine.clear();
  }
  async stopAll(): Promise<void> {}
}

type WorkspaceNaming = Pick<LocalWorkspace, 'id' | 'name' | 'repoUrl' | 'branchName' | 'prUrl'>;

function portableOf(
  workspace: WorkspaceNaming,
  fields: Partial<PortableWorkspaceState>,
): PortableWorkspaceState {
  return portableWorkspaceState(workspace.id, {
    name: workspace.name,
    repoUrl: workspace.repoUrl,
    branchName: workspace.branchName,
    location: 'CLOUD',
    prUrl: workspace.prUrl,
    prNumber: PR_NUMBER,
    ratchetEnabled: true,
    ...fields,
  });
}

describe('ratchet interleaving: desktop and cloud on one PR (time-skipping Temporal, real workflow)', function () {
  this.timeout(SEED_TIMEOUT_MS);
  const stateRoot = mkdtempSync(join(tmpdir(), 'ffc-ratchet-interleave-'));
  const totals = {
    seeds: 0,
    steps: 0,
    dispatches: 0,
    retries: 0,
    sends: 0,
    pulls: 0,
    refusedPulls: 0,
    continuedAsNew: 0,
    pushBacks: 0,
    /** Push-backs to a key the side not at the wheel dispatched (not its last): see otherSideKeys. */
    pushBacksAcross: 0,
  };
  /**
   * What the current seed holds. Each seed has its own test server, so a seed that mocha gave up on (its
   * timeout) cannot slow the next one by sharing its clock, and afterEach releases it: its worker is stopped
   * and its server torn down, so the abandoned seed's awaits fail instead of polling forever and keeping the
   * process (and CI) alive.
   */
  let held: SeedResources | null = null;

  afterEach(async () => {
    await held?.release();
    held = null;
  });
  after(async () => {
    rmSync(stateRoot, { recursive: true, force: true });
    process.stdout.write(
      `ratchet interleaving: seeds ${SEEDS.join(',')}; ${STEPS_PER_SEED} steps each; totals ${JSON.stringify(totals)}\n`,
    );
    // maxHistoryEvents is set low so that the carried state crosses runs under the same assertions.
    // The force-pushes back are what put an already dispatched key in front of a side again.
    if (totals.seeds === SEEDS.length) {
      assert.ok(totals.continuedAsNew > 0, 'no cloud run continued as new in any seed');
      assert.ok(totals.pushBacks > 0, 'no seed force-pushed back to an earlier failing commit');
      assert.ok(totals.pushBacksAcross > 0, 'no seed force-pushed back to a key the other side dispatched');
    }
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: every key at most once across both sides, no failing key missed`, async () => {
      await runSeed(seed);
    });
  }

  async function runSeed(seed: number): Promise<void> {
    const resources = new SeedResources(await createTimeSkippingEnvironment());
    held = resources;
    const env = resources.env;
    const r = rng(seed);
    const workspaceId = `interleave-${seed}-${uniqueSuffix()}`;
    const scenario = new Scenario(seed, r, workspaceId);
    const taskQueue = `interleave-${uniqueSuffix()}`;
    const userId = `user-${seed}`;
    const storeDir = join(stateRoot, String(seed));
    const store = new WorkspaceStore(storeDir);
    const now = async () => {
      scenario.nowMs = await env.currentTimeMs();
      return scenario.nowMs;
    };
    const bundle = await workflowBundle();
    const activities = scenario.activities();

    // The cloud worker, restartable.
    const startWorker = async () => {
      const w = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities,
        // No cache, so no sticky queue: after a restart the test server kept the next workflow task on the
        // stopped worker's sticky queue for about 105 s of real time (time cannot skip past a pending task).
        // Without a cache every workflow task is also a full replay, which checks determinism on each one.
        maxCachedWorkflows: 0,
        shutdownGraceTime: '1s',
        // A stop always ends: whatever an activity does, the worker gives up on it after this.
        shutdownForceTime: '10s',
      });
      return resources.track(w);
    };
    let worker = await startWorker();

    // The desktop, restartable (a restart orphans its fixers).
    let desktopFixers = new SimDesktopFixers(scenario);
    const newDesktop = () =>
      new DesktopRatchet({
        store,
        github: {
          getPullRequestSnapshot: async () => {
            if (scenario.world.outage) throw new Error('simulated GitHub outage');
            return scenario.world.snapshot();
          },
        },
        fixers: desktopFixers,
        settings: { maxDispatchesPerDay: 1000 },
      });
    let desktop = newDesktop();
    await store.update((all) => {
      all.set(workspaceId, {
        id: workspaceId,
        name: `interleave ${seed}`,
        checkoutDir: storeDir,
        repoUrl: 'https://github.com/acme/app.git',
        branchName: 'feature-x',
        location: 'DESKTOP',
        prUrl: PR_URL,
        ratchet: storedRatchetOf(initialRatchetMemory({ enabled: true }), 'IDLE'),
        activeFixer: null,
        lastDecision: null,
        problem: null,
      });
    });

    const naming: WorkspaceNaming = {
      id: workspaceId,
      name: `interleave ${seed}`,
      repoUrl: 'https://github.com/acme/app.git',
      branchName: 'feature-x',
      prUrl: PR_URL,
    };
    const handle = () => env.client.workflow.getHandle(workflowIds.ratchet(workspaceId));
    const desktopCycle = async () => {
      for (const report of await desktop.cycle(await now())) {
        if (report.dispatched) {
          const fixer = scenario.fixers.get(report.dispatched.sessionId);
          if (fixer) fixer.key = report.dispatched.key;
        }
      }
    };
    /** ffc send's store step (cli/src/main.ts): under the lock, refused while a desktop fixer works. */
    const send = async (): Promise<boolean> => {
      const sent = await store.update((all) => {
        const known = all.get(workspaceId);
        if (known?.location !== 'DESKTOP' || known.activeFixer) return null;
        all.set(workspaceId, { ...known, location: 'CLOUD', activeFixer: null });
        return portableOf(known, sentRatchetFields(known, true));
      });
      if (sent === null) return false;
      scenario.location = 'CLOUD';
      totals.sends += 1;
      const started = await env.client.workflow.start(ratchetWorkflow, {
        workflowId: workflowIds.ratchet(workspaceId),
        taskQueue,
        args: [
          {
            workspaceId,
            userId,
            // The workspace actor's own seeding of its ratchet from a send.
            memory: ratchetMemoryFromSource({ kind: 'portable', state: sent }),
            settings: cloudSettings,
          },
        ],
      });
      scenario.sentRuns.add(started.firstExecutionRunId);
      return true;
    };
    /** The api's pull: handOff, then ffc pull's store step with the memory it returned. */
    const pull = async (): Promise<boolean> => {
      let handedOff: { memory: RatchetMemory; view: RatchetView };
      try {
        handedOff = await handle().executeUpdate(handOffUpdate);
      } catch (err) {
        if (
          err instanceof WorkflowUpdateFailedError &&
          err.cause instanceof ApplicationFailure &&
          err.cause.type === RatchetErrorType.fixerActive
        ) {
          totals.refusedPulls += 1;
          return false;
        }
        throw err;
      }
      // The contract the api's 409 rests on: the cloud hands off only with no fixer of its own at work.
      const working = scenario.running('cloud');
      assert.deepEqual(
        working.map((f) => f.id),
        [],
        `seed ${seed}: handOff accepted while a cloud fixer worked`,
      );
      await handle().result();
      const { memory, view } = handedOff;
      await store.update((all) => {
        const known = all.get(workspaceId) ?? null;
        // The workspace actor's own pulled state (what the api answers), then ffc pull's store step.
        const state = portableWithRatchet(portableOf(known ?? naming, { location: 'DESKTOP' }), {
          enabled: memory.enabled,
          memory: RatchetMemorySchema.parse(memory),
          ratchetState: view.state,
        });
        all.set(workspaceId, pulledWorkspace(known, state, storeDir));
      });
      scenario.location = 'DESKTOP';
      totals.pulls += 1;
      return true;
    };
    const waitDesktopSettled = async (ended: SimFixer[]) => {
      for (const fixer of ended.filter((f) => f.side === 'desktop')) {
        for (let i = 0; i < 200; i++) {
          const entry = await store.get(workspaceId);
          if (entry?.activeFixer?.sessionId !== fixer.id) break;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    };

    const step = async (quiet: boolean) => {
      await now();
      scenario.world.advance(scenario.nowMs, quiet);
      await waitDesktopSettled(scenario.endDueFixers(quiet));
      if (scenario.location === 'DESKTOP') await desktopCycle();
    };

    try {
      for (let i = 0; i < STEPS_PER_SEED; i++) {
        totals.steps += 1;
        const roll = r.next();
        await now();
        if (roll < 0.22) {
          scenario.world.push(
            scenario.nowMs,
            r.chance(0.6) ? 'FAILURE' : 'SUCCESS',
            r.int(5_000, 3 * 60_000),
          );
        } else if (roll < 0.3) {
          scenario.world.rerun(
            scenario.nowMs,
            r.chance(0.5) ? 'FAILURE' : 'SUCCESS',
            r.int(5_000, 2 * 60_000),
          );
        } else if (roll < 0.44) {
          if (scenario.location === 'DESKTOP') {
            // A send racing a desktop cycle: one of them wins the store's lock first.
            if (r.chance(0.5)) await Promise.all([desktopCycle(), send()]);
            else await send();
          }
        } else if (roll < 0.56) {
          if (scenario.location === 'CLOUD') await pull();
        } else if (roll < 0.63) {
          // Whatever the worker was running is lost with it; its successor takes over the same task queue.
          // (No time passes while it is down: the test server cannot skip time over a task nobody takes.)
          await worker.stop();
          worker = await startWorker();
        } else if (roll < 0.68) {
          desktopFixers.kill();
          desktopFixers = new SimDesktopFixers(scenario);
          desktop = newDesktop();
        } else if (roll < 0.72) {
          scenario.world.outage = !scenario.world.outage;
        } else if (roll < 0.78) {
          scenario.loseNextAck = true;
        } else if (roll < 0.84) {
          const across = otherSideKeys();
          const back = scenario.world.forcePushBack(r, across);
          if (back !== null) totals.pushBacks += 1;
          if (back !== null && across.has(back)) totals.pushBacksAcross += 1;
        }
        await env.sleep(r.int(1_000, 120_000));
        await step(false);

        if ((i + 1) % QUIET_EVERY === 0) await quietCheck();
      }
      await quietCheck();
    } finally {
      if (scenario.location === 'CLOUD')
        await handle()
          .terminate('seed over')
          .catch(() => undefined);
      desktopFixers.kill();
      await resources.release();
    }

    /**
     * No events: CI results arrive, fixers end (without pushing), polls happen on both sides, until nothing
     * moves; then the current failing key must have been dispatched by someone.
     */
    async function quietCheck(): Promise<void> {
      scenario.world.outage = false;
      for (let round = 0; round < 12; round++) {
        await env.sleep(cloudSettings.pollIntervalMs * 3);
        await step(true);
        // Hung cloud fixers end only by the cloud's timeout.
        if (scenario.running('cloud').some((f) => f.planned === 'HANG'))
          await env.sleep(cloudSettings.fixerTimeoutMs);
        await env.sleep(cloudSettings.pollIntervalMs * 2);
        await step(true);
        if (scenario.running().length === 0 && !(await cloudFixerRecorded())) break;
      }
      const snapshot = scenario.world.snapshot();
      if (snapshot.ciStatus === 'FAILURE') {
        const key = snapshotKey(snapshot);
        const dispatched = allDispatchKeys();
        assert.ok(
          dispatched.includes(key),
          `seed ${seed}: failing key ${key} was never dispatched (dispatched: ${JSON.stringify(dispatched)}; location ${scenario.location})`,
        );
      }
      checkInvariants();
    }

    async function cloudFixerRecorded(): Promise<boolean> {
      if (scenario.location !== 'CLOUD') return false;
      const view = await handle().query(ratchetViewQuery);
      return view.activeFixer !== null;
    }

    /**
     * The keys dispatched by the side that is not at the wheel now, but for its last one: the last key
     * crosses as the handoff's dedup key and meets the first cycle after the handoff anyway, so for these
     * only the handoff's list of keys stops a second fixer.
     */
    function otherSideKeys(): Set<string> {
      const other: Side = scenario.location === 'DESKTOP' ? 'cloud' : 'desktop';
      const keys = scenario.dispatches
        .filter((d) => d.side === other)
        .map(keyOf)
        .filter((k): k is string => k !== null);
      const last = keys.at(-1);
      return new Set(keys.filter((k) => k !== last));
    }

    function allDispatchKeys(): string[] {
      return scenario.dispatches.map((d) => keyOf(d)).filter((k): k is string => k !== null);
    }

    function keyOf(d: Dispatch): string | null {
      return d.side === 'cloud'
        ? (scenario.cloudKeys.get(d.id) ?? d.key)
        : (scenario.fixers.get(d.id)?.key ?? d.key);
    }

    function checkInvariants(): void {
      assert.deepEqual(scenario.violations, [], `seed ${seed}: overlapping fixers`);
      const byKey = new Map<string, Dispatch[]>();
      for (const d of scenario.dispatches) {
        const key = keyOf(d);
        assert.ok(key !== null, `seed ${seed}: ${d.side} dispatch ${d.id} has no known key`);
        byKey.set(key, [...(byKey.get(key) ?? []), d]);
      }
      for (const [key, list] of byKey) {
        assert.ok(
          list.length <= 1 + MAX_FIXER_RETRIES,
          `seed ${seed}: key ${key} dispatched ${list.length} times: ${JSON.stringify(list)}`,
        );
        for (let n = 1; n < list.length; n++) {
          const previous = scenario.fixers.get(list[n - 1]?.id ?? '');
          const diedBefore = previous?.state === 'DIED' || previous?.orphaned === true;
          assert.ok(
            diedBefore,
            `seed ${seed}: key ${key} dispatched again (${list[n]?.side}) after a fixer that did not die: ${JSON.stringify(list)}`,
          );
        }
      }
    }

    totals.seeds += 1;
    totals.dispatches += scenario.dispatches.length;
    const keys = new Set(scenario.dispatches.map(keyOf));
    totals.retries += scenario.dispatches.length - keys.size;
    totals.continuedAsNew += scenario.continuedAsNewRuns();
  }
});
