import type { GhIssueComment, GhReview, GhReviewLineComment, ReviewFeedback } from '../protocol/github.js';
import { ZERO_TIME } from './zero-time.js';

/** Review activity by other people: what a fixer should read, and when the newest of it happened. */
export interface ReviewActivity {
  feedback: ReviewFeedback[];
  latestAt: string | null;
}

function validTime(at: string | null | undefined): string | null {
  if (!at || ZERO_TIME.test(at) || Number.isNaN(Date.parse(at))) return null;
  return at;
}

/**
 * Collects reviews, PR conversation comments and line comments, leaving out the gh user's own (the
 * fixer replies as that user, so its replies must not look like new feedback). Reviews later superseded
 * by an APPROVED review from the same author are dropped from the feedback, but every comment still moves
 * `latestAt`, so new activity is never missed.
 */
export function collectReviewActivity(
  viewerLogin: string,
  reviews: readonly GhReview[],
  comments: readonly GhIssueComment[],
  lineComments: readonly GhReviewLineComment[],
): ReviewActivity {
  const me = viewerLogin.toLowerCase();
  const byOthers = (login: string | undefined) => login !== undefined && login.toLowerCase() !== me;
  const feedback: ReviewFeedback[] = [];
  let latestMs = Number.NEGATIVE_INFINITY;
  let latestAt: string | null = null;
  const touch = (at: string | null) => {
    if (at === null) return;
    const ms = Date.parse(at);
    if (ms > latestMs) {
      latestMs = ms;
      latestAt = at;
    }
  };

  const lastApproval = new Map<string, number>();
  for (const review of reviews) {
    const at = validTime(review.submittedAt);
    if (review.state === 'APPROVED' && review.author && at !== null) {
      const ms = Date.parse(at);
      lastApproval.set(review.author.login, Math.max(ms, lastApproval.get(review.author.login) ?? ms));
    }
  }

  for (const review of reviews) {
    const author = review.author?.login;
    if (!byOthers(author) || author === undefined || review.state === 'PENDING') continue;
    const at = validTime(review.submittedAt);
    touch(at);
    const body = review.body?.trim() ?? '';
    const relevant = review.state === 'CHANGES_REQUESTED' || review.state === 'COMMENTED';
    const approvedLater =
      at !== null && (lastApproval.get(author) ?? Number.NEGATIVE_INFINITY) > Date.parse(at);
    if (!relevant || body === '' || approvedLater) continue;
    feedback.push({
      kind: 'review',
      author,
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
    if (!byOthers(author) || author === undefined || comment.viewerDidAuthor) continue;
    const at = validTime(comment.createdAt);
    touch(at);
    const body = comment.body?.trim() ?? '';
    if (body === '') continue;
    feedback.push({
      kind: 'conversation',
      author,
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
    if (!byOthers(author) || author === undefined) continue;
    const at = validTime(comment.updated_at) ?? validTime(comment.created_at);
    touch(at);
    const body = comment.body?.trim() ?? '';
    if (body === '') continue;
    feedback.push({
      kind: 'line_comment',
      author,
      body,
      reviewState: null,
      path: comment.path ?? null,
      line: comment.line ?? comment.original_line ?? null,
      url: comment.html_url ?? null,
      at: validTime(comment.created_at) ?? at,
    });
  }

  feedback.sort((a, b) => (a.at === null ? 0 : Date.parse(a.at)) - (b.at === null ? 0 : Date.parse(b.at)));
  return { feedback, latestAt };
}
