/**
 * The dashboard's fold of one session: what the transcript shows, built from a history page or a snapshot
 * and then every numbered event after it. Mirrors core's transcript reducer for the parts a viewer sees,
 * plus the live-only pieces (the assistant text being typed, errors). Events at or below `seq` are ignored,
 * so a replay that overlaps what was already applied changes nothing.
 */
import { isNumber, isRecord, isString } from '../lib/guards.js';
import {
  type ChatMessage,
  type HistoryPage,
  isQuestionList,
  isSessionRuntime,
  type PendingRequest,
  pendingRequestOf,
  type QueuedMessage,
  type SessionEvent,
  type SessionRuntime,
  type SessionSnapshot,
} from '../lib/types.js';

export type TranscriptView = {
  /** seq of the last event applied. */
  seq: number;
  /** The conversation, oldest first (by order). */
  messages: ChatMessage[];
  /** Index of the first message held (0: the whole conversation is here). */
  start: number;
  total: number;
  queued: QueuedMessage[];
  /** Messages sent from this tab that the session has not acknowledged yet. */
  sending: { id: string; text: string }[];
  runtime: SessionRuntime | null;
  pending: PendingRequest[];
  /** The assistant message being streamed, token by token; '' when none. */
  streaming: string;
  /** The session's own errors and refused messages, newest last. */
  notices: string[];
};

export function emptyTranscript(): TranscriptView {
  return {
    seq: 0,
    messages: [],
    start: 0,
    total: 0,
    queued: [],
    sending: [],
    runtime: null,
    pending: [],
    streaming: '',
    notices: [],
  };
}

const MAX_NOTICES = 5;

function pendingOf(list: readonly unknown[]): PendingRequest[] {
  return list.map(pendingRequestOf).filter((r): r is PendingRequest => r !== null);
}

function insertMessage(view: TranscriptView, message: ChatMessage): void {
  if (view.messages.some((m) => m.id === message.id && m.order === message.order)) return;
  let index = view.messages.length;
  while (index > 0 && (view.messages[index - 1]?.order ?? 0) > message.order) index--;
  view.messages.splice(index, 0, message);
  view.total = Math.max(view.total, view.start + view.messages.length);
}

function note(view: TranscriptView, text: string): void {
  view.notices.push(text);
  if (view.notices.length > MAX_NOTICES) view.notices.splice(0, view.notices.length - MAX_NOTICES);
}

/** A snapshot holds everything as of its seq: it replaces the view. */
export function applySnapshot(view: TranscriptView, snapshot: SessionSnapshot): void {
  view.seq = snapshot.seq;
  view.messages = [...snapshot.messages].sort((a, b) => a.order - b.order);
  view.start = 0;
  view.total = snapshot.messages.length;
  view.queued = [...snapshot.queuedMessages];
  view.runtime = snapshot.sessionRuntime;
  view.pending = pendingOf(snapshot.pendingInteractiveRequests);
  view.streaming = '';
  view.sending = view.sending.filter((s) => !snapshot.queuedMessages.some((q) => q.id === s.id));
}

/** The newest history page (REST): the conversation's tail as of page.seq. */
export function applyHistoryPage(view: TranscriptView, page: HistoryPage): void {
  view.seq = page.seq;
  view.messages = [...page.messages].sort((a, b) => a.order - b.order);
  view.start = page.start;
  view.total = page.total;
  if (page.queuedMessages) view.queued = [...page.queuedMessages];
  if (page.sessionRuntime) view.runtime = page.sessionRuntime;
  if (page.pendingInteractiveRequests) view.pending = pendingOf(page.pendingInteractiveRequests);
}

/** An older page ("Load earlier"): prepended, nothing the view already holds is added twice. */
export function prependHistoryPage(view: TranscriptView, page: HistoryPage): void {
  const known = new Set(view.messages.map((m) => `${m.id}:${m.order}`));
  const older = page.messages.filter((m) => !known.has(`${m.id}:${m.order}`));
  view.messages = [...older, ...view.messages].sort((a, b) => a.order - b.order);
  view.start = Math.min(view.start, page.start);
  view.total = Math.max(view.total, page.total);
}

