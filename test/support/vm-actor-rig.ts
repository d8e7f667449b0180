/**
 * What a test of the vm:<userId> actor needs, set up once: a Temporal client, Docker, a migrated database,
 * a worker running the production workflows and activities, and per-user helpers. Every user made with
 * `newUser` (a users row, as the api's authentication makes) is removed with its VM by `stop()`.
 */
import assert from 'node:assert/strict';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type Docker from 'dockerode';
import { type ActivityDependencies, createActivities } from '../../activities/index.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultVmSettings,
  type VmSettings,
  type VmView,
  vmContainerQuery,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
import type { vmWorkflow } from '../../workflows/vm/workflow.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from './services.js';
import { removeUserVm } from './vm.js';
import { type RunningTestWorker, startTestWorker } from './worker.js';

/** Quick health checks and no idling: what most actor tests want. */
export const actorTestSettings: VmSettings = {
  ...defaultVmSettings,
  healthIntervalMs: 1_000,
  idleTimeoutMs: 60 * 60 * 1000,
  agentTimeoutMs: 90_000,
};

export type VmActorRig = {
  client: Client;
  docker: Docker;
  db: TestDatabase;
  worker: RunningTestWorker;
  suffix: string;
  /** `<name>-<suffix>`, with its users row. */
  newUser(name: string): Promise<string>;
  ensureReady(userId: string, overrides?: Partial<VmSettings>): Promise<VmView>;
  handle(userId: string): WorkflowHandle<typeof vmWorkflow>;
  state(userId: string): Promise<VmView>;
  /** The container of a usable VM (asserts there is one). */
  containerOf(userId: string): Promise<VmContainerRef>;
  stop(): Promise<void>;
};

export async function startVmActorRig(
  options: { activities?: Partial<Omit<ActivityDependencies, 'docker' | 'temporal' | 'pool'>> } = {},
): Promise<VmActorRig> {
  const client = await connectTestTemporal();
  const docker = testDocker();
  const db = await createMigratedDatabase();
  const worker = await startTestWorker(
    createActivities({ docker, temporal: client, pool: db.pool, vm: testConfig.vm, ...options.activities }),
  );
  const suffix = uniqueSuffix();
  const users: string[] = [];
  const handle = (userId: string) => client.workflow.getHandle<typeof vmWorkflow>(workflowIds.vm(userId));
  return {
    client,
    docker,
    db,
    worker,
    suffix,
    async newUser(name) {
      const userId = `${name}-${suffix}`;
      users.push(userId);
      await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
      return userId;
    },
    ensureReady: (userId, overrides = {}) =>
      ensureVmReady(client, {
        userId,
        taskQueue: worker.taskQueue,
        settings: { ...actorTestSettings, ...overrides },
      }),
    handle,
    state: (userId) => handle(userId).query(vmStateQuery),
    async containerOf(userId) {
      const ref = await handle(userId).query(vmContainerQuery);
      assert.ok(ref, 'a usable VM has a container');
      return ref;
    },
    async stop() {
      for (const userId of users) await removeUserVm(client, docker, userId);
      await worker.stop();
      await db.drop();
      await client.connection.close();
    },
  };
}
