import {
  DEFAULT_REVIEW_TRUST_POLICY,
  type GhIssueComment,
  type GhReview,
  type GhReviewLineComment,
  type ReviewFeedback,
  type ReviewTrustPolicy,
  TRUSTED_AUTHOR_ASSOCIATIONS,
} from '../protocol/github.js';
import { ZERO_TIME } from './zero-time.js';

/** Review activity by trusted people: what a fixer should read, and when the newest trigger happened. */
export interface ReviewActivity {
  feedback: ReviewFeedback[];
  /** The newest triggering activity (see collectReviewActivity), or null when there is none. */
  latestAt: string | null;
}

function validTime(at: string | null | undefined): string | null {
  if (!at || ZERO_TIME.test(at) || Number.isNaN(Date.parse(at))) return null;
  return at;
}

/**
 * Whether an author's words may start a fixer and reach its prompt. The gh user never is (the fixer
 * replies as that user, and two bots must not answer each other); otherwise GitHub's association decides,
 * or an exact login the user listed. A login's spelling alone (`x[bot]`, a renamed account) proves nothing.
 */
export function isTrustedAuthor(
  login: string,
  association: string | null | undefined,
  viewerLogin: string,
  trust: ReviewTrustPolicy,
): boolean {
  const name = login.toLowerCase();
  if (name === viewerLogin.toLowerCase()) return false;
  if (association && TRUSTED_AUTHOR_ASSOCIATIONS.includes(association.toUpperCase())) return true;
  return trust.trustedBots.some((bot) => bot.toLowerCase() === name);
}

/**
 * Collects reviews, PR conversation comments and line comments by trusted authors (isTrustedAuthor);
 * everything else is dropped entirely: it is not feedback and it never counts as activity. `latestAt` is
 * the newest *triggering* item: a CHANGES_REQUESTED review, and with triggerMode 'all_feedback' also a
 * COMMENTED review, a conversation comment or a line comment (comments by their creation time, so an edit
 * does not re-trigger). A review superseded by a later approval from the same author is neither feedback
 * nor a trigger: its author has since said the change is fine.
 */
export function collectReviewActivity(
  viewerLogin: string,
  reviews: readonly GhReview[],
  comments: readonly GhIssueComment[],
  lineComments: readonly GhReviewLineComment[],
  trust: ReviewTrustPolicy = DEFAULT_REVIEW_TRUST_POLICY,
): ReviewActivity {
  const trusted = (login: string | undefined, association: string | null | undefined): login is string =>
    login !== undefined && isTrustedAuthor(login, association, viewerLogin, trust);
  const allFeedback = trust.triggerMode === 'all_feedback';
  const feedback: ReviewFeedback[] = [];
  let latestMs = Number.NEGATIVE_INFINITY;
  let latestAt: string | null = null;
  const trigger = (at: string | null) => {
    if (at === null) return;
    const ms = Date.parse(at);
    if (ms > latestMs) {
      latestMs = ms;
      latestAt = at;
    }
  };

  const lastApproval = new Map<string, number>();
  for (const review of reviews) {
    const author = review.author?.login;
    const at = validTime(review.submittedAt);
    if (review.state === 'APPROVED' && trusted(author, review.authorAssociation) && at !== null) {
      const ms = Date.parse(at);
      lastApproval.set(author, Math.max(ms, lastApproval.get(author) ?? ms));
    }
  }

  for (const review of reviews) {
    const author = review.author?.login;
    if (!trusted(author, review.authorAssociation)) continue;
    if (review.state !== 'CHANGES_REQUESTED' && review.state !== 'COMMENTED') continue;
    const at = validTime(review.submittedAt);
    const approvedLater =
      at !== null && (lastApproval.get(author) ?? Number.NEGATIVE_INFINITY) > Date.parse(at);
    if (approvedLater) continue;
    if (review.state === 'CHANGES_REQUESTED' || allFeedback) trigger(at);
    const body = review.body?.trim() ?? '';
    if (body === '') continue;
    feedback.push({
      kind: 'review',
      author,
      authorAssociation: review.authorAssociation ?? null,
      body,
      reviewState: review.state,
      path: null,
      line: null,
      url: null,
      at,
    });
  }

  for (const comment of comments) {
    const author = comment.author?.login;
    if (comment.viewerDidAuthor || !trusted(author, comment.authorAssociation)) continue;
    const at = validTime(comment.createdAt);
    if (allFeedback) trigger(at);
    const body = comment.body?.trim() ?? '';
    if (body === '') continue;
    feedback.push({
      kind: 'conversation',
      author,
      authorAssociation: comment.authorAssociation ?? null,
      body,
      reviewState: null,
      path: null,
      line: null,
      url: comment.url || null,
      at,
    });
  }

  for (const comment of lineComments) {
    const author = comment.user?.login;
    if (!trusted(author, comment.author_association)) continue;
    const at = validTime(comment.created_at);
    if (allFeedback) trigger(at);
    const body = comment.body?.trim() ?? '';
    if (body === '') continue;
    feedback.push({
      kind: 'line_comment',
      author,
      authorAssociation: comment.author_association ?? null,
      body,
      reviewState: null,
      path: comment.path ?? null,
      line: comment.line ?? comment.original_line ?? null,
      url: comment.html_url ?? null,
      at,
    });
  }

  feedback.sort((a, b) => (a.at === null ? 0 : Date.parse(a.at)) - (b.at === null ? 0 : Date.parse(b.at)));
  return { feedback, latestAt };
}
