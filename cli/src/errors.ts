/**
 * What ffc's exit codes mean. Scripts branch on them, so each failure maps to exactly one; `ffc --help`
 * prints this table.
 */
export const ExitCode = {
  ok: 0,
  /** Bad arguments, or a request the api refused as invalid (400). */
  usage: 1,
  /** Not logged in, or the api refused the key (401/403). */
  auth: 2,
  notFound: 3,
  /** The api refused because of the current state (409), e.g. a ratchet fixer is working. */
  conflict: 4,
  /** The service failed (5xx, unreadable answer, a workspace that FAILED) or could not be reached. */
  service: 5,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    usage error, or the api refused the request as invalid
  2    not logged in, or the API key was refused
  3    not found (workspace, session, VM)
  4    conflict (e.g. a ratchet fixer is active, the workspace is not ready)
  5    the service failed or is unreachable (also: a workspace whose restore FAILED)
  130  interrupted (Ctrl-C)`;

/** A failure to report as one line on stderr and exit with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The exit code for an HTTP status the api answered with (or a ws upgrade it refused). */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return ExitCode.auth;
  if (status === 404) return ExitCode.notFound;
  if (status === 409) return ExitCode.conflict;
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return ExitCode.usage;
  return ExitCode.service;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    // fetch() hides the useful part (ECONNREFUSED, ENOTFOUND) in `cause`.
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message && !err.message.includes(cause.message)) {
      return `${err.message}: ${cause.message}`;
    }
    return err.message;
  }
  return String(err);
}
