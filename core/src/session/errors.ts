export type SessionErrorCode = 'queue_full' | 'not_found' | 'bad_request' | 'unavailable' | 'failed';

/** An error of the session's public API; the agent maps its code onto the wire's error codes. */
export class SessionError extends Error {
  constructor(
    readonly code: SessionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SessionError';
  }
}

/** spawn() refused the CLI's arguments: retrying the same arguments can only fail the same way. */
export class SpawnRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpawnRefusedError';
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
