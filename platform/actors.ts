/**
 * Long-lived system actors that must exist once per deployment: the stray-container reconciler (a Temporal
 * schedule) and the warm pool. Both are created idempotently at setup, so running setup again is harmless.
 */
import {
  type Client,
  ScheduleAlreadyRunning,
  WorkflowExecutionAlreadyStartedError,
} from '@temporalio/client';
import { RECONCILER_SCHEDULE_ID, RECONCILER_WORKFLOW_ID } from '../workflows/reconciler/messages.js';
import type { reconcileStrayContainers } from '../workflows/reconciler/workflow.js';
import { resizePoolSignal, WARM_POOL_WORKFLOW_ID } from '../workflows/vm-pool/messages.js';
import type { vmPoolWorkflow } from '../workflows/vm-pool/workflow.js';

export async function ensureReconcilerSchedule(
  client: Client,
  taskQueue: string,
): Promise<'created' | 'exists'> {
  try {
    await client.schedule.create<typeof reconcileStrayContainers>({
      scheduleId: RECONCILER_SCHEDULE_ID,
      spec: { intervals: [{ every: '10 minutes' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconcileStrayContainers',
        workflowId: RECONCILER_WORKFLOW_ID,
        taskQueue,
        args: [{}],
      },
      policies: { overlap: 'SKIP' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}

/** Starts the warm pool at `size`, or resizes the running one. Size 0 leaves a running pool to drain. */
export async function ensureWarmPool(
  client: Client,
  options: { taskQueue: string; size: number; agentTimeoutMs: number },
): Promise<'started' | 'resized' | 'disabled'> {
  if (options.size === 0) {
    try {
      await client.workflow.getHandle(WARM_POOL_WORKFLOW_ID).signal(resizePoolSignal, 0);
      return 'resized';
    } catch {
      return 'disabled';
    }
  }
  try {
    await client.workflow.start<typeof vmPoolWorkflow>('vmPoolWorkflow', {
      workflowId: WARM_POOL_WORKFLOW_ID,
      taskQueue: options.taskQueue,
      args: [{ size: options.size, agentTimeoutMs: options.agentTimeoutMs }],
    });
    return 'started';
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    await client.workflow.getHandle(WARM_POOL_WORKFLOW_ID).signal(resizePoolSignal, options.size);
    return 'resized';
  }
}
