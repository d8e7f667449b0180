/**
 * Bringing up a user's VM through its actor, for every caller that needs one: the api (POST /api/vms, the
 * relay) and the workspace actor's activities. Here rather than in api/ so activities need not import the
 * api; both go through the same update-with-start, so there is one way a VM actor gets started.
 */
import { type Client, WithStartWorkflowOperation } from '@temporalio/client';
import { workflowIds } from '../workflows/ids.js';
import {
  defaultVmSettings,
  ensureReadyUpdate,
  type VmSettings,
  type VmView,
} from '../workflows/vm/messages.js';
import type { vmWorkflow } from '../workflows/vm/workflow.js';
import type { Config } from './config.js';

/** The VM actor's settings of this deployment. */
export function vmSettingsFrom(vm: Config['vm']): VmSettings {
  return {
    ...defaultVmSettings,
    idleTimeoutMs: vm.idleTimeoutMs,
    healthIntervalMs: vm.healthIntervalMs,
    useWarmPool: vm.warmPoolSize > 0,
  };
}

/**
 * ensureReady on the user's actor, starting the actor if needed (update-with-start). Temporal's errors are
 * passed through unchanged; callers map them for theirs.
 */
export function ensureVmReady(
  temporal: Client,
  options: { userId: string; taskQueue: string; settings: VmSettings },
): Promise<VmView> {
  return temporal.workflow.executeUpdateWithStart(ensureReadyUpdate, {
    startWorkflowOperation: new WithStartWorkflowOperation<typeof vmWorkflow>('vmWorkflow', {
      workflowId: workflowIds.vm(options.userId),
      taskQueue: options.taskQueue,
      args: [{ userId: options.userId, settings: options.settings }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    }),
  });
}
