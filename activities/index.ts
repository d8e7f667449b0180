/**
 * All activities the worker registers, built from the clients they need. Factories keep activities free of
 * globals: the worker wires real clients once at start-up, tests wire the same real clients to test services.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type Stripe from 'stripe';
import type { Pool } from '../db/pool.js';
import { type Config, DEFAULT_METER_EVENT_NAME } from '../platform/config.js';
import { vmSettingsFrom } from '../platform/vm-ready.js';
import type { RatchetSettings } from '../workflows/ratchet/messages.js';
import type { UsageSettings } from '../workflows/usage/messages.js';
import type { VmSettings } from '../workflows/vm/messages.js';
import { createMeterEventActivities } from './billing/meter-events.js';
import { createRatchetAgentActivities } from './ratchet/agent.js';
import { createRatchetReadModelActivities } from './ratchet/read-model.js';
import { createActorActivities } from './temporal/actors.js';
import { createUsageNotifyActivities } from './usage/notify.js';
import { createUsageRecordActivities } from './usage/records.js';
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
  /** Settings a VM actor starts its user's usage actor with (the grace period of config.billing). */
  usageSettings?: UsageSettings;
  /** Stripe (platform/stripe.ts) for meter events; null or absent when billing is off. */
  stripe?: Stripe | null;
  /** The meter compute minutes go to (config.billing.meterEventName). */
  meterEventName?: string;
  /** Settings the ratchet actors start with, over defaultRatchetSettings (config.ratchet; tests poll faster). */
  ratchetSettings?: Partial<RatchetSettings>;
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
      ...(deps.ratchetSettings ? { ratchetSettings: deps.ratchetSettings } : {}),
    }),
    ...createWorkspaceReadModelActivities({ pool: deps.pool }),
    ...createRatchetAgentActivities({ temporal: deps.temporal, vm: deps.vm }),
    ...createRatchetReadModelActivities({ pool: deps.pool }),
    ...createUsageRecordActivities({ pool: deps.pool }),
    ...createMeterEventActivities({
      stripe: deps.stripe ?? null,
      meterEventName: deps.meterEventName ?? DEFAULT_METER_EVENT_NAME,
      pool: deps.pool,
    }),
    ...createUsageNotifyActivities({
      temporal: deps.temporal,
      ...(deps.usageSettings ? { settings: deps.usageSettings } : {}),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
