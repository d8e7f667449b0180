/**
 * The api's shapes as the dashboard reads them (copied from api/contract and core/protocol, which web/ may
 * not import), each with its runtime guard. Only the fields the views use are checked; newer optional
 * fields (ratchet, daily usage, operator links) are optional here so an older api still works.
 */
import {
  arrayOf,
  type Guard,
  isBoolean,
  isNumber,
  isRecord,
  isString,
  isUnknown,
  nullable,
  oneOf,
  optional,
  type ShapeOf,
  shape,
} from './guards.js';

export const isErrorBody = shape({ error: shape({ code: isString, message: isString }) });

// ---- auth and account ----

const authConfigShape = {
  mode: oneOf(['local', 'clerk'] as const),
  signInUrl: nullable(isString),
  publishableKey: optional(nullable(isString)),
};
export const isAuthConfig = shape(authConfigShape);
export type AuthConfig = ShapeOf<typeof authConfigShape>;

export const isLocalSignInAnswer = shape({ token: isString, expiresAt: isString, userId: isString });

const PLANS = ['FREE', 'PRO', 'TEAM'] as const;
export type PlanName = (typeof PLANS)[number];

const meShape = {
  user: shape({ id: isString, email: nullable(isString), name: nullable(isString), plan: oneOf(PLANS) }),
  operator: optional(isBoolean),
  temporalUiUrl: optional(nullable(isString)),
  temporalNamespace: optional(nullable(isString)),
};
export const isMe = shape(meShape);
export type Me = ShapeOf<typeof meShape>;

// ---- workspaces and sessions ----

export const WORKSPACE_STATUSES = ['PROVISIONING', 'READY', 'FAILED', 'ARCHIVED'] as const;

const ratchetShape = {
  enabled: isBoolean,
  state: isString,
  phase: isString,
  stalled: optional(isBoolean),
  activeFixer: optional(nullable(shape({ sessionId: isString }))),
  problem: optional(nullable(shape({ message: isString }))),
};
export const isRatchetView = shape(ratchetShape);
export type RatchetView = ShapeOf<typeof ratchetShape>;

const workspaceShape = {
  id: isString,
  name: isString,
  status: oneOf(WORKSPACE_STATUSES),
  location: oneOf(['DESKTOP', 'CLOUD'] as const),
  repoUrl: nullable(isString),
  branchName: nullable(isString),
  prUrl: nullable(isString),
  prNumber: nullable(isNumber),
  githubIssueUrl: nullable(isString),
  githubIssueNumber: nullable(isNumber),
  ratchetEnabled: isBoolean,
  ratchetState: isString,
  failureReason: nullable(isString),
  step: nullable(oneOf(['vm', 'restore', 'done'] as const)),
  problem: optional(nullable(shape({ message: isString }))),
  ratchet: optional(nullable(isRatchetView)),
  createdAt: isString,
  updatedAt: isString,
};
export const isWorkspace = shape(workspaceShape);
export type Workspace = ShapeOf<typeof workspaceShape>;
export const isWorkspaceList = shape({ workspaces: arrayOf(isWorkspace), nextCursor: nullable(isString) });
export const isWorkspaceAnswer = shape({ workspace: isWorkspace });

const runtimeShape = {
  phase: oneOf(['loading', 'starting', 'running', 'idle', 'stopping', 'error'] as const),
  processState: isString,
  activity: oneOf(['WORKING', 'IDLE'] as const),
  lastExit: optional(nullable(shape({ unexpected: isBoolean }))),
  updatedAt: isString,
};
export const isSessionRuntime = shape(runtimeShape);
export type SessionRuntime = ShapeOf<typeof runtimeShape>;

const sessionShape = {
  id: isString,
  workspaceId: isString,
  name: isString,
  workflow: isString,
  createdAt: isString,
  sessionRuntime: isSessionRuntime,
  messageCount: isNumber,
  queuedCount: isNumber,
  /** Not in the contract yet: how many requests wait for a human (used by the board when present). */
  pendingRequestCount: optional(isNumber),
};
export const isSessionInfo = shape(sessionShape);
export type SessionInfo = ShapeOf<typeof sessionShape>;
export const isSessionList = shape({ sessions: arrayOf(isSessionInfo) });
export const isSessionAnswer = shape({ session: isSessionInfo });

