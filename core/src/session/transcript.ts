import type {
  ChatMessage,
  InteractiveRequest,
  QueuedMessage,
  SessionEvent,
  SessionRuntime,
  SessionSnapshot,
  TurnSummary,
} from '../protocol/index.js';

/**
 * The state of one session as the fold of its numbered events. The session object only ever changes
 * its state by emitting an event and applying this reducer, so what a subscriber rebuilds from
 * (snapshot at seq N) + (events N+1...) is exactly what the session holds.
 */
export interface TranscriptState {
  /** seq of the last applied event (0 before any). */
  readonly seq: number;
  readonly messages: readonly ChatMessage[];
  /** The order the next conversation entry gets. */
  readonly nextOrder: number;
  readonly queue: readonly QueuedMessage[];
  /** A message written (or being written) to the CLI's stdin but not yet committed. */
  readonly inFlight: QueuedMessage | null;
  readonly runtime: SessionRuntime;
  /** Requests waiting for a human, oldest first (parallel tool calls can ask more than once). */
  readonly pending: readonly InteractiveRequest[];
  readonly claudeSessionId: string | null;
  readonly lastTurn: TurnSummary | null;
}

export function initialRuntime(at: string): SessionRuntime {
  return {
    phase: 'idle',
    processState: 'stopped',
    activity: 'IDLE',
    pid: null,
    lastExit: null,
    updatedAt: at,
  };
}

