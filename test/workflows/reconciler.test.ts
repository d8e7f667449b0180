import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { managedLabels } from '../../activities/vm/labels.js';
import { createVmContainerActivities } from '../../activities/vm/lifecycle.js';
import { vmAgentEndpoint } from '../../platform/vm-agent.js';
import { userVmContainerName } from '../../workflows/ids.js';
import { findStrays } from '../../workflows/reconciler/plan.js';
import { reconcileStrayContainers } from '../../workflows/reconciler/workflow.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import { testImage } from '../support/images.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';
import { execIn } from '../vm/helpers.js';

describe('stray-container reconciler', () => {
  describe('findStrays (pure)', () => {
    const base = { name: 'c', createdAtMs: 0 };
    it('keeps containers whose owner runs, removes orphans past the grace period', () => {
      const { strays, kept } = findStrays({
        containers: [
          { ...base, id: 'a', owner: 'vm:alive' },
          { ...base, id: 'b', owner: 'vm:gone' },
          { ...base, id: 'c', owner: '' },
          { ...base, id: 'd', owner: 'vm:gone', createdAtMs: 9_500 },
        ],
        runningOwners: ['vm:alive'],
        nowMs: 10_000,
        graceMs: 1_000,
      });
      assert.deepEqual(
        strays.map((s) => [s.id, s.reason]),
        [
          ['b', 'owner_not_running'],
          ['c', 'no_owner_label'],
        ],
      );
      assert.deepEqual(
        kept.map((k) => k.id),
        ['a', 'd'],
        'a young container may belong to an actor still provisioning',
      );
    });
  });

  describe('workflow (real Temporal, real Docker)', () => {
    let client: Client;
    let docker: Docker;
    let worker: RunningTestWorker;
    let db: TestDatabase;
    const created: string[] = [];
    const suffix = uniqueSuffix();
    const liveOwner = `test-owner-live-${suffix}`;

    before(async () => {
      client = await connectTestTemporal();
      docker = testDocker();
      db = await createMigratedDatabase();
      worker = await startTestWorker(
        createActivities({ docker, temporal: client, pool: db.pool, vm: testConfig.vm }),
      );
    });
    after(async () => {
      for (const id of created)
        await docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => {});
      await client.workflow
        .getHandle(liveOwner)
        .terminate('test over')
        .catch(() => {});
      await worker?.stop();
      await db?.drop();
      await client?.connection.close();
    });

    async function createLabelled(name: string, labels: Record<string, string>): Promise<string> {
      const container = await docker.createContainer({
        name: `${name}-${suffix}`,
        Image: await testImage(),
        Cmd: ['sleep', 'infinity'],
        Labels: labels,
        HostConfig: { NetworkMode: 'none' },
      });
      created.push(container.id);
      await container.start();
      return container.id;
    }

    it('removes containers whose owner is gone and keeps the rest', async () => {
      // A workflow on a queue no worker polls stays RUNNING: a stand-in owner that is alive.
      await client.workflow.start('ownerThatNeverRuns', {
        taskQueue: `idle-${suffix}`,
        workflowId: liveOwner,
      });
      const kept = await createLabelled('ffc-test-owned', managedLabels({ owner: liveOwner, role: 'test' }));
      const orphan = await createLabelled(
        'ffc-test-orphan',
        managedLabels({ owner: `test-owner-gone-${suffix}`, role: 'test' }),
      );
      const unlabelledOwner = await createLabelled('ffc-test-ownerless', { 'ffc.managed': 'true' });

      const workflowId = `reconcile-${suffix}`;
      const report = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId,
        args: [{ graceMs: 0 }],
      });

      assert.ok(report.removed.includes(orphan), 'orphan removed');
      assert.ok(report.removed.includes(unlabelledOwner), 'ownerless managed container removed');
      assert.ok(!report.removed.includes(kept), 'owned container kept');
      const reasons = Object.fromEntries(report.strays.map((s) => [s.id, s.reason]));
      assert.equal(reasons[orphan], 'owner_not_running');
      assert.equal(reasons[unlabelledOwner], 'no_owner_label');
      await assert.rejects(docker.getContainer(orphan).inspect(), /no such container/i);
      const survivor = await docker.getContainer(kept).inspect();
      assert.equal(survivor.State.Running, true);

      if (shouldRecordHistories()) await recordHistory(client, workflowId, 'reconciler-removes-strays');
    });

    it('stops a stray user VM and keeps everything of it; a new actor adopts it with the user’s files', async () => {
      const vmActivities = createVmContainerActivities({ docker, vm: testConfig.vm });
      const userId = `recon-${suffix}`;
      const ref = await vmActivities.createVmContainer({
        containerName: userVmContainerName(userId),
        role: 'vm',
        owner: `vm:${userId}`,
        userId,
      });
      created.push(ref.containerId);
      await vmActivities.startVmContainer(ref);
      await execIn(docker, ref.containerId, ['sh', '-c', 'echo precious > /home/ff/work.txt']);

      // Used just now: spared however old the container is (the grace counts from its last start).
      const young = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-young-${suffix}`,
        args: [{ graceMs: 60_000 }],
      });
      assert.ok(!young.stopped?.includes(ref.containerId) && !young.removed.includes(ref.containerId));

      const report = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-vm-${suffix}`,
        args: [{ graceMs: 0 }],
      });
      assert.ok(report.stopped?.includes(ref.containerId), 'stopped');
      assert.ok(!report.removed.includes(ref.containerId), 'never removed');
      assert.equal((await docker.getContainer(ref.containerId).inspect()).State.Running, false);
      assert.ok(await docker.getVolume(ref.volumeName).inspect(), 'volume kept');
      assert.ok(existsSync(ref.runDir), 'run dir kept');

      // The user comes back: their actor's create adopts the same container, volume and files.
      const adopted = await vmActivities.createVmContainer({
        containerName: userVmContainerName(userId),
        role: 'vm',
        owner: `vm:${userId}`,
        userId,
      });
      assert.equal(adopted.containerId, ref.containerId);
      await vmActivities.startVmContainer(adopted);
      const read = await execIn(docker, adopted.containerId, ['cat', '/home/ff/work.txt']);
      assert.equal(read.stdout.trim(), 'precious');
      await vmActivities.removeVmContainer(adopted);
    });

    it('removes a stray unclaimed warm-pool VM with its volume, run dir and secret', async () => {
      const vmActivities = createVmContainerActivities({ docker, vm: testConfig.vm });
      const ref = await vmActivities.createVmContainer({
        containerName: `ffc-pool-recon-${suffix}`,
        role: 'pool',
        owner: `vm-pool-gone-${suffix}`,
      });
      created.push(ref.containerId);
      const report = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-pool-${suffix}`,
        args: [{ graceMs: 0 }],
      });
      assert.ok(report.removed.includes(ref.containerId));
      await assert.rejects(docker.getVolume(ref.volumeName).inspect(), /no such volume/i);
      assert.equal(existsSync(ref.runDir), false, 'the run dir does not outlive its VM');
      assert.equal(
        existsSync(vmAgentEndpoint(ref, testConfig.vm.secretRoot).secretFile),
        false,
        'the secret does not outlive its VM',
      );
    });

    it('refuses malformed input with a clear error', async () => {
      await assert.rejects(
        client.workflow.execute(reconcileStrayContainers, {
          taskQueue: worker.taskQueue,
          workflowId: `reconcile-bad-${suffix}`,
          args: [{ graceMs: 'soon' } as unknown as { graceMs: number }],
        }),
        (err: unknown) =>
          err instanceof WorkflowFailedError &&
          /invalid input of the reconciler: graceMs/.test(err.cause?.message ?? ''),
      );
    });

    it('only reports in a dry run, and a second run finds nothing new to remove', async () => {
      const orphan = await createLabelled(
        'ffc-test-dry',
        managedLabels({ owner: `gone-${suffix}`, role: 'test' }),
      );
      const dry = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-dry-${suffix}`,
        args: [{ graceMs: 0, dryRun: true }],
      });
      assert.ok(dry.strays.some((s) => s.id === orphan));
      assert.deepEqual(dry.removed, []);
      assert.equal((await docker.getContainer(orphan).inspect()).State.Running, true);

      const wet = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-wet-${suffix}`,
        args: [{ graceMs: 0 }],
      });
      assert.ok(wet.removed.includes(orphan));
      const again = await client.workflow.execute(reconcileStrayContainers, {
        taskQueue: worker.taskQueue,
        workflowId: `reconcile-again-${suffix}`,
        args: [{ graceMs: 0 }],
      });
      assert.ok(!again.removed.includes(orphan), 'idempotent: nothing is removed twice');
    });
  });
});
