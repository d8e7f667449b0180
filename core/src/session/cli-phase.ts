import type { SessionRuntime } from '../protocol/index.js';

/**
 * Where a session's Claude CLI process is in its life, as one value, and every move between phases
 * as a pure function. The supervisor (cli-supervisor.ts) does the side effects (spawning, signals,
 * timers, events); these functions only say what the next phase is, so each rule can be tested on its
 * own and no two flags can disagree about whether a process is starting, busy or on its way out.
 *
 * `P` is the supervised process; the phase holds it wherever one exists, so "is there a process" and
 * "which one" are answered by the phase too (an exit of any other process is stale and ignored).
 */

/** One pending outcome, resolved by whoever moves the phase past it. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A user message written to the CLI, until its `result` (or the process's end). */
export interface CliTurn {
  readonly messageId: string;
  /** Resolved when the turn is over, whichever way: stop() waits on it before closing stdin. */
  readonly end: Deferred<void>;
}

/** Where the supervisor goes once a stop has ended the process. */
export type AfterStop = 'idle' | 'closed';

export type CliPhase<P> =
  /** No process: none started yet, or the last one exited. The next message (or start()) spawns one. */
  | { readonly kind: 'idle' }
  /**
   * A start is under way: spawned and waiting for the answer to `initialize`, or (proc null) between a
   * failed attempt and its retry as a new conversation. Everyone who needs the CLI waits on `attempt`.
   */
  | { readonly kind: 'starting'; readonly proc: P | null; readonly attempt: Promise<void> }
  /** Initialized, between turns. */
  | { readonly kind: 'ready'; readonly proc: P }
  /** A user message was written; the turn lasts until the CLI's `result`. */
  | { readonly kind: 'running'; readonly proc: P; readonly turn: CliTurn }
  /** The watchdog found the turn silent for too long and killed the group; the exit is on its way. */
  | { readonly kind: 'hung'; readonly proc: P }
  /**
   * stop() or close() is ending the process: interrupt the open turn, close stdin, kill the group.
   * proc is null once it has exited (or when the start it waited for failed); `done` settles when the
   * stop is over and the phase becomes `after`.
   */
  | {
      readonly kind: 'stopping';
      readonly proc: P | null;
      readonly turn: CliTurn | null;
      readonly after: AfterStop;
      readonly done: Promise<void>;
    }
  /** close() ran: nothing starts again. */
  | { readonly kind: 'closed' };

export type CliPhaseKind = CliPhase<unknown>['kind'];

/** The member of the union with this kind. */
export type PhaseOf<P, K extends CliPhaseKind> = Extract<CliPhase<P>, { kind: K }>;

/**
 * Why a process ended, read from the phase it was in: a failed start, our stop, the watchdog's kill,
 * or a crash (the CLI died on its own, or someone outside killed it, while it was ours to keep).
 */
export type ExitCause = 'startup' | 'stop' | 'hung' | 'crash';

export const IDLE = { kind: 'idle' } as const;
export const CLOSED = { kind: 'closed' } as const;

/** The process the phase holds, if any. */
export function processOf<P>(phase: CliPhase<P>): P | null {
  return phase.kind === 'idle' || phase.kind === 'closed' ? null : phase.proc;
}

/** The turn in progress, if any (a stop keeps it open until the CLI answers the interrupt). */
export function turnOf<P>(phase: CliPhase<P>): CliTurn | null {
  if (phase.kind === 'running' || phase.kind === 'stopping') return phase.turn;
  return null;
}

/** close() was called: the session takes no more messages, even while its last stop is finishing. */
export function isClosing<P>(phase: CliPhase<P>): boolean {
  return phase.kind === 'closed' || (phase.kind === 'stopping' && phase.after === 'closed');
}

/**
 * Whether the next queued message may be sent now: the CLI is ready, or can be started (or is being
 * started) for it. Never during a turn, a stop or a hung kill.
 */
export function acceptsTurn<P>(phase: CliPhase<P>): boolean {
  return phase.kind === 'idle' || phase.kind === 'starting' || phase.kind === 'ready';
}

/** A start begins from idle; anything else is already started, starting or on its way out. */
export function startRequested<P>(phase: CliPhase<P>, attempt: Promise<void>): PhaseOf<P, 'starting'> | null {
  return phase.kind === 'idle' ? { kind: 'starting', proc: null, attempt } : null;
}

/** The attempt spawned `proc`. Null when the attempt no longer owns the phase (a stop took over). */
export function spawned<P>(
  phase: CliPhase<P>,
  attempt: Promise<void>,
  proc: P,
): PhaseOf<P, 'starting'> | null {
  if (phase.kind !== 'starting' || phase.attempt !== attempt) return null;
  return { kind: 'starting', proc, attempt };
}

/** `initialize` was answered. Null when the attempt no longer owns the phase: the stop that took over ends it. */
export function initialized<P>(phase: CliPhase<P>, proc: P): PhaseOf<P, 'ready'> | null {
  if (phase.kind !== 'starting' || phase.proc !== proc) return null;
  return { kind: 'ready', proc };
}

/** The attempt gave up (spawn refused, or the CLI did not start and no retry is left). */
export function startAbandoned<P>(phase: CliPhase<P>, attempt: Promise<void>): CliPhase<P> | null {
  if (phase.kind !== 'starting' || phase.attempt !== attempt) return null;
  return IDLE;
}

