/**
 * GitHub web URLs (`https://host/owner/repo/issues/5`, `.../pull/12`) to their parts: the one parser, for
 * the github domain (its refs) and the workspace domain (GitHub-issue workspaces) alike. Every part is
 * checked so that nothing path-like or flag-like reaches gh or a directory name.
 */

export interface GitHubRepoParts {
  host: string;
  owner: string;
  repo: string;
}

export interface GitHubNumberedParts extends GitHubRepoParts {
  number: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const HOST = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/;

/** A host, owner and repo that are safe to pass on: names of GitHub's alphabet, never `.` or `..`. */
export function isValidGitHubRepo(ref: GitHubRepoParts): boolean {
  return (
    HOST.test(ref.host) &&
    NAME.test(ref.owner) &&
    NAME.test(ref.repo) &&
    !/^\.\.?$/.test(ref.owner) &&
    !/^\.\.?$/.test(ref.repo)
  );
}

/** The parts of an http(s) issue or pull request URL; null for anything else. */
export function parseGitHubWebUrl(url: string, kind: 'issues' | 'pull'): GitHubNumberedParts | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return null;
  const m = new RegExp(`^/([^/]+)/([^/]+)/${kind}/(\\d+)/?$`).exec(parsed.pathname);
  if (!m?.[1] || !m[2] || !m[3]) return null;
  const ref = { host: parsed.host.toLowerCase(), owner: m[1], repo: m[2], number: Number(m[3]) };
  return isValidGitHubRepo(ref) && ref.number > 0 ? ref : null;
}
