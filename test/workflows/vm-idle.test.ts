import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultVmSettings,
  ensureReadyUpdate,
  terminateUpdate,
  touchSignal,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
import { vmWorkflow } from '../../workflows/vm/workflow.js';
import {
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { createTimeSkippingEnvironment } from '../support/temporal-test-server.js';
import { workflowBundle } from '../support/worker.js';

/**
 * The idle timer with Temporal's time-skipping server: half an hour passes in a moment, while the activities
 * (Docker, the agent, Postgres) are the real ones.
 */
describe('vm actor idle timer (time-skipping server, real Docker)', function () {
  this.timeout(5 * 60_000);
  let env: TestWorkflowEnvironment;
  let docker: Docker;
  let db: TestDatabase;
  const userId = `idle-${uniqueSuffix()}`;

  before(async () => {
    env = await createTimeSkippingEnvironment();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
  });
  after(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { name: [`ffc-vm-${userId}`] } });
    for (const c of leftovers) await docker.getContainer(c.Id).remove({ force: true, v: true });
    await db?.drop();
    await env?.teardown();
  });

  it('suspends a VM after the idle timeout, counting touches as activity, and resumes on demand', async () => {
    const taskQueue = `idle-${uniqueSuffix()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: createActivities({ docker, temporal: env.client, pool: db.pool, vm: testConfig.vm }),
    });
    await worker.runUntil(async () => {
      const settings = {
        ...defaultVmSettings,
        idleTimeoutMs: 30 * 60 * 1000,
        healthIntervalMs: 10 * 60 * 1000,
        agentTimeoutMs: 90_000,
        searchAttributes: false,
      };
      // The time-skipping server has no update-with-start; start, then update (the api's path is tested
      // against the dev server).
      const handle = await env.client.workflow.start(vmWorkflow, {
        workflowId: workflowIds.vm(userId),
        taskQueue,
        args: [{ userId, settings }],
      });
      const start = () => handle.executeUpdate(ensureReadyUpdate);
      const ready = await start();
      assert.equal(ready.status, 'ONBOARDING');

      await env.sleep('20 minutes');
      await handle.signal(touchSignal);
      await env.sleep('20 minutes');
      assert.equal(
        (await handle.query(vmStateQuery)).status,
        'ONBOARDING',
        'a touch restarted the idle period',
      );

      await env.sleep('15 minutes');
      const idle = await handle.query(vmStateQuery);
      assert.equal(idle.status, 'SUSPENDED', '30 minutes without traffic suspends the VM');
      const container = await docker.getContainer(`ffc-vm-${userId}`).inspect();
      assert.equal(container.State.Running, false);

      const resumed = await start();
      assert.equal(resumed.status, 'ONBOARDING');
      assert.equal((await docker.getContainer(`ffc-vm-${userId}`).inspect()).State.Running, true);
      await handle.executeUpdate(terminateUpdate);
    });
  });
});
