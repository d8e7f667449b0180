import type { Logger } from 'pino';
import type { CliPermissionDecision, ParsedCliLine, SessionEventPayload } from '../protocol/index.js';
import { cliPermissionResponse } from '../protocol/index.js';
import { type CliLaunchOptions, launchCli, type SupervisedCli } from './cli-launch.js';
import {
  type AfterStop,
  acceptsTurn,
  type CliPhase,
  type CliPhaseKind,
  deferred,
  type ExitCause,
  exited,
  exitOutcome,
  hungAfter,
  IDLE,
  initialized,
  isClosing,
  processOf,
  type RuntimePatch,
  spawned,
  startAbandoned,
  startRequested,
  stopFinished,
  stopRequested,
  turnBegan,
  turnEnded,
  turnOf,
} from './cli-phase.js';
import { type CliExit, ControlRequestError } from './cli-process.js';
import { errorText, SessionError, SpawnRefusedError } from './errors.js';
import type { SessionLimits } from './limits.js';

type SupervisorLimits = Pick<
  SessionLimits,
  'stopGraceMs' | 'hungTimeoutMs' | 'initializeTimeoutMs' | 'controlTimeoutMs' | 'maxLineBytes'
>;

/** The session the supervisor works for: it keeps the transcript, the queue and the humans' requests. */
export interface CliSupervisorHost {
  /** The Claude conversation the next process continues with --resume (null: a new one). */
  claudeSessionId(): string | null;
  /** A human is being asked something: the CLI's silence meanwhile is not a hang. */
  awaitingHuman(): boolean;
  /** Every line the CLI prints except the answers to our own control requests. */
  onLine(line: ParsedCliLine): void;
  /** stop() is about to end a live process: what waits for a human is answered while the CLI can read it. */
  onStopping(): void;
  /** The process is gone. Called before the runtime says so, so the session can settle what it had sent. */
  onExit(cause: ExitCause): void;
  emit(payload: SessionEventPayload): void;
  updateRuntime(patch: RuntimePatch): void;
}

export interface CliSupervisorOptions {
  launch: CliLaunchOptions;
  limits: SupervisorLimits;
  host: CliSupervisorHost;
  logger?: Logger | undefined;
}

const NO_CONVERSATION = 'No conversation found';

/** Resolves to 'timeout' after ms; raced against the events a stop waits for. */
function delay(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
}

/**
 * Keeps one long-lived Claude CLI process for a session: spawns it with --resume, initializes it,
 * starts a new conversation when the old one cannot be resumed, tracks the running turn, kills a turn
 * that went silent, stops it (interrupt, close stdin, kill the group) and reports how it ended. Its
 * state is one CliPhase (cli-phase.ts); the session above it owns the queue and the transcript.
 */
export class CliSupervisor {
  private phase: CliPhase<SupervisedCli> = IDLE;
  /**
   * The conversation the CLI said it cannot resume (killed before it saved it). A new one is started
   * instead, and resumed from then on: once the session notes another id, this one no longer matches.
   */
  private unresumable: string | null = null;
  private readonly launch: CliLaunchOptions;
  private readonly limits: SupervisorLimits;
  private readonly host: CliSupervisorHost;
  private readonly logger: Logger | undefined;

  constructor(options: CliSupervisorOptions) {
    this.launch = options.launch;
    this.limits = options.limits;
    this.host = options.host;
    this.logger = options.logger;
  }

  get phaseKind(): CliPhaseKind {
    return this.phase.kind;
  }

  /** True while a CLI process exists (from its spawn to its exit). */
  get isAlive(): boolean {
    return processOf(this.phase) !== null;
  }

  get pid(): number | null {
    return processOf(this.phase)?.cli.pid ?? null;
  }

  /** A turn is open: its `result` ends it. */
  get inTurn(): boolean {
    return turnOf(this.phase) !== null;
  }

  /** The next queued message may go to the CLI (starting it if need be). */
  get acceptsTurn(): boolean {
    return acceptsTurn(this.phase);
  }

  /** close() was called. */
  get closing(): boolean {
    return isClosing(this.phase);
  }

  /** The model the live process runs, undefined without one. */
  get model(): string | undefined {
    return processOf(this.phase)?.model;
  }

