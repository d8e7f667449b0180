import { isoToMs } from './time.js';
import type { RatchetSnapshot } from './types.js';

/**
 * A string that changes exactly when the PR presents a different problem to fix:
 * `pr:<n>|ci:<STATUS>[:<failing name:result:runId,…>]|review:<changes-requested|no-changes-requested>:<ms|none>|merge:<conflict|clean>`.
 * Failing checks carry their run id so a new CI run that fails the same way is still a new key.
 */
export function snapshotKey(snapshot: RatchetSnapshot): string {
  return [
    `pr:${snapshot.number}`,
    ciKey(snapshot),
    `review:${snapshot.hasChangesRequested ? 'changes-requested' : 'no-changes-requested'}:${activityKey(snapshot.latestReviewActivityAt)}`,
    `merge:${snapshot.hasMergeConflict ? 'conflict' : 'clean'}`,
  ].join('|');
}

function ciKey(snapshot: RatchetSnapshot): string {
  if (snapshot.ciStatus !== 'FAILURE') return `ci:${snapshot.ciStatus}`;
  const failing = snapshot.checks
    .filter((check) => check.failed)
    .map((check) => `${check.name}:${check.result}:${check.runId ?? 'none'}`)
    .sort();
  return `ci:FAILURE:${failing.join(',')}`;
}

function activityKey(at: string | null): string {
  if (at === null) return 'none';
  const ms = isoToMs(at);
  return ms === null ? at : String(ms);
}
