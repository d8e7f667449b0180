/**
 * The dashboard's one JSON reader: responses and ws frames from the api are checked against the shape the
 * view needs, so a bad answer shows an error instead of a half-rendered page.
 */
import type { Guard } from './guards.js';

export type { Guard } from './guards.js';

/** Parses `text`; undefined when it is not JSON (the caller says what that means). */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Parses `text` and checks it with `guard`; null when it is not JSON or not of that shape. */
export function readJsonText<T>(text: string, guard: Guard<T>): T | null {
  const value = parseJsonText(text);
  return guard(value) ? value : null;
}

type TextResponse = { text(): Promise<string>; url: string };

export async function readJson<T>(response: TextResponse, guard: Guard<T>): Promise<T> {
  const text = await response.text();
  const value = parseJsonText(text);
  if (value === undefined) throw new Error(`unexpected response from ${response.url}: not JSON`);
  if (!guard(value)) throw new Error(`unexpected response from ${response.url}`);
  return value;
}
