/**
 * REST calls to the api. Every answer is parsed with the contract's zod schema; every failure becomes a
 * CliError carrying the api's own message (`{error:{code,message}}`) and the exit code its status means.
 */
import { safeParseJson } from '@factory-factory/core/protocol';
import type { z } from 'zod';
import { ErrorBodySchema } from '../../api/contract/workspaces.js';
import type { Credentials } from './config.js';
import { CliError, ExitCode, errorText, exitCodeForStatus } from './errors.js';

/** A refusal by the api: its status and code, for callers that branch on them (e.g. login). */
export class ApiRefusal extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(exitCodeForStatus(status), message);
    this.name = 'ApiRefusal';
  }
}

export type RequestOptions = { method?: 'GET' | 'POST'; body?: unknown; query?: Record<string, string> };

export class ApiClient {
  constructor(
    readonly credentials: Credentials,
    private readonly timeoutMs = 60_000,
  ) {}

  url(path: string, query?: Record<string, string>): string {
    const url = new URL(`${this.credentials.apiUrl}${path}`);
    for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
    return url.toString();
  }

  /** The ws:// (or wss://) URL of a socket path on the same api. */
  wsUrl(path: string, query?: Record<string, string>): string {
    return this.url(path, query).replace(/^http/, 'ws');
  }

  async request<S extends z.ZodType>(
    path: string,
    schema: S,
    options: RequestOptions = {},
  ): Promise<z.output<S>> {
    const method = options.method ?? 'GET';
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.credentials.apiKey}`,
      accept: 'application/json',
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    let res: Response;
    try {
      res = await fetch(this.url(path, options.query), {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') {
        throw new CliError(
          ExitCode.service,
          `the api at ${this.credentials.apiUrl} did not answer ${method} ${path} within ${Math.round(this.timeoutMs / 1000)} s`,
        );
      }
      throw new CliError(
        ExitCode.service,
        `cannot reach the api at ${this.credentials.apiUrl}: ${errorText(err)}`,
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new CliError(ExitCode.service, `the api's answer was cut off: ${errorText(err)}`);
    }
    if (!res.ok) throw refusalFrom(res.status, text);
    const parsed = safeParseJson(schema, text);
    if (!parsed.ok) {
      throw new CliError(
        ExitCode.service,
        `unexpected answer from the api to ${method} ${path} (${parsed.error.message}); is ffc up to date?`,
      );
    }
    return parsed.value;
  }
}

/** The api's error body as a readable refusal; a body that is not ours (a proxy's page) by its status only. */
export function refusalFrom(status: number, text: string): ApiRefusal {
  const parsed = safeParseJson(ErrorBodySchema, text);
  if (parsed.ok) return new ApiRefusal(status, parsed.value.error.code, parsed.value.error.message);
  return new ApiRefusal(status, `http_${status}`, `the api answered HTTP ${status}`);
}
