import { z } from 'zod';
import {
  MessageSettings,
  MessageState,
  PermissionMode,
  QuestionAnswers,
  SessionEvent,
  SessionRuntime,
  SessionSnapshot,
} from './chat.js';
import { PullRequestSnapshotSchema, ReviewTrustPolicySchema } from './github.js';
import { TerminalInfo } from './terminal.js';
import {
  CreateWorkspaceInputSchema,
  PortableWorkspaceStateSchema,
  WorkspaceIdSchema,
  WorkspaceLocationSchema,
  WorkspaceSchema,
} from './workspace.js';

/**
 * The protocol between the cloud (api relay, Temporal activities) and the agent inside each user's VM,
 * spoken as NDJSON over a unix socket. A connection opens with a mutual challenge–response on the per-VM
 * secret (`hello`, `challenge`, `auth`, `hello_ok`; see core/src/agent/handshake.ts), so the secret itself
 * never crosses the socket; then the client sends `request` frames and gets one `response` per request id,
 * plus `event` frames for its subscriptions. Bump AGENT_PROTOCOL_VERSION on any incompatible change.
 */
export const AGENT_PROTOCOL_VERSION = 4;

/**
 * A frame may carry a whole session snapshot, which can be far larger than one CLI line; the socket is
 * local and authenticated, so the cap only guards against runaway peers.
 */
export const MAX_AGENT_FRAME_BYTES = 64 * 1024 * 1024;

export const AgentErrorCode = z.enum([
  'unauthorized',
  'unsupported_protocol',
  'bad_request',
  'unknown_method',
  'not_found',
  'conflict',
  'queue_full',
  'timeout',
  'unavailable',
  'disconnected',
  'internal',
]);
export type AgentErrorCode = z.infer<typeof AgentErrorCode>;

/**
 * Errors crossing the boundary: a code to branch on and a message a user can act on. `retryAfterSeconds`
 * is set exactly when the failure is a rate limit (GitHub's, for `ratchet.snapshot`; code `unavailable`):
 * the caller waits at least that long before asking again.
 */
export const AgentError = z.object({
  code: AgentErrorCode,
  message: z.string(),
  retryAfterSeconds: z.number().int().nonnegative().optional(),
});
export type AgentError = z.infer<typeof AgentError>;

const Id = z.string().min(1).max(200);
/** Workspace ids name directories: only [A-Za-z0-9_-], so nothing path-like gets past the schema. */
const WorkspaceId = WorkspaceIdSchema;

// ---- domain shapes (a workspace on the wire is core/workspace's WorkspaceSchema, protocol/workspace.ts) ----

/** `ratchet` marks the ratchet's fixer sessions: while one works, handoff and archiving are refused. */
export const SessionWorkflow = z.enum(['followup', 'ratchet']);
export type SessionWorkflow = z.infer<typeof SessionWorkflow>;

export const AgentSessionInfo = z.object({
  id: z.string(),
  workspaceId: z.string(),
  name: z.string(),
  workflow: SessionWorkflow,
  permissionMode: PermissionMode,
  model: z.string().nullable(),
  claudeSessionId: z.string().nullable(),
  createdAt: z.string(),
  sessionRuntime: SessionRuntime,
  messageCount: z.number().int(),
  queuedCount: z.number().int(),
});
export type AgentSessionInfo = z.infer<typeof AgentSessionInfo>;

export const AgentHealth = z.object({
  agentVersion: z.string(),
  protocolVersion: z.number().int(),
  uptimeMs: z.number(),
  rssBytes: z.number(),
  /** Sessions whose CLI process is running right now. */
  liveSessions: z.number().int(),
  sessions: z.number().int(),
  terminals: z.number().int(),
  /** Open, authenticated connections to the agent, the asking one included. */
  connections: z.number().int(),
  credentials: z.object({ gh: z.boolean(), claude: z.boolean() }),
});
export type AgentHealth = z.infer<typeof AgentHealth>;

/**
 * Values that end up in the CLI's argv. spawn() throws for a NUL byte and the kernel refuses one
 * argument over 128 KiB, so both are refused here, where the caller can be told why.
 */
export const CLAUDE_MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:[\]-]{0,99}$/;
export const MAX_APPEND_SYSTEM_PROMPT_BYTES = 64 * 1024;
const ModelName = z
  .string()
  .regex(CLAUDE_MODEL_NAME, 'a model name is letters, digits and . _ : - [ ] (e.g. claude-sonnet-4-5)');
