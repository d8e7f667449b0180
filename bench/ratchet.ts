/**
 * The cloud ratchet's loop, printed, never asserted:
 *
 *   flock /tmp/ffc-test.lock npx tsx --conditions=source bench/ratchet.ts [workspaces=200] [seconds=15]
 *
 * The real ratchetWorkflow (production bundle) on the real Temporal dev server, one worker in this process,
 * activities whose VM side is simulated: a poll is one REST round trip to core's fake GitHub over its unix
 * socket (GET /repos/…/pulls/n, authenticated) made into a snapshot by core's buildPullRequestSnapshot; a
 * dispatch and a fixer check answer at once; the read model write is a no-op. gh itself runs in each user's
 * VM, not on the worker, so its spawn is not the worker's cost; its own latency against the same fake is
 * printed as a third figure.
 *
 *   1. Handoff gap: a workspace whose ratchet just polled (green CI) sees its CI fail; time until the
 *      ratchet has decided on it and recorded the dispatch: with a wake signal (a webhook, the api's
 *      POST …/ratchet/wake) vs without (the next 30 s poll, the plan's accepted figure); plus start → first
 *      decision (what a send waits for once the workspace is READY).
 *   2. Cycles (poll + decide) per second one worker sustains across `workspaces` ratchets polling every
 *      100 ms, with each workspace's period p50/p95, history events per ratchet and worker memory: first
 *      with one activity per poll (watchMaxMs 0, how the actor polled before the watch), then watched
 *      (production: quiet polls stay in the watch activity, decided there by core's isQuietPoll); baseline
 *      in the same run: the same poll + decide loop without Temporal, as many at once.
 */
import { execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { buildPullRequestSnapshot } from '@factory-factory/core/github';
import { GhPrViewSchema, type PullRequestSnapshot, safeParseJson } from '@factory-factory/core/protocol';
import { applyDecision, decide, initialRatchetMemory } from '@factory-factory/core/ratchet';
import { NativeConnection, Worker } from '@temporalio/worker';
import { z } from 'zod';
import type { RatchetActivities } from '../activities/ratchet/types.js';
import { watchPullRequestWith } from '../activities/ratchet/watch.js';
import { type FakeGitHub, startFakeGitHub } from '../core/test/support/fake-github.js';
import { GH_BINARY } from '../core/test/support/gh-harness.js';
import { connectTestTemporal, testConfig, uniqueSuffix } from '../test/support/services.js';
import { workflowBundle } from '../test/support/worker.js';
import { workflowIds } from '../workflows/ids.js';
import { defaultRatchetSettings, type RatchetView, wakeSignal } from '../workflows/ratchet/messages.js';
import { ratchetWorkflow } from '../workflows/ratchet/workflow.js';
import { latencyTable, machineConditions, percentile } from './lib/stats.js';

const workspaces = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 15);
const OWNER = 'acme';
const REPO = 'bench';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

const RestPullSchema = z.object({
  number: z.number(),
  html_url: z.string(),
  state: z.string(),
  merged: z.boolean(),
  head: z.object({ ref: z.string(), sha: z.string() }),
  base: z.object({ ref: z.string() }),
});

/** Per PR: is CI failing now, and which run; the bench flips these. */
type CiWorld = Map<number, { failing: boolean; runId: number }>;

