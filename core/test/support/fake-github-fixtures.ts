// The data a fake GitHub serves. Plain JSON (no functions) so it can be replaced in-process or over
// HTTP (`PUT /__fixtures`) by a test running in another process. Every field has a default, so a test
// states only what its scenario is about.
import { z } from 'zod';

const Login = z.string().min(1);
const IsoTime = z.string();
/**
 * GitHub's authorAssociation of the author on this repository: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR,
 * FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE. Served as `authorAssociation` (GraphQL) and
 * `author_association` (REST line comments).
 */
const AuthorAssociation = z.string().default('MEMBER');

export const FakeCheckRunSchema = z.object({
  kind: z.literal('CheckRun'),
  name: z.string(),
  workflowName: z.string().nullable().default('CI'),
  /** QUEUED, IN_PROGRESS, COMPLETED, WAITING, PENDING, REQUESTED */
  status: z.string().default('COMPLETED'),
  /** SUCCESS, FAILURE, TIMED_OUT, CANCELLED, SKIPPED, NEUTRAL, ACTION_REQUIRED, STARTUP_FAILURE; null while running */
  conclusion: z.string().nullable().default('SUCCESS'),
  startedAt: IsoTime.default('2024-01-02T03:05:00Z'),
  completedAt: IsoTime.nullable().default('2024-01-02T03:07:00Z'),
  detailsUrl: z.string().nullable().default(null),
});

export const FakeStatusContextSchema = z.object({
  kind: z.literal('StatusContext'),
  context: z.string(),
  /** SUCCESS, PENDING, FAILURE, ERROR, EXPECTED */
  state: z.string().default('SUCCESS'),
  targetUrl: z.string().nullable().default(null),
  createdAt: IsoTime.default('2024-01-02T03:06:00Z'),
});

export const FakeCheckSchema = z.discriminatedUnion('kind', [FakeCheckRunSchema, FakeStatusContextSchema]);

export const FakeReviewSchema = z.object({
  id: z.string().optional(),
  author: Login,
  authorAssociation: AuthorAssociation,
  /** APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING */
  state: z.string(),
  body: z.string().default(''),
  submittedAt: IsoTime.default('2024-01-02T05:00:00Z'),
  commitOid: z.string().default('1111111111111111111111111111111111111111'),
});

export const FakeIssueCommentSchema = z.object({
  id: z.string().optional(),
  author: Login,
  authorAssociation: AuthorAssociation,
  body: z.string(),
  createdAt: IsoTime.default('2024-01-02T07:00:00Z'),
});

export const FakeLineCommentSchema = z.object({
  id: z.number().int().optional(),
  author: Login,
  authorAssociation: AuthorAssociation,
  body: z.string(),
  path: z.string().default('src/index.ts'),
  line: z.number().int().nullable().default(1),
  createdAt: IsoTime.default('2024-01-02T06:00:00Z'),
  updatedAt: IsoTime.optional(),
});

export const FakePullRequestSchema = z.object({
  number: z.number().int().positive(),
  title: z.string().default('Add widgets'),
  body: z.string().default(''),
  author: Login.default('octo-tester'),
  state: z.enum(['OPEN', 'CLOSED', 'MERGED']).default('OPEN'),
  isDraft: z.boolean().default(false),
  headRefName: z.string().default('feature/widgets'),
  baseRefName: z.string().default('main'),
  headSha: z.string().default('2222222222222222222222222222222222222222'),
  mergedAt: IsoTime.nullable().default(null),
  /** APPROVED, CHANGES_REQUESTED, REVIEW_REQUIRED, or null */
  reviewDecision: z.string().nullable().default(null),
  /** CLEAN, DIRTY (conflict), BLOCKED, BEHIND, UNSTABLE, HAS_HOOKS, DRAFT, UNKNOWN */
  mergeStateStatus: z.string().default('CLEAN'),
  createdAt: IsoTime.default('2024-01-02T03:00:00Z'),
  checks: z.array(FakeCheckSchema).default([]),
  reviews: z.array(FakeReviewSchema).default([]),
  comments: z.array(FakeIssueCommentSchema).default([]),
  lineComments: z.array(FakeLineCommentSchema).default([]),
});

export const FakeIssueSchema = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().default(''),
  author: Login.default('octo-tester'),
  state: z.enum(['OPEN', 'CLOSED']).default('OPEN'),
  createdAt: IsoTime.default('2024-01-01T00:00:00Z'),
});

export const FakeRepositorySchema = z.object({
  defaultBranch: z.string().default('main'),
  pulls: z.array(FakePullRequestSchema).default([]),
  issues: z.array(FakeIssueSchema).default([]),
});

export const FakeRateLimitSchema = z.object({
  /** primary: "API rate limit exceeded"; secondary: abuse detection with a Retry-After header. */
  kind: z.enum(['primary', 'secondary']).default('primary'),
  retryAfterSeconds: z.number().int().nonnegative().nullable().default(null),
  /** Epoch seconds for X-RateLimit-Reset. */
  resetEpochSeconds: z.number().int().nonnegative().nullable().default(null),
  rest: z.boolean().default(true),
  graphql: z.boolean().default(true),
});

export const FakeGitHubFixturesSchema = z.object({
  viewer: z
    .object({ login: Login, name: z.string().nullable().default(null) })
    .default({ login: 'octo-tester', name: null }),
  /** Token the fake requires (`Authorization: token …`); null accepts any request. */
  token: z.string().nullable().default('fake-token'),
  /** Keyed by "owner/name". */
  repos: z.record(z.string(), FakeRepositorySchema).default({}),
  faults: z
    .object({
      rateLimit: FakeRateLimitSchema.nullable().default(null),
      /** Answer every API request with HTTP 500. */
      serverError: z.boolean().default(false),
    })
    .default({ rateLimit: null, serverError: false }),
});

export type FakeGitHubFixtures = z.output<typeof FakeGitHubFixturesSchema>;
export type FakeGitHubFixturesInput = z.input<typeof FakeGitHubFixturesSchema>;
export type FakePullRequest = z.output<typeof FakePullRequestSchema>;
export type FakePullRequestInput = z.input<typeof FakePullRequestSchema>;
export type FakeCheck = z.output<typeof FakeCheckSchema>;
export type FakeCheckInput = z.input<typeof FakeCheckSchema>;
export type FakeIssue = z.output<typeof FakeIssueSchema>;
export type FakeRepository = z.output<typeof FakeRepositorySchema>;

export function parseFakeGitHubFixtures(input: unknown): FakeGitHubFixtures {
  return FakeGitHubFixturesSchema.parse(input);
}

// Small builders for the common check shapes, so scenario tables stay readable.

export function checkRun(
  name: string,
  conclusion: string | null,
  extra: Partial<Omit<z.input<typeof FakeCheckRunSchema>, 'kind' | 'name'>> = {},
): FakeCheckInput {
  const running = conclusion === null;
  return {
    kind: 'CheckRun',
    name,
    conclusion,
    status: running ? 'IN_PROGRESS' : 'COMPLETED',
    completedAt: running ? null : '2024-01-02T03:07:00Z',
    ...extra,
  };
}

export function statusContext(
  context: string,
  state: string,
  targetUrl: string | null = null,
): FakeCheckInput {
  return { kind: 'StatusContext', context, state, targetUrl };
}
