/**
 * The ratchet actor's state and its transitions, as pure functions: the workflow decides *when* something
 * happens (a poll answered, a fixer checked); *what* that does to the state, and what the actor does next,
 * is decided here (with core/ratchet's decide/applyDecision/settleFixer) and tested without Temporal or a VM.
 *
 *   poll ─snapshot─▶ decide ─TRIGGER_FIXER─▶ dispatch recorded (activeFixer, sessionId null)
 *                      │                        └─VM answered─▶ sessionId ─check…─▶ COMPLETED / DIED / timeout
 *                      ├─COMPLETED (merged) / pr_closed─▶ ended                         └─▶ settled, poll at once
 *                      └─WAITING─▶ next poll (interval; suspended interval; back-off on rate limits)
 *
 * The dispatch is recorded before the activity runs, with a dispatch id from the workflow: a retry after a
 * crash sends the same id, which the VM's agent answers with the same session (nothing sent twice).
 */
import {
  applyDecision,
  buildFixerPrompt,
  type DecisionOutline,
  decide,
  dispatchesInLastDay,
  nextBackoffMultiplier,
  type PollCycleOutcome,
  pollDelayMs,
  type RatchetMemory,
  type RatchetSnapshot,
  settleFixer,
} from '@factory-factory/core/ratchet';
import type { z } from 'zod';
import type {
  ActiveFixer,
  CarriedRatchetStateSchema,
  RatchetEndReason,
  RatchetPhase,
  RatchetProblemCode,
  RatchetSettings,
  RatchetView,
} from './messages.js';

export type RatchetActorState = z.output<typeof CarriedRatchetStateSchema>;

/** What a poll came back with, as the workflow tells it (the activity's answers plus its own failures). */
export type RatchetPollOutcome =
  | { kind: 'snapshot'; snapshot: RatchetSnapshot | null }
  | { kind: 'vm_suspended' }
  | { kind: 'vm_terminated' }
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** GitHub did not answer (network, auth) as gh in the VM saw it. */
  | { kind: 'unavailable'; message: string }
  /** The VM's agent could not be reached (the activity failed after its retries). */
  | { kind: 'vm_unavailable'; message: string }
  /** The VM could not be resumed for the poll: the period's compute minutes are spent. */
  | { kind: 'quota'; message: string };

export type FixerCheck = { outcome: 'RUNNING' | 'COMPLETED' | 'DIED'; detail: string | null };

/** The memory as core/ratchet's functions take it and as it is handed back (mutable copies). */
const asMemory = (m: RatchetMemory): RatchetActorState['memory'] => ({
  ...m,
  dispatchKeys: [...m.dispatchKeys],
  dispatchTimesMs: [...m.dispatchTimesMs],
});

export function newRatchetState(input: {
  workspaceId: string;
  userId: string;
  memory: RatchetMemory;
  nowMs: number;
}): RatchetActorState {
  return {
    workspaceId: input.workspaceId,
    userId: input.userId,
    memory: asMemory(input.memory),
    ratchetState: 'IDLE',
    lastDecision: null,
    activeFixer: null,
    lastFixerCheckAtMs: null,
    // The first poll is due at once: a workspace just sent should be looked at without waiting.
    nextPollAtMs: input.nowMs,
    backoffMultiplier: 1,
    vmSuspended: false,
    problem: null,
    endedReason: null,
    updatedAtMs: input.nowMs,
    version: 0,
  };
}

export const phaseOf = (s: RatchetActorState): RatchetPhase =>
  s.endedReason !== null
    ? 'ended'
    : s.activeFixer !== null
      ? 'fixer_running'
      : s.memory.enabled
        ? 'polling'
        : 'disabled';

function withProblem(
  s: RatchetActorState,
  code: RatchetProblemCode,
  message: string,
  nowMs: number,
): RatchetActorState['problem'] {
  // The same trouble continuing keeps its start: "since" is when it began, not the latest try.
  const sinceMs = s.problem?.code === code ? s.problem.sinceMs : nowMs;
  return { code, message: message.slice(0, 4096), sinceMs };
}

