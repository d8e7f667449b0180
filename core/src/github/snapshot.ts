import {
  DEFAULT_REVIEW_TRUST_POLICY,
  type GhPrView,
  type GhReviewLineComment,
  type PullRequestSnapshot,
  type ReviewTrustPolicy,
} from '../protocol/github.js';
import { computeCiStatus, summarizeChecks } from './ci-status.js';
import { derivePrDisplayState, hasMergeConflict } from './pr-state.js';
import type { RepoRef } from './refs.js';
import { collectReviewActivity } from './review-activity.js';

/**
 * Turns what gh printed into the snapshot the ratchet decides on. Pure. Review activity by untrusted
 * authors (see `trust`) is left out here, so it can reach neither a decision nor a prompt.
 */
export function buildPullRequestSnapshot(
  repo: RepoRef,
  view: GhPrView,
  lineComments: readonly GhReviewLineComment[],
  viewerLogin: string,
  trust: ReviewTrustPolicy = DEFAULT_REVIEW_TRUST_POLICY,
): PullRequestSnapshot {
  const activity = collectReviewActivity(
    viewerLogin,
    view.reviews ?? [],
    view.comments ?? [],
    lineComments,
    trust,
  );
  return {
    owner: repo.owner,
    repo: repo.repo,
    number: view.number,
    url: view.url,
    state: view.state,
    displayState: derivePrDisplayState(view),
    isDraft: view.isDraft ?? false,
    headRefName: view.headRefName || null,
    headSha: view.headRefOid || null,
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
