/**
 * All activities the worker registers, built from the clients they need. Factories keep activities free of
 * globals: the worker wires real clients once at start-up, tests wire the same real clients to test services.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from '../db/pool.js';
import { createActorActivities } from './temporal/actors.js';
import { createContainerInventoryActivities } from './vm/containers.js';
import { createVmReadModelActivities } from './vm/read-model.js';
import { createWarmPoolClientActivities } from './vm/warm-pool-client.js';

export type ActivityDependencies = {
  docker: Docker;
  temporal: Client;
  pool: Pool;
  /** The warm pool's workflow id; tests run their own pool beside a deployment's. */
  warmPoolWorkflowId?: string;
};

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createContainerInventoryActivities({ docker: deps.docker }),
    ...createActorActivities({ client: deps.temporal }),
    ...createVmReadModelActivities({ pool: deps.pool }),
    ...createWarmPoolClientActivities({
      client: deps.temporal,
      ...(deps.warmPoolWorkflowId ? { poolWorkflowId: deps.warmPoolWorkflowId } : {}),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
