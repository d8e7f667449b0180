import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  CanUseToolRequest,
  type CliPermissionDecision,
  cliPermissionResponse,
  cliUserInput,
  encodeJsonOnce,
  type InteractiveOutcome,
  MAX_MESSAGE_BYTES,
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
import { buildClaudeArgs } from './cli-args.js';
import { ClaudeCliProcess, type CliExit } from './cli-process.js';
import { DEFAULT_EVENT_RING_LIMITS, SessionEventRing } from './event-ring.js';
import {
  type PermissionAnswer,
  permissionAnswerDecision,
  questionAnswerDecision,
  routeToolRequest,
} from './interactive.js';
import {
  applySessionEvent,
  initialTranscriptState,
  replaySessionEvents,
  snapshotOf,
  type TranscriptState,
} from './transcript.js';

export interface SessionLimits {
  /** Messages waiting behind the running turn; one more is rejected. */
  maxQueuedMessages: number;
  /**
   * An unanswered permission request or question is denied after this long; 0 (the default) waits for
   * the human however long it takes. A question that answers itself while the user is away is worse
   * than one that waits: a deployment that wants a deadline sets one.
   */
  interactiveTimeoutMs: number;
  /** How long stop() waits after interrupt and again after closing stdin before killing the group. */
  stopGraceMs: number;
  /** A turn with no CLI output (and no question pending) for this long is killed as hung. */
  hungTimeoutMs: number;
  initializeTimeoutMs: number;
  controlTimeoutMs: number;
  maxLineBytes: number;
  /** The replay ring (recent events, transient ones included, for resumed subscriptions): events held. */
  replayMaxEvents: number;
  /** ... and encoded JSON bytes held. */
  replayMaxBytes: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxQueuedMessages: 100,
  interactiveTimeoutMs: 0,
  stopGraceMs: 5_000,
  hungTimeoutMs: 60 * 60_000,
  initializeTimeoutMs: 30_000,
  controlTimeoutMs: 60_000,
  maxLineBytes: MAX_MESSAGE_BYTES,
  replayMaxEvents: DEFAULT_EVENT_RING_LIMITS.maxEvents,
  replayMaxBytes: DEFAULT_EVENT_RING_LIMITS.maxBytes,
};

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
  /** Whether this process runs as root (default: process.getuid() === 0); see cliEnvironment(). */
  runningAsRoot?: boolean;
}

export type SessionErrorCode = 'queue_full' | 'not_found' | 'bad_request' | 'unavailable' | 'failed';

export class SessionError extends Error {
  constructor(
    readonly code: SessionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SessionError';
  }
}

/** spawn() refused the CLI's arguments: retrying the same arguments can only fail the same way. */
class SpawnRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpawnRefusedError';
  }
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

interface PendingInteraction {
  input: Record<string, unknown>;
  /** Null when requests wait for the human indefinitely. */
  timer: NodeJS.Timeout | null;
}

type ExitReason = 'stop' | 'hung' | 'startup';

