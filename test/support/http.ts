/** Small HTTP helpers for api tests: requests against a real listening server, bodies checked as JSON. */

import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';

export const ErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export type HttpResult = { status: number; headers: Headers; text: string; json: unknown };

export async function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpResult> {
  const res = await fetch(url, init);
  const text = await res.text();
  const parsed = safeParseJson(z.unknown(), text);
  return { status: res.status, headers: res.headers, text, json: parsed.ok ? parsed.value : undefined };
}

export function errorCode(result: HttpResult): string {
  return ErrorBodySchema.parse(result.json).error.code;
}
