import { isoToMs } from './time.js';
import type { RatchetSnapshot } from './types.js';

/**
 * A string that changes exactly when the PR presents a different problem to fix:
 * `pr:<n>|head:<sha|none>|ci:<STATUS>[:<failing name:result:runId,…>]|review:<ms|none>|merge:<conflict|clean>`.
 * It is keyed on the head commit, so a conflict or failure that comes back after the fixer pushed is a new
 * situation (green CI needs no run id for that). Failing checks still carry their run id, so a re-run on
 * the same commit that fails again is new too. The review part is the newest *triggering* activity by a
 * trusted author (the snapshot source filtered the rest out), never the standing review decision.
 */
export function snapshotKey(snapshot: RatchetSnapshot): string {
  return [
    `pr:${snapshot.number}`,
    `head:${snapshot.headSha === null || snapshot.headSha === '' ? 'none' : snapshot.headSha}`,
    ciKey(snapshot),
    `review:${activityKey(snapshot.latestReviewActivityAt)}`,
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
