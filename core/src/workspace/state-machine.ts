import type { WorkspaceStatus } from '../protocol/workspace.js';

/** Provisioning is retried from FAILED at most this many times. */
export const MAX_INIT_RETRIES = 3;

const ALLOWED: Record<WorkspaceStatus, readonly WorkspaceStatus[]> = {
  NEW: ['PROVISIONING'],
  PROVISIONING: ['READY', 'FAILED'],
  READY: ['ARCHIVED'],
  FAILED: ['PROVISIONING', 'ARCHIVED'],
  ARCHIVED: [],
};

export type TransitionCheck =
  | { ok: true }
  | { ok: false; code: 'invalid_transition' | 'retry_limit'; message: string };

/** Whether a workspace in `from` (having retried `initRetryCount` times) may move to `to`. Pure. */
export function checkTransition(
  from: WorkspaceStatus,
  to: WorkspaceStatus,
  initRetryCount: number,
): TransitionCheck {
  if (!ALLOWED[from].includes(to)) {
    return { ok: false, code: 'invalid_transition', message: `A ${from} workspace cannot become ${to}` };
  }
  if (from === 'FAILED' && to === 'PROVISIONING' && initRetryCount >= MAX_INIT_RETRIES) {
    return {
      ok: false,
      code: 'retry_limit',
      message: `Provisioning already failed ${initRetryCount + 1} times; archive this workspace and create a new one`,
    };
  }
  return { ok: true };
}

export function allowedTransitions(from: WorkspaceStatus): readonly WorkspaceStatus[] {
  return ALLOWED[from];
}
