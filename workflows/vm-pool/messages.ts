/** Messages of the warm pool: started, unassigned VM containers ready to be claimed by a first-time user. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type { PoolState } from './state.js';

export const WARM_POOL_WORKFLOW_ID = 'vm-pool';

export type WarmPoolInput = {
  size: number;
  agentTimeoutMs: number;
  maxHistoryEvents?: number;
  carried?: PoolState;
};

/** Takes one ready container (null when none is ready). Idempotent per claimId. */
export const claimWarmVmUpdate = defineUpdate<VmContainerRef | null, [{ claimId: string }]>('claimWarmVm');
export const resizePoolSignal = defineSignal<[number]>('resize');
export const poolStateQuery = defineQuery<PoolState>('poolState');
