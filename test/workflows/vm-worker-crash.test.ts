import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { LABEL_USER } from '../../activities/vm/labels.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import { defaultVmSettings, terminateUpdate } from '../../workflows/vm/messages.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { removeUserVm } from '../support/vm.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

describe('a worker killed with SIGKILL in the middle of provisioning', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const userId = `crash-${suffix}`;
  const taskQueue = `crash-${suffix}`;
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  const workers: WorkerProcess[] = [];

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await removeUserVm(client, docker, userId);
    await db?.drop();
    await client?.connection.close();
  });

  it('leaves exactly one container and volume once a new worker finishes the job', async () => {
    const env = { DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue };
    const first = await startWorkerProcess(env);
    workers.push(first);

    const ready = ensureVmReady(client, {
      userId,
      taskQueue,
      settings: { ...defaultVmSettings, agentTimeoutMs: 90_000 },
    });

    // Kill the worker the moment the container exists: creation done or in flight, agent not yet answering.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const found = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_USER}=${userId}`] },
      });
      if (found.length > 0) break;
      if (Date.now() > deadline) throw new Error(`no container appeared:\n${first.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await first.kill('SIGKILL');

    const second = await startWorkerProcess(env);
    workers.push(second);
    const view = await ready;
    assert.equal(view.status, 'ONBOARDING');

    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_USER}=${userId}`] },
    });
    assert.equal(containers.length, 1, 'exactly one container');
    const volumes = await docker.listVolumes({ filters: { label: [`${LABEL_USER}=${userId}`] } });
    assert.equal(volumes.Volumes?.length ?? 0, 1, 'exactly one volume');
    const rows = await db.pool.query('SELECT status FROM vms WHERE user_id = $1', [userId]);
    assert.deepEqual(
      rows.rows.map((r) => r.status),
      ['ONBOARDING'],
      'one read-model row',
    );

    await client.workflow.getHandle(workflowIds.vm(userId)).executeUpdate(terminateUpdate);
    await second.kill('SIGTERM');
    assert.equal(second.child.exitCode ?? 0, 0, 'SIGTERM drains and exits cleanly');
  });
});
