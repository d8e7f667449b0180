/**
 * The vm:<userId> actor's ensureReady, printed, never asserted (needs the backing services):
 *
 *   npx tsx --conditions=source bench/vm-actor.ts [runs] [--runtime=runc|runsc]     (runs defaults to 20)
 *
 * cold (a new user's VM), claim (from the warm pool), resume (of a suspended VM), each split into its
 * activities and Temporal's overhead, beside the activities alone; then the idle memory of one ready VM.
 * Measured for each VM runtime the engine has (VM_RUNTIME: runc, gVisor's runsc), each with its own worker
 * and pool, and printed side by side at the end.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../activities/index.js';
import { createVmContainerActivities } from '../activities/vm/lifecycle.js';
import { ensureVmReady } from '../platform/vm-ready.js';
import { ensureVmImage } from '../scripts/build-vm-image.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../test/support/services.js';
import { removeUserVm, removeVmsOwnedBy } from '../test/support/vm.js';
import { startTestWorker } from '../test/support/worker.js';
import { workflowIds } from '../workflows/ids.js';
import {
  defaultVmSettings,
  suspendUpdate,
  terminateUpdate,
  type VmSettings,
  vmContainerQuery,
} from '../workflows/vm/messages.js';
import { poolStateQuery } from '../workflows/vm-pool/messages.js';
import { vmPoolWorkflow } from '../workflows/vm-pool/workflow.js';
import {
  agentListening,
  containerStartedAt,
  epochNow,
  historySplit,
  PhaseSamples,
  phaseTable,
} from './lib/phases.js';
import {
  containerMemory,
  hostMemory,
  mib,
  runtimesToMeasure,
  sideBySide,
  type VmRuntime,
} from './lib/runtimes.js';
import { latencyTable, machineConditions, timed } from './lib/stats.js';

const args = process.argv.slice(2);
const runs = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 20);
const id = uniqueSuffix();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the side-by-side table shows of one runtime. */
type RuntimeFigures = {
  cold: number[];
  claim: number[];
  resume: number[];
  baselineCold: number[];
  baselineResume: number[];
  /** One user's VM, idle 10 s after its ensureReady. */
  idle: { pss: number; shown: number; agentRss: number | null };
};

async function main(): Promise<void> {
  await ensureVmImage();
  const client: Client = await connectTestTemporal();
  const docker: Docker = testDocker();
  const runtimes = await runtimesToMeasure(docker, args);
  const db = await createMigratedDatabase();
  const measured = new Map<VmRuntime, RuntimeFigures>();
  try {
    for (const runtime of runtimes) {
      console.log(`\n=== runtime ${runtime} ===`);
      measured.set(runtime, await measure(runtime, { client, docker, db }));
    }
  } finally {
    await db.drop();
    await client.connection.close();
  }
  if (runtimes.length === 0) return;
  const cells = (pick: (f: RuntimeFigures) => number[] | string) =>
    Object.fromEntries(
      runtimes.map((r) => {
        const f = measured.get(r);
        return [r, f ? pick(f) : undefined];
      }),
    );
  console.log('');
  console.log(
    sideBySide(`runtimes side by side (${runs} runs each; p50 / p95; ${machineConditions()})`, runtimes, [
      { label: 'cold: ensureReady, new user (actor)', cells: cells((f) => f.cold) },
      { label: 'claim: ensureReady from warm pool (actor)', cells: cells((f) => f.claim) },
      { label: 'resume: ensureReady of suspended VM (actor)', cells: cells((f) => f.resume) },
      { label: 'baseline cold: activities without Temporal', cells: cells((f) => f.baselineCold) },
      { label: 'baseline resume: activities without Temporal', cells: cells((f) => f.baselineResume) },
      { label: 'idle memory, one VM: docker stats (its cgroup)', cells: cells((f) => mib(f.idle.shown)) },
      {
        label: '  PSS of its host processes + shim (runsc: not all)',
        cells: cells((f) => mib(f.idle.pss)),
      },
      {
        label: "  the agent's RSS (inside the VM)",
        cells: cells((f) => (f.idle.agentRss === null ? 'n/a' : mib(f.idle.agentRss))),
      },
    ]),
  );
  if (runtimes.includes('runsc'))
    console.log(
      "  under runsc PSS misses the VM's memory (gVisor's memory file, mapped only in part) and the agent's RSS" +
        " is gVisor's own accounting; the cgroup's figure is the one to compare.",
    );
}

