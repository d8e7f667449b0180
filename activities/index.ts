/**
 * All activities the worker registers, built from the clients they need. Factories keep activities free of
 * globals: the worker wires real clients once at start-up, tests wire the same real clients to test services.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Pool } from '../db/pool.js';
import type { Config } from '../platform/config.js';
import { vmSettingsFrom } from '../platform/vm-ready.js';
import type { VmSettings } from '../workflows/vm/messages.js';
import { createActorActivities } from './temporal/actors.js';
import { createContainerInventoryActivities } from './vm/containers.js';
import { createVmContainerActivities } from './vm/lifecycle.js';
import { createVmReadModelActivities } from './vm/read-model.js';
import { createReconcileActivities } from './vm/reconcile.js';
import { createWarmPoolClientActivities } from './vm/warm-pool-client.js';
import { createWorkspaceAgentActivities } from './workspace/agent.js';
import { createWorkspaceReadModelActivities } from './workspace/read-model.js';

export type ActivityDependencies = {
  docker: Docker;
  temporal: Client;
  pool: Pool;
  /** VM image, limits, network mode and run dir root of the VMs this worker creates. */
  vm: Config['vm'];
  /** The warm pool's workflow id; tests run their own pool beside a deployment's. */
  warmPoolWorkflowId?: string;
  /** Settings a workspace actor starts a user's VM actor with; from `vm` unless given. */
  vmSettings?: VmSettings;
  /** Task queue of the VM actors the workspace actors talk to; the activity's own unless given. */
  vmTaskQueue?: string;
};

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createContainerInventoryActivities({ docker: deps.docker }),
    ...createVmContainerActivities({ docker: deps.docker, vm: deps.vm }),
    ...createActorActivities({ client: deps.temporal }),
    ...createReconcileActivities({ docker: deps.docker, temporal: deps.temporal, vm: deps.vm }),
    ...createVmReadModelActivities({ pool: deps.pool }),
    ...createWarmPoolClientActivities({
      client: deps.temporal,
      ...(deps.warmPoolWorkflowId ? { poolWorkflowId: deps.warmPoolWorkflowId } : {}),
    }),
    ...createWorkspaceAgentActivities({
      temporal: deps.temporal,
      vm: deps.vm,
      vmSettings: deps.vmSettings ?? vmSettingsFrom(deps.vm),
      ...(deps.vmTaskQueue ? { vmTaskQueue: deps.vmTaskQueue } : {}),
    }),
    ...createWorkspaceReadModelActivities({ pool: deps.pool }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
