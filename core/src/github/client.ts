import type { z } from 'zod';
import {
  GH_ISSUE_VIEW_FIELDS,
  GH_PR_VIEW_FIELDS,
  GhIssueViewSchema,
  type GhPrView,
  GhPrViewSchema,
  type GhReviewLineComment,
  GhReviewLineCommentPageSchema,
  type GitHubIssue,
  type PullRequestSnapshot,
  type ReviewTrustPolicy,
} from '../protocol/github.js';
import { safeParseJson } from '../protocol/json.js';
import { classifyGhFailure, GitHubError } from './errors.js';
import type { GhRunner, GhRunResult } from './gh-runner.js';
import { nextLink, parseIncludedResponse, retryAfterSeconds } from './http-response.js';
import {
  hostnameArgs,
  type IssueRef,
  type PullRequestRef,
  type RepoRef,
  repoArg,
  toIssueRef,
  toPullRequestRef,
} from './refs.js';
import { buildPullRequestSnapshot } from './snapshot.js';

export interface GitHubClientOptions {
  runner: GhRunner;
  /** Milliseconds since the epoch; injected so the login cache and the rate-limit cool-down are testable. */
  now?: () => number;
  /** How long the gh user's login is reused (default 5 min). */
  loginCacheTtlMs?: number;
  /** After a rate-limit error, calls fail fast for this long or the server's retry-after (default 60 s). */
  rateLimitCooldownMs?: number;
  /** Safety cap on line-comment pages of 100 (default 50). */
  maxCommentPages?: number;
}

/** gh output can be large (a PR with hundreds of comments); still bounded. */
const MAX_GH_OUTPUT_BYTES = 32 * 1024 * 1024;
const COMMENTS_PER_PAGE = 100;

/**
 * GitHub through the `gh` binary only, so the user's credentials never leave the machine gh runs on.
 * Every failure is a GitHubError with a code (see protocol/github.ts GitHubErrorCode).
 */
export class GitHubClient {
  private readonly runner: GhRunner;
  private readonly now: () => number;
  private readonly loginTtlMs: number;
  private readonly cooldownMs: number;
  private readonly maxCommentPages: number;
  private readonly logins = new Map<string, { login: string; fetchedAt: number }>();
  private readonly loginsInFlight = new Map<string, Promise<string>>();
  private rateLimitedUntil = 0;

  constructor(options: GitHubClientOptions) {
    this.runner = options.runner;
    this.now = options.now ?? Date.now;
    this.loginTtlMs = options.loginCacheTtlMs ?? 5 * 60_000;
    this.cooldownMs = options.rateLimitCooldownMs ?? 60_000;
    this.maxCommentPages = options.maxCommentPages ?? 50;
  }

  /** `gh --version`'s first line, for health checks. */
  async cliVersion(): Promise<string> {
    const result = await this.runner.run(['--version']);
    if (result.exitCode !== 0) throw classifyGhFailure({ exitCode: result.exitCode, stderr: result.stderr });
    return result.stdout.split('\n')[0]?.trim() ?? '';
  }

  /** The authenticated gh user (`gh api user --jq .login`), cached per host. */
  async getViewerLogin(host = 'github.com'): Promise<string> {
    const cached = this.logins.get(host);
    if (cached && this.now() - cached.fetchedAt < this.loginTtlMs) return cached.login;
    const pending = this.loginsInFlight.get(host);
    if (pending) return pending;
    const fetching = this.fetchLogin(host).finally(() => this.loginsInFlight.delete(host));
    this.loginsInFlight.set(host, fetching);
    return fetching;
  }

  private async fetchLogin(host: string): Promise<string> {
    const args = ['api', ...(host === 'github.com' ? [] : ['--hostname', host]), 'user', '--jq', '.login'];
    const result = await this.run(args, {});
    const login = result.stdout.trim();
    if (!/^[A-Za-z0-9-]+(\[bot\])?$/.test(login)) {
      throw new GitHubError('invalid_response', 'gh printed something that is not a GitHub login');
    }
    this.logins.set(host, { login, fetchedAt: this.now() });
    return login;
  }

  /** `gh pr view <n> --repo o/r --json <GH_PR_VIEW_FIELDS>`. */
  async getPullRequest(ref: PullRequestRef | string): Promise<GhPrView> {
    const pr = toPullRequestRef(ref);
    const result = await this.run(
      ['pr', 'view', String(pr.number), '--repo', repoArg(pr), '--json', GH_PR_VIEW_FIELDS.join(',')],
      { notFound: 'pr_not_found' },
    );
    return this.parse(GhPrViewSchema, result.stdout, 'gh pr view');
  }

