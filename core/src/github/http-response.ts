// `gh api --include` prints the status line and headers before the body. The product uses it so a
// rate-limited REST call reveals Retry-After / X-RateLimit-Reset and pagination can follow the Link header.

export interface IncludedResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Map<string, string>;
  body: string;
}

export function parseIncludedResponse(stdout: string): IncludedResponse | null {
  const normalized = stdout.replace(/\r\n/g, '\n');
  const end = normalized.indexOf('\n\n');
  const head = end === -1 ? normalized : normalized.slice(0, end);
  const body = end === -1 ? '' : normalized.slice(end + 2);
  const [statusLine = '', ...headerLines] = head.split('\n');
  const m = /^HTTP\/[\d.]+\s+(\d{3})/.exec(statusLine);
  if (!m?.[1]) return null;
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers, body };
}

/** Seconds to wait according to Retry-After, or X-RateLimit-Reset when the quota is used up. */
export function retryAfterSeconds(headers: Map<string, string>, nowMs: number): number | null {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== undefined && /^\d+$/.test(retryAfter)) return Number(retryAfter);
  const reset = headers.get('x-ratelimit-reset');
  if (headers.get('x-ratelimit-remaining') === '0' && reset !== undefined && /^\d+$/.test(reset)) {
    return Math.max(0, Number(reset) - Math.floor(nowMs / 1000));
  }
  return null;
}

/** The URL of rel="next" in a Link header. */
export function nextLink(headers: Map<string, string>): string | null {
  const link = headers.get('link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part.trim());
    if (m?.[1]) return m[1];
  }
  return null;
}