// ---- VM ----

export const VM_STATUSES = [
  'PROVISIONING',
  'ONBOARDING',
  'READY',
  'SUSPENDED',
  'TERMINATED',
  'FAILED',
] as const;
const vmShape = {
  userId: isString,
  status: oneOf(VM_STATUSES),
  operation: nullable(isString),
  onboarding: shape({ githubCli: isBoolean, claude: isBoolean }),
  failureReason: nullable(isString),
  problem: optional(nullable(shape({ message: isString }))),
  suspendMessage: optional(nullable(isString)),
  restarts: isNumber,
  lastActiveAt: isString,
  readyAt: nullable(isString),
  suspendedAt: nullable(isString),
};
export const isVmView = shape(vmShape);
export type VmView = ShapeOf<typeof vmShape>;
export const isVmAnswer = shape({ vm: isVmView });

// ---- usage, billing, keys, audit ----

const dailyShape = { date: isString, minutes: isNumber };
export type DailyUsage = ShapeOf<typeof dailyShape>;
const usageShape = {
  plan: oneOf(PLANS),
  effectivePlan: oneOf(PLANS),
  paymentFailedAt: nullable(isString),
  period: shape({ start: isString, end: isString }),
  minutes: shape({ used: isNumber, limit: isNumber }),
  workspaces: shape({ active: isNumber, limit: isNumber }),
  upgradeUrl: isString,
  invoicesUrl: nullable(isString),
  daily: optional(arrayOf(shape(dailyShape))),
};
export const isUsage = shape(usageShape);
export type Usage = ShapeOf<typeof usageShape>;
export const isBillingRedirect = shape({ url: isString });

const apiKeyShape = {
  id: isString,
  name: isString,
  prefix: isString,
  createdAt: isString,
  lastUsedAt: nullable(isString),
  revokedAt: nullable(isString),
};
export const isApiKey = shape(apiKeyShape);
export type ApiKey = ShapeOf<typeof apiKeyShape>;
export const isApiKeyList = shape({ keys: arrayOf(isApiKey) });
export const isCreatedApiKey = shape({ key: isApiKey, secret: isString });
export const isApiKeyAnswer = shape({ key: isApiKey });

const auditShape = {
  id: isString,
  actor: isString,
  action: isString,
  targetType: nullable(isString),
  targetId: nullable(isString),
  detail: isRecord,
  createdAt: isString,
};
export const isAuditRecord = shape(auditShape);
export type AuditRecord = ShapeOf<typeof auditShape>;
export const isAuditPage = shape({ records: arrayOf(isAuditRecord), nextCursor: nullable(isString) });

// ---- chat (core/protocol/chat.ts) ----

const chatMessageShape = {
  id: isString,
  source: oneOf(['user', 'claude'] as const),
  order: isNumber,
  timestamp: isString,
  text: optional(isString),
  message: optional(isRecord),
};
export const isChatMessage = shape(chatMessageShape);
export type ChatMessage = ShapeOf<typeof chatMessageShape>;

const queuedShape = { id: isString, text: isString, timestamp: isString };
export const isQueuedMessage = shape(queuedShape);
export type QueuedMessage = ShapeOf<typeof queuedShape>;

const questionShape = {
  question: isString,
  header: optional(isString),
  options: arrayOf(shape({ label: isString, description: optional(isString) })),
  multiSelect: optional(isBoolean),
};
export type QuestionItem = ShapeOf<typeof questionShape>;
const isQuestionItem = shape(questionShape);

export type PendingRequest =
  | {
      kind: 'permission' | 'plan_approval';
      requestId: string;
      toolName: string;
      toolInput: Record<string, unknown>;
      description: string | null;
      planContent: string | null;
    }
  | { kind: 'question'; requestId: string; questions: QuestionItem[] };

