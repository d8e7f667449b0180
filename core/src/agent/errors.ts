import type { AgentError, AgentErrorCode } from '../protocol/index.js';
import { SessionError } from '../session/index.js';
import { TerminalNotFoundError } from '../terminal/index.js';

/** An error a handler throws on purpose: its code and message go back to the caller as they are. */
export class AgentRequestError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AgentRequestError';
  }
}

const sessionCodes: Record<SessionError['code'], AgentErrorCode> = {
  queue_full: 'queue_full',
  not_found: 'not_found',
  bad_request: 'bad_request',
  unavailable: 'unavailable',
  failed: 'internal',
};

/** Maps whatever a handler threw onto the wire's {code, message}. Unknown errors stay vague. */
export function toAgentError(error: unknown): AgentError {
  if (error instanceof AgentRequestError) return { code: error.code, message: error.message };
  if (error instanceof SessionError) return { code: sessionCodes[error.code], message: error.message };
  if (error instanceof TerminalNotFoundError) return { code: 'not_found', message: error.message };
  return { code: 'internal', message: 'the agent failed to handle this request; see the agent log' };
}
