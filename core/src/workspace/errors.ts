export type WorkspaceErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'path_escape'
  | 'invalid_transition'
  | 'retry_limit'
  | 'branch_in_use'
  | 'branch_not_found'
  | 'git_failed'
  | 'issue_fetch_failed'
  | 'fixer_active'
  | 'conflict';

/** A workspace operation that failed; `message` is meant for the user. Crosses boundaries as {error:{code,message}}. */
export class WorkspaceError extends Error {
  constructor(
    readonly code: WorkspaceErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'WorkspaceError';
  }

  toBody(): { error: { code: WorkspaceErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** A path that would leave the directory it must stay in (`..`, absolute, or through a symlink). */
export class PathEscapeError extends WorkspaceError {
  constructor(
    readonly requested: string,
    message: string,
  ) {
    super('path_escape', message);
    this.name = 'PathEscapeError';
  }
}
