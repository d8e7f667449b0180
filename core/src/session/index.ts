// Public surface of the session domain: one Claude Code CLI conversation per ClaudeSession.
export { buildClaudeArgs, type ClaudeCliArgsOptions } from './cli-args.js';
export {
  ClaudeCliProcess,
  type CliExit,
  type CliProcessHandlers,
  type CliProtocolError,
  type CliSpawnOptions,
  ControlRequestError,
} from './cli-process.js';
export { SessionError, type SessionErrorCode } from './errors.js';
export { DEFAULT_EVENT_RING_LIMITS, type EventRingLimits, SessionEventRing } from './event-ring.js';
export {
  normalizeAnswers,
  type PermissionAnswer,
  routeToolRequest,
  type ToolRequestRoute,
} from './interactive.js';
export { DEFAULT_SESSION_LIMITS, type SessionLimits } from './limits.js';
export {
  ClaudeSession,
  type ClaudeSessionOptions,
  type SendMessageInput,
  type SendMessageResult,
  type SessionInfo,
  type SessionListener,
  type SessionResumedSubscription,
  type SessionResumeStart,
  type SessionSubscription,
} from './session.js';
export {
  applySessionEvent,
  initialTranscriptState,
  isTransientEvent,
  replaySessionEvents,
  snapshotOf,
  type TranscriptState,
  transcriptStateFromSnapshot,
} from './transcript.js';
