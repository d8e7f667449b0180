import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  cliUserInput,
  encodeJsonOnce,
  type MessageSettings,
  type MessageState,
  type ParsedCliLine,
  type PermissionMode,
  type QuestionAnswers,
  type SessionEvent,
  type SessionEventPayload,
  type SessionRuntime,
  type SessionSnapshot,
} from '../protocol/index.js';
import type { ProcessGroupRecorder } from '../protocol/process-group.js';
import { type ExitCause, exitOutcome, type RuntimePatch, runtimeAfter } from './cli-phase.js';
import { CliSupervisor } from './cli-supervisor.js';
import { errorText, SessionError, SpawnRefusedError } from './errors.js';
import { SessionEventRing } from './event-ring.js';
import type { PermissionAnswer } from './interactive.js';
import { InteractiveRequests } from './interactive-requests.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './limits.js';
import {
  applySessionEvent,
  initialTranscriptState,
  replaySessionEvents,
  snapshotOf,
  type TranscriptState,
} from './transcript.js';

export interface ClaudeSessionOptions {
  id: string;
  /** The workspace's worktree: the CLI runs there, and its conversation files are keyed by it. */
  cwd: string;
  claudeBin: string;
  /** The CLI's whole environment (HOME, PATH, credentials); nothing is inherited implicitly. */
  env: Readonly<Record<string, string>>;
  permissionMode?: PermissionMode;
  model?: string | undefined;
  appendSystemPrompt?: string | undefined;
  includePartialMessages?: boolean;
  extraArgs?: readonly string[];
  limits?: Partial<SessionLimits>;
  logger?: Logger | undefined;
  /** A transcript loaded from storage: the session continues it, including its Claude session id. */
  history?: Iterable<SessionEvent>;
  /**
   * New events are numbered after this seq even when the history ends earlier. The agent reserves seqs
   * for transient events it does not store, so a rebuilt session never reuses a number a subscriber
   * may already have seen from the previous process (a resumed subscription would then skip events).
   */
  continueAfterSeq?: number;
  /** Called first for every event, before subscribers (the agent persists events here). */
  onEvent?: (event: SessionEvent) => void;
  /** Told of each CLI process group, so the agent can end what a crashed predecessor left running. */
  processGroups?: ProcessGroupRecorder;
  /** Whether this process runs as root (default: process.getuid() === 0): bypassPermissions then needs IS_SANDBOX=1. */
  runningAsRoot?: boolean;
}

export interface SendMessageInput {
  id?: string | undefined;
  text: string;
  settings?: MessageSettings | undefined;
}

export interface SendMessageResult {
  messageId: string;
  state: MessageState;
  /** 0-based position in the queue; -1 once it left the queue. */
  queuePosition: number;
  errorMessage?: string;
}

export type SessionListener = (event: SessionEvent) => void;

export interface SessionSubscription {
  snapshot: SessionSnapshot;
  unsubscribe(): void;
}

/** How a resumed subscription starts: the events missed since `afterSeq`, or a snapshot when they are gone. */
export type SessionResumeStart =
  | { kind: 'snapshot'; snapshot: SessionSnapshot }
  | { kind: 'replay'; events: SessionEvent[]; seq: number };

export interface SessionResumedSubscription {
  start: SessionResumeStart;
  unsubscribe(): void;
}

export interface SessionInfo {
  id: string;
  permissionMode: PermissionMode;
  model: string | null;
  claudeSessionId: string | null;
  sessionRuntime: SessionRuntime;
  messageCount: number;
  queuedCount: number;
}

const KEEP_SYSTEM_SUBTYPES = new Set(['compact_boundary']);

/**
 * One conversation with Claude Code: a queue of user messages dispatched one turn at a time to a
 * long-lived CLI process, the interactive requests the CLI raises, and a numbered transcript that
 * subscribers follow. The process itself (spawn, --resume, stop, watchdog) is the CliSupervisor's:
 * it is started lazily by the first message and respawned with `--resume <claude session id>` after
 * a stop or a crash, so the conversation continues.
 */
