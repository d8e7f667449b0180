/** Messages of the warm pool: started, unassigned VM containers ready to be claimed by a first-time user. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { ContainerRefSchema } from '../vm/messages.js';
import type { PoolState } from './state.js';

export const WARM_POOL_WORKFLOW_ID = 'vm-pool';

export type WarmPoolInput = {
  size: number;
  agentTimeoutMs: number;
  maxHistoryEvents?: number;
  carried?: PoolState;
};

export const PoolSizeSchema = z.number().int().min(0).max(1000);

export const WarmPoolInputSchema = z.object({
  size: PoolSizeSchema,
  agentTimeoutMs: z
    .number()
    .int()
    .positive()
    .max(3600 * 1000),
  maxHistoryEvents: z.number().int().min(10).max(50_000).optional(),
  carried: z
    .object({
      size: PoolSizeSchema,
      ready: z.array(ContainerRefSchema).max(1000),
      claims: z.array(z.object({ claimId: z.string(), container: ContainerRefSchema.nullable() })).max(1000),
      created: z.number().int().min(0),
      claimed: z.number().int().min(0),
    })
    .optional(),
});

export const ClaimWarmVmArgsSchema = z.object({ claimId: z.string().min(1).max(500) });

/** Takes one ready container (null when none is ready). Idempotent per claimId. */
export const claimWarmVmUpdate = defineUpdate<VmContainerRef | null, [{ claimId: string }]>('claimWarmVm');
export const resizePoolSignal = defineSignal<[number]>('resize');
export const poolStateQuery = defineQuery<PoolState>('poolState');