function restPull(github: FakeGitHub, number: number): Promise<z.output<typeof RestPullSchema>> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: github.socketPath,
        method: 'GET',
        path: `/repos/${OWNER}/${REPO}/pulls/${number}`,
        headers: { host: 'api.github.com', authorization: `token ${github.fixtures().token ?? ''}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const parsed = safeParseJson(RestPullSchema, Buffer.concat(chunks).toString('utf8'));
          if (parsed.ok) resolve(parsed.value);
          else reject(new Error(`fake GitHub ${res.statusCode}: ${parsed.error.message}`));
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function pollSnapshot(
  github: FakeGitHub,
  world: CiWorld,
  number: number,
): Promise<PullRequestSnapshot> {
  const pr = await restPull(github, number);
  const ci = world.get(number) ?? { failing: false, runId: 1 };
  const view = GhPrViewSchema.parse({
    number: pr.number,
    url: pr.html_url,
    state: pr.merged ? 'MERGED' : pr.state === 'open' ? 'OPEN' : 'CLOSED',
    headRefName: pr.head.ref,
    headRefOid: pr.head.sha,
    baseRefName: pr.base.ref,
    mergeStateStatus: 'CLEAN',
    reviewDecision: '',
    statusCheckRollup: [
      {
        __typename: 'CheckRun',
        name: 'test',
        workflowName: 'CI',
        status: 'COMPLETED',
        conclusion: ci.failing ? 'FAILURE' : 'SUCCESS',
        startedAt: '2024-01-02T03:05:00Z',
        detailsUrl: `https://github.com/${OWNER}/${REPO}/actions/runs/${ci.runId}/job/1`,
      },
    ],
    reviews: [],
    comments: [],
  });
  return buildPullRequestSnapshot({ host: 'github.com', owner: OWNER, repo: REPO }, view, [], 'bench-user');
}

type Probe = {
  /** Poll times per PR number (performance.now). */
  polls: Map<number, number[]>;
  /** First recorded decision and first recorded dispatch per workspace (performance.now). */
  firstDecision: Map<string, number>;
  dispatchRecorded: Map<string, number>;
};

function activitiesFor(github: FakeGitHub, world: CiWorld, probe: Probe, prOf: (ws: string) => number) {
  const pollPullRequest: RatchetActivities['pollPullRequest'] = async ({ workspaceId }) => {
    const number = prOf(workspaceId);
    const times = probe.polls.get(number) ?? [];
    times.push(performance.now());
    probe.polls.set(number, times);
    return { kind: 'snapshot', snapshot: await pollSnapshot(github, world, number) };
  };
  const activities: RatchetActivities = {
    pollPullRequest,
    // The production watch over the bench's poll: quiet polls stay in the activity.
    watchPullRequest: watchPullRequestWith(pollPullRequest),
    async wakeVmForPoll() {},
    async dispatchFixer({ dispatchId }) {
      return { sessionId: `bench-${dispatchId}` };
    },
    async checkFixer() {
      return { outcome: 'COMPLETED', detail: null };
    },
    async stopFixer() {
      return { stopped: false, sessionId: null };
    },
    async recordRatchetView(view: RatchetView) {
      const at = performance.now();
      if (view.lastDecision && !probe.firstDecision.has(view.workspaceId))
        probe.firstDecision.set(view.workspaceId, at);
      if (view.activeFixer && !probe.dispatchRecorded.has(view.workspaceId))
        probe.dispatchRecorded.set(view.workspaceId, at);
      return { written: true, version: view.version };
    },
  };
  return activities;
}