/** Text of a stream_event delta (`content_block_delta` with a `text_delta`), else null. */
export function deltaTextOf(data: Record<string, unknown>): string | null {
  if (data.type !== 'stream_event' || !isRecord(data.event)) return null;
  const delta = data.event.delta;
  if (!isRecord(delta) || delta.type !== 'text_delta') return null;
  return isString(delta.text) ? delta.text : null;
}

function applyMessageState(view: TranscriptView, p: Record<string, unknown>, at: string): void {
  const id = isString(p.id) ? p.id : '';
  view.sending = view.sending.filter((s) => s.id !== id);
  const user = isRecord(p.userMessage) ? p.userMessage : null;
  switch (p.newState) {
    case 'QUEUED':
      if (user && isString(user.text) && !view.queued.some((q) => q.id === id)) {
        view.queued.push({ id, text: user.text, timestamp: isString(user.timestamp) ? user.timestamp : at });
      }
      return;
    case 'DISPATCHED':
      view.queued = view.queued.filter((q) => q.id !== id);
      return;
    case 'COMMITTED': {
      const queued = view.queued.find((q) => q.id === id);
      view.queued = view.queued.filter((q) => q.id !== id);
      const text = user && isString(user.text) ? user.text : (queued?.text ?? '');
      const last = view.messages[view.messages.length - 1];
      const order = user && isNumber(user.order) ? user.order : (last?.order ?? -1) + 1;
      insertMessage(view, { id, source: 'user', order, timestamp: at, text });
      return;
    }
    case 'REJECTED':
    case 'FAILED':
      view.queued = view.queued.filter((q) => q.id !== id);
      note(view, isString(p.errorMessage) ? p.errorMessage : 'A message could not be sent.');
      return;
    case 'CANCELLED':
      view.queued = view.queued.filter((q) => q.id !== id);
      return;
  }
}

function applyClaudeMessage(view: TranscriptView, p: Record<string, unknown>, at: string): void {
  const data = isRecord(p.data) ? p.data : {};
  if (!isNumber(p.order)) {
    // Transient: the token deltas of the message being written.
    const delta = deltaTextOf(data);
    if (delta !== null) view.streaming += delta;
    else if (data.type === 'stream_event' && isRecord(data.event) && data.event.type === 'message_start') {
      view.streaming = '';
    }
    return;
  }
  // The complete message replaces what was streamed of it.
  if (data.type === 'assistant' || data.type === 'result') view.streaming = '';
  const id = isString(data.uuid) ? data.uuid : `claude-${p.order}`;
  insertMessage(view, { id, source: 'claude', order: p.order, timestamp: at, message: data });
}

export function applyEvent(view: TranscriptView, event: SessionEvent): void {
  if (event.seq <= view.seq) return;
  view.seq = event.seq;
  const p = event.payload;
  switch (p.type) {
    case 'message_state_changed':
      applyMessageState(view, p, event.at);
      return;
    case 'claude_message':
      applyClaudeMessage(view, p, event.at);
      return;
    case 'session_runtime_updated':
      if (isSessionRuntime(p.sessionRuntime)) {
        view.runtime = p.sessionRuntime;
        if (p.sessionRuntime.activity === 'IDLE') view.streaming = '';
      }
      return;
    case 'permission_request': {
      if (!isString(p.requestId) || view.pending.some((r) => r.requestId === p.requestId)) return;
      const planContent = isString(p.planContent) ? p.planContent : null;
      const request = pendingRequestOf({ ...p, kind: planContent === null ? 'permission' : 'plan_approval' });
      if (request) view.pending.push(request);
      return;
    }
    case 'user_question':
      if (!isString(p.requestId) || view.pending.some((r) => r.requestId === p.requestId)) return;
      if (isQuestionList(p.questions)) {
        view.pending.push({ kind: 'question', requestId: p.requestId, questions: p.questions });
      }
      return;
    case 'interactive_request_resolved':
      view.pending = view.pending.filter((r) => r.requestId !== p.requestId);
      return;
    case 'session_error':
      note(view, isString(p.message) ? p.message : 'The session reported an error.');
      return;
  }
}

/** Whether the session is busy (the thinking indicator). */
export function isWorking(view: TranscriptView): boolean {
  const runtime = view.runtime;
  if (!runtime) return false;
  return runtime.activity === 'WORKING' || runtime.phase === 'running' || runtime.phase === 'starting';
}
