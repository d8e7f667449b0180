/**
 * Every REST call of the dashboard: the bearer token on each request, answers checked against the view's
 * shape, and failures turned into an ApiError whose message is the api's own `{error: {message}}` (never
 * raw JSON). `fetch` is injected so the stores run under Node against a real api in the unit tests.
 */
import type { Guard } from './guards.js';
import { parseJsonText } from './json.js';
import { isErrorBody } from './types.js';

/** The subset of fetch the client uses (the browser's, or Node's in tests). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
) => Promise<{ status: number; ok: boolean; text(): Promise<string> }>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What to show for any failure: the api's message, or a sentence for the network being down. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error && err.message) return err.message;
  return 'Something went wrong. Try again.';
}

export type ApiClientOptions = {
  /** Origin of the api ('' in the browser: same origin). */
  baseUrl: string;
  fetch: FetchLike;
  token: () => string | null;
  /** Called on a 401 (expired or revoked session), before the error is thrown. */
  onUnauthorized?: () => void;
};

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  token(): string | null {
    return this.options.token();
  }

  get<T>(path: string, guard: Guard<T>): Promise<T> {
    return this.request('GET', path, undefined, guard);
  }

  post<T>(path: string, body: unknown, guard: Guard<T>): Promise<T> {
    return this.request('POST', path, body ?? {}, guard);
  }

  delete<T>(path: string, guard: Guard<T>): Promise<T> {
    return this.request('DELETE', path, undefined, guard);
  }

  async request<T>(method: string, path: string, body: unknown, guard: Guard<T>): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = this.options.token();
    if (token) headers.authorization = `Bearer ${token}`;
    const init: { method: string; headers: Record<string, string>; body?: string } = { method, headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response: Awaited<ReturnType<FetchLike>>;
    try {
      response = await this.options.fetch(`${this.options.baseUrl}${path}`, init);
    } catch {
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
    }
    const text = await response.text();
    const value = parseJsonText(text);
    if (!response.ok) {
      if (response.status === 401) this.options.onUnauthorized?.();
      if (isErrorBody(value)) throw new ApiError(response.status, value.error.code, value.error.message);
      throw new ApiError(response.status, 'http_error', `The server answered ${response.status}. Try again.`);
    }
    if (!guard(value)) {
      throw new ApiError(response.status, 'bad_answer', 'The server sent an answer this page cannot read.');
    }
    return value;
  }
}
