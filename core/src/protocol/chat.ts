import { z } from 'zod';

/**
 * The chat contract between a Claude session and whoever watches it (agent subscribers, the api relay,
 * the dashboard). Names follow the Factory Factory desktop app's WebSocket messages so the dashboard
 * speaks the same language: `queue_message`, `claude_message`, `session_runtime_updated`,
 * `user_question`, `permission_request`, `question_response`, `permission_response`,
 * `session_snapshot`, `message_state_changed`.
 */
export const CHAT_PROTOCOL_VERSION = 1;

const JsonObject = z.record(z.string(), z.unknown());

export const PermissionMode = z.enum(['default', 'acceptEdits', 'plan', 'bypassPermissions', 'dontAsk']);
export type PermissionMode = z.infer<typeof PermissionMode>;

/** queued → dispatched → committed, or rejected (queue full), cancelled (removed/stopped), failed. */
export const MessageState = z.enum(['QUEUED', 'DISPATCHED', 'COMMITTED', 'REJECTED', 'CANCELLED', 'FAILED']);
export type MessageState = z.infer<typeof MessageState>;

export const SessionPhase = z.enum(['loading', 'starting', 'running', 'idle', 'stopping', 'error']);
export type SessionPhase = z.infer<typeof SessionPhase>;

export const ProcessState = z.enum(['unknown', 'alive', 'stopped']);
export type ProcessState = z.infer<typeof ProcessState>;

export const SessionActivity = z.enum(['WORKING', 'IDLE']);
export type SessionActivity = z.infer<typeof SessionActivity>;

export const ProcessExit = z.object({
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  timestamp: z.string(),
  /** True when we did not ask the process to end (crash, kill -9 from outside, watchdog). */
  unexpected: z.boolean(),
});
export type ProcessExit = z.infer<typeof ProcessExit>;

export const SessionRuntime = z.object({
  phase: SessionPhase,
  processState: ProcessState,
  activity: SessionActivity,
  pid: z.number().int().nullable(),
  lastExit: ProcessExit.nullable(),
  updatedAt: z.string(),
});
export type SessionRuntime = z.infer<typeof SessionRuntime>;

/** Per-message overrides a user may pick in the composer. */
export const MessageSettings = z.object({
  model: z.string().min(1).max(200).optional(),
});
export type MessageSettings = z.infer<typeof MessageSettings>;

export const QueuedMessage = z.object({
  id: z.string(),
  text: z.string(),
  timestamp: z.string(),
  settings: MessageSettings.optional(),
});
export type QueuedMessage = z.infer<typeof QueuedMessage>;

/** One entry of the visible conversation: a user message or a whole message from the CLI. */
export const ChatMessage = z.object({
  id: z.string(),
  source: z.enum(['user', 'claude']),
  order: z.number().int(),
  timestamp: z.string(),
  text: z.string().optional(),
  /** The CLI's stream-json message as it printed it (assistant, user tool results, result, system). */
  message: JsonObject.optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const AskUserQuestionOption = z.looseObject({ label: z.string(), description: z.string().optional() });
export const AskUserQuestionItem = z.looseObject({
  question: z.string(),
  header: z.string().optional(),
  options: z.array(AskUserQuestionOption).default([]),
  multiSelect: z.boolean().optional(),
});
export type AskUserQuestionItem = z.infer<typeof AskUserQuestionItem>;

/** What the session is waiting for a human to answer. `requestId` is the CLI's control request id. */
export const InteractiveRequest = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('permission'),
    requestId: z.string(),
    toolName: z.string(),
    toolUseId: z.string().nullable(),
    toolInput: JsonObject,
    description: z.string().nullable(),
    createdAt: z.string(),
  }),
  z.object({
    kind: z.literal('plan_approval'),
    requestId: z.string(),
    toolName: z.string(),
    toolUseId: z.string().nullable(),
    toolInput: JsonObject,
    planContent: z.string(),
    createdAt: z.string(),
  }),
  z.object({
    kind: z.literal('question'),
    requestId: z.string(),
    toolUseId: z.string().nullable(),
    questions: z.array(AskUserQuestionItem),
    createdAt: z.string(),
  }),
]);
export type InteractiveRequest = z.infer<typeof InteractiveRequest>;

export const InteractiveOutcome = z.enum(['allowed', 'denied', 'answered', 'cancelled', 'timed_out']);
export type InteractiveOutcome = z.infer<typeof InteractiveOutcome>;

export const SessionErrorCode = z.enum([
  'spawn_failed',
  'resume_failed',
  'process_exited',
  'process_hung',
  'oversize_output_line',
  'malformed_output_line',
  'stdin_write_failed',
  'control_request_failed',
]);
export type SessionErrorCode = z.infer<typeof SessionErrorCode>;

/** A cost/usage summary of the last `result`, so a client need not scan the transcript. */
export const TurnSummary = z.object({
  subtype: z.string(),
  isError: z.boolean(),
  costUsd: z.number().nullable(),
  usage: JsonObject.nullable(),
  durationMs: z.number().nullable(),
  numTurns: z.number().nullable(),
});
export type TurnSummary = z.infer<typeof TurnSummary>;

