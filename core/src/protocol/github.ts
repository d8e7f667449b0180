// GitHub data that crosses a process boundary: what the `gh` binary prints (parsed by core/github) and the
// pull-request snapshot the VM agent hands to the ratchet workflow. gh is an external program whose output
// is untrusted input; every schema here tolerates missing/null fields the way gh renders them
// (a null conclusion is "" and a null time is 0001-01-01T00:00:00Z in `--json` output).
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------------
// What `gh` prints

/** One entry of `statusCheckRollup` in `gh pr view --json`: a CheckRun or a (legacy) StatusContext. */
export const GhStatusCheckSchema = z.object({
  __typename: z.string(),
  // CheckRun
  name: z.string().nullish(),
  status: z.string().nullish(),
  conclusion: z.string().nullish(),
  completedAt: z.string().nullish(),
  detailsUrl: z.string().nullish(),
  workflowName: z.string().nullish(),
  // StatusContext
  context: z.string().nullish(),
  state: z.string().nullish(),
  targetUrl: z.string().nullish(),
  // both (gh maps a StatusContext's createdAt to startedAt)
  startedAt: z.string().nullish(),
});
export type GhStatusCheck = z.output<typeof GhStatusCheckSchema>;

const GhActorSchema = z.object({ login: z.string() }).nullish();

export const GhReviewSchema = z.object({
  id: z.string().nullish(),
  author: GhActorSchema,
  /** OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE. */
  authorAssociation: z.string().nullish(),
  state: z.string(),
  body: z.string().nullish(),
  submittedAt: z.string().nullish(),
});
export type GhReview = z.output<typeof GhReviewSchema>;

export const GhIssueCommentSchema = z.object({
  id: z.string().nullish(),
  author: GhActorSchema,
  authorAssociation: z.string().nullish(),
  body: z.string().nullish(),
  createdAt: z.string().nullish(),
  url: z.string().nullish(),
  viewerDidAuthor: z.boolean().nullish(),
});
export type GhIssueComment = z.output<typeof GhIssueCommentSchema>;

/**
 * `gh pr view <n> --repo o/r --json` with exactly the fields of GH_PR_VIEW_FIELDS.
 * Fields gh leaves out (older servers) become null rather than failing the whole snapshot.
 */
export const GhPrViewSchema = z.object({
  number: z.number().int().positive(),
  url: z.string(),
  state: z.enum(['OPEN', 'CLOSED', 'MERGED']),
  isDraft: z.boolean().nullish(),
  reviewDecision: z.string().nullish(),
  mergedAt: z.string().nullish(),
  mergeStateStatus: z.string().nullish(),
  headRefName: z.string().nullish(),
  /** The head commit's sha. */
  headRefOid: z.string().nullish(),
  baseRefName: z.string().nullish(),
  statusCheckRollup: z.array(GhStatusCheckSchema).nullish(),
  reviews: z.array(GhReviewSchema).nullish(),
  comments: z.array(GhIssueCommentSchema).nullish(),
});
export type GhPrView = z.output<typeof GhPrViewSchema>;

/** The `--json` field list the product asks `gh pr view` for (the closing note of issue 4 lists it). */
export const GH_PR_VIEW_FIELDS = [
  'number',
  'state',
  'isDraft',
  'reviewDecision',
  'mergedAt',
  'mergeStateStatus',
  'statusCheckRollup',
  'headRefName',
  'headRefOid',
  'baseRefName',
  'reviews',
  'comments',
  'url',
] as const;

/** One element of REST `GET /repos/o/r/pulls/n/comments` (a line comment on the diff). */
export const GhReviewLineCommentSchema = z.object({
  id: z.number().int(),
  user: z.object({ login: z.string() }).nullish(),
  author_association: z.string().nullish(),
  body: z.string().nullish(),
  path: z.string().nullish(),
  line: z.number().int().nullish(),
  original_line: z.number().int().nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
  html_url: z.string().nullish(),
});
export type GhReviewLineComment = z.output<typeof GhReviewLineCommentSchema>;
export const GhReviewLineCommentPageSchema = z.array(GhReviewLineCommentSchema);

/** `gh issue view <n> --repo o/r --json number,title,body,url`. */
export const GhIssueViewSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullish(),
  url: z.string(),
});
export const GH_ISSUE_VIEW_FIELDS = ['number', 'title', 'body', 'url'] as const;

/** REST error bodies (`{"message": "...", "documentation_url": "..."}`). */
export const GhRestErrorBodySchema = z.object({ message: z.string() });

// ---------------------------------------------------------------------------------------------------------
// What the VM agent hands on (agent → api/worker → ratchet workflow)

export const GitHubIssueSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string(),
  url: z.string(),
});
export type GitHubIssue = z.output<typeof GitHubIssueSchema>;

export const CiStatusSchema = z.enum(['PENDING', 'SUCCESS', 'FAILURE', 'UNKNOWN']);
export type CiStatus = z.output<typeof CiStatusSchema>;

/** What a dashboard shows for a PR (first match wins: MERGED, CLOSED, DRAFT, review decision, OPEN). */
export const PrDisplayStateSchema = z.enum([
  'MERGED',
  'CLOSED',
  'DRAFT',
  'APPROVED',
  'CHANGES_REQUESTED',
  'OPEN',
]);
export type PrDisplayState = z.output<typeof PrDisplayStateSchema>;