/** A message goes to the CLI: only a ready one takes it. */
export function turnBegan<P>(phase: CliPhase<P>, turn: CliTurn): PhaseOf<P, 'running'> | null {
  return phase.kind === 'ready' ? { kind: 'running', proc: phase.proc, turn } : null;
}

/**
 * The turn is over (its `result` arrived, or its message could not be written). A running CLI is
 * ready again; a stopping one only loses its open turn. Null when there was no turn to end.
 */
export function turnEnded<P>(phase: CliPhase<P>): PhaseOf<P, 'ready' | 'stopping'> | null {
  if (phase.kind === 'running') return { kind: 'ready', proc: phase.proc };
  if (phase.kind === 'stopping' && phase.turn) return { ...phase, turn: null };
  return null;
}

/**
 * The watchdog's verdict: a running turn with no output for `limitMs` is hung, unless the CLI is
 * waiting for a human (a question open for an hour is not a hang).
 */
export function hungAfter<P>(
  phase: CliPhase<P>,
  quietMs: number,
  limitMs: number,
  awaitingHuman: boolean,
): PhaseOf<P, 'hung'> | null {
  if (phase.kind !== 'running' || awaitingHuman || quietMs < limitMs) return null;
  return { kind: 'hung', proc: phase.proc };
}

/**
 * stop() or close(). Null when nothing runs (idle, closed) or a stop is already under way; those are
 * handled by the caller (closing an idle supervisor closes it, a second stop waits for the first).
 * A stop of a start in progress waits for it: the stop's `proc` is what the start has so far.
 */
export function stopRequested<P>(
  phase: CliPhase<P>,
  after: AfterStop,
  done: Promise<void>,
): PhaseOf<P, 'stopping'> | null {
  switch (phase.kind) {
    case 'starting':
    case 'ready':
    case 'hung':
      return { kind: 'stopping', proc: phase.proc, turn: null, after, done };
    case 'running':
      return { kind: 'stopping', proc: phase.proc, turn: phase.turn, after, done };
    case 'idle':
    case 'stopping':
    case 'closed':
      return null;
  }
}

/** The stop is over: the supervisor rests where the stop said it would. */
export function stopFinished<P>(phase: CliPhase<P>, done: Promise<void>): CliPhase<P> | null {
  if (phase.kind !== 'stopping' || phase.done !== done) return null;
  return phase.after === 'closed' ? CLOSED : IDLE;
}

/**
 * `proc` exited. Null when the phase does not hold it (a stale exit). The cause is read from the phase
 * it ended in; the new phase keeps a start or a stop going, since those finish on their own.
 */
export function exited<P>(phase: CliPhase<P>, proc: P): { phase: CliPhase<P>; cause: ExitCause } | null {
  if (processOf(phase) !== proc) return null;
  switch (phase.kind) {
    case 'starting':
      // A start ends in ready or idle; the attempt decides (a retry as a new conversation, or give up).
      return { phase: { ...phase, proc: null }, cause: 'startup' };
    case 'stopping':
      return { phase: { ...phase, proc: null, turn: null }, cause: 'stop' };
    case 'hung':
      return { phase: IDLE, cause: 'hung' };
    case 'ready':
    case 'running':
      return { phase: IDLE, cause: 'crash' };
    case 'idle':
    case 'closed':
      return null;
  }
}

/** What an exit means for the session, by its cause. */
export interface ExitOutcome {
  /** The runtime phase the session reports: a stop is still finishing, anything else was a failure. */
  runtimePhase: 'stopping' | 'error';
  /** True when we did not ask the process to end (its lastExit says so). */
  unexpected: boolean;
  /** A crash is reported as a session_error here; a hung kill and a failed start report themselves. */
  reportAsCrash: boolean;
  /**
   * Queued messages wait for the user's next send instead of respawning the CLI at once (no respawn
   * loop behind a CLI that keeps dying). A failed start holds the queue through its own error instead.
   */
  holdsQueue: boolean;
}

export function exitOutcome(cause: ExitCause): ExitOutcome {
  switch (cause) {
    case 'stop':
      return { runtimePhase: 'stopping', unexpected: false, reportAsCrash: false, holdsQueue: false };
    case 'startup':
      return { runtimePhase: 'error', unexpected: true, reportAsCrash: false, holdsQueue: false };
    case 'hung':
      return { runtimePhase: 'error', unexpected: true, reportAsCrash: false, holdsQueue: true };
    case 'crash':
      return { runtimePhase: 'error', unexpected: true, reportAsCrash: true, holdsQueue: true };
  }
}

/** The fields of the session's public runtime that phases set; activity and updatedAt follow from them. */
export type RuntimePatch = Partial<Omit<SessionRuntime, 'activity' | 'updatedAt'>>;

/**
 * The public runtime after `patch`, or null when nothing a subscriber sees would change (no event).
 * The session is WORKING while its CLI starts or runs a turn, IDLE otherwise.
 */
export function runtimeAfter(
  current: SessionRuntime,
  patch: RuntimePatch,
  at: string,
): SessionRuntime | null {
  const merged = { ...current, ...patch };
  const activity = merged.phase === 'starting' || merged.phase === 'running' ? 'WORKING' : 'IDLE';
  if (
    merged.phase === current.phase &&
    merged.processState === current.processState &&
    merged.pid === current.pid &&
    merged.lastExit === current.lastExit &&
    activity === current.activity
  ) {
    return null;
  }
  return { ...merged, activity, updatedAt: at };
}