async function main(): Promise<void> {
  console.log(machineConditions());
  const github = await startFakeGitHub({ fixtures: { repos: { [`${OWNER}/${REPO}`]: { pulls: [] } } } });
  chmodSync(dirname(github.socketPath), 0o755);
  const world: CiWorld = new Map();
  const probe: Probe = { polls: new Map(), firstDecision: new Map(), dispatchRecorded: new Map() };
  const prNumbers = new Map<string, number>();
  const prOf = (ws: string) => prNumbers.get(ws) ?? 1;
  const temporal = await connectTestTemporal();
  const connection = await NativeConnection.connect({ address: testConfig.temporal.address });
  const taskQueue = `bench-ratchet-${uniqueSuffix()}`;
  const worker = await Worker.create({
    connection,
    namespace: testConfig.temporal.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: activitiesFor(github, world, probe, prOf),
    maxConcurrentWorkflowTaskExecutions: 100,
    // Each watching ratchet holds an activity slot (as WORKER_MAX_CONCURRENT_ACTIVITIES does in production).
    maxConcurrentActivityTaskExecutions: 1000,
  });
  const running = worker.run();
  const started: string[] = [];
  const run = uniqueSuffix();
  let nextPr = 1;

  const startRatchet = async (tag: string, pollIntervalMs: number, watchMaxMs?: number) => {
    const workspaceId = `bench-rx-${run}-${tag}`;
    const number = nextPr++;
    prNumbers.set(workspaceId, number);
    world.set(number, { failing: false, runId: number * 1000 });
    github.upsertPullRequest(`${OWNER}/${REPO}`, {
      number,
      headRefName: `b-${number}`,
      headSha: number.toString(16).padStart(40, '0'),
    });
    const handle = await temporal.workflow.start(ratchetWorkflow, {
      workflowId: workflowIds.ratchet(workspaceId),
      taskQueue,
      args: [
        {
          workspaceId,
          userId: 'bench-user',
          memory: initialRatchetMemory({ enabled: true }),
          settings: {
            ...defaultRatchetSettings,
            pollIntervalMs,
            ...(watchMaxMs === undefined ? {} : { watchMaxMs }),
            maxDispatchesPerDay: 1000,
            searchAttributes: false,
          },
        },
      ],
    });
    started.push(workspaceId);
    return { workspaceId, number, handle };
  };

  const waitFor = async (what: string, probeFn: () => boolean, timeoutMs: number) => {
    const deadline = performance.now() + timeoutMs;
    while (!probeFn()) {
      if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
      await sleep(2);
    }
  };

  try {
    // ---- 1. handoff gap ----
    const startToDecision: number[] = [];
    const withWake: number[] = [];
    const withoutWake: number[] = [];
    const gapRun = async (i: number, wake: boolean) => {
      const t0 = performance.now();
      const { workspaceId, number, handle } = await startRatchet(`gap-${wake ? 'w' : 'p'}-${i}`, 30_000);
      await waitFor('first decision', () => probe.firstDecision.has(workspaceId), 60_000);
      startToDecision.push((probe.firstDecision.get(workspaceId) ?? t0) - t0);
      await sleep(200);
      const failedAt = performance.now();
      world.set(number, { failing: true, runId: number * 1000 + 1 });
      if (wake) await handle.signal(wakeSignal);
      await waitFor('dispatch recorded', () => probe.dispatchRecorded.has(workspaceId), 90_000);
      (wake ? withWake : withoutWake).push((probe.dispatchRecorded.get(workspaceId) ?? failedAt) - failedAt);
    };
    for (let i = 0; i < 12; i++) await gapRun(i, true);
    // The baseline waits for the poll: three at once, so it takes one interval, not three.
    await Promise.all([0, 1, 2].map((i) => gapRun(i, false)));
    console.log('\nHandoff gap (goal ≤ 500 ms with a wake; the plan accepts 30 s):');
    console.log(
      latencyTable([
        { label: 'start → first decision', samples: startToDecision },
        { label: 'CI failed → dispatch recorded, wake signal', samples: withWake },
        { label: 'baseline: same, next 30 s poll', samples: withoutWake },
      ]),
    );

    // ---- 2. cycles per second across many workspaces ----
    /** `workspaces` ratchets polling every 100 ms for `seconds`: polls made, periods, workflow tasks. */
    const loadRun = async (label: string, watchMaxMs: number) => {
      const rssBefore = process.memoryUsage().rss;
      const busy: string[] = [];
      for (let i = 0; i < workspaces; i += 20) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(20, workspaces - i) }, (_, j) =>
            startRatchet(`${label}-${i + j}`, 100, watchMaxMs),
          ),
        );
        busy.push(...batch.map((b) => b.workspaceId));
      }
      await sleep(5_000);
      const busyNumbers = busy.map(prOf);
      const countPolls = () => busyNumbers.reduce((sum, n) => sum + (probe.polls.get(n)?.length ?? 0), 0);
      const windowStart = performance.now();
      const pollsAtStart = countPolls();
      await sleep(seconds * 1000);
      const windowMs = performance.now() - windowStart;
      const cycles = countPolls() - pollsAtStart;
      const periods: number[] = [];
      for (const n of busyNumbers) {
        const times = (probe.polls.get(n) ?? []).filter((t) => t >= windowStart);
        for (let k = 1; k < times.length; k++) periods.push((times[k] ?? 0) - (times[k - 1] ?? 0));
      }
      const rssAfter = process.memoryUsage().rss;
      // History length says how much of it reached Temporal: one workflow per ratchet, events per poll.
      let events = 0;
      for (const id of busy) {
        const handle = temporal.workflow.getHandle(workflowIds.ratchet(id));
        events += (await handle.describe()).historyLength;
        await handle.terminate('bench over').catch(() => {});
      }
      return { label, busyNumbers, cycles, windowMs, periods, rssBefore, rssAfter, events };
    };
    const perPoll = await loadRun('per-poll', 0);
    const watched = await loadRun('watched', 10 * 60_000);
    const { busyNumbers } = watched;

    // Baseline: the same poll + decide + applyDecision, `workspaces` loops at once, no Temporal.
    const baselineLatency: number[] = [];
    let baselineCycles = 0;
    const baselineEnd = performance.now() + seconds * 1000;
    await Promise.all(
      busyNumbers.map(async (n) => {
        let memory = initialRatchetMemory({ enabled: true });
        while (performance.now() < baselineEnd) {
          const t = performance.now();
          const snapshot = await pollSnapshot(github, world, n);
          const decision = decide(
            memory,
            snapshot,
            { active: false },
            { nowMs: Date.now(), maxDispatchesPerDay: 1000 },
          );
          memory = applyDecision(memory, decision, snapshot, Date.now());
          baselineLatency.push(performance.now() - t);
          baselineCycles++;
        }
      }),
    );

    // gh's own poll against the same fake (what each VM pays per poll), 8 at once.
    const gh: number[] = [];
    const exec = promisify(execFile);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let k = 0; k < 5; k++) {
          const t = performance.now();
          await exec(
            GH_BINARY,
            [
              'pr',
              'view',
              '1',
              '--repo',
              `${OWNER}/${REPO}`,
              '--json',
              'number,headRefOid,statusCheckRollup',
            ],
            {
              env: github.ghEnv(),
            },
          );
          gh.push(performance.now() - t);
        }
      }),
    );

    console.log(
      `\nRatchet cycles (poll + decide), ${workspaces} workspaces polling every 100 ms, one worker (goal ≥ 500/s):`,
    );
    for (const r of [watched, perPoll]) {
      const rate = r.cycles / (r.windowMs / 1000);
      console.log(
        `  ${r.label === 'watched' ? 'worker, watched polls (production)' : 'worker, one activity per poll (before)'}: ${rate.toFixed(0)} cycles/s over ${(r.windowMs / 1000).toFixed(1)} s; period p50 ${percentile(r.periods, 50).toFixed(0)} ms, p95 ${percentile(r.periods, 95).toFixed(0)} ms; ${(r.events / workspaces).toFixed(0)} history events per ratchet; RSS ${mb(r.rssBefore)} → ${mb(r.rssAfter)}`,
      );
    }
    console.log(
      `  baseline: ${(baselineCycles / seconds).toFixed(0)} cycles/s (same poll + decide, no Temporal)`,
    );
    console.log(
      latencyTable([
        { label: 'poll period, watched (target 100 ms)', samples: watched.periods },
        { label: 'poll period, one activity per poll', samples: perPoll.periods },
        { label: 'baseline poll + decide', samples: baselineLatency },
        { label: 'gh pr view against the fake (in a VM), 8 at once', samples: gh },
      ]),
    );
  } finally {
    for (const id of started)
      await temporal.workflow
        .getHandle(workflowIds.ratchet(id))
        .terminate('bench over')
        .catch(() => {});
    worker.shutdown();
    await running;
    await connection.close();
    await temporal.connection.close();
    await github.close();
  }
}

await main();