/**
 * Whether a poll that finds the VM suspended resumes it for this poll. Only once the VM was already seen
 * asleep (so it sleeps the suspended interval first), or when someone asked for a poll now (a wake signal).
 */
export const wakesSuspendedVm = (s: RatchetActorState, pollAsked: boolean): boolean =>
  s.vmSuspended || pollAsked;

export type PollApplied =
  | { state: RatchetActorState; next: { kind: 'dispatch'; prompt: string } }
  | { state: RatchetActorState; next: { kind: 'none' } };

/**
 * A poll's outcome applied. On a snapshot: core's decision (with the daily cap), the memory after it, and
 * on TRIGGER_FIXER the dispatch recorded under `dispatchId` with the fixer's prompt to send.
 */
export function applyPollOutcome(
  state: RatchetActorState,
  outcome: RatchetPollOutcome,
  ctx: { nowMs: number; settings: RatchetSettings; dispatchId: string; wokeVm: boolean },
): PollApplied {
  const { nowMs, settings } = ctx;
  const base: RatchetActorState = { ...state, updatedAtMs: nowMs };
  const cycle = (kind: PollCycleOutcome) => nextBackoffMultiplier(state.backoffMultiplier, kind);
  const none = (s: RatchetActorState): PollApplied => ({ state: s, next: { kind: 'none' } });

  switch (outcome.kind) {
    case 'vm_terminated':
      return none({ ...base, endedReason: 'vm_terminated', problem: null });
    case 'vm_suspended':
      // Asleep is not a problem: the loop looks again after the suspended interval, resuming it then.
      return none({
        ...base,
        vmSuspended: true,
        problem: null,
        nextPollAtMs: nowMs + settings.suspendedPollIntervalMs,
      });
    case 'quota':
      return none({
        ...base,
        vmSuspended: true,
        problem: withProblem(state, 'quota', outcome.message, nowMs),
        nextPollAtMs: nowMs + settings.suspendedPollIntervalMs,
      });
    case 'rate_limited': {
      const multiplier = cycle('rate_limited');
      const wait = pollDelayMs(settings.pollIntervalMs, multiplier, outcome.retryAfterMs);
      return none({
        ...base,
        backoffMultiplier: multiplier,
        problem: withProblem(
          state,
          'rate_limited',
          `GitHub rate-limited the VM's gh; polling again in ${Math.ceil(wait / 1000)} s`,
          nowMs,
        ),
        nextPollAtMs: nowMs + wait,
      });
    }
    case 'unavailable':
    case 'vm_unavailable': {
      const multiplier = cycle('other_error');
      const code = outcome.kind === 'unavailable' ? 'github_unavailable' : 'vm_unavailable';
      return none({
        ...base,
        backoffMultiplier: multiplier,
        problem: withProblem(state, code, outcome.message, nowMs),
        nextPollAtMs: nowMs + pollDelayMs(settings.pollIntervalMs, multiplier),
      });
    }
    case 'snapshot':
      return applySnapshot(
        { ...base, backoffMultiplier: cycle('clean'), problem: null, vmSuspended: ctx.wokeVm },
        outcome.snapshot,
        ctx,
      );
  }
}

function applySnapshot(
  state: RatchetActorState,
  snapshot: RatchetSnapshot | null,
  ctx: { nowMs: number; settings: RatchetSettings; dispatchId: string; wokeVm: boolean },
): PollApplied {
  const { nowMs, settings } = ctx;
  const decision = decide(
    state.memory,
    snapshot,
    { active: state.activeFixer !== null },
    { nowMs, maxDispatchesPerDay: settings.maxDispatchesPerDay },
  );
  const memory = asMemory(applyDecision(state.memory, decision, snapshot, nowMs));
  const next: RatchetActorState = {
    ...state,
    memory,
    ratchetState: decision.state,
    lastDecision: { action: decision.action, reason: decision.reason, key: decision.key, atMs: nowMs },
    // A VM resumed only for this poll sleeps between polls: look again after the suspended interval.
    nextPollAtMs: nowMs + (ctx.wokeVm ? settings.suspendedPollIntervalMs : settings.pollIntervalMs),
  };
  if (decision.action === 'COMPLETED')
    return { state: { ...next, endedReason: 'merged' }, next: { kind: 'none' } };
  if (decision.reason === 'pr_closed')
    return { state: { ...next, endedReason: 'pr_closed' }, next: { kind: 'none' } };
  if (decision.action !== 'TRIGGER_FIXER' || snapshot === null || decision.key === null)
    return { state: next, next: { kind: 'none' } };
  const fixer: ActiveFixer = {
    sessionId: null,
    dispatchId: ctx.dispatchId,
    key: decision.key,
    startedAtMs: nowMs,
    attempt: memory.dispatchRetryCount + 1,
  };
  return {
    state: { ...next, activeFixer: fixer, lastFixerCheckAtMs: null },
    next: { kind: 'dispatch', prompt: buildFixerPrompt(snapshot) },
  };
}

