import type { RatchetSnapshot, RatchetState } from './types.js';

/**
 * The PR's state as the ratchet sees it. Order matters: a failing CI outranks a conflict (the fixer's
 * prompt covers both), and a conflict outranks a running CI (GitHub often never finishes CI on a
 * conflicted PR, so waiting for it would wait forever).
 */
export function deriveRatchetState(snapshot: RatchetSnapshot | null, enabled = true): RatchetState {
  if (!enabled || snapshot === null) return 'IDLE';
  if (snapshot.state === 'MERGED') return 'MERGED';
  if (snapshot.state !== 'OPEN') return 'IDLE';
  if (snapshot.ciStatus === 'FAILURE') return 'CI_FAILED';
  if (snapshot.hasMergeConflict) return 'MERGE_CONFLICT';
  if (snapshot.ciStatus === 'PENDING' || snapshot.ciStatus === 'UNKNOWN') return 'CI_RUNNING';
  if (snapshot.hasChangesRequested) return 'REVIEW_PENDING';
  return 'READY';
}
