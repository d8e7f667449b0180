/**
 * How every workflow checks what it is given: its input before anything runs (a bad value once reached a
 * timer and took the shared worker down), update arguments in validators, signal arguments in handlers.
 * One wording for every refusal: "invalid <what>: <path>: <message>; …".
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/** "settings.idleTimeoutMs: expected number, received undefined; …" (the first few issues). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(input)'}: ${issue.message}`)
    .join('; ');
}

/** The parsed value, or a non-retryable failure of `type` that names what was invalid and where. */
export function parseOrFail<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  type: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(`invalid ${what}: ${describeIssues(parsed.error)}`, type);
  return parsed.data;
}