export function initialTranscriptState(at: string): TranscriptState {
  return {
    seq: 0,
    messages: [],
    nextOrder: 0,
    queue: [],
    inFlight: null,
    runtime: initialRuntime(at),
    pending: [],
    claudeSessionId: null,
    lastTurn: null,
  };
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function turnSummaryOf(data: Record<string, unknown>): TurnSummary {
  const usage = data.usage;
  return {
    subtype: typeof data.subtype === 'string' ? data.subtype : 'unknown',
    isError: data.is_error === true,
    costUsd: numberOrNull(data.total_cost_usd),
    usage: typeof usage === 'object' && usage !== null ? (usage as Record<string, unknown>) : null,
    durationMs: numberOrNull(data.duration_ms),
    numTurns: numberOrNull(data.num_turns),
  };
}

function withoutQueued(queue: readonly QueuedMessage[], id: string): readonly QueuedMessage[] {
  return queue.some((m) => m.id === id) ? queue.filter((m) => m.id !== id) : queue;
}

/** Applies one event. Events must arrive in seq order; a stale or repeated seq is ignored. */
export function applySessionEvent(state: TranscriptState, event: SessionEvent): TranscriptState {
  if (event.seq <= state.seq) return state;
  const next: TranscriptState = { ...state, seq: event.seq };
  const p = event.payload;
  switch (p.type) {
    case 'message_state_changed': {
      switch (p.newState) {
        case 'QUEUED': {
          if (!p.userMessage || next.queue.some((m) => m.id === p.id)) return next;
          const queued: QueuedMessage = {
            id: p.id,
            text: p.userMessage.text,
            timestamp: p.userMessage.timestamp,
            ...(p.userMessage.settings ? { settings: p.userMessage.settings } : {}),
          };
          return { ...next, queue: [...next.queue, queued] };
        }
        case 'DISPATCHED': {
          const message = next.queue.find((m) => m.id === p.id) ?? null;
          return { ...next, queue: withoutQueued(next.queue, p.id), inFlight: message };
        }
        case 'COMMITTED': {
          const text = p.userMessage?.text ?? next.inFlight?.text ?? '';
          const order = p.userMessage?.order ?? next.nextOrder;
          const entry: ChatMessage = {
            id: p.id,
            source: 'user',
            order,
            timestamp: p.userMessage?.timestamp ?? event.at,
            text,
          };
          return {
            ...next,
            queue: withoutQueued(next.queue, p.id),
            inFlight: next.inFlight?.id === p.id ? null : next.inFlight,
            messages: [...next.messages, entry],
            nextOrder: Math.max(next.nextOrder, order + 1),
          };
        }
        case 'REJECTED':
        case 'CANCELLED':
        case 'FAILED':
          return {
            ...next,
            queue: withoutQueued(next.queue, p.id),
            inFlight: next.inFlight?.id === p.id ? null : next.inFlight,
          };
      }
      return next;
    }
    case 'claude_message': {
      let result = next;
      if (p.data.type === 'result') result = { ...result, lastTurn: turnSummaryOf(p.data) };
      if (p.order === undefined) return result;
      const uuid = p.data.uuid;
      const entry: ChatMessage = {
        id: typeof uuid === 'string' ? uuid : `claude-${p.order}`,
        source: 'claude',
        order: p.order,
        timestamp: event.at,
        message: p.data,
      };
      return {
        ...result,
        messages: [...result.messages, entry],
        nextOrder: Math.max(result.nextOrder, p.order + 1),
      };
    }
    case 'session_runtime_updated':
      return { ...next, runtime: p.sessionRuntime };
    case 'permission_request': {
      if (next.pending.some((r) => r.requestId === p.requestId)) return next;
      const request: InteractiveRequest =
        p.planContent !== null
          ? {
              kind: 'plan_approval',
              requestId: p.requestId,
              toolName: p.toolName,
              toolUseId: p.toolUseId,
              toolInput: p.toolInput,
              planContent: p.planContent,
              createdAt: event.at,
            }
          : {
              kind: 'permission',
              requestId: p.requestId,
              toolName: p.toolName,
              toolUseId: p.toolUseId,
              toolInput: p.toolInput,
              description: p.description,
              createdAt: event.at,
            };
      return { ...next, pending: [...next.pending, request] };
    }
    case 'user_question': {
      if (next.pending.some((r) => r.requestId === p.requestId)) return next;
      const request: InteractiveRequest = {
        kind: 'question',
        requestId: p.requestId,
        toolUseId: p.toolUseId,
        questions: p.questions,
        createdAt: event.at,
      };
      return { ...next, pending: [...next.pending, request] };
    }
    case 'interactive_request_resolved':
      return { ...next, pending: next.pending.filter((r) => r.requestId !== p.requestId) };
    case 'claude_session_id':
      return { ...next, claudeSessionId: p.claudeSessionId };
    case 'session_error':
      return next;
  }
}

/** Folds a list of events (e.g. a transcript loaded from disk) onto a state. */
export function replaySessionEvents(state: TranscriptState, events: Iterable<SessionEvent>): TranscriptState {
  let current = state;
  for (const event of events) current = applySessionEvent(current, event);
  return current;
}

export function snapshotOf(state: TranscriptState): SessionSnapshot {
  return {
    type: 'session_snapshot',
    seq: state.seq,
    messages: [...state.messages],
    queuedMessages: [...state.queue],
    sessionRuntime: state.runtime,
    pendingInteractiveRequest: state.pending[0] ?? null,
    pendingInteractiveRequests: [...state.pending],
    claudeSessionId: state.claudeSessionId,
    lastTurn: state.lastTurn,
  };
}

/**
 * The state a snapshot stands for, so a client can keep its own fold: seed it with this, then apply
 * every event after snapshot.seq. (A message in flight is not part of a snapshot; its COMMITTED
 * event carries everything needed.)
 */
export function transcriptStateFromSnapshot(snapshot: SessionSnapshot): TranscriptState {
  return {
    seq: snapshot.seq,
    messages: snapshot.messages,
    nextOrder: snapshot.messages.reduce((max, m) => Math.max(max, m.order + 1), 0),
    queue: snapshot.queuedMessages,
    inFlight: null,
    runtime: snapshot.sessionRuntime,
    pending: snapshot.pendingInteractiveRequests,
    claudeSessionId: snapshot.claudeSessionId,
    lastTurn: snapshot.lastTurn,
  };
}

/**
 * Events that only matter live (token deltas, per-turn init banners): they are numbered and delivered
 * but not kept in the conversation or persisted, because the complete messages that follow carry
 * the same content.
 */
export function isTransientEvent(event: SessionEvent): boolean {
  return event.payload.type === 'claude_message' && event.payload.order === undefined;
}
