import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../activities/index.js';
import { createVmContainerActivities } from '../activities/vm/lifecycle.js';
import { ensureVmReady } from '../api/services/vm-service.js';
import { ensureVmImage } from '../scripts/build-vm-image.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
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
} from '../workflows/vm/messages.js';
import { poolStateQuery } from '../workflows/vm-pool/messages.js';
import { vmPoolWorkflow } from '../workflows/vm-pool/workflow.js';
import { latencyTable, machineConditions, timed } from './lib/stats.js';

const runs = Number(process.argv[2] ?? 20);
const id = uniqueSuffix();
const poolId = `vm-pool-bench-${id}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  await ensureVmImage();
  const client: Client = await connectTestTemporal();
  const docker: Docker = testDocker();
  const db = await createMigratedDatabase();
  const vmActivities = createVmContainerActivities({ docker, vm: testConfig.vm });
  const worker = await startTestWorker(
    createActivities({
      docker,
      temporal: client,
      pool: db.pool,
      vm: testConfig.vm,
      warmPoolWorkflowId: poolId,
    }),
  );
  const users: string[] = [];
  const settings: VmSettings = { ...defaultVmSettings, agentTimeoutMs: 90_000 };

  const ensureReady = (userId: string, useWarmPool: boolean) =>
    ensureVmReady(client, { userId, taskQueue: worker.taskQueue, settings: { ...settings, useWarmPool } });
  async function newUser(kind: string, i: number): Promise<string> {
    const userId = `bench-${kind}-${i}-${id}`;
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
  try {
    // Baseline: the activities alone.
    for (let i = 0; i < runs; i++) {
      const ref = await timed(baselineCold, async () => {
        const created = await vmActivities.createVmContainer({
          containerName: `ffc-pool-bench-${i}-${id}`,
          role: 'pool',
          owner: `bench-${id}`,
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
      await timed(cold, () => ensureReady(userId, false));
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
      const view = await timed(claim, () => ensureReady(userId, true));
      if (!view.containerName?.startsWith('ffc-vm-')) throw new Error('claim did not rename the container');
      await terminate(userId);
    }

    const resumer = await newUser('resume', 0);
    await ensureReady(resumer, false);
    for (let i = 0; i < runs; i++) {
      await client.workflow.getHandle(workflowIds.vm(resumer)).executeUpdate(suspendUpdate);
      await timed(resume, () => ensureReady(resumer, false));
    }
    await terminate(resumer);

    console.log(`VM actor benchmark, ${runs} runs each; ${machineConditions()}`);
    console.log(
      latencyTable([
        { label: 'cold: ensureReady, new user (actor)', samples: cold },
        { label: 'claim: ensureReady from warm pool (actor)', samples: claim },
        { label: 'resume: ensureReady of suspended VM (actor)', samples: resume },
        { label: 'baseline cold: activities without Temporal', samples: baselineCold },
        { label: 'baseline resume: activities without Temporal', samples: baselineResume },
      ]),
    );
    console.log('goals: claim ≤ 300 ms, resume ≤ 1 s, cold ≤ 3 s (p50)');
  } finally {
    await client.workflow
      .getHandle(poolId)
      .terminate('bench over')
      .catch(() => {});
    await removeVmsOwnedBy(docker, poolId);
    for (const userId of users) await removeUserVm(client, docker, userId);
    await worker.stop();
    await db.drop();
    await client.connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
