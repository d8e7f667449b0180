/**
 * Send to cloud with a warm VM, printed, never asserted:
 *
 *   flock /tmp/ffc-test.lock npx tsx --conditions=source bench/workspaces.ts [runs=8]
 *
 * POST /api/workspaces with a desktop's portable state, timed to the 202 and to READY in the read model (GET
 * /api/workspaces/:id polled every 10 ms), split by the workspace actor's history (its activities, the
 * Temporal time around them). Baseline in the same run: the agent's own workspace.import → READY (polled
 * every 5 ms), the same import the actor's restore makes. The VM is running before either is timed, and the
 * repository is already cloned in it (every workspace is a new worktree on its own branch).
 */
import { performance } from 'node:perf_hooks';
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import { WorkspaceAnswerSchema } from '../api/contract/workspaces.js';
import { portableWorkspaceState } from '../test/support/portable-state.js';
import { workflowIds } from '../workflows/ids.js';
import { startBenchCloud } from './lib/cloud.js';
import { epochNow, historySplit, PhaseSamples, phaseTable } from './lib/phases.js';
import { latencyTable, machineConditions } from './lib/stats.js';

const runs = Number(process.argv[2] ?? 8);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portableState(workspaceId: string, repoUrl: string, branchName: string): PortableWorkspaceState {
  return portableWorkspaceState(workspaceId, { name: `bench ${workspaceId}`, repoUrl, branchName });
}

/** Keeps this run's workspace ids apart from any earlier run's. */
const runTag = Date.now().toString(36);

async function main(): Promise<void> {
  let endActors = async () => {};
  const cloud = await startBenchCloud({ branches: 2 * runs + 2 });
  const branch = (i: number) => cloud.branches[i] ?? `bench-${i}`;
  try {
    // The repository's clone in the VM, the agent's import path and the actor's code paths, once.
    await cloud.readyWorkspace('bench-ws-warm');
    const apiSamples: number[] = [];
    const answered: number[] = [];
    const baseline: number[] = [];
    const split = new PhaseSamples();

    const viaAgent = async (workspaceId: string, branchName: string) => {
      const started = performance.now();
      await cloud.agent.importWorkspace({
        ...portableState(workspaceId, cloud.repoUrl, branchName),
        location: 'CLOUD',
      });
      const ready = await cloud.agent.waitForWorkspace(workspaceId, { intervalMs: 5, timeoutMs: 60_000 });
      if (ready.status !== 'READY') throw new Error(`${workspaceId}: ${ready.initError}`);
      return performance.now() - started;
    };

    // Workspace actors outlive a run (a READY workspace waits for its pull or archive), so every run names its
    // own and ends them when it is done: a later run must never send to an actor whose worker is gone.
    const sentThroughApi: string[] = [];
    endActors = async () => {
      for (const id of sentThroughApi) {
        await cloud.temporal.workflow
          .getHandle(workflowIds.workspace(id))
          .terminate('benchmark finished')
          .catch(() => undefined);
      }
    };
    const viaApi = async (name: string, branchName: string) => {
      const workspaceId = `${name}-${runTag}`;
      sentThroughApi.push(workspaceId);
      const started = performance.now();
      const startedAt = epochNow();
      const sent = await cloud.http('/api/workspaces', {
        body: { state: portableState(workspaceId, cloud.repoUrl, branchName) },
      });
      if (sent.status !== 202) throw new Error(`POST /api/workspaces: ${sent.status} ${sent.text}`);
      const answer = performance.now() - started;
      for (;;) {
        const got = await cloud.http(`/api/workspaces/${workspaceId}`);
        const view = WorkspaceAnswerSchema.parse(got.json).workspace;
        if (view.status === 'READY') break;
        if (view.status === 'FAILED') throw new Error(`${workspaceId}: ${view.failureReason}`);
        if (performance.now() - started > 120_000) throw new Error(`${workspaceId} never READY`);
        await sleep(10);
      }
      const total = performance.now() - started;
      const readyAt = epochNow();
      const history = await cloud.temporal.workflow
        .getHandle(workflowIds.workspace(workspaceId))
        .fetchHistory();
      return { total, answer, startedAt, readyAt, events: history.events ?? [] };
    };

    // Warm-up of each path, not counted.
    await viaAgent('bench-ws-warm-agent', branch(2 * runs));
    await viaApi('bench-ws-warm-api', branch(2 * runs + 1));

    for (let i = 0; i < runs; i++) {
      baseline.push(await viaAgent(`bench-ws-agent-${i}`, branch(i)));
      const run = await viaApi(`bench-ws-api-${i}`, branch(runs + i));
      apiSamples.push(run.total);
      answered.push(run.answer);
      const { activities, workflowTaskMs } = historySplit(run.events, run.startedAt, run.readyAt);
      let executing = 0;
      for (const activity of activities) {
        split.add(`activity ${activity.name}`, activity.completedAt - activity.startedAt);
        executing += activity.completedAt - activity.startedAt;
      }
      split.add('Temporal: total − activities executing', run.total - executing);
      split.add(
        '  workflow tasks (scheduled → completed), summed',
        workflowTaskMs.reduce((a, b) => a + b, 0),
      );
      const last = activities.at(-1);
      if (last) split.add('  last activity completed → READY seen by GET', run.readyAt - last.completedAt);
      split.add('total: POST → READY (GET)', run.total);
    }

    console.log(`# Send to cloud, warm VM, ${runs} runs each; ${machineConditions()}`);
    console.log(
      latencyTable([
        { label: 'POST /api/workspaces → 202', samples: answered },
        { label: 'POST /api/workspaces → READY (GET, 10 ms polls)', samples: apiSamples },
        { label: 'baseline: agent workspace.import → READY', samples: baseline },
      ]),
    );
    console.log('');
    console.log('split (from the workspace actor history; phases overlap, p50s do not add up):');
    console.log(
      phaseTable('POST /api/workspaces → READY', split, {
        label: 'agent workspace.import → READY',
        samples: baseline,
      }),
    );
  } finally {
    await endActors();
    await cloud.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
