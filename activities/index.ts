/**
 * All activities the worker registers, built from the clients they need. Factories keep activities free of
 * globals: the worker wires real clients once at start-up, tests wire the same real clients to test services.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActorActivities } from './temporal/actors.js';
import { createContainerInventoryActivities } from './vm/containers.js';

export type ActivityDependencies = {
  docker: Docker;
  temporal: Client;
};

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createContainerInventoryActivities({ docker: deps.docker }),
    ...createActorActivities({ client: deps.temporal }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