  /** Resolves once a CLI is initialized and ready (or busy with a turn); starts one if there is none. */
  ensureStarted(): Promise<void> {
    const phase = this.phase;
    switch (phase.kind) {
      case 'ready':
      case 'running':
        return Promise.resolve();
      case 'starting':
        return phase.attempt;
      case 'stopping':
        if (phase.after === 'closed') return Promise.reject(closedError());
        // A start during a stop gets a fresh process once the old one is gone.
        return phase.done.then(() => this.ensureStarted());
      case 'hung':
        return phase.proc.cli.exited.then(() => this.ensureStarted());
      case 'closed':
        return Promise.reject(closedError());
      case 'idle':
        return this.beginStart();
    }
  }

  /** The session wrote (is about to write) a message: the turn runs until its result. False when not ready. */
  beginTurn(messageId: string): boolean {
    const next = turnBegan(this.phase, { messageId, end: deferred<void>() });
    if (!next) return false;
    this.phase = next;
    next.proc.lastOutputAt = Date.now();
    return true;
  }

  /**
   * The turn is over: its result arrived, or its message could not be written. True when the CLI is
   * ready for the next one (false during a stop, which the turn's end lets go on).
   */
  endTurn(): boolean {
    const turn = turnOf(this.phase);
    const next = turnEnded(this.phase);
    if (!next) return false;
    this.phase = next;
    turn?.end.resolve();
    return next.kind === 'ready';
  }

  /** Writes one message to the live CLI's stdin. */
  write(message: unknown): Promise<void> {
    const proc = processOf(this.phase);
    if (!proc) return Promise.reject(new Error('the CLI process has exited'));
    return proc.cli.send(message);
  }

  /** Answers a permission request or question of the live CLI; a CLI that is gone needs no answer. */
  reply(requestId: string, decision: CliPermissionDecision): void {
    if (!this.isAlive) return;
    this.write(cliPermissionResponse(requestId, decision)).catch((error: unknown) => {
      this.logger?.warn({ requestId, error: errorText(error) }, 'could not answer a permission request');
    });
  }

  /** Tells the CLI a control request it sent is not one we handle, so it does not wait for an answer. */
  refuseControlRequest(requestId: string, subtype: string): void {
    this.write({
      type: 'control_response',
      response: { subtype: 'error', request_id: requestId, error: `unsupported control request ${subtype}` },
    }).catch(() => undefined);
  }

  /** Ends the running turn (the CLI answers with a `result` of subtype error_during_execution). */
  async interruptTurn(): Promise<void> {
    if (this.phase.kind !== 'running') return;
    await this.phase.proc.cli.request({ subtype: 'interrupt' }, this.limits.controlTimeoutMs);
  }

  /** Switches the live CLI to `model` for the turns that follow. */
  async switchModel(model: string): Promise<void> {
    const proc = processOf(this.phase);
    if (!proc) throw new ControlRequestError('process_gone', 'the CLI process has exited');
    if (proc.model === model) return;
    await proc.cli.request({ subtype: 'set_model', model }, this.limits.controlTimeoutMs);
    proc.model = model;
  }

  /** A human answered: the watchdog's clock restarts, since waiting for them was not the CLI hanging. */
  noteActivity(): void {
    const proc = processOf(this.phase);
    if (proc) proc.lastOutputAt = Date.now();
  }

  /** Ends the process (after the start in progress, if any); the next start resumes the conversation. */
  stop(): Promise<void> {
    return this.requestStop('idle');
  }

  /** Like stop(), and nothing starts again. */
  close(): Promise<void> {
    return this.requestStop('closed');
  }

  // ---- start ----

  private beginStart(): Promise<void> {
    const attempt = deferred<void>();
    const next = startRequested(this.phase, attempt.promise);
    if (!next) return this.ensureStarted();
    this.phase = next;
    this.runStart(attempt.promise).then(attempt.resolve, attempt.reject);
    // Whoever asked for the start handles its failure; this keeps one nobody awaits from being unhandled.
    attempt.promise.catch(() => undefined);
    return attempt.promise;
  }

