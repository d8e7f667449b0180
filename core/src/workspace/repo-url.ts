import { WorkspaceError } from './errors.js';

export type RepoUrlScheme = 'https' | 'http' | 'ssh' | 'file';

export interface ParsedRepoUrl {
  /** The URL as given (validated). */
  url: string;
  /** Path segments of the clone directory under the repos root, e.g. ['github.com', 'o', 'r']. */
  cacheKey: string[];
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/;

function cleanSegments(parts: string[], url: string): string[] {
  const segments = parts.filter((p) => p !== '').map((p) => p.replace(/\.git$/, ''));
  if (segments.length === 0 || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) {
    throw new WorkspaceError('invalid_input', `Unsupported repository URL: ${url}`);
  }
  return segments;
}

/**
 * Validates a clone URL and derives where its single clone lives. Rejects anything git could read as an
 * option or a transport helper (`-…`, `ext::`), embedded credentials (tokens must stay in the VM's
 * credential helper, never in the store), and schemes not allowed by this deployment.
 */
export function parseRepoUrl(url: string, allowed: readonly RepoUrlScheme[]): ParsedRepoUrl {
  const dotSegment = /(^|[/:])\.{1,2}(\/|$)/.test(url);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is rejected
  if (url.startsWith('-') || /[\u0000-\u0020\u007f]/.test(url) || url.includes('::') || dotSegment) {
    throw new WorkspaceError('invalid_input', `Unsupported repository URL: ${url}`);
  }
  const scp = /^([A-Za-z0-9_.-]+)@([A-Za-z0-9.-]+):(.+)$/.exec(url);
  if (scp?.[2] && scp[3] && !url.includes('://')) {
    if (!allowed.includes('ssh'))
      throw new WorkspaceError('invalid_input', 'ssh repository URLs are not allowed here');
    return { url, cacheKey: [scp[2].toLowerCase(), ...cleanSegments(scp[3].split('/'), url)] };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WorkspaceError('invalid_input', `Not a repository URL: ${url}`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (!(allowed as readonly string[]).includes(scheme)) {
    throw new WorkspaceError('invalid_input', `Repository URL scheme "${scheme}" is not allowed here`);
  }
  if (parsed.password !== '' || (scheme !== 'ssh' && parsed.username !== '')) {
    throw new WorkspaceError('invalid_input', 'Repository URLs must not carry credentials');
  }
  const path = decodeURIComponent(parsed.pathname).split('/');
  if (scheme === 'file') return { url, cacheKey: ['local', ...cleanSegments(path, url)] };
  return { url, cacheKey: [parsed.host.toLowerCase().replace(/:/g, '_'), ...cleanSegments(path, url)] };
}
