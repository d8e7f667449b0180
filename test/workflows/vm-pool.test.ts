import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import { defaultVmSettings, terminateUpdate } from '../../workflows/vm/messages.js';
import { poolStateQuery, resizePoolSignal } from '../../workflows/vm-pool/messages.js';
import type { PoolState } from '../../workflows/vm-pool/state.js';
import { vmPoolWorkflow } from '../../workflows/vm-pool/workflow.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { eventually, removeUserVm, removeVmsOwnedBy } from '../support/vm.js';
import { runInVm } from '../support/vm-terminal.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

describe('warm pool (real Temporal, Docker and VM image)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const poolId = `vm-pool-test-${suffix}`;
  const userId = `pooled-${suffix}`;
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    worker = await startTestWorker(
      createActivities({
        docker,
        temporal: client,
        pool: db.pool,
        vm: testConfig.vm,
        warmPoolWorkflowId: poolId,
      }),
    );
  });

  after(async () => {
    await client.workflow
      .getHandle(poolId)
      .terminate('test over')
      .catch(() => {});
    await removeUserVm(client, docker, userId);
    await removeVmsOwnedBy(docker, poolId);
    await worker?.stop();
    await db?.drop();
    await client?.connection.close();
  });

  const poolState = () => client.workflow.getHandle(poolId).query(poolStateQuery);

  it('keeps containers ready, hands one to a first-time user, and refills', async () => {
    await client.workflow.start(vmPoolWorkflow, {
      workflowId: poolId,
      taskQueue: worker.taskQueue,
      args: [{ size: 1, agentTimeoutMs: 90_000 }],
    });
    const warm = await eventually('a warm container', async () => {
      const state: PoolState = await poolState();
      return state.ready[0];
    });

    const vm = await ensureVmReady(client, {
      userId,
      taskQueue: worker.taskQueue,
      settings: { ...defaultVmSettings, useWarmPool: true, agentTimeoutMs: 90_000 },
    });
    assert.equal(vm.status, 'ONBOARDING');
    assert.equal(vm.containerId, warm.containerId, 'the warm container was claimed, not a new one created');
    assert.equal(vm.containerName, `ffc-vm-${userId}`, 'renamed for its user');
    const inspected = await docker.getContainer(warm.containerId).inspect();
    assert.equal(inspected.Name, `/ffc-vm-${userId}`);
    assert.match(
      await runInVm({ ...warm, containerName: `ffc-vm-${userId}` }, 'echo claimed-$((1+1))'),
      /claimed-2/,
    );

    const refilled = await eventually('the pool to refill', async () => {
      const state = await poolState();
      return state.ready.length === 1 && state.ready[0]?.containerId !== warm.containerId ? state : undefined;
    });
    assert.equal(refilled.claimed, 1);
    assert.equal(refilled.created, 2);

    await client.workflow.getHandle(workflowIds.vm(userId)).executeUpdate(terminateUpdate);
  });

  it('shrinks when resized down, removing the spare container', async () => {
    const spare = (await poolState()).ready[0];
    assert.ok(spare);
    await client.workflow.getHandle(poolId).signal(resizePoolSignal, 0);
    await eventually('the pool to shrink', async () =>
      (await poolState()).ready.length === 0 ? true : undefined,
    );
    await eventually('the spare container to go', async () =>
      (await docker.listContainers({ all: true, filters: { id: [spare.containerId] } })).length === 0
        ? true
        : undefined,
    );
  });
});