// ---- Session events (server → client), each numbered by the session's transcript ----

export const SessionEventPayload = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('message_state_changed'),
    id: z.string(),
    newState: MessageState,
    queuePosition: z.number().int().optional(),
    errorMessage: z.string().optional(),
    userMessage: z
      .object({
        text: z.string(),
        timestamp: z.string(),
        settings: MessageSettings.optional(),
        order: z.number().int().optional(),
      })
      .optional(),
  }),
  z.object({
    type: z.literal('claude_message'),
    data: JsonObject,
    /** Position in the conversation; absent for transient `stream_event` deltas, which are not kept. */
    order: z.number().int().optional(),
  }),
  z.object({ type: z.literal('session_runtime_updated'), sessionRuntime: SessionRuntime }),
  z.object({
    type: z.literal('permission_request'),
    requestId: z.string(),
    toolName: z.string(),
    toolUseId: z.string().nullable(),
    toolInput: JsonObject,
    description: z.string().nullable(),
    /** Set for ExitPlanMode: the plan the user approves or rejects. */
    planContent: z.string().nullable(),
  }),
  z.object({
    type: z.literal('user_question'),
    requestId: z.string(),
    toolUseId: z.string().nullable(),
    questions: z.array(AskUserQuestionItem),
  }),
  z.object({
    type: z.literal('interactive_request_resolved'),
    requestId: z.string(),
    outcome: InteractiveOutcome,
  }),
  z.object({ type: z.literal('claude_session_id'), claudeSessionId: z.string() }),
  z.object({ type: z.literal('session_error'), code: SessionErrorCode, message: z.string() }),
]);
export type SessionEventPayload = z.infer<typeof SessionEventPayload>;
export type SessionEventType = SessionEventPayload['type'];

/** An event as recorded in the transcript: `seq` is 1, 2, 3, ... per session, with no gaps live. */
export const SessionEvent = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  payload: SessionEventPayload,
});
export type SessionEvent = z.infer<typeof SessionEvent>;

/**
 * Everything a late or reconnecting client needs, as of event `seq`. Live events follow from
 * `seq + 1`: the snapshot and the stream together have no gap and no duplicate.
 */
export const SessionSnapshot = z.object({
  type: z.literal('session_snapshot'),
  seq: z.number().int().nonnegative(),
  messages: z.array(ChatMessage),
  queuedMessages: z.array(QueuedMessage),
  sessionRuntime: SessionRuntime,
  /** The oldest request waiting for a human (what the desktop UI shows). */
  pendingInteractiveRequest: InteractiveRequest.nullable(),
  /** All of them, oldest first: parallel tool calls can ask more than once. */
  pendingInteractiveRequests: z.array(InteractiveRequest),
  claudeSessionId: z.string().nullable(),
  lastTurn: TurnSummary.nullable(),
});
export type SessionSnapshot = z.infer<typeof SessionSnapshot>;

// ---- Client → session commands ----

/** The desktop's `queue_message`; `user_message` (its older name) is accepted as a synonym. */
export const QueueMessageCommand = z.object({
  type: z.enum(['queue_message', 'user_message']),
  /** Client-chosen id (idempotency: resending the same id is ignored); generated when absent. */
  id: z.string().min(1).max(200).optional(),
  text: z
    .string()
    .min(1)
    .max(512 * 1024),
  settings: MessageSettings.optional(),
});
export type QueueMessageCommand = z.infer<typeof QueueMessageCommand>;

/** Answers keyed by question text; several labels for a multi-select question. */
export const QuestionAnswers = z.record(z.string(), z.union([z.string(), z.array(z.string())]));
export type QuestionAnswers = z.infer<typeof QuestionAnswers>;

export const QuestionResponseCommand = z.object({
  type: z.literal('question_response'),
  requestId: z.string(),
  answers: QuestionAnswers,
});
export type QuestionResponseCommand = z.infer<typeof QuestionResponseCommand>;

export const PermissionResponseCommand = z.object({
  type: z.literal('permission_response'),
  requestId: z.string(),
  allow: z.boolean(),
  /** Shown to the model on deny (e.g. why, or what to do instead). */
  message: z
    .string()
    .max(64 * 1024)
    .optional(),
  /** Edited tool input to run instead of the original (allow only). */
  updatedInput: JsonObject.optional(),
});
export type PermissionResponseCommand = z.infer<typeof PermissionResponseCommand>;

export const RemoveQueuedMessageCommand = z.object({
  type: z.literal('remove_queued_message'),
  messageId: z.string(),
});

export const InterruptCommand = z.object({ type: z.literal('interrupt') });
export const StopCommand = z.object({ type: z.literal('stop') });

export const ChatCommand = z.discriminatedUnion('type', [
  QueueMessageCommand,
  QuestionResponseCommand,
  PermissionResponseCommand,
  RemoveQueuedMessageCommand,
  InterruptCommand,
  StopCommand,
]);
export type ChatCommand = z.infer<typeof ChatCommand>;