/** One check after reducing the rollup to the latest attempt per `workflowName|name`. */
export const CheckSummarySchema = z.object({
  name: z.string(),
  workflowName: z.string().nullable(),
  /** Effective result: the conclusion once completed, otherwise the state/status (e.g. IN_PROGRESS). */
  result: z.string(),
  detailsUrl: z.string().nullable(),
  /** GitHub Actions run id parsed from detailsUrl (`/actions/runs/<id>`), the ratchet's dedup material. */
  runId: z.string().nullable(),
  failed: z.boolean(),
});
export type CheckSummary = z.output<typeof CheckSummarySchema>;

/** Review feedback a fixer should read; bodies are untrusted text written by anyone who can comment. */
export const ReviewFeedbackSchema = z.object({
  kind: z.enum(['review', 'line_comment', 'conversation']),
  author: z.string(),
  /** GitHub's author association; only OWNER, MEMBER and COLLABORATOR (or a trusted bot) get this far. */
  authorAssociation: z.string().nullable().default(null),
  body: z.string(),
  /** Review state for kind=review (CHANGES_REQUESTED, COMMENTED). */
  reviewState: z.string().nullable(),
  path: z.string().nullable(),
  line: z.number().int().nullable(),
  url: z.string().nullable(),
  at: z.string().nullable(),
});
export type ReviewFeedback = z.output<typeof ReviewFeedbackSchema>;

/** Everything the ratchet needs to know about one PR at one poll. */
export const PullRequestSnapshotSchema = z.object({
  owner: z.string(),
  repo: z.string(),
  number: z.number().int().positive(),
  url: z.string(),
  state: z.enum(['OPEN', 'CLOSED', 'MERGED']),
  displayState: PrDisplayStateSchema,
  isDraft: z.boolean(),
  headRefName: z.string().nullable(),
  /** The head commit's sha (gh's headRefOid): the ratchet's dedup key is on it. */
  headSha: z.string().nullable().default(null),
  baseRefName: z.string().nullable(),
  reviewDecision: z.string().nullable(),
  mergeStateStatus: z.string().nullable(),
  ciStatus: CiStatusSchema,
  checks: z.array(CheckSummarySchema),
  hasChangesRequested: z.boolean(),
  hasMergeConflict: z.boolean(),
  /**
   * ISO time of the newest triggering review activity by a trusted author (ReviewTrustPolicy): a
   * CHANGES_REQUESTED review, and with 'all_feedback' also COMMENTED reviews and comments. Untrusted
   * activity and the gh user's own never move it.
   */
  latestReviewActivityAt: z.string().nullable(),
  /** What trusted authors wrote; nothing by anyone else is here, so nothing of theirs reaches a prompt. */
  reviewFeedback: z.array(ReviewFeedbackSchema),
  /** The gh user the snapshot was taken as; their own comments are excluded above. */
  viewerLogin: z.string(),
});
export type PullRequestSnapshot = z.output<typeof PullRequestSnapshotSchema>;

/**
 * Who may start a fixer and whose feedback a fixer reads. An author is trusted iff GitHub says they can
 * push (authorAssociation OWNER, MEMBER or COLLABORATOR) or their exact login is in `trustedBots`; never
 * the gh user itself. Names prove nothing: `x[bot]` or a renamed account is judged by association alone.
 */
export const ReviewTriggerModeSchema = z.enum(['changes_requested', 'all_feedback']);
export type ReviewTriggerMode = z.output<typeof ReviewTriggerModeSchema>;

/** Author associations whose holders can push to the repository. */
export const TRUSTED_AUTHOR_ASSOCIATIONS: readonly string[] = ['OWNER', 'MEMBER', 'COLLABORATOR'];

const GitHubLoginSchema = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$/, 'a GitHub login (optionally ending in [bot])');

export const ReviewTrustPolicySchema = z.object({
  /**
   * 'changes_requested' (default): only CHANGES_REQUESTED reviews by trusted authors start a fixer.
   * 'all_feedback': also their COMMENTED reviews, conversation comments and line comments.
   */
  triggerMode: ReviewTriggerModeSchema.default('changes_requested'),
  /** Exact logins (compared case-insensitively, as GitHub does) trusted whatever their association. */
  trustedBots: z.array(GitHubLoginSchema).max(100).default([]),
});
export interface ReviewTrustPolicy {
  readonly triggerMode: ReviewTriggerMode;
  readonly trustedBots: readonly string[];
}

export const DEFAULT_REVIEW_TRUST_POLICY: ReviewTrustPolicy = {
  triggerMode: 'changes_requested',
  trustedBots: [],
};

export const GitHubErrorCodeSchema = z.enum([
  'cli_not_installed',
  'auth_required',
  'pr_not_found',
  'issue_not_found',
  'rate_limited',
  'network_error',
  'invalid_response',
  'unknown',
]);
export type GitHubErrorCode = z.output<typeof GitHubErrorCodeSchema>;

/** A GitHub failure as it crosses a boundary: `{error: {code, message}}` plus a retry hint when known. */
export const GitHubErrorBodySchema = z.object({
  error: z.object({
    code: GitHubErrorCodeSchema,
    message: z.string(),
    retryAfterSeconds: z.number().int().nonnegative().optional(),
  }),
});
export type GitHubErrorBody = z.output<typeof GitHubErrorBodySchema>;