const AppendSystemPrompt = z
  .string()
  .refine((text) => !text.includes('\0'), 'the system prompt may not contain a NUL character')
  .refine(
    (text) => Buffer.byteLength(text, 'utf8') <= MAX_APPEND_SYSTEM_PROMPT_BYTES,
    `the appended system prompt may be at most ${MAX_APPEND_SYSTEM_PROMPT_BYTES / 1024} KiB`,
  );

/** A resumed subscription's start: every event after the subscriber's `afterSeq`, through `seq`. */
export const SessionReplay = z.object({
  replay: z.array(SessionEvent),
  seq: z.number().int().nonnegative(),
});
export type SessionReplay = z.infer<typeof SessionReplay>;

/** A fixer's prompt is one message; the same bound as session.send. */
export const MAX_FIXER_PROMPT_CHARS = 512 * 1024;

/** How a dispatched fixer stands (core/ratchet's FixerOutcome). */
export const FixerOutcomeSchema = z.enum(['RUNNING', 'COMPLETED', 'DIED']);

const Empty = z.object({});
const Ack = z.object({ ok: z.literal(true) });

// ---- methods: name → params schema, result schema ----

export const AgentMethods = {
  'health.ping': { params: Empty, result: AgentHealth },

  /**
   * From a repo URL + branch (RESUME_BRANCH), a repo URL + name (MANUAL, new branch) or a GitHub issue URL
   * (GITHUB_ISSUE). Answers once the input is checked (and the issue read) with the workspace PROVISIONING;
   * the clone, worktree and setup script run in the background, and `workspace.get` shows READY or FAILED
   * (with `initError`). Idempotent on `id`.
   */
  'workspace.create': { params: CreateWorkspaceInputSchema, result: WorkspaceSchema },
  'workspace.list': {
    params: z.object({ includeArchived: z.boolean().default(false) }),
    result: z.object({ workspaces: z.array(WorkspaceSchema) }),
  },
  'workspace.get': { params: z.object({ workspaceId: WorkspaceId }), result: WorkspaceSchema },
  /** Stops the workspace's sessions and removes its worktree (the branch stays); refused while a fixer works. */
  'workspace.archive': { params: z.object({ workspaceId: WorkspaceId }), result: WorkspaceSchema },
  /** Provisions a FAILED workspace again (capped); answers PROVISIONING like create. */
  'workspace.retry': { params: z.object({ workspaceId: WorkspaceId }), result: WorkspaceSchema },
  /**
   * The portable state (pull-from-cloud payload). With `handoffTo`, the workspace's location flips in the
   * same write, which is the handoff: this side's ratchet stops polling it. Refused while a fixer works.
   */
  'workspace.export': {
    params: z.object({ workspaceId: WorkspaceId, handoffTo: WorkspaceLocationSchema.optional() }),
    result: PortableWorkspaceStateSchema,
  },
  /**
   * Takes ownership of a workspace handed to this side (send-to-cloud): a new one is provisioned in the
   * background (answer PROVISIONING), a known one gets the payload's fields (and a fast-forward when READY).
   */
  'workspace.import': {
    params: z.object({ state: PortableWorkspaceStateSchema }),
    result: WorkspaceSchema,
  },

  /** In a READY workspace; the first session of an issue workspace gets the issue prompt as its first message. */
  'session.create': {
    params: z.object({
      id: Id.optional(),
      workspaceId: WorkspaceId,
      name: z.string().min(1).max(200).optional(),
      workflow: SessionWorkflow.default('followup'),
      permissionMode: PermissionMode.default('default'),
      model: ModelName.optional(),
      appendSystemPrompt: AppendSystemPrompt.optional(),
      /**
       * Starts the CLI now instead of with the first message (it takes about half a second), so the
       * first answer streams sooner. The response does not wait for it; a start that fails is a
       * `session_error` and the session stays idle.
       */
      startNow: z.boolean().default(false),
    }),
    result: AgentSessionInfo,
  },
  'session.list': {
    params: z.object({ workspaceId: WorkspaceId.optional() }),
    result: z.object({ sessions: z.array(AgentSessionInfo) }),
  },
  'session.get': {
    params: z.object({ sessionId: Id }),
    result: z.object({ session: AgentSessionInfo, snapshot: SessionSnapshot }),
  },
  'session.send': {
    params: z.object({
      sessionId: Id,
      id: Id.optional(),
      text: z
        .string()
        .min(1)
        .max(512 * 1024),
      settings: MessageSettings.optional(),
    }),
    result: z.object({ messageId: z.string(), state: MessageState, queuePosition: z.number().int() }),
  },
  'session.remove_queued': {
    params: z.object({ sessionId: Id, messageId: Id }),
    result: z.object({ removed: z.boolean() }),
  },
  'session.answer_question': {
    params: z.object({ sessionId: Id, requestId: Id, answers: QuestionAnswers }),
    result: Ack,
  },
  'session.answer_permission': {
    params: z.object({
      sessionId: Id,
      requestId: Id,
      allow: z.boolean(),
      message: z
        .string()
        .max(64 * 1024)
        .optional(),
      updatedInput: z.record(z.string(), z.unknown()).optional(),
    }),
    result: Ack,
  },
  'session.interrupt': { params: z.object({ sessionId: Id }), result: Ack },
  'session.stop': { params: z.object({ sessionId: Id }), result: Ack },
  /**
   * Snapshot in the response, then `event` frames (SessionEvent) from snapshot.seq + 1. With `afterSeq`
   * (a subscriber reconnecting after it saw every event through that seq), `{replay, seq}` instead when
   * the agent still holds every later event in memory (transient ones included): `replay` is
   * afterSeq + 1 … seq in order (empty when afterSeq is the current seq), and events follow from seq + 1.
   * Otherwise (too old, after an agent restart, or a seq the session never reached) a snapshot as usual.
   */
  'session.subscribe': {
    params: z.object({
      sessionId: Id,
      subscriptionId: Id,
      afterSeq: z.number().int().nonnegative().optional(),
    }),
    result: z.union([z.object({ snapshot: SessionSnapshot }), SessionReplay]),
  },

  'terminal.create': {
    params: z.object({
      workspaceId: WorkspaceId.optional(),
      cols: z.number().int().min(1).max(1000).default(80),
      rows: z.number().int().min(1).max(1000).default(24),
    }),
    result: TerminalInfo,
  },
  'terminal.list': { params: Empty, result: z.object({ terminals: z.array(TerminalInfo) }) },
  'terminal.input': { params: z.object({ terminalId: Id, data: z.string().max(64 * 1024) }), result: Ack },
  'terminal.resize': {
    params: z.object({
      terminalId: Id,
      cols: z.number().int().min(1).max(1000),
      rows: z.number().int().min(1).max(1000),
    }),
    result: Ack,
  },
  'terminal.kill': { params: z.object({ terminalId: Id }), result: Ack },
  /** Scrollback in the response, then `event` frames (TerminalEvent). */
  'terminal.subscribe': {
    params: z.object({ terminalId: Id, subscriptionId: Id }),
    result: z.object({ terminal: TerminalInfo, scrollback: z.string() }),
  },

  /**
   * The workspace's PR as the ratchet sees it, read with gh inside the VM as the VM's own gh login.
   * `snapshot` and `prUrl` are null when the workspace has no PR url. `trust` (default: CHANGES_REQUESTED
   * reviews by owners, members, collaborators) decides whose activity counts and reaches `reviewFeedback`.
   * GitHub failures are `unavailable` with a message naming the cause; a rate limit carries
   * `retryAfterSeconds`.
   */
  'ratchet.snapshot': {
    params: z.object({ workspaceId: WorkspaceId, trust: ReviewTrustPolicySchema.optional() }),
    result: z.object({ snapshot: PullRequestSnapshotSchema.nullable(), prUrl: z.string().nullable() }),
  },
  /**
   * Starts a fixer: the workspace's idle ratchet session (or a new one: workflow 'ratchet', permissionMode
   * 'bypassPermissions') gets `prompt` queued with message id `dispatchId`. Idempotent on dispatchId: a
   * retry answers the same session and message with `reused: true` and sends nothing twice. `conflict`
   * while a ratchet session works on another dispatch.
   */
  'ratchet.dispatch': {
    params: z.object({
      workspaceId: WorkspaceId,
      dispatchId: Id,
      prompt: z.string().min(1).max(MAX_FIXER_PROMPT_CHARS),
      model: ModelName.optional(),
    }),
    result: z.object({ sessionId: z.string(), messageId: z.string(), reused: z.boolean() }),
  },
  /**
   * RUNNING while the dispatch's message waits or its turn runs; COMPLETED once that turn ended normally;
   * DIED when the CLI exited abnormally, the turn errored, the message was dropped, or the session is gone.
   */
  'ratchet.fixer_status': {
    params: z.object({ workspaceId: WorkspaceId, sessionId: Id, dispatchId: Id }),
    result: z.object({ outcome: FixerOutcomeSchema, detail: z.string().nullable() }),
  },
  /** Stops the workspace's working ratchet session (its queue is dropped); `stopped: false` when none was. */
  'ratchet.stop_fixer': {
    params: z.object({ workspaceId: WorkspaceId }),
    result: z.object({ stopped: z.boolean(), sessionId: z.string().nullable() }),
  },

  /** Ends a session or terminal subscription of this connection. */
  unsubscribe: { params: z.object({ subscriptionId: Id }), result: Ack },
} as const;

