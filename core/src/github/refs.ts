import { isValidGitHubRepo, parseGitHubWebUrl } from '../protocol/github-urls.js';
import { GitHubError } from './errors.js';

/** A repository on a GitHub host (github.com or a GHES host name). */
export interface RepoRef {
  readonly host: string;
  readonly owner: string;
  readonly repo: string;
}

export interface PullRequestRef extends RepoRef {
  readonly number: number;
}

export interface IssueRef extends RepoRef {
  readonly number: number;
}

function checkRepo(ref: RepoRef): RepoRef {
  if (!isValidGitHubRepo(ref)) {
    throw new GitHubError('unknown', `Not a GitHub repository: ${ref.host}/${ref.owner}/${ref.repo}`);
  }
  return ref;
}

function parseWebUrl(url: string, kind: 'pull' | 'issues'): RepoRef & { number: number } {
  const ref = parseGitHubWebUrl(url, kind);
  if (!ref) {
    const what = kind === 'pull' ? 'pull request' : 'issue';
    throw new GitHubError('unknown', `Not a GitHub ${what} URL: ${url.slice(0, 200)}`);
  }
  return ref;
}

/** `https://github.com/o/r/pull/1` → {host, owner, repo, number}. */
export function parsePullRequestUrl(url: string): PullRequestRef {
  return parseWebUrl(url, 'pull');
}

/** `https://github.com/o/r/issues/5` → {host, owner, repo, number}. */
export function parseIssueUrl(url: string): IssueRef {
  return parseWebUrl(url, 'issues');
}

/** A ref from an object or a web URL, validated either way. */
export function toPullRequestRef(ref: PullRequestRef | string): PullRequestRef {
  if (typeof ref === 'string') return parsePullRequestUrl(ref);
  checkRepo(ref);
  if (!Number.isInteger(ref.number) || ref.number <= 0)
    throw new GitHubError('unknown', 'PR number must be positive');
  return ref;
}

export function toIssueRef(ref: IssueRef | string): IssueRef {
  if (typeof ref === 'string') return parseIssueUrl(ref);
  checkRepo(ref);
  if (!Number.isInteger(ref.number) || ref.number <= 0)
    throw new GitHubError('unknown', 'Issue number must be positive');
  return ref;
}

/** The `--repo` argument: `o/r` on github.com, `host/o/r` elsewhere. */
export function repoArg(ref: RepoRef): string {
  return ref.host === 'github.com' ? `${ref.owner}/${ref.repo}` : `${ref.host}/${ref.owner}/${ref.repo}`;
}

/** `--hostname` arguments for `gh api` on a non-default host. */
export function hostnameArgs(ref: RepoRef): string[] {
  return ref.host === 'github.com' ? [] : ['--hostname', ref.host];
}
