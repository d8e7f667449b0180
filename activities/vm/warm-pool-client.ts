/**
 * The VM actor's door to the warm pool: an activity, because a workflow cannot send an update to another
 * workflow. The claim id makes a retried claim return the same container instead of taking a second one.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { claimWarmVmUpdate, WARM_POOL_WORKFLOW_ID } from '../../workflows/vm-pool/messages.js';
import type { VmContainerRef } from './types.js';

export function createWarmPoolClientActivities(deps: { client: Client; poolWorkflowId?: string }) {
  const poolId = deps.poolWorkflowId ?? WARM_POOL_WORKFLOW_ID;
  return {
    /** A started container with an answering agent, or null when the pool is empty or not running. */
    async claimWarmVm(input: { claimId: string }): Promise<VmContainerRef | null> {
      try {
        return await deps.client.workflow
          .getHandle(poolId)
          .executeUpdate(claimWarmVmUpdate, { args: [input] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
    },
  };
}