/** The VM's agent took the dispatch: the fixer session's id. */
export function fixerDispatched(
  state: RatchetActorState,
  sessionId: string,
  nowMs: number,
): RatchetActorState {
  if (!state.activeFixer) return state;
  return {
    ...state,
    activeFixer: { ...state.activeFixer, sessionId },
    lastFixerCheckAtMs: nowMs,
    problem: null,
    updatedAtMs: nowMs,
  };
}

/** The VM could not be reached to dispatch (or check) the fixer: shown, and tried again after the interval. */
export function fixerUnreachable(
  state: RatchetActorState,
  message: string,
  nowMs: number,
): RatchetActorState {
  return {
    ...state,
    lastFixerCheckAtMs: nowMs,
    problem: withProblem(state, 'vm_unavailable', message, nowMs),
    updatedAtMs: nowMs,
  };
}

/**
 * How the dispatched fixer ended. COMPLETED is never retried; DIED is retried by the next decision (at most
 * core's MAX_FIXER_RETRIES for the same key, then stalled). The next poll is due at once.
 */
export function fixerSettled(
  state: RatchetActorState,
  outcome: 'COMPLETED' | 'DIED',
  nowMs: number,
  detail: string | null = null,
): RatchetActorState {
  if (!state.activeFixer) return state;
  return {
    ...state,
    lastFixerOutcome: { outcome, detail: detail === null ? null : detail.slice(0, 4096), atMs: nowMs },
    memory: asMemory(settleFixer(state.memory, outcome)),
    activeFixer: null,
    lastFixerCheckAtMs: null,
    nextPollAtMs: nowMs,
    problem: state.problem?.code === 'vm_unavailable' ? null : state.problem,
    updatedAtMs: nowMs,
  };
}

/** A look at the working fixer. */
export function fixerChecked(state: RatchetActorState, check: FixerCheck, nowMs: number): RatchetActorState {
  if (check.outcome === 'RUNNING')
    return {
      ...state,
      lastFixerCheckAtMs: nowMs,
      problem: state.problem?.code === 'vm_unavailable' ? null : state.problem,
      updatedAtMs: nowMs,
    };
  return fixerSettled(state, check.outcome, nowMs, check.detail);
}

export function enabledSet(state: RatchetActorState, enabled: boolean, nowMs: number): RatchetActorState {
  if (state.memory.enabled === enabled) return state;
  return {
    ...state,
    memory: { ...state.memory, enabled },
    // Turned on: look at once. Turned off: a working fixer finishes, nothing new is started.
    nextPollAtMs: enabled ? nowMs : state.nextPollAtMs,
    problem: enabled ? state.problem : null,
    updatedAtMs: nowMs,
  };
}

export function ratchetEnded(
  state: RatchetActorState,
  reason: RatchetEndReason,
  nowMs: number,
): RatchetActorState {
  if (state.endedReason !== null) return state;
  return { ...state, endedReason: reason, updatedAtMs: nowMs };
}

/** The read model accepted a write: its version is the truth. Not a change of the ratchet. */
export const ratchetPersisted = (state: RatchetActorState, version: number): RatchetActorState => ({
  ...state,
  version: Math.max(state.version, version),
});

