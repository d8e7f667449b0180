import type { GhPrView, PrDisplayState } from '../protocol/github.js';

/** What to show for a PR; first match wins: MERGED, CLOSED, DRAFT, the review decision, OPEN. */
export function derivePrDisplayState(
  view: Pick<GhPrView, 'state' | 'isDraft' | 'reviewDecision'>,
): PrDisplayState {
  if (view.state === 'MERGED') return 'MERGED';
  if (view.state === 'CLOSED') return 'CLOSED';
  if (view.isDraft) return 'DRAFT';
  if (view.reviewDecision === 'APPROVED') return 'APPROVED';
  if (view.reviewDecision === 'CHANGES_REQUESTED') return 'CHANGES_REQUESTED';
  return 'OPEN';
}

/** GitHub's mergeStateStatus DIRTY is "the merge commit cannot be cleanly created". */
export function hasMergeConflict(view: Pick<GhPrView, 'mergeStateStatus'>): boolean {
  return view.mergeStateStatus === 'DIRTY';
}
