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

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const HOST = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/;

function checkRepo(ref: RepoRef): RepoRef {
  if (
    !HOST.test(ref.host) ||
    !NAME.test(ref.owner) ||
    !NAME.test(ref.repo) ||
    /^\.\.?$/.test(ref.owner) ||
    /^\.\.?$/.test(ref.repo)
  ) {
    throw new GitHubError('unknown', `Not a GitHub repository: ${ref.host}/${ref.owner}/${ref.repo}`);
  }
  return ref;
}

function parseWebUrl(url: string, kind: 'pull' | 'issues'): RepoRef & { number: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GitHubError('unknown', `Not a URL: ${url.slice(0, 200)}`);
  }
  const m = new RegExp(`^/([^/]+)/([^/]+)/${kind}/(\\d+)/?$`).exec(parsed.pathname);
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || !m?.[1] || !m[2] || !m[3]) {
    const what = kind === 'pull' ? 'pull request' : 'issue';
    throw new GitHubError('unknown', `Not a GitHub ${what} URL: ${url.slice(0, 200)}`);
  }
  const ref = checkRepo({ host: parsed.host.toLowerCase(), owner: m[1], repo: m[2] });
  return { ...ref, number: Number(m[3]) };
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
