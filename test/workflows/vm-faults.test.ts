import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { workflowIds } from '../../workflows/ids.js';
import { suspendUpdate, terminateUpdate } from '../../workflows/vm/messages.js';
import { claimWarmVmUpdate, poolStateQuery } from '../../workflows/vm-pool/messages.js';
import { vmPoolWorkflow } from '../../workflows/vm-pool/workflow.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import { eventually, removeVmsOwnedBy } from '../support/vm.js';
import { startVmActorRig, type VmActorRig } from '../support/vm-actor-rig.js';
import { runInVm } from '../support/vm-terminal.js';

/**
 * Every state has an exit: containers vanishing behind the actor's back, a FAILED VM, a warm-pool claim
 * that is gone, a database that refuses writes. Real Temporal, Docker, Postgres and the VM image.
 */
describe('vm:<userId> actor under faults: no state without an exit, no fault deletes a user’s files', function () {
  this.timeout(10 * 60_000);
  const poolId = `vm-pool-faults-${Date.now().toString(36)}`;
  let rig: VmActorRig;

  before(async () => {
    rig = await startVmActorRig({ activities: { warmPoolWorkflowId: poolId } });
  });

  after(async () => {
    await rig?.client.workflow
      .getHandle(poolId)
      .terminate('test over')
      .catch(() => {});
    if (rig) await removeVmsOwnedBy(rig.docker, poolId);
    await rig?.stop();
  });

  const newUser = (name: string) => rig.newUser(name);
  const ensureReady: VmActorRig['ensureReady'] = (userId, overrides) => rig.ensureReady(userId, overrides);
  const handle = (userId: string) => rig.handle(userId);
  const state = (userId: string) => rig.state(userId);
  const containerOf = (userId: string) => rig.containerOf(userId);
  const fileIn = (ref: VmContainerRef, path: string): Promise<string> => runInVm(ref, `cat ${path}`);

  it('ensureReady recreates a container removed while SUSPENDED, on the user’s volume with their files', async () => {
    const userId = await newUser('gone-suspended');
    await ensureReady(userId);
    const before = await containerOf(userId);
    await runInVm(before, 'echo kept-while-gone > ~/kept.txt');
    assert.equal((await handle(userId).executeUpdate(suspendUpdate)).status, 'SUSPENDED');
    await rig.docker.getContainer(before.containerId).remove({ force: true });

    const back = await ensureReady(userId);
    assert.equal(back.status, 'ONBOARDING');
    const after = await containerOf(userId);
    assert.notEqual(after.containerId, before.containerId, 'a new container');
    assert.equal(after.volumeName, before.volumeName, 'on the same volume');
    assert.match(await fileIn(after, '~/kept.txt'), /kept-while-gone/);
    if (shouldRecordHistories())
      await recordHistory(rig.client, workflowIds.vm(userId), 'vm-recreate-vanished');
  });

  it('a FAILED VM has its container stopped, can be suspended, and ensureReady brings it back even if the container vanished', async () => {
    const userId = await newUser('gone-failed');
    await ensureReady(userId, { maxCrashes: 1 });
    const ref = await containerOf(userId);
    await runInVm(ref, 'echo survives-failure > ~/kept.txt');
    await rig.docker.getContainer(ref.containerId).kill();
    const failed = await eventually('FAILED after a crash with maxCrashes 1', async () => {
      const view = await state(userId);
      return view.status === 'FAILED' ? view : undefined;
    });
    assert.match(failed.failureReason ?? '', /crashed 1 times/);
    const inspected = await rig.docker.getContainer(ref.containerId).inspect();
    assert.equal(inspected.State.Running, false, 'a FAILED VM does not run unsupervised');

    // Suspend is not refused: it answers, the VM stays FAILED (retryable) and stopped.
    const suspended = await handle(userId).executeUpdate(suspendUpdate);
    assert.equal(suspended.status, 'FAILED');

    await rig.docker.getContainer(ref.containerId).remove({ force: true });
    const back = await ensureReady(userId, { maxCrashes: 1 });
    assert.equal(back.status, 'ONBOARDING');
    assert.equal(back.failureReason, null);
    const after = await containerOf(userId);
    assert.equal(after.volumeName, ref.volumeName);
    assert.match(await fileIn(after, '~/kept.txt'), /survives-failure/);
  });

  it('a warm-pool container removed before its claim is dropped, and the user still gets a VM', async () => {
    await rig.client.workflow.start(vmPoolWorkflow, {
      taskQueue: rig.worker.taskQueue,
      workflowId: poolId,
      args: [{ size: 1, agentTimeoutMs: 90_000 }],
    });
    const ready = await eventually('a warm container', async () => {
      const pool = await rig.client.workflow.getHandle(poolId).query(poolStateQuery);
      return pool.ready[0];
    });
    // The pool still lists it as ready (it is full, so it does not look again) when it vanishes.
    await rig.docker.getContainer(ready.containerId).remove({ force: true });

    const userId = await newUser('pool-gone');
    const view = await ensureReady(userId, { useWarmPool: true });
    assert.equal(view.status, 'ONBOARDING');
    const ref = await containerOf(userId);
    assert.notEqual(ref.containerId, ready.containerId);
    assert.equal((await rig.docker.getContainer(ref.containerId).inspect()).State.Running, true);
    // The vanished one was handed out once, and never again.
    const again = await rig.client.workflow
      .getHandle(poolId)
      .executeUpdate(claimWarmVmUpdate, { args: [{ claimId: `${workflowIds.vm(userId)}/x` }] });
    assert.notEqual(again?.containerId, ready.containerId);
  });

  it('a database that refuses writes shows as the VM’s problem, blocks nothing, and is caught up later', async () => {
    const userId = await newUser('db-down');
    await ensureReady(userId);
    await rig.db.pool.query('ALTER TABLE vms RENAME TO vms_away');
    try {
      const suspended = await handle(userId).executeUpdate(suspendUpdate);
      assert.equal(suspended.status, 'SUSPENDED', 'suspend answered although the write failed');
      const withProblem = await state(userId);
      assert.equal(withProblem.problem?.source, 'database');
      assert.match(withProblem.problem?.message ?? '', /database does not answer/);

      const terminated = await handle(userId).executeUpdate(terminateUpdate);
      assert.equal(terminated.status, 'TERMINATED', 'terminate is not blocked by the database');
    } finally {
      await rig.db.pool.query('ALTER TABLE vms_away RENAME TO vms');
    }
    // The actor keeps trying after it answered, so the read model learns TERMINATED once it is back.
    await eventually(
      'TERMINATED in the read model',
      async () => {
        const { rows } = await rig.db.pool.query<{ status: string }>(
          'SELECT status FROM vms WHERE user_id = $1',
          [userId],
        );
        return rows[0]?.status === 'TERMINATED' ? true : undefined;
      },
      120_000,
      500,
    );
    await handle(userId).result();
    if (shouldRecordHistories()) await recordHistory(rig.client, workflowIds.vm(userId), 'vm-database-down');
  });

  it('refuses malformed updates and ignores malformed signals, and keeps working', async () => {
    const userId = await newUser('poison');
    await ensureReady(userId);
    await assert.rejects(
      rig.client.workflow
        .getHandle(workflowIds.vm(userId))
        .executeUpdate('suspend', { args: [{ now: true }] }),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError &&
        /invalid suspend: it takes no arguments/.test(err.cause?.message ?? ''),
    );
    await rig.client.workflow.getHandle(workflowIds.vm(userId)).signal('touch', { at: 'NaN' });
    assert.equal((await state(userId)).status, 'ONBOARDING');
    const suspended = await handle(userId).executeUpdate(suspendUpdate);
    assert.equal(suspended.status, 'SUSPENDED');
  });
});
