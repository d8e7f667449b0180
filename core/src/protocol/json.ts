import type { z } from 'zod';

/** Every message that crosses a process boundary is capped at 1 MB (lines, frames, request bodies). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export type JsonParseErrorCode = 'too_large' | 'malformed_json' | 'schema_mismatch';

/** Why a piece of untrusted text was not accepted; `message` is safe to show to the sender. */
export class JsonParseError extends Error {
  constructor(
    readonly code: JsonParseErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JsonParseError';
  }
}

export type JsonParseResult<T> = { ok: true; value: T } | { ok: false; error: JsonParseError };

/**
 * The one place untrusted JSON is turned into values: size cap, syntax, then the zod schema.
 * Everything else in the codebase calls this instead of JSON.parse (scripts/check-rules.ts enforces it).
 */
export function safeParseJson<S extends z.ZodType>(
  schema: S,
  text: string,
  maxBytes: number = MAX_MESSAGE_BYTES,
): JsonParseResult<z.output<S>> {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    return { ok: false, error: new JsonParseError('too_large', `message exceeds ${maxBytes} bytes`) };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { ok: false, error: new JsonParseError('malformed_json', `malformed JSON: ${detail}`) };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return {
      ok: false,
      error: new JsonParseError(
        'schema_mismatch',
        `invalid message${where}: ${issue?.message ?? 'rejected'}`,
      ),
    };
  }
  return { ok: true, value: parsed.data };
}

/** Like safeParseJson, but throws the JsonParseError. */
export function parseJson<S extends z.ZodType>(
  schema: S,
  text: string,
  maxBytes: number = MAX_MESSAGE_BYTES,
): z.output<S> {
  const result = safeParseJson(schema, text, maxBytes);
  if (!result.ok) throw result.error;
  return result.value;
}

const encodedJson = new WeakMap<object, string>();

/**
 * JSON of a value that is encoded more than once (a session event goes to every subscriber and is
 * weighed by the replay ring): stringified on first use and remembered while the value lives. Only for
 * values nobody mutates after they were first encoded.
 */
export function encodeJsonOnce(value: object): string {
  let json = encodedJson.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    encodedJson.set(value, json);
  }
  return json;
}