/**
 * What the next watch compares its polls with (activities/ratchet/watch.ts): the memory and last decision,
 * when a poll deciding the same would change nothing the state holds. null when any poll must be reported:
 * nothing decided yet, or a problem, a back-off or a suspended VM that a good snapshot would clear.
 */
export function watchBaseline(
  state: RatchetActorState,
  settings: RatchetSettings,
): { memory: RatchetMemory; decision: DecisionOutline; maxDispatchesPerDay: number } | null {
  const last = state.lastDecision;
  if (last === null || state.problem !== null || state.vmSuspended || state.backoffMultiplier !== 1)
    return null;
  return {
    memory: state.memory,
    decision: { action: last.action, reason: last.reason, key: last.key, state: state.ratchetState },
    maxDispatchesPerDay: settings.maxDispatchesPerDay,
  };
}

export type RatchetStep =
  | { kind: 'complete' }
  | { kind: 'stop-fixer' }
  /** The dispatch is recorded but the VM has not answered it yet: (re)send it under the same id. */
  | { kind: 'dispatch' }
  | { kind: 'check-fixer' }
  | { kind: 'fixer-timeout' }
  | { kind: 'continue-as-new' }
  | { kind: 'poll' }
  | { kind: 'wait'; untilMs: number | null };

export type PendingRatchetRequests = { stopFixer: boolean; wake: boolean };

export function nextRatchetStep(input: {
  state: RatchetActorState;
  pending: PendingRatchetRequests;
  nowMs: number;
  settings: RatchetSettings;
  historyIsLong: boolean;
}): RatchetStep {
  const { state, pending, nowMs, settings } = input;
  if (state.endedReason !== null) return { kind: 'complete' };
  // Requests first: a handler waiting for an answer never waits behind a timer.
  if (pending.stopFixer) return { kind: 'stop-fixer' };
  const fixer = state.activeFixer;
  if (fixer) {
    const timeoutAt = fixer.startedAtMs + settings.fixerTimeoutMs;
    if (nowMs >= timeoutAt) return { kind: 'fixer-timeout' };
    if (fixer.sessionId === null) {
      const retryAt =
        state.lastFixerCheckAtMs === null ? nowMs : state.lastFixerCheckAtMs + settings.pollIntervalMs;
      if (pending.wake || nowMs >= retryAt) return { kind: 'dispatch' };
      return { kind: 'wait', untilMs: Math.min(retryAt, timeoutAt) };
    }
    const checkAt = (state.lastFixerCheckAtMs ?? fixer.startedAtMs) + settings.fixerCheckIntervalMs;
    if (pending.wake || nowMs >= checkAt) return { kind: 'check-fixer' };
    return { kind: 'wait', untilMs: Math.min(checkAt, timeoutAt) };
  }
  if (input.historyIsLong) return { kind: 'continue-as-new' };
  if (!state.memory.enabled) return { kind: 'wait', untilMs: null };
  if (pending.wake || nowMs >= state.nextPollAtMs) return { kind: 'poll' };
  return { kind: 'wait', untilMs: state.nextPollAtMs };
}

/** What callers see. */
export function toRatchetView(
  s: RatchetActorState,
  ctx: { nowMs: number; maxDispatchesPerDay: number },
): RatchetView {
  const phase = phaseOf(s);
  return {
    workspaceId: s.workspaceId,
    userId: s.userId,
    enabled: s.memory.enabled,
    state: s.ratchetState,
    phase,
    lastDecision: s.lastDecision,
    lastDispatchKey: s.memory.lastDispatchKey,
    reviewLastCheckedAt: s.memory.reviewLastCheckedAt,
    activeFixer: s.activeFixer,
    stalled: s.memory.dispatchStalled,
    retryCount: s.memory.dispatchRetryCount,
    dispatchesToday: dispatchesInLastDay(s.memory, ctx.nowMs),
    maxDispatchesPerDay: ctx.maxDispatchesPerDay,
    nextPollAtMs: phase === 'polling' ? s.nextPollAtMs : null,
    problem: s.problem,
    endedReason: s.endedReason,
    lastFixerOutcome: s.lastFixerOutcome ?? null,
    updatedAt: new Date(s.updatedAtMs).toISOString(),
    version: s.version,
  };
}