/** Every figure of one runtime: its own worker, pool and users; printed as measured. */
async function measure(
  runtime: VmRuntime,
  { client, docker, db }: { client: Client; docker: Docker; db: TestDatabase },
): Promise<RuntimeFigures> {
  const vm = { ...testConfig.vm, runtime };
  const poolId = `vm-pool-bench-${id}-${runtime}`;
  const vmActivities = createVmContainerActivities({ docker, vm });
  const worker = await startTestWorker(
    createActivities({
      docker,
      temporal: client,
      pool: db.pool,
      vm,
      warmPoolWorkflowId: poolId,
    }),
  );
  const users: string[] = [];
  const settings: VmSettings = { ...defaultVmSettings, agentTimeoutMs: 90_000 };

  const ensureReady = (userId: string, useWarmPool: boolean) =>
    ensureVmReady(client, { userId, taskQueue: worker.taskQueue, settings: { ...settings, useWarmPool } });

  /**
   * One ensureReady, timed end to end and split: each activity's own execution (from the actor's
   * history), the Temporal overhead around them (queueing, workflow tasks, the update's round trip), and
   * inside startVmContainer + waitForVmAgent the container's start and the agent's (Docker, agent log).
   */
  async function splitEnsureReady(
    split: PhaseSamples,
    samples: number[],
    userId: string,
    useWarmPool: boolean,
  ) {
    const started = epochNow();
    const view = await ensureReady(userId, useWarmPool);
    const answered = epochNow();
    samples.push(answered - started);
    const history = await client.workflow.getHandle(workflowIds.vm(userId)).fetchHistory();
    const { activities, workflowTaskMs } = historySplit(history.events ?? [], started, answered);
    const seen = new Map<string, number>();
    let executing = 0;
    let queued = 0;
    for (const activity of activities) {
      const n = (seen.get(activity.name) ?? 0) + 1;
      seen.set(activity.name, n);
      split.add(
        `activity ${activity.name}${n > 1 ? ` #${n}` : ''}`,
        activity.completedAt - activity.startedAt,
      );
      executing += activity.completedAt - activity.startedAt;
      queued += activity.startedAt - activity.scheduledAt;
    }
    const first = activities[0];
    const last = activities.at(-1);
    split.add('Temporal: total − activities executing', answered - started - executing);
    split.add('  activities queued (scheduled → started), summed', queued);
    split.add(
      '  workflow tasks (scheduled → completed), summed',
      workflowTaskMs.reduce((a, b) => a + b, 0),
    );
    if (first) split.add('  client call → first activity scheduled', first.scheduledAt - started);
    if (last) split.add('  last activity completed → client has the answer', answered - last.completedAt);
    // Inside the start and the wait: when the container ran, when its agent listened.
    const start = activities.find((a) => a.name === 'startVmContainer');
    const wait = activities.find((a) => a.name === 'waitForVmAgent');
    const containerName = view.containerName;
    if (start && wait && containerName) {
      const runningAt = await containerStartedAt(docker, containerName);
      const listening = await agentListening(docker, containerName, start.startedAt);
      if (runningAt !== null && runningAt >= start.startedAt) {
        split.add('  in start: activity start → container running', runningAt - start.startedAt);
        if (listening) {
          split.add('  in wait: container running → agent listening', listening.time - runningAt);
          split.add('  in wait: agent listening → answered', wait.completedAt - listening.time);
        }
      }
    }
    split.add('total: ensureReady (client)', answered - started);
    return view;
  }
  async function newUser(kind: string, i: number): Promise<string> {
    const userId = `bench-${kind}-${i}-${id}-${runtime}`;
    users.push(userId);
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    return userId;
  }
  const terminate = (userId: string) =>
    client.workflow.getHandle(workflowIds.vm(userId)).executeUpdate(terminateUpdate);

  const baselineCold: number[] = [];
  const baselineResume: number[] = [];
  const cold: number[] = [];
  const claim: number[] = [];
  const resume: number[] = [];
  const coldSplit = new PhaseSamples();
  const claimSplit = new PhaseSamples();
  const resumeSplit = new PhaseSamples();
  try {
    // Baseline: the activities alone.
    for (let i = 0; i < runs; i++) {
      const ref = await timed(baselineCold, async () => {
        const created = await vmActivities.createVmContainer({
          containerName: `ffc-pool-bench-${i}-${id}-${runtime}`,
          role: 'pool',
          owner: `bench-${id}-${runtime}`,
        });
        await vmActivities.startVmContainer(created);
        await vmActivities.waitForVmAgent(created, { timeoutMs: 90_000 });
        return created;
      });
      await vmActivities.stopVmContainer(ref);
      await timed(baselineResume, async () => {
        await vmActivities.startVmContainer(ref);
        await vmActivities.waitForVmAgent(ref, { timeoutMs: 90_000 });
      });
      await vmActivities.removeVmContainer(ref);
    }

    for (let i = 0; i < runs; i++) {
      const userId = await newUser('cold', i);
      await splitEnsureReady(coldSplit, cold, userId, false);
      await terminate(userId);
    }

    await client.workflow.start(vmPoolWorkflow, {
      workflowId: poolId,
      taskQueue: worker.taskQueue,
      args: [{ size: 1, agentTimeoutMs: 90_000 }],
    });
    for (let i = 0; i < runs; i++) {
      while ((await client.workflow.getHandle(poolId).query(poolStateQuery)).ready.length === 0)
        await sleep(50);
      const userId = await newUser('claim', i);
      const view = await splitEnsureReady(claimSplit, claim, userId, true);
      if (!view.containerName?.startsWith('ffc-vm-')) throw new Error('claim did not rename the container');
      await terminate(userId);
    }

    const resumer = await newUser('resume', 0);
    await ensureReady(resumer, false);
    for (let i = 0; i < runs; i++) {
      await client.workflow.getHandle(workflowIds.vm(resumer)).executeUpdate(suspendUpdate);
      await splitEnsureReady(resumeSplit, resume, resumer, false);
    }
    // What one ready VM costs the host once it has settled.
    await sleep(10_000);
    const ready = await client.workflow.getHandle(workflowIds.vm(resumer)).query(vmContainerQuery);
    if (!ready) throw new Error('the resumed VM has no container');
    const host = await hostMemory(docker, ready.containerId);
    const idle = {
      pss: host.vm.pss + host.shim.pss,
      shown: (await containerMemory(docker, ready.containerId)).shown,
      agentRss: (await vmActivities.pingVmAgent(ready))?.rssBytes ?? null,
    };
    await terminate(resumer);

    console.log(`VM actor benchmark, runtime ${runtime}, ${runs} runs each; ${machineConditions()}`);
    console.log(
      latencyTable([
        { label: 'cold: ensureReady, new user (actor)', samples: cold },
        { label: 'claim: ensureReady from warm pool (actor)', samples: claim },
        { label: 'resume: ensureReady of suspended VM (actor)', samples: resume },
        { label: 'baseline cold: activities without Temporal', samples: baselineCold },
        { label: 'baseline resume: activities without Temporal', samples: baselineResume },
      ]),
    );
    console.log('goals: claim ≤ 100 ms, resume ≤ 250 ms, cold ≤ 300 ms (p50)');
    console.log('');
    console.log('split (activity times from the actor history; phases overlap, p50s do not add up):');
    console.log(
      phaseTable('cold: ensureReady, new user', coldSplit, {
        label: 'activities without Temporal',
        samples: baselineCold,
      }),
    );
    console.log(phaseTable('claim: ensureReady from warm pool', claimSplit));
    console.log(
      phaseTable('resume: ensureReady of suspended VM', resumeSplit, {
        label: 'activities without Temporal',
        samples: baselineResume,
      }),
    );
    console.log(
      `idle memory of that VM after 10 s: PSS ${mib(idle.pss)} (its processes + shim); docker stats ${mib(idle.shown)}`,
    );
    return { cold, claim, resume, baselineCold, baselineResume, idle };
  } finally {
    await client.workflow
      .getHandle(poolId)
      .terminate('bench over')
      .catch(() => {});
    await removeVmsOwnedBy(docker, poolId);
    for (const userId of users) await removeUserVm(client, docker, userId);
    await worker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