export class ClaudeSession {
  readonly id: string;
  private state: TranscriptState;
  private readonly options: ClaudeSessionOptions;
  private readonly limits: SessionLimits;
  private readonly logger: Logger | undefined;
  private readonly listeners = new Set<SessionListener>();
  private readonly ring: SessionEventRing;
  private readonly cli: CliSupervisor;
  private readonly interactive: InteractiveRequests;
  /** The dispatch loop is running (it awaits the CLI); a second one would send the same message twice. */
  private dispatching = false;
  /**
   * Set when the CLI failed on its own (crash, hang, failed start): queued messages wait until the user
   * sends again, so a CLI that keeps dying is not respawned in a loop.
   */
  private dispatchPaused = false;

  constructor(options: ClaudeSessionOptions) {
    this.id = options.id;
    this.options = options;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.logger = options.logger?.child({ sessionId: options.id });
    const replayed = replaySessionEvents(initialTranscriptState(now()), options.history ?? []);
    const continueAfter = options.continueAfterSeq ?? 0;
    this.state = continueAfter > replayed.seq ? { ...replayed, seq: continueAfter } : replayed;
    this.ring = new SessionEventRing(
      { maxEvents: this.limits.replayMaxEvents, maxBytes: this.limits.replayMaxBytes },
      this.state.seq,
    );
    this.cli = new CliSupervisor({
      launch: {
        claudeBin: options.claudeBin,
        cwd: options.cwd,
        env: options.env,
        permissionMode: this.permissionMode,
        model: options.model,
        appendSystemPrompt: options.appendSystemPrompt,
        includePartialMessages: options.includePartialMessages,
        extraArgs: options.extraArgs,
        runningAsRoot: options.runningAsRoot,
        processGroups: options.processGroups,
      },
      limits: this.limits,
      logger: this.logger,
      host: {
        claudeSessionId: () => this.state.claudeSessionId,
        awaitingHuman: () => this.interactive.awaitingHuman,
        onLine: (line) => this.onLine(line),
        onStopping: () =>
          this.interactive.cancelAll({ behavior: 'deny', message: 'The session was stopped.' }),
        onExit: (cause) => this.onCliExit(cause),
        emit: (payload) => this.emit(payload),
        updateRuntime: (patch) => this.updateRuntime(patch),
      },
    });
    this.interactive = new InteractiveRequests({
      permissionMode: this.permissionMode,
      timeoutMs: this.limits.interactiveTimeoutMs,
      requestInTranscript: (requestId) => this.state.pending.find((r) => r.requestId === requestId),
      emit: (payload) => this.emit(payload),
      reply: (requestId, decision) => this.cli.reply(requestId, decision),
      replyUnsupported: (requestId, subtype) => this.cli.refuseControlRequest(requestId, subtype),
      noteAnswered: () => this.cli.noteActivity(),
    });
    this.recoverFromHistory();
  }

  get permissionMode(): PermissionMode {
    return this.options.permissionMode ?? 'default';
  }

  /** True while a CLI process exists for this session. */
  get isAlive(): boolean {
    return this.cli.isAlive;
  }

  get pid(): number | null {
    return this.cli.pid;
  }

  get claudeSessionId(): string | null {
    return this.state.claudeSessionId;
  }

  snapshot(): SessionSnapshot {
    return snapshotOf(this.state);
  }

  info(): SessionInfo {
    return {
      id: this.id,
      permissionMode: this.permissionMode,
      model: this.options.model ?? null,
      claudeSessionId: this.state.claudeSessionId,
      sessionRuntime: this.state.runtime,
      messageCount: this.state.messages.length,
      queuedCount: this.state.queue.length,
    };
  }