export type AgentMethod = keyof typeof AgentMethods;
export type AgentParams<M extends AgentMethod> = z.input<(typeof AgentMethods)[M]['params']>;
export type AgentParsedParams<M extends AgentMethod> = z.output<(typeof AgentMethods)[M]['params']>;
export type AgentResult<M extends AgentMethod> = z.output<(typeof AgentMethods)[M]['result']>;

export const AGENT_METHOD_NAMES = Object.keys(AgentMethods) as AgentMethod[];

export function isAgentMethod(name: string): name is AgentMethod {
  return Object.hasOwn(AgentMethods, name);
}

// ---- frames ----

/** 32 random bytes in hex, fresh for every connection. */
const Nonce = z.string().regex(/^[0-9a-f]{64}$/, 'a nonce is 64 hex digits');
/** An HMAC-SHA256 in hex. */
const Proof = z.string().regex(/^[0-9a-f]{64}$/, 'a proof is 64 hex digits');

export const AgentHelloFrame = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int(),
  clientNonce: Nonce,
  /** Free text naming the caller, for the agent's log (e.g. "api-relay", "temporal-activity"). */
  client: z.string().max(200).optional(),
});
export type AgentHelloFrame = z.infer<typeof AgentHelloFrame>;

/** The client's half of the handshake, sent only after it checked the agent's proof. */
export const AgentAuthFrame = z.object({ type: z.literal('auth'), clientProof: Proof });
export type AgentAuthFrame = z.infer<typeof AgentAuthFrame>;