  private async runStart(attempt: Promise<void>): Promise<void> {
    for (;;) {
      const resumeSessionId = this.resumeTarget();
      const proc = this.spawnFor(attempt, resumeSessionId);
      try {
        await proc.cli.request({ subtype: 'initialize', hooks: null }, this.limits.initializeTimeoutMs);
      } catch (error) {
        proc.cli.killGroup('SIGKILL');
        await proc.cli.exited;
        const ours = this.phase.kind === 'starting' && this.phase.attempt === attempt;
        const missing = proc.sawNoConversation || proc.stderrTail.includes(NO_CONVERSATION);
        if (ours && resumeSessionId && missing) {
          // The CLI lost the conversation (killed before it saved it). Start a new one rather than
          // failing every message; our transcript keeps the history for the user.
          this.unresumable = resumeSessionId;
          this.host.emit({
            type: 'session_error',
            code: 'resume_failed',
            message: `Claude could not resume conversation ${resumeSessionId} (it was not saved before the process ended); starting a new conversation. Earlier messages stay in this transcript, but Claude will not remember them.`,
          });
          continue;
        }
        const tail = proc.stderrTail.trim();
        this.host.emit({
          type: 'session_error',
          code: 'spawn_failed',
          message: `The Claude CLI did not start: ${errorText(error)}${tail ? ` (stderr: ${tail.slice(-500)})` : ''}`,
        });
        this.phase = startAbandoned(this.phase, attempt) ?? this.phase;
        throw error;
      }
      const ready = initialized(this.phase, proc);
      // Otherwise a stop took over while the CLI initialized: it ends this process now.
      if (ready) {
        this.phase = ready;
        this.host.updateRuntime({ phase: 'idle' });
      }
      return;
    }
  }

  private resumeTarget(): string | null {
    const id = this.host.claudeSessionId();
    return id !== null && id === this.unresumable ? null : id;
  }

  /** Spawns one CLI for `attempt`; throws SpawnRefusedError (already reported) when spawn() refuses. */
  private spawnFor(attempt: Promise<void>, resumeSessionId: string | null): SupervisedCli {
    this.host.updateRuntime({ phase: 'starting', processState: 'unknown', pid: null });
    this.logger?.info({ resume: resumeSessionId }, 'starting Claude CLI');
    let proc: SupervisedCli;
    try {
      proc = launchCli({
        launch: this.launch,
        resumeSessionId,
        maxLineBytes: this.limits.maxLineBytes,
        logger: this.logger,
        events: {
          onLine: (from, line) => this.onLine(from, line),
          onProtocolError: (error) => {
            this.logger?.warn({ code: error.code }, error.message);
            this.host.emit({ type: 'session_error', code: error.code, message: error.message });
          },
          onExit: (from, exit) => this.onExit(from, exit),
        },
      });
    } catch (error) {
      // spawn() throws synchronously for arguments the kernel or Node refuses (a NUL byte, one over
      // Linux's 128 KiB per-argument limit). No process exists, so nothing will ever exit or answer:
      // report it and go back to idle rather than stay `starting` with the message queued forever.
      const message = `The Claude CLI could not be started: ${errorText(error)}`;
      this.host.emit({ type: 'session_error', code: 'spawn_failed', message });
      this.phase = startAbandoned(this.phase, attempt) ?? this.phase;
      this.host.updateRuntime({ phase: 'idle', processState: 'stopped', pid: null });
      throw new SpawnRefusedError(message);
    }
    const next = spawned(this.phase, attempt, proc);
    if (!next) {
      // Cannot happen (the attempt spawns synchronously while it owns the phase), but a process the
      // phase does not hold would never be stopped: end it rather than leave it running.
      proc.cli.killGroup('SIGKILL');
      throw new SessionError('unavailable', 'the CLI start was overtaken by a stop');
    }
    this.phase = next;
    this.startWatchdog(proc);
    if (proc.cli.pid !== null) this.host.updateRuntime({ processState: 'alive', pid: proc.cli.pid });
    return proc;
  }

  // ---- output and exit ----

  private onLine(proc: SupervisedCli, line: ParsedCliLine): void {
    if (processOf(this.phase) !== proc) return;
    proc.lastOutputAt = Date.now();
    // A result before `initialize` is answered is the CLI failing to start (e.g. nothing to --resume).
    if (line.kind === 'result' && this.phase.kind === 'starting') {
      if (JSON.stringify(line.message.errors ?? '').includes(NO_CONVERSATION)) proc.sawNoConversation = true;
    }
    this.host.onLine(line);
  }

