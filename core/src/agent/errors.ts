// The error classes come from each domain's own errors module, not its index: mapping an error must not
// load a domain (github, session) that an idle agent has no use for yet.
import { GitHubError } from '../github/errors.js';
import type { AgentError, AgentErrorCode } from '../protocol/index.js';
import { SessionError } from '../session/errors.js';
import { TerminalNotFoundError } from '../terminal/index.js';
import { WorkspaceError, type WorkspaceErrorCode } from '../workspace/index.js';

/**
 * An error a handler throws on purpose: its code and message go back to the caller as they are.
 * `retryAfterSeconds` is for rate limits only (see protocol/agent.ts AgentError).
 */
export class AgentRequestError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'AgentRequestError';
  }
}

/** When GitHub gave no retry hint for a rate limit: core/github's own default cool-down. */
const DEFAULT_RATE_LIMIT_RETRY_SECONDS = 60;

/**
 * GitHub failing (network, auth, rate limit, a PR gh cannot see) is `unavailable`: nothing the caller
 * sent was wrong, and gh's words in the message say what to fix. A rate limit always carries a retry hint.
 */
export function gitHubUnavailable(error: GitHubError): AgentRequestError {
  if (error.code === 'rate_limited') {
    return new AgentRequestError(
      'unavailable',
      error.message,
      error.retryAfterSeconds ?? DEFAULT_RATE_LIMIT_RETRY_SECONDS,
    );
  }
  return new AgentRequestError('unavailable', `GitHub ${error.code.replace(/_/g, ' ')}: ${error.message}`);
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
  if (error instanceof AgentRequestError) {
    return {
      code: error.code,
      message: error.message,
      ...(error.retryAfterSeconds === null ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    };
  }
  if (error instanceof GitHubError) return toAgentError(gitHubUnavailable(error));
  if (error instanceof WorkspaceError) return { code: workspaceCode(error), message: error.message };
  if (error instanceof SessionError) return { code: sessionCodes[error.code], message: error.message };
  if (error instanceof TerminalNotFoundError) return { code: 'not_found', message: error.message };
  return { code: 'internal', message: 'the agent failed to handle this request; see the agent log' };
}