  /**
   * The snapshot as of now and every later event. Both happen in one synchronous step, so the
   * listener's first event is exactly snapshot.seq + 1.
   */
  subscribe(listener: SessionListener): SessionSubscription {
    const snapshot = this.snapshot();
    this.listeners.add(listener);
    return { snapshot, unsubscribe: () => this.listeners.delete(listener) };
  }

  /**
   * Like subscribe(), for a subscriber that has seen every event through `afterSeq`: when the replay
   * ring still holds all the later ones (or there are none), it gets those instead of a snapshot;
   * otherwise (too old, or a seq this session never reached) a snapshot. Either way the listener's
   * first event is the one after, in the same synchronous step.
   */
  subscribeAfter(afterSeq: number, listener: SessionListener): SessionResumedSubscription {
    const events = afterSeq <= this.state.seq ? this.ring.since(afterSeq) : null;
    const start: SessionResumeStart =
      events === null
        ? { kind: 'snapshot', snapshot: this.snapshot() }
        : { kind: 'replay', events, seq: this.state.seq };
    this.listeners.add(listener);
    return { start, unsubscribe: () => this.listeners.delete(listener) };
  }

  /** Queues a user message; it is sent to the CLI when the session is idle. Same id twice is a no-op. */
  send(input: SendMessageInput): SendMessageResult {
    if (this.cli.closing) throw new SessionError('unavailable', 'this session has been closed');
    const id = input.id ?? randomUUID();
    const known = this.messageStateOf(id);
    if (known) return known;
    if (this.state.queue.length >= this.limits.maxQueuedMessages) {
      const errorMessage = `The queue already holds ${this.limits.maxQueuedMessages} messages; wait for the session to work through them or remove some.`;
      this.emit({ type: 'message_state_changed', id, newState: 'REJECTED', errorMessage });
      return { messageId: id, state: 'REJECTED', queuePosition: -1, errorMessage };
    }
    const queuePosition = this.state.queue.length;
    this.emit({
      type: 'message_state_changed',
      id,
      newState: 'QUEUED',
      queuePosition,
      userMessage: {
        text: input.text,
        timestamp: now(),
        ...(input.settings ? { settings: input.settings } : {}),
      },
    });
    this.dispatchPaused = false;
    this.scheduleDispatch();
    return { messageId: id, state: 'QUEUED', queuePosition };
  }

  /** Takes a message out of the queue before it is sent. False when it is not (or no longer) queued. */
  removeQueued(messageId: string): boolean {
    if (!this.state.queue.some((m) => m.id === messageId)) return false;
    this.emit({
      type: 'message_state_changed',
      id: messageId,
      newState: 'CANCELLED',
      errorMessage: 'removed from the queue',
    });
    return true;
  }

  answerQuestion(requestId: string, answers: QuestionAnswers): void {
    this.interactive.answerQuestion(requestId, answers);
  }

  answerPermission(requestId: string, answer: PermissionAnswer): void {
    this.interactive.answerPermission(requestId, answer);
  }

  /** Starts the CLI process ahead of the first message (it takes about half a second). */
  async start(): Promise<void> {
    try {
      await this.cli.ensureStarted();
    } catch (error) {
      this.dispatchPaused = true;
      throw error;
    }
  }

  /** Ends the running turn (the CLI answers with a `result` of subtype error_during_execution). */
  async interrupt(): Promise<void> {
    try {
      await this.cli.interruptTurn();
    } catch (error) {
      const message = `interrupt failed: ${errorText(error)}`;
      this.emit({ type: 'session_error', code: 'control_request_failed', message });
      throw new SessionError('failed', message);
    }
  }

  /**
   * Interrupts the turn, cancels queued messages and ends the process (closing stdin, then killing
   * the process group after the grace period). The next message resumes the conversation.
   */
  async stop(): Promise<void> {
    // A stop already under way (or a close) keeps the queue it decided on.
    if (this.cli.phaseKind !== 'stopping') {
      for (const message of [...this.state.queue]) {
        this.emit({
          type: 'message_state_changed',
          id: message.id,
          newState: 'CANCELLED',
          errorMessage: 'the session was stopped',
        });
      }
    }
    await this.cli.stop();
    this.scheduleDispatch();
  }