/** Resolves to 'timeout' after ms; raced against the events stop() waits for. */
function delay(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

const KEEP_SYSTEM_SUBTYPES = new Set(['compact_boundary']);
const STDERR_TAIL_CHARS = 4096;

/**
 * One conversation with Claude Code: a queue of user messages dispatched one turn at a time to a
 * long-lived CLI process, the interactive requests the CLI raises, and a numbered transcript that
 * subscribers follow. The process is started lazily by the first message and respawned with
 * `--resume <claude session id>` after a stop or a crash, so the conversation continues.
 */
export class ClaudeSession {
  readonly id: string;
  private state: TranscriptState;
  private readonly options: ClaudeSessionOptions;
  private readonly limits: SessionLimits;
  private readonly logger: Logger | undefined;
  private readonly listeners = new Set<SessionListener>();
  private readonly pendingInputs = new Map<string, PendingInteraction>();
  private process: ClaudeCliProcess | null = null;
  private starting: Promise<ClaudeCliProcess> | null = null;
  private stopping: Promise<void> | null = null;
  private exitReason: ExitReason | null = null;
  private turnActive = false;
  private turnEndWaiters: Array<() => void> = [];
  private dispatching = false;
  /** Set after a crash: queued messages wait until the user sends again (no respawn loops). */
  private dispatchPaused = false;
  private processModel: string | undefined;
  private lastOutputAt = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private stderrTail = '';
  private disposed = false;
  /** The CLI said the conversation to resume does not exist (e.g. killed before it saved it). */
  private resumeUnavailable = false;
  private conversationMissing = false;
  private startingUp = false;
  private readonly ring: SessionEventRing;

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
    this.recoverFromHistory();
  }

  get permissionMode(): PermissionMode {
    return this.options.permissionMode ?? 'default';
  }

  /** True while a CLI process exists for this session. */
  get isAlive(): boolean {
    return this.process !== null;
  }

  get pid(): number | null {
    return this.process?.pid ?? null;
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
    if (this.disposed) throw new SessionError('unavailable', 'this session has been closed');
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
    const request = this.pendingRequest(requestId);
    if (request.kind !== 'question') {
      throw new SessionError('bad_request', `request ${requestId} is a ${request.kind}, not a question`);
    }
    const input = this.pendingInputs.get(requestId)?.input ?? {};
    this.resolvePending(requestId, 'answered', questionAnswerDecision(request, input, answers));
  }

  answerPermission(requestId: string, answer: PermissionAnswer): void {
    const request = this.pendingRequest(requestId);
    if (request.kind === 'question' && answer.allow) {
      throw new SessionError('bad_request', `request ${requestId} is a question: answer it with answers`);
    }
    this.resolvePending(
      requestId,
      answer.allow ? 'allowed' : 'denied',
      permissionAnswerDecision(request, answer),
    );
  }

  /** Starts the CLI process ahead of the first message (it takes about half a second). */
  async start(): Promise<void> {
    if (this.disposed) throw new SessionError('unavailable', 'this session has been closed');
    await this.ensureProcess();
  }

  /** Ends the running turn (the CLI answers with a `result` of subtype error_during_execution). */
  async interrupt(): Promise<void> {
    const proc = this.process;
    if (!proc || !this.turnActive) return;
    try {
      await proc.request({ subtype: 'interrupt' }, this.limits.controlTimeoutMs);
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
  stop(): Promise<void> {
    return this.stopProcess(true);
  }

  /** Ends the process but keeps queued messages (agent shutdown: they run after restart). */
  async close(): Promise<void> {
    // Marked first, so nothing dispatches (and respawns the CLI) once the process is gone.
    this.disposed = true;
    await this.stopProcess(false);
    this.listeners.clear();
  }

  // ---- dispatch ----

  private canDispatch(): boolean {
    return (
      !this.disposed &&
      !this.stopping &&
      !this.turnActive &&
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
        let proc: ClaudeCliProcess;
        try {
          proc = await this.ensureProcess();
        } catch (error) {
          // Already reported, and dispatch is paused until the next send. A refused spawn also fails the
          // message it was for: the CLI never existed, so it must not look as if it were still coming.
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
        if (model && model !== this.processModel) {
          try {
            await proc.request({ subtype: 'set_model', model }, this.limits.controlTimeoutMs);
            this.processModel = model;
          } catch (error) {
            const text = `could not switch the model to ${model}: ${errorText(error)}`;
            this.emit({ type: 'session_error', code: 'control_request_failed', message: text });
          }
          if (!this.canDispatch() || this.state.queue[0]?.id !== message.id) continue;
        }
        this.turnActive = true;
        this.lastOutputAt = Date.now();
        this.emit({ type: 'message_state_changed', id: message.id, newState: 'DISPATCHED' });
        this.setRuntime({ phase: 'running' });
        try {
          await proc.send(cliUserInput(message.text));
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
          this.endTurn();
          if (this.process === proc) this.setRuntime({ phase: 'idle' });
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  // ---- process lifecycle ----

  private ensureProcess(): Promise<ClaudeCliProcess> {
    if (this.starting) return this.starting;
    if (this.process) return Promise.resolve(this.process);
    const starting = this.spawnProcess().finally(() => {
      if (this.starting === starting) this.starting = null;
    });
    this.starting = starting;
    return starting;
  }

  private async spawnProcess(): Promise<ClaudeCliProcess> {
    this.exitReason = null;
    this.stderrTail = '';
    this.conversationMissing = false;
    this.setRuntime({ phase: 'starting', processState: 'unknown', pid: null });
    const resumeSessionId = this.resumeUnavailable ? null : this.state.claudeSessionId;
    const args = buildClaudeArgs({
      permissionMode: this.permissionMode,
      model: this.options.model,
      resumeSessionId,
      appendSystemPrompt: this.options.appendSystemPrompt,
      includePartialMessages: this.options.includePartialMessages,
      extraArgs: this.options.extraArgs,
    });
    this.logger?.info({ resume: resumeSessionId }, 'starting Claude CLI');
    let proc: ClaudeCliProcess;
    try {
      proc = this.launch(args);
    } catch (error) {
      // spawn() throws synchronously for arguments the kernel or Node refuses (a NUL byte, one over
      // Linux's 128 KiB per-argument limit). No process exists, so nothing will ever exit or answer:
      // report it and go back to idle rather than stay `starting` with the message queued forever.
      const message = `The Claude CLI could not be started: ${errorText(error)}`;
      this.emit({ type: 'session_error', code: 'spawn_failed', message });
      this.setRuntime({ phase: 'idle', processState: 'stopped', pid: null });
      this.dispatchPaused = true;
      throw new SpawnRefusedError(message);
    }
    this.process = proc;
    this.processModel = this.options.model;
    this.lastOutputAt = Date.now();
    this.startWatchdog();
    if (proc.pid !== null) this.setRuntime({ processState: 'alive', pid: proc.pid });
    this.startingUp = true;
    try {
      await proc.request({ subtype: 'initialize', hooks: null }, this.limits.initializeTimeoutMs);
      this.startingUp = false;
    } catch (error) {
      this.startingUp = false;
      this.exitReason = 'startup';
      proc.killGroup('SIGKILL');
      await proc.exited;
      const missing = this.conversationMissing || this.stderrTail.includes('No conversation found');
      if (resumeSessionId && missing) {
        // The CLI lost the conversation (killed before it saved it). Start a new one rather than
        // failing every message; our transcript keeps the history for the user.
        this.resumeUnavailable = true;
        this.emit({
          type: 'session_error',
          code: 'resume_failed',
          message: `Claude could not resume conversation ${resumeSessionId} (it was not saved before the process ended); starting a new conversation. Earlier messages stay in this transcript, but Claude will not remember them.`,
        });
        return this.spawnProcess();
      }
      const tail = this.stderrTail.trim();
      this.emit({
        type: 'session_error',
        code: 'spawn_failed',
        message: `The Claude CLI did not start: ${errorText(error)}${tail ? ` (stderr: ${tail.slice(-500)})` : ''}`,
      });
      this.dispatchPaused = true;
      throw error;
    }
    if (!this.turnActive && this.process === proc) this.setRuntime({ phase: 'idle' });
    return proc;
  }

  /** Spawns the CLI; throws synchronously when spawn() refuses the arguments. */
  private launch(args: string[]): ClaudeCliProcess {
    const proc: ClaudeCliProcess = new ClaudeCliProcess({
      bin: this.options.claudeBin,
      args,
      cwd: this.options.cwd,
      env: this.cliEnvironment(),
      maxLineBytes: this.limits.maxLineBytes,
      handlers: {
        onLine: (line) => this.onLine(proc, line),
        onProtocolError: (error) => {
          this.logger?.warn({ code: error.code }, error.message);
          this.emit({ type: 'session_error', code: error.code, message: error.message });
        },
        onStderr: (text) => {
          this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
          this.logger?.debug({ stderr: text.slice(0, 2000) }, 'Claude CLI stderr');
        },
        onExit: (exit) => {
          // The tools the CLI started (Bash children) are in its group; with the CLI gone they are orphans.
          proc.killGroup('SIGKILL');
          if (proc.pid !== null) this.options.processGroups?.ended(proc.pid);
          this.onExit(proc, exit);
        },
      },
    });
    if (proc.pid !== null) this.options.processGroups?.started(proc.pid, 'claude');
    return proc;
  }

  /**
   * The CLI refuses --permission-mode bypassPermissions under uid 0 unless IS_SANDBOX=1 says the machine is
   * a disposable sandbox. An agent runs as root only inside a VM or container it owns, so that is set there
   * (and only for this mode: the other modes ask before acting and need no such promise).
   */
  private cliEnvironment(): Readonly<Record<string, string>> {
    const root = this.options.runningAsRoot ?? process.getuid?.() === 0;
    if (!root || this.permissionMode !== 'bypassPermissions') return this.options.env;
    return { ...this.options.env, IS_SANDBOX: '1' };
  }

  private onExit(proc: ClaudeCliProcess, exit: CliExit): void {
    if (this.process !== proc) return;
    this.process = null;
    this.stopWatchdog();
    // An exit before `initialize` was answered is reported by spawnProcess as a failed start.
    if (this.exitReason === null && this.startingUp) this.exitReason = 'startup';
    const reason = this.exitReason;
    const inFlight = this.state.inFlight;
    if (inFlight) {
      this.emit({
        type: 'message_state_changed',
        id: inFlight.id,
        newState: 'FAILED',
        errorMessage: 'the Claude process exited before it took the message',
      });
    }
    for (const requestId of [...this.pendingInputs.keys()]) this.resolvePending(requestId, 'cancelled');
    this.endTurn();
    const unexpected = reason !== 'stop';
    if (reason === null) {
      const tail = this.stderrTail.trim();
      this.emit({
        type: 'session_error',
        code: 'process_exited',
        message:
          `The Claude process exited unexpectedly (${describeExit(exit)})` +
          `${tail ? `: ${tail.slice(-500)}` : ''}. The next message resumes the conversation.`,
      });
    }
    // A failed start pauses (or retries) in spawnProcess; a crash or hang pauses here.
    if (reason === null || reason === 'hung') this.dispatchPaused = true;
    this.logger?.info({ ...exit, reason }, 'Claude CLI exited');
    this.setRuntime({
      phase: reason === 'stop' ? 'stopping' : 'error',
      processState: 'stopped',
      pid: null,
      lastExit: { code: exit.code, signal: exit.signal, timestamp: now(), unexpected },
    });
  }

  private async stopProcess(cancelQueue: boolean): Promise<void> {
    if (this.stopping) return this.stopping;
    const run = async () => {
      if (cancelQueue) {
        for (const message of [...this.state.queue]) {
          this.emit({
            type: 'message_state_changed',
            id: message.id,
            newState: 'CANCELLED',
            errorMessage: 'the session was stopped',
          });
        }
      }
      if (this.starting) await this.starting.catch(() => undefined);
      const proc = this.process;
      if (!proc) return;
      this.exitReason = 'stop';
      this.setRuntime({ phase: 'stopping' });
      for (const requestId of [...this.pendingInputs.keys()]) {
        this.resolvePending(requestId, 'cancelled', {
          behavior: 'deny',
          message: 'The session was stopped.',
        });
      }
      if (this.turnActive) {
        const turnEnded = new Promise<void>((resolve) => this.turnEndWaiters.push(resolve));
        proc.request({ subtype: 'interrupt' }, this.limits.stopGraceMs).catch(() => undefined);
        await Promise.race([turnEnded, delay(this.limits.stopGraceMs)]);
      }
      proc.closeStdin();
      const exited = await Promise.race([proc.exited, delay(this.limits.stopGraceMs)]);
      // Kill the group even after a clean exit: tools the CLI started may still be running in it.
      proc.killGroup('SIGKILL');
      if (exited === 'timeout') await proc.exited;
    };
    const stopping = run().finally(() => {
      this.stopping = null;
      if (!this.process && this.state.runtime.phase === 'stopping') this.setRuntime({ phase: 'idle' });
      this.scheduleDispatch();
    });
    this.stopping = stopping;
    return stopping;
  }

  // ---- CLI output ----

  private onLine(proc: ClaudeCliProcess, line: ParsedCliLine): void {
    if (this.process !== proc) return;
    this.lastOutputAt = Date.now();
    switch (line.kind) {
      case 'control_request':
        this.onControlRequest(proc, line.message.request_id, line.message.request);
        return;
      case 'control_cancel_request':
        this.resolvePending(line.message.request_id, 'cancelled');
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
        if (!this.turnActive) {
          // A result outside a turn is the CLI failing at startup (e.g. nothing to --resume).
          if (JSON.stringify(line.message.errors ?? '').includes('No conversation found')) {
            this.conversationMissing = true;
          }
          this.emitClaudeMessage(line.message, false);
          return;
        }
        this.noteClaudeSessionId(line.message.session_id);
        this.emitClaudeMessage(line.message, true);
        this.endTurn();
        this.setRuntime({ phase: 'idle' });
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
    if (!id || id === this.state.claudeSessionId) return;
    // A new conversation exists from here on, so the next respawn resumes it.
    this.resumeUnavailable = false;
    this.emit({ type: 'claude_session_id', claudeSessionId: id });
  }

  private onControlRequest(
    proc: ClaudeCliProcess,
    requestId: string,
    request: { subtype: string } & Record<string, unknown>,
  ): void {
    if (request.subtype !== 'can_use_tool') {
      // We register no hooks or MCP servers, so nothing else is expected; answer so the CLI never waits.
      proc
        .send({
          type: 'control_response',
          response: {
            subtype: 'error',
            request_id: requestId,
            error: `unsupported control request ${request.subtype}`,
          },
        })
        .catch(() => undefined);
      return;
    }
    const parsed = CanUseToolRequest.safeParse(request);
    if (!parsed.success) {
      this.reply(proc, requestId, { behavior: 'deny', message: 'Malformed permission request.' });
      return;
    }
    const toolRequest = parsed.data;
    const route = routeToolRequest(this.permissionMode, toolRequest);
    if (route.kind === 'auto') {
      this.reply(proc, requestId, route.decision);
      return;
    }
    let timer: NodeJS.Timeout | null = null;
    if (this.limits.interactiveTimeoutMs > 0) {
      timer = setTimeout(() => this.timeOutPending(requestId), this.limits.interactiveTimeoutMs);
      timer.unref();
    }
    this.pendingInputs.set(requestId, { input: toolRequest.input, timer });
    const toolUseId = toolRequest.tool_use_id ?? null;
    if (route.kind === 'question') {
      this.emit({ type: 'user_question', requestId, toolUseId, questions: route.questions });
      return;
    }
    this.emit({
      type: 'permission_request',
      requestId,
      toolName: toolRequest.tool_name,
      toolUseId,
      toolInput: toolRequest.input,
      description: toolRequest.description ?? null,
      planContent: route.kind === 'plan_approval' ? route.planContent : null,
    });
  }

  // ---- interactive requests ----

  private pendingRequest(requestId: string) {
    const request = this.state.pending.find((r) => r.requestId === requestId);
    if (!request || !this.pendingInputs.has(requestId)) {
      throw new SessionError(
        'not_found',
        `no pending request ${requestId}: it was already answered, cancelled or timed out`,
      );
    }
    return request;
  }

  private timeOutPending(requestId: string): void {
    const seconds = Math.round(this.limits.interactiveTimeoutMs / 1000);
    this.resolvePending(requestId, 'timed_out', {
      behavior: 'deny',
      message: `No answer from the user within ${seconds} s; treat this as denied.`,
    });
  }

  private resolvePending(
    requestId: string,
    outcome: InteractiveOutcome,
    decision?: CliPermissionDecision,
  ): boolean {
    const entry = this.pendingInputs.get(requestId);
    if (!entry) return false;
    if (entry.timer) clearTimeout(entry.timer);
    this.pendingInputs.delete(requestId);
    if (decision && this.process) this.reply(this.process, requestId, decision);
    // Waiting for a human is not a hang: the watchdog clock restarts from the answer.
    this.lastOutputAt = Date.now();
    this.emit({ type: 'interactive_request_resolved', requestId, outcome });
    return true;
  }

  private reply(proc: ClaudeCliProcess, requestId: string, decision: CliPermissionDecision): void {
    proc.send(cliPermissionResponse(requestId, decision)).catch((error: unknown) => {
      this.logger?.warn({ requestId, error: errorText(error) }, 'could not answer a permission request');
    });
  }

  // ---- health ----

  private startWatchdog(): void {
    this.stopWatchdog();
    const every = Math.max(10, Math.min(30_000, Math.floor(this.limits.hungTimeoutMs / 4)));
    this.watchdog = setInterval(() => this.checkHung(), every);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private checkHung(): void {
    const proc = this.process;
    if (!proc || !this.turnActive || this.pendingInputs.size > 0 || this.stopping) return;
    const silentMs = Date.now() - this.lastOutputAt;
    if (silentMs < this.limits.hungTimeoutMs) return;
    this.exitReason = 'hung';
    this.emit({
      type: 'session_error',
      code: 'process_hung',
      message: `The Claude process printed nothing for ${Math.round(silentMs / 1000)} s during a turn and was killed. The next message resumes the conversation.`,
    });
    proc.killGroup('SIGKILL');
  }

  // ---- state ----

  private endTurn(): void {
    this.turnActive = false;
    const waiters = this.turnEndWaiters;
    this.turnEndWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private messageStateOf(id: string): SendMessageResult | null {
    const position = this.state.queue.findIndex((m) => m.id === id);
    if (position >= 0) return { messageId: id, state: 'QUEUED', queuePosition: position };
    if (this.state.inFlight?.id === id) return { messageId: id, state: 'DISPATCHED', queuePosition: -1 };
    if (this.state.messages.some((m) => m.source === 'user' && m.id === id)) {
      return { messageId: id, state: 'COMMITTED', queuePosition: -1 };
    }
    return null;
  }

  private setRuntime(patch: Partial<Omit<SessionRuntime, 'activity' | 'updatedAt'>>): void {
    const current = this.state.runtime;
    const merged = { ...current, ...patch };
    const activity = merged.phase === 'starting' || merged.phase === 'running' ? 'WORKING' : 'IDLE';
    if (
      merged.phase === current.phase &&
      merged.processState === current.processState &&
      merged.pid === current.pid &&
      merged.lastExit === current.lastExit &&
      activity === current.activity
    ) {
      return;
    }
    this.emit({ type: 'session_runtime_updated', sessionRuntime: { ...merged, activity, updatedAt: now() } });
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
      this.setRuntime({
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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeExit(exit: CliExit): string {
  if (exit.signal) return `signal ${exit.signal}`;
  return exit.code === null ? 'no exit code' : `exit code ${exit.code}`;
}