  private onExit(proc: SupervisedCli, exit: CliExit): void {
    // The tools the CLI started (Bash children) are in its group; with the CLI gone they are orphans.
    proc.cli.killGroup('SIGKILL');
    if (proc.cli.pid !== null) this.launch.processGroups?.ended(proc.cli.pid);
    if (proc.watchdog) clearInterval(proc.watchdog);
    proc.watchdog = null;
    const turn = turnOf(this.phase);
    const after = exited(this.phase, proc);
    if (!after) return;
    this.phase = after.phase;
    const { cause } = after;
    this.host.onExit(cause);
    turn?.end.resolve();
    const outcome = exitOutcome(cause);
    if (outcome.reportAsCrash) {
      const tail = proc.stderrTail.trim();
      this.host.emit({
        type: 'session_error',
        code: 'process_exited',
        message:
          `The Claude process exited unexpectedly (${describeExit(exit)})` +
          `${tail ? `: ${tail.slice(-500)}` : ''}. The next message resumes the conversation.`,
      });
    }
    this.logger?.info({ ...exit, cause, messageId: turn?.messageId }, 'Claude CLI exited');
    this.host.updateRuntime({
      phase: outcome.runtimePhase,
      processState: 'stopped',
      pid: null,
      lastExit: { code: exit.code, signal: exit.signal, timestamp: now(), unexpected: outcome.unexpected },
    });
  }

  // ---- health ----

  private startWatchdog(proc: SupervisedCli): void {
    const every = Math.max(10, Math.min(30_000, Math.floor(this.limits.hungTimeoutMs / 4)));
    proc.watchdog = setInterval(() => this.checkHung(proc), every);
    proc.watchdog.unref();
  }

  private checkHung(proc: SupervisedCli): void {
    if (processOf(this.phase) !== proc) return;
    const silentMs = Date.now() - proc.lastOutputAt;
    const next = hungAfter(this.phase, silentMs, this.limits.hungTimeoutMs, this.host.awaitingHuman());
    if (!next) return;
    const turn = turnOf(this.phase);
    this.phase = next;
    turn?.end.resolve();
    this.host.emit({
      type: 'session_error',
      code: 'process_hung',
      message: `The Claude process printed nothing for ${Math.round(silentMs / 1000)} s during a turn and was killed. The next message resumes the conversation.`,
    });
    proc.cli.killGroup('SIGKILL');
  }

  // ---- stop ----

  private requestStop(after: AfterStop): Promise<void> {
    const phase = this.phase;
    if (phase.kind === 'stopping') {
      // close() during a stop: the stop under way ends it, and then nothing starts again.
      if (after === 'closed' && phase.after !== 'closed') this.phase = { ...phase, after };
      return phase.done;
    }
    const done = deferred<void>();
    const next = stopRequested(phase, after, done.promise);
    if (!next) {
      // Nothing runs: closing takes effect at once, a stop has nothing to do.
      if (after === 'closed') this.phase = { kind: 'closed' };
      return Promise.resolve();
    }
    this.phase = next;
    const startAttempt = phase.kind === 'starting' ? phase.attempt : null;
    this.runStop(startAttempt)
      .catch((error: unknown) => this.logger?.error({ error: errorText(error) }, 'stopping the CLI failed'))
      .finally(() => {
        this.phase = stopFinished(this.phase, done.promise) ?? this.phase;
        // Whatever the process's end reported on the way (stopping, or a start that failed meanwhile),
        // the stop is over and nothing runs.
        this.host.updateRuntime({ phase: 'idle' });
        done.resolve();
      });
    return done.promise;
  }

  private async runStop(startAttempt: Promise<void> | null): Promise<void> {
    // A start in progress finishes first (a stop does not cut `initialize` short, and the start does not
    // retry once the stop has taken over); its process, if it got one, is then stopped like any other.
    if (startAttempt) await startAttempt.catch(() => undefined);
    const phase = this.phase;
    if (phase.kind !== 'stopping' || phase.proc === null) return;
    const { cli } = phase.proc;
    this.host.updateRuntime({ phase: 'stopping' });
    this.host.onStopping();
    if (phase.turn) {
      cli.request({ subtype: 'interrupt' }, this.limits.stopGraceMs).catch(() => undefined);
      await Promise.race([phase.turn.end.promise, delay(this.limits.stopGraceMs)]);
    }
    cli.closeStdin();
    const exit = await Promise.race([cli.exited, delay(this.limits.stopGraceMs)]);
    // Kill the group even after a clean exit: tools the CLI started may still be running in it.
    cli.killGroup('SIGKILL');
    if (exit === 'timeout') await cli.exited;
  }
}

function closedError(): SessionError {
  return new SessionError('unavailable', 'this session has been closed');
}

function now(): string {
  return new Date().toISOString();
}

function describeExit(exit: CliExit): string {
  if (exit.signal) return `signal ${exit.signal}`;
  return exit.code === null ? 'no exit code' : `exit code ${exit.code}`;
}
