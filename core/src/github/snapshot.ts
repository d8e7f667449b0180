import type { GhPrView, GhReviewLineComment, PullRequestSnapshot } from '../protocol/github.js';
import { computeCiStatus, summarizeChecks } from './ci-status.js';
import { derivePrDisplayState, hasMergeConflict } from './pr-state.js';
import type { RepoRef } from './refs.js';
import { collectReviewActivity } from './review-activity.js';

/** Turns what gh printed into the snapshot the ratchet decides on. Pure. */
export function buildPullRequestSnapshot(
  repo: RepoRef,
  view: GhPrView,
  lineComments: readonly GhReviewLineComment[],
  viewerLogin: string,
): PullRequestSnapshot {
  const activity = collectReviewActivity(viewerLogin, view.reviews ?? [], view.comments ?? [], lineComments);
  return {
    owner: repo.owner,
    repo: repo.repo,
    number: view.number,
    url: view.url,
    state: view.state,
    displayState: derivePrDisplayState(view),
    isDraft: view.isDraft ?? false,
    headRefName: view.headRefName || null,
    baseRefName: view.baseRefName || null,
    reviewDecision: view.reviewDecision || null,
    mergeStateStatus: view.mergeStateStatus || null,
    ciStatus: computeCiStatus(view.statusCheckRollup),
    checks: summarizeChecks(view.statusCheckRollup),
    hasChangesRequested: view.reviewDecision === 'CHANGES_REQUESTED',
    hasMergeConflict: hasMergeConflict(view),
    latestReviewActivityAt: activity.latestAt,
    reviewFeedback: activity.feedback,
    viewerLogin,
  };
}
