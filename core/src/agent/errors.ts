// The error classes come from each domain's own errors module, not its index: mapping an error must not
// load a domain (github, session) that an idle agent has no use for yet.
import { GitHubError } from '../github/errors.js';
import type { AgentError, AgentErrorCode } from '../protocol/index.js';
import { SessionError } from '../session/errors.js';
import { TerminalNotFoundError } from '../terminal/index.js';
import { WorkspaceError, type WorkspaceErrorCode } from '../workspace/index.js';

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

/** core/workspace's messages are written for the user already; only the code needs translating. */
const workspaceCodes: Record<WorkspaceErrorCode, AgentErrorCode> = {
  invalid_input: 'bad_request',
  path_escape: 'bad_request',
  branch_not_found: 'bad_request',
  not_found: 'not_found',
  invalid_transition: 'conflict',
  retry_limit: 'conflict',
  branch_in_use: 'conflict',
  fixer_active: 'conflict',
  conflict: 'conflict',
  git_failed: 'unavailable',
  issue_fetch_failed: 'unavailable',
};

function workspaceCode(error: WorkspaceError): AgentErrorCode {
  // An issue that does not exist is the caller's to fix; gh logged out, offline or rate limited is not.
  if (error.cause instanceof GitHubError && error.cause.code === 'issue_not_found') return 'bad_request';
  return workspaceCodes[error.code];
}

/** Maps whatever a handler threw onto the wire's {code, message}. Unknown errors stay vague. */
export function toAgentError(error: unknown): AgentError {
  if (error instanceof AgentRequestError) return { code: error.code, message: error.message };
  if (error instanceof WorkspaceError) return { code: workspaceCode(error), message: error.message };
  if (error instanceof SessionError) return { code: sessionCodes[error.code], message: error.message };
  if (error instanceof TerminalNotFoundError) return { code: 'not_found', message: error.message };
  return { code: 'internal', message: 'the agent failed to handle this request; see the agent log' };
}
