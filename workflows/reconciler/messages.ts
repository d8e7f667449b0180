/** Input and result of the stray-container reconciler. */
import type { Stray } from './plan.js';

export const RECONCILER_WORKFLOW_ID = 'vm-reconciler';
export const RECONCILER_SCHEDULE_ID = 'vm-reconciler-every-10m';

export type ReconcileInput = {
  /** Containers younger than this are never removed (default 5 minutes). */
  graceMs?: number;
  /** Report strays without removing them. */
  dryRun?: boolean;
};

export type ReconcileReport = {
  checked: number;
  strays: Stray[];
  removed: string[];
};