/** A snapshot's InteractiveRequest, or null when it is not one the view can show. */
export function pendingRequestOf(value: unknown): PendingRequest | null {
  if (!isRecord(value) || !isString(value.requestId)) return null;
  if (value.kind === 'question') {
    return arrayOf(isQuestionItem)(value.questions)
      ? { kind: 'question', requestId: value.requestId, questions: value.questions }
      : null;
  }
  if ((value.kind === 'permission' || value.kind === 'plan_approval') && isString(value.toolName)) {
    return {
      kind: value.kind,
      requestId: value.requestId,
      toolName: value.toolName,
      toolInput: isRecord(value.toolInput) ? value.toolInput : {},
      description: isString(value.description) ? value.description : null,
      planContent: isString(value.planContent) ? value.planContent : null,
    };
  }
  return null;
}

export const isQuestionList = arrayOf(isQuestionItem);

const snapshotShape = {
  type: (v: unknown): v is 'session_snapshot' => v === 'session_snapshot',
  seq: isNumber,
  messages: arrayOf(isChatMessage),
  queuedMessages: arrayOf(isQueuedMessage),
  sessionRuntime: isSessionRuntime,
  pendingInteractiveRequests: arrayOf(isUnknown),
};
export const isSessionSnapshot = shape(snapshotShape);
export type SessionSnapshot = ShapeOf<typeof snapshotShape>;

/** An event as numbered by the session; its payload is checked field by field where it is applied. */
const sessionEventShape = { seq: isNumber, at: isString, payload: shape({ type: isString }) };
export const isSessionEvent = shape(sessionEventShape);
export type SessionEvent = { seq: number; at: string; payload: Record<string, unknown> & { type: string } };

/** The relay's server frames (api/contract/session-relay.ts). */
export type RelayFrame =
  | SessionSnapshot
  | { type: 'session_event'; event: SessionEvent }
  | { type: 'caught_up'; seq: number }
  | { type: 'command_result'; requestId: string | null; command: string; result: Record<string, unknown> }
  | { type: 'error'; code: string; message: string; requestId?: string | null };

export const isRelayFrame: Guard<RelayFrame> = (v): v is RelayFrame => {
  if (!isRecord(v)) return false;
  switch (v.type) {
    case 'session_snapshot':
      return isSessionSnapshot(v);
    case 'session_event':
      return isSessionEvent(v.event);
    case 'caught_up':
      return isNumber(v.seq);
    case 'command_result':
      return isString(v.command) && isRecord(v.result);
    case 'error':
      return isString(v.code) && isString(v.message);
    default:
      return false;
  }
};

/** GET …/sessions/:sid/messages: one page of the conversation, cut from the snapshot at `seq`. */
const historyShape = {
  seq: isNumber,
  total: isNumber,
  start: isNumber,
  messages: arrayOf(isChatMessage),
  // Not in the contract yet; when present the page also seeds what is pending now.
  queuedMessages: optional(arrayOf(isQueuedMessage)),
  sessionRuntime: optional(isSessionRuntime),
  pendingInteractiveRequests: optional(arrayOf(isUnknown)),
};
export const isHistoryPage = shape(historyShape);
export type HistoryPage = ShapeOf<typeof historyShape>;

// ---- terminal (core/protocol/terminal.ts) ----

export type TerminalFrame =
  | { type: 'terminal_list'; terminals: { id: string; createdAt: string; outputBuffer: string }[] }
  | { type: 'created'; terminalId: string; requestId?: string; outputBuffer?: string }
  | { type: 'output'; terminalId: string; data: string }
  | { type: 'exit'; terminalId: string; exitCode: number; signal: number | null }
  | { type: 'error'; code: string; message: string; requestId?: string };

const isListedTerminal = shape({ id: isString, createdAt: isString, outputBuffer: isString });

export const isTerminalFrame: Guard<TerminalFrame> = (v): v is TerminalFrame => {
  if (!isRecord(v)) return false;
  switch (v.type) {
    case 'terminal_list':
      return arrayOf(isListedTerminal)(v.terminals);
    case 'created':
      return isString(v.terminalId) && optional(isString)(v.outputBuffer);
    case 'output':
      return isString(v.terminalId) && isString(v.data);
    case 'exit':
      return isString(v.terminalId) && isNumber(v.exitCode);
    case 'error':
      return isString(v.code) && isString(v.message);
    default:
      return false;
  }
};