/**
 * Before authentication no frame may be large: a peer that has not proved anything gets a small budget.
 */
export const MAX_AGENT_HANDSHAKE_FRAME_BYTES = 1024;

export const AgentRequestFrame = z.object({
  type: z.literal('request'),
  id: Id,
  method: z.string(),
  params: z.unknown().optional(),
});
export type AgentRequestFrame = z.infer<typeof AgentRequestFrame>;

export const AgentClientFrame = z.discriminatedUnion('type', [
  AgentHelloFrame,
  AgentAuthFrame,
  AgentRequestFrame,
]);
export type AgentClientFrame = z.infer<typeof AgentClientFrame>;

export const AgentChallengeFrame = z.object({
  type: z.literal('challenge'),
  agentNonce: Nonce,
  agentProof: Proof,
});
export type AgentChallengeFrame = z.infer<typeof AgentChallengeFrame>;

export const AgentServerFrame = z.discriminatedUnion('type', [
  AgentChallengeFrame,
  z.object({
    type: z.literal('hello_ok'),
    protocolVersion: z.number().int(),
    agentVersion: z.string(),
  }),
  z.object({ type: z.literal('hello_error'), error: AgentError }),
  /** `result` when ok, `error` when not. */
  z.object({
    type: z.literal('response'),
    id: z.string(),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: AgentError.optional(),
  }),
  /** `event` is a SessionEvent or a TerminalEvent, according to the subscription. */
  z.object({ type: z.literal('event'), subscriptionId: z.string(), event: z.unknown() }),
  /** The agent ended a subscription (session deleted, subscriber too slow, terminal gone). */
  z.object({ type: z.literal('subscription_ended'), subscriptionId: z.string(), reason: AgentError }),
]);
export type AgentServerFrame = z.infer<typeof AgentServerFrame>;