  /** Ends the process but keeps queued messages (agent shutdown: they run after restart). */
  async close(): Promise<void> {
    await this.cli.close();
    this.listeners.clear();
  }

  // ---- dispatch ----

  private canDispatch(): boolean {
    return (
      this.cli.acceptsTurn &&
      !this.dispatchPaused &&
      this.state.pending.length === 0 &&
      this.state.queue.length > 0
    );
  }

  private scheduleDispatch(): void {
    if (this.canDispatch()) void this.dispatchNext();
  }

  private async dispatchNext(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.canDispatch()) {
        const message = this.state.queue[0];
        if (!message) return;
        try {
          await this.cli.ensureStarted();
        } catch (error) {
          // Already reported. A refused spawn also fails the message it was for: the CLI never
          // existed, so it must not look as if it were still coming.
          this.dispatchPaused = true;
          if (error instanceof SpawnRefusedError && this.state.queue[0]?.id === message.id) {
            this.emit({
              type: 'message_state_changed',
              id: message.id,
              newState: 'FAILED',
              errorMessage: error.message,
            });
          }
          return;
        }
        if (!this.canDispatch() || this.state.queue[0]?.id !== message.id) continue;
        const model = message.settings?.model;
        if (model && model !== this.cli.model) {
          try {
            await this.cli.switchModel(model);
          } catch (error) {
            const text = `could not switch the model to ${model}: ${errorText(error)}`;
            this.emit({ type: 'session_error', code: 'control_request_failed', message: text });
          }
          if (!this.canDispatch() || this.state.queue[0]?.id !== message.id) continue;
        }
        if (!this.cli.beginTurn(message.id)) continue;
        this.emit({ type: 'message_state_changed', id: message.id, newState: 'DISPATCHED' });
        this.updateRuntime({ phase: 'running' });
        try {
          await this.cli.write(cliUserInput(message.text));
          this.emit({
            type: 'message_state_changed',
            id: message.id,
            newState: 'COMMITTED',
            userMessage: {
              text: message.text,
              timestamp: message.timestamp,
              ...(message.settings ? { settings: message.settings } : {}),
              order: this.state.nextOrder,
            },
          });
        } catch (error) {
          this.emit({
            type: 'message_state_changed',
            id: message.id,
            newState: 'FAILED',
            errorMessage: `could not write to the Claude process: ${errorText(error)}`,
          });
          this.emit({ type: 'session_error', code: 'stdin_write_failed', message: errorText(error) });
          // No result will come for a message the CLI never got.
          if (this.cli.endTurn()) this.updateRuntime({ phase: 'idle' });
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  /** The CLI is gone: what it had been given, or was asking, will not be answered. */
  private onCliExit(cause: ExitCause): void {
    const inFlight = this.state.inFlight;
    if (inFlight) {
      this.emit({
        type: 'message_state_changed',
        id: inFlight.id,
        newState: 'FAILED',
        errorMessage: 'the Claude process exited before it took the message',
      });
    }
    this.interactive.cancelAll();
    if (exitOutcome(cause).holdsQueue) this.dispatchPaused = true;
  }

  // ---- CLI output ----

  private onLine(line: ParsedCliLine): void {
    switch (line.kind) {
      case 'control_request':
        this.interactive.onControlRequest(line.message.request_id, line.message.request);
        return;
      case 'control_cancel_request':
        this.interactive.cancel(line.message.request_id);
        return;
      case 'control_response':
        this.logger?.debug({ line: line.message }, 'control_response to an unknown request');
        return;
      case 'system':
        this.noteClaudeSessionId(line.message.session_id);
        this.emitClaudeMessage(line.message, KEEP_SYSTEM_SUBTYPES.has(line.message.subtype));
        return;
      case 'assistant':
      case 'user':
        this.noteClaudeSessionId(line.message.session_id);
        this.emitClaudeMessage(line.message, true);
        return;
      case 'result':
        if (!this.cli.inTurn) {
          // A result outside a turn is the CLI failing at startup (e.g. nothing to --resume).
          this.emitClaudeMessage(line.message, false);
          return;
        }
        this.noteClaudeSessionId(line.message.session_id);
        this.emitClaudeMessage(line.message, true);
        if (this.cli.endTurn()) this.updateRuntime({ phase: 'idle' });
        this.scheduleDispatch();
        return;
      case 'stream_event':
      case 'other':
        this.emitClaudeMessage(line.message, false);
        return;
    }
  }

  private emitClaudeMessage(data: Record<string, unknown>, keep: boolean): void {
    this.emit(
      keep ? { type: 'claude_message', data, order: this.state.nextOrder } : { type: 'claude_message', data },
    );
  }

  private noteClaudeSessionId(id: string | undefined): void {
    // From a new id on, that conversation is the one the next process resumes.
    if (!id || id === this.state.claudeSessionId) return;
    this.emit({ type: 'claude_session_id', claudeSessionId: id });
  }

  // ---- state ----

  private messageStateOf(id: string): SendMessageResult | null {
    const position = this.state.queue.findIndex((m) => m.id === id);
    if (position >= 0) return { messageId: id, state: 'QUEUED', queuePosition: position };
    if (this.state.inFlight?.id === id) return { messageId: id, state: 'DISPATCHED', queuePosition: -1 };
    if (this.state.messages.some((m) => m.source === 'user' && m.id === id)) {
      return { messageId: id, state: 'COMMITTED', queuePosition: -1 };
    }
    return null;
  }

  private updateRuntime(patch: RuntimePatch): void {
    const sessionRuntime = runtimeAfter(this.state.runtime, patch, now());
    if (sessionRuntime) this.emit({ type: 'session_runtime_updated', sessionRuntime });
  }

  /**
   * A transcript loaded after an agent restart may say a process was running, a request pending or a
   * message in flight. None of that survived the restart, so we record what really happened.
   */
  private recoverFromHistory(): void {
    if (this.state.seq === 0) return;
    for (const request of this.state.pending) {
      this.emit({ type: 'interactive_request_resolved', requestId: request.requestId, outcome: 'cancelled' });
    }
    const inFlight = this.state.inFlight;
    if (inFlight) {
      this.emit({
        type: 'message_state_changed',
        id: inFlight.id,
        newState: 'FAILED',
        errorMessage: 'the agent restarted before the message reached Claude',
      });
    }
    const runtime = this.state.runtime;
    if (runtime.processState !== 'stopped' || runtime.phase !== 'idle') {
      const wasWorking = runtime.activity === 'WORKING';
      if (wasWorking) {
        this.emit({
          type: 'session_error',
          code: 'process_exited',
          message: 'The agent restarted during a turn; the next message resumes the conversation.',
        });
      }
      this.updateRuntime({
        phase: 'idle',
        processState: 'stopped',
        pid: null,
        lastExit:
          runtime.processState === 'stopped'
            ? runtime.lastExit
            : { code: null, signal: null, timestamp: now(), unexpected: true },
      });
    }
    // Messages that were waiting when the agent went down run now, with --resume.
    queueMicrotask(() => this.scheduleDispatch());
  }

  private emit(payload: SessionEventPayload): SessionEvent {
    const event: SessionEvent = { seq: this.state.seq + 1, at: now(), payload };
    this.state = applySessionEvent(this.state, event);
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      this.logger?.error({ error: errorText(error) }, 'session event recorder failed');
    }
    this.ring.push(event, Buffer.byteLength(encodeJsonOnce(event), 'utf8'));
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.logger?.error({ error: errorText(error) }, 'session subscriber failed');
      }
    }
    return event;
  }
}

function now(): string {
  return new Date().toISOString();
}
