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
  /** User VMs stopped (never removed: their volume is the user's). Absent from reports of older runs. */
  stopped?: string[];
  /** Strays left alone at the last moment: their owner started or they were used within the grace. */
  spared?: string[];
};

/** What settling one stray did, after re-checking it right before acting. */
export type StrayOutcome = 'removed' | 'stopped' | 'spared';
