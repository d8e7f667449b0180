/**
 * How every actor reads the failures of its activities and raises its own: one place, so the vm, workspace
 * and ratchet workflows word and classify them the same way. Pure, deterministic helpers.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/** A failure the caller gets as the final answer (never retried by Temporal). */
export const finalFailure = (type: string, message: string): ApplicationFailure =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

/** The innermost cause, which is where an activity's own error is. */
export function innermostCause(err: unknown): unknown {
  let current: unknown = err;
  while (current instanceof ActivityFailure || (current instanceof Error && current.cause instanceof Error)) {
    current = current instanceof Error ? current.cause : undefined;
  }
  return current;
}

/** The message of the innermost cause, which is where an activity's own error text is. */
export function reasonOf(err: unknown): string {
  const cause = innermostCause(err);
  return cause instanceof Error ? cause.message : String(cause);
}

/** The ApplicationFailure type an activity raised, or null for anything else (a timeout, a crash). */
export function failureTypeOf(err: unknown): string | null {
  const cause = innermostCause(err);
  return cause instanceof ApplicationFailure ? (cause.type ?? null) : null;
}

/** Whether a timeout is anywhere in the cause chain. */
export function timedOut(err: unknown): boolean {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof TimeoutFailure) return true;
    current = current.cause;
  }
  return false;
}

/** Updates that take no arguments refuse any sent along: a caller's mistake, answered with `type`. */
export function refuseArguments(name: string, args: unknown[], type: string): void {
  if (args.some((arg) => arg !== undefined))
    throw finalFailure(type, `invalid ${name}: it takes no arguments`);
}