  /** All line comments of a PR: REST `repos/o/r/pulls/n/comments`, 100 per page, following Link rel="next". */
  async listReviewLineComments(ref: PullRequestRef | string): Promise<GhReviewLineComment[]> {
    const pr = toPullRequestRef(ref);
    const all: GhReviewLineComment[] = [];
    for (let page = 1; page <= this.maxCommentPages; page++) {
      const path = `repos/${pr.owner}/${pr.repo}/pulls/${pr.number}/comments?per_page=${COMMENTS_PER_PAGE}&page=${page}`;
      const response = await this.restGet(pr, path, 'pr_not_found');
      all.push(...this.parse(GhReviewLineCommentPageSchema, response.body, 'gh api pulls/comments'));
      // Only the presence of rel="next" is used; the next path is built here, never taken from the server.
      if (nextLink(response.headers) === null) break;
    }
    return all;
  }

  /**
   * Everything the ratchet needs about one PR. Review activity counts only from trusted authors
   * (`options.trust`, default: CHANGES_REQUESTED reviews by owners, members and collaborators), never
   * from the gh user; everything else is left out of the snapshot.
   */
  async getPullRequestSnapshot(
    ref: PullRequestRef | string,
    options: { trust?: ReviewTrustPolicy } = {},
  ): Promise<PullRequestSnapshot> {
    const pr = toPullRequestRef(ref);
    const [view, lineComments, viewer] = await Promise.all([
      this.getPullRequest(pr),
      this.listReviewLineComments(pr),
      this.getViewerLogin(pr.host),
    ]);
    return buildPullRequestSnapshot(pr, view, lineComments, viewer, options.trust);
  }

  /** `gh issue view <n> --repo o/r --json number,title,body,url`. */
  async getIssue(ref: IssueRef | string): Promise<GitHubIssue> {
    const issue = toIssueRef(ref);
    const result = await this.run(
      [
        'issue',
        'view',
        String(issue.number),
        '--repo',
        repoArg(issue),
        '--json',
        GH_ISSUE_VIEW_FIELDS.join(','),
      ],
      { notFound: 'issue_not_found' },
    );
    const view = this.parse(GhIssueViewSchema, result.stdout, 'gh issue view');
    return { number: view.number, title: view.title, body: view.body ?? '', url: view.url };
  }

  private async restGet(
    repo: RepoRef,
    path: string,
    notFound: 'pr_not_found' | 'issue_not_found',
  ): Promise<{ headers: Map<string, string>; body: string }> {
    this.failFastWhileRateLimited();
    const result = await this.runner.run(['api', ...hostnameArgs(repo), '--include', path]);
    const response = parseIncludedResponse(result.stdout);
    if (result.exitCode !== 0 || response === null || response.status >= 400) {
      const retry = response === null ? null : retryAfterSeconds(response.headers, this.now());
      throw this.failed(result, notFound, retry);
    }
    return response;
  }

  private async run(
    args: string[],
    options: { notFound?: 'pr_not_found' | 'issue_not_found' },
  ): Promise<GhRunResult> {
    this.failFastWhileRateLimited();
    const result = await this.runner.run(args);
    if (result.exitCode !== 0) throw this.failed(result, options.notFound, null);
    return result;
  }

  private failed(
    result: GhRunResult,
    notFound: 'pr_not_found' | 'issue_not_found' | undefined,
    retry: number | null,
  ): GitHubError {
    const error = classifyGhFailure({
      exitCode: result.exitCode,
      stderr: result.stderr,
      retryAfterSeconds: retry,
      ...(notFound ? { notFound } : {}),
    });
    if (error.code === 'rate_limited') {
      const waitMs = Math.max(this.cooldownMs, (error.retryAfterSeconds ?? 0) * 1000);
      this.rateLimitedUntil = Math.max(this.rateLimitedUntil, this.now() + waitMs);
    }
    return error;
  }

  /** GitHub punishes clients that keep calling while limited; one limited call pauses all of them. */
  private failFastWhileRateLimited(): void {
    const remainingMs = this.rateLimitedUntil - this.now();
    if (remainingMs > 0) {
      const seconds = Math.ceil(remainingMs / 1000);
      throw new GitHubError(
        'rate_limited',
        `GitHub rate limit reached; calls are paused for ${seconds} s more`,
        seconds,
      );
    }
  }

  private parse<S extends z.ZodType>(schema: S, text: string, what: string): z.output<S> {
    const parsed = safeParseJson(schema, text, MAX_GH_OUTPUT_BYTES);
    if (!parsed.ok)
      throw new GitHubError('invalid_response', `${what} printed unexpected output: ${parsed.error.message}`);
    return parsed.value;
  }
}
