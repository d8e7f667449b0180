import type { GitHubErrorBody, GitHubErrorCode } from '../protocol/github.js';

/** A failed GitHub call, with a message a user can act on. `retryAfterSeconds` is set when GitHub said so. */
export class GitHubError extends Error {
  constructor(
    readonly code: GitHubErrorCode,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'GitHubError';
  }

  /** The `{error: {code, message}}` shape used across process boundaries. */
  toBody(): GitHubErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.retryAfterSeconds === null ? {} : { retryAfterSeconds: this.retryAfterSeconds }),
      },
    };
  }
}

/** What a failed gh run looked like. */
export interface GhFailure {
  exitCode: number | null;
  stderr: string;
  /** Which not-found code a 404 / "Could not resolve" means for this call. */
  notFound?: 'pr_not_found' | 'issue_not_found';
  /** Retry hint parsed from response headers (gh api --include), when there were any. */
  retryAfterSeconds?: number | null;
}

// Patterns taken from what gh 2.23 prints (see core/test/github/gh-errors.test.ts for the real outputs).
const RATE_LIMIT = /rate limit|HTTP 429|throttl|abuse detection/i;
const AUTH = /HTTP 401|Bad credentials|gh auth login|GH_TOKEN|authentication required|not logged in/i;
const PR_MISSING = /Could not resolve to a PullRequest/i;
const ISSUE_MISSING = /Could not resolve to an issue or pull request|Could not resolve to an Issue/i;
const REPO_OR_404 = /Could not resolve to a Repository|\(HTTP 404\)|HTTP 404/i;
const NETWORK =
  /error connecting to|dial (unix|tcp)|proxyconnect|connection refused|no such host|i\/o timeout|TLS handshake|connection reset|network is unreachable|unexpected EOF|HTTP 5\d\d|\(HTTP 5\d\d\)/i;

/** gh exits 4 when no credentials are configured at all. */
const GH_EXIT_AUTH = 4;

/** Recognises a gh failure from its exit code and stderr. */
export function classifyGhFailure(failure: GhFailure): GitHubError {
  const said = firstLines(failure.stderr);
  const retry = failure.retryAfterSeconds ?? null;
  if (RATE_LIMIT.test(failure.stderr)) {
    const when = retry === null ? 'later' : `in ${retry} s`;
    return new GitHubError(
      'rate_limited',
      `GitHub rate limit reached; try again ${when} (gh: ${said})`,
      retry,
    );
  }
  if (failure.exitCode === GH_EXIT_AUTH || AUTH.test(failure.stderr)) {
    return new GitHubError(
      'auth_required',
      `gh is not authenticated with GitHub: run \`gh auth login\` in the workspace terminal (gh: ${said})`,
    );
  }
  if (PR_MISSING.test(failure.stderr))
    return new GitHubError('pr_not_found', `Pull request not found (gh: ${said})`);
  if (ISSUE_MISSING.test(failure.stderr))
    return new GitHubError('issue_not_found', `Issue not found (gh: ${said})`);
  if (REPO_OR_404.test(failure.stderr)) {
    const code = failure.notFound ?? 'unknown';
    const what = code === 'issue_not_found' ? 'Issue' : code === 'pr_not_found' ? 'Pull request' : 'Resource';
    return new GitHubError(code, `${what} not found or not visible to the gh user (gh: ${said})`);
  }
  if (NETWORK.test(failure.stderr)) {
    return new GitHubError('network_error', `GitHub could not be reached or failed; try again (gh: ${said})`);
  }
  return new GitHubError('unknown', `gh failed with exit code ${failure.exitCode ?? 'none'} (gh: ${said})`);
}

function firstLines(text: string): string {
  const trimmed = text.trim().split('\n').slice(0, 2).join(' ').trim();
  if (trimmed === '') return 'no output';
  return trimmed.length > 300 ? `${trimmed.slice(0, 299)}…` : trimmed;
}
