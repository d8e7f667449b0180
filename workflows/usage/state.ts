/**
 * The usage actor's state and its transitions, as pure functions: the workflow only decides *when* to apply
 * an event; *what* an event does to the state is here, tested without Temporal.
 *
 * Running time becomes slices: from the moment the VM started running, one slice per whole minute of
 * running time, and a last, shorter slice when it stops; a slice never crosses the end of a billing period
 * (it is closed there and the next one starts in the new period). A slice is billed in whole minutes, a
 * started minute counting as one. Each slice has a key made only of what it is (user, VM, start), so a
 * retried write or meter report of the same slice is the same slice: recorded once, billed once.
 *
 *   idle ──VM running──► metering ──VM stopped──► closing the last slice ──► idle ──linger──► ended
 *                          │  ▲                                          (the next news restarts the actor)
 *   minutes spent ──► holding (vm:<userId> told to stop) ──upgrade / new period──► released
 */
import type { UsageView } from './messages.js';
import { billingPeriodOf, effectivePlan, PLANS, type PlanName } from './plans.js';

/** The length of a full slice: a whole minute of running time. */
export const SLICE_MS = 60_000;
/** A transition dated further back than this (a clock gone wrong) is counted from this far back only. */
export const MAX_BACKDATE_MS = 6 * 3600 * 1000;
/** Slices made per step, and unwritten slices held at once: a backlog is worked through in bounded steps. */
export const MAX_SLICES_PER_TICK = 100;
export const MAX_UNRECORDED_SLICES = 200;
/** How many slices one write to usage_records takes. */
export const RECORD_BATCH = 100;

export type UsageSlice = {
  /** usage:<userId>:<vmId>:<startMs> — usage_records.idempotency_key and the meter event's identifier. */
  key: string;
  vmId: string;
  startMs: number;
  endMs: number;
  seconds: number;
  minutes: number;
  /** Written to usage_records; unrecorded slices are written first, reported after. */
  recorded: boolean;
  /** Failed writes or reports so far, and when the next try is due. */
  attempts: number;
  retryAtMs: number;
};

export type UsageAccount = { plan: PlanName; paymentFailedAtMs: number | null; changedAtMs: number };

export type UsageRunning = {
  vmId: string;
  /** Where the slice being metered began. */
  sliceStartMs: number;
  /** The VM stopped here; the slices up to it are still being made. */
  stopAtMs: number | null;
  /** Another VM started at this time while this one was being closed (its stop was never heard). */
  next?: { vmId: string; atMs: number } | null;
};

export type UsageState = {
  userId: string;
  /** The account and this period's recorded minutes have been read (once per run). */
  loaded: boolean;
  /** More unreported slices wait in usage_records than one load takes. */
  moreUnreported?: boolean;
  account: UsageAccount | null;
  period: { startMs: number; endMs: number };
  /** Minutes of the current period: recorded ones and slices made but not yet written. */
  usedMinutes: number;
  running: UsageRunning | null;
  /** The latest transition applied; older ones arriving late are stale. */
  lastTransitionAtMs: number | null;
  /** Slices not yet recorded, or recorded but not yet reported. */
  slices: UsageSlice[];
  /** vm:<userId> was told to stop for quota (and when, at what use and limit). */
  hold: { sinceMs: number; usedMinutes: number; limitMinutes: number } | null;
  /** The last time anything happened; the actor ends a linger after it when there is nothing to do. */
  lastChangeAtMs: number;
};

export type LoadedSlice = {
  key: string;
  vmId: string;
  startMs: number;
  endMs: number;
  seconds: number;
  minutes: number;
};

export type UsageEvent =
  | {
      type: 'LOADED';
      account: { plan: PlanName; paymentFailedAtMs: number | null };
      period: { startMs: number; endMs: number };
      /** Recorded minutes of that period. */
      usedMinutes: number;
      /** Recorded slices not yet reported (oldest first), and whether there are more than these. */
      unreported: LoadedSlice[];
      moreUnreported: boolean;
    }
  | { type: 'VM_TRANSITION'; vmId: string; running: boolean; atMs: number }
  | { type: 'PLAN_CHANGED'; plan: PlanName; paymentFailedAtMs: number | null; changedAtMs: number }
  /** Make the slices that are due (full minutes passed, a stop being closed, a period ended). */
  | { type: 'TICK' }
  | { type: 'SLICES_RECORDED'; keys: string[] }
  | { type: 'SLICES_RECORD_FAILED'; keys: string[] }
  /** Can never be recorded (the account's row is gone): nothing to bill. */
  | { type: 'SLICES_DROPPED'; keys: string[] }
  /** Reported to the meter (or nothing to report for this account): done with it. */
  | { type: 'SLICE_REPORTED'; key: string }
  | { type: 'SLICE_REPORT_FAILED'; key: string }
  | { type: 'HOLD_SENT'; usedMinutes: number; limitMinutes: number }
  | { type: 'HOLD_LIFTED' }
  /** Recorded slices are in usage_records; the next run reads the unreported ones back (continue-as-new). */
  | { type: 'CARRY_OVER' };

export const sliceKey = (userId: string, vmId: string, startMs: number): string =>
  `usage:${userId}:${vmId}:${startMs}`;

/** Stripe keeps meter-event identifiers of at most 100 characters. */
const MAX_METER_IDENTIFIER = 100;

/**
 * The slice's identifier at Stripe's meter: its key, or for a user id too long for that, the VM's id (a
 * uuid, unique across users) and the start, which identify the slice as well.
 */
export const meterIdentifierOf = (slice: Pick<UsageSlice, 'key' | 'vmId' | 'startMs'>): string =>
  slice.key.length <= MAX_METER_IDENTIFIER ? slice.key : `usage:${slice.vmId}:${slice.startMs}`;

/** A started minute counts as one (a slice is whole seconds: under half a second is no start). */
export const minutesOf = (seconds: number): number => Math.ceil(seconds / 60);

export function newUsageState(userId: string, nowMs: number): UsageState {
  return {
    userId,
    loaded: false,
    moreUnreported: false,
    account: null,
    period: billingPeriodOf(nowMs),
    usedMinutes: 0,
    running: null,
    lastTransitionAtMs: null,
    slices: [],
    hold: null,
    lastChangeAtMs: nowMs,
  };
}

/** The plan whose limits apply now; null until the account is known. */
export function effectivePlanOf(s: UsageState, gracePeriodMs: number, nowMs: number): PlanName | null {
  return s.account ? effectivePlan(s.account, gracePeriodMs, nowMs) : null;
}

export function minuteLimitOf(s: UsageState, gracePeriodMs: number, nowMs: number): number | null {
  const plan = effectivePlanOf(s, gracePeriodMs, nowMs);
  return plan ? PLANS[plan].computeMinutesPerPeriod : null;
}

/** Exactly at the limit is exhausted: the limit is what may be used, and it has been. */
export function isExhausted(s: UsageState, gracePeriodMs: number, nowMs: number): boolean {
  const limit = minuteLimitOf(s, gracePeriodMs, nowMs);
  return s.loaded && limit !== null && s.usedMinutes >= limit;
}

/** Where the slice being metered ends if the VM keeps running: a whole minute on, or the period's end. */
export const sliceBoundaryMs = (startMs: number): number =>
  Math.min(startMs + SLICE_MS, billingPeriodOf(startMs).endMs);

const unrecordedCount = (s: UsageState): number => s.slices.filter((x) => !x.recorded).length;

/** A transition for a VM is applied only once the previous stop has been turned into slices. */
export const acceptsNow = (s: UsageState, event: UsageEvent): boolean =>
  event.type !== 'VM_TRANSITION' || !s.running || s.running.stopAtMs === null;

/** A new period's minutes start from nothing (slices of the old one are still written and reported). */
const rolledTo = (atMs: number): Pick<UsageState, 'period' | 'usedMinutes'> => ({
  period: billingPeriodOf(atMs),
  usedMinutes: 0,
});

/** The period ended and no slice of the old one is still open. */
const periodRollDue = (s: UsageState, nowMs: number): boolean =>
  nowMs >= s.period.endMs && (!s.running || s.running.sliceStartMs >= s.period.endMs);

function addSlice(s: UsageState, vmId: string, startMs: number, endMs: number, nowMs: number): UsageState {
  const seconds = Math.round((endMs - startMs) / 1000);
  if (seconds <= 0) return s;
  // The first slice of a new period: its minutes start from nothing.
  const { period, usedMinutes } = startMs >= s.period.endMs ? rolledTo(startMs) : s;
  const slice: UsageSlice = {
    key: sliceKey(s.userId, vmId, startMs),
    vmId,
    startMs,
    endMs,
    seconds,
    minutes: minutesOf(seconds),
    recorded: false,
    attempts: 0,
    retryAtMs: nowMs,
  };
  const counted = startMs >= period.startMs && startMs < period.endMs ? slice.minutes : 0;
  return { ...s, period, usedMinutes: usedMinutes + counted, slices: [...s.slices, slice] };
}

/** Makes the due slices of the running VM: full ones up to now, then (once stopped) the last short one. */
function tick(state: UsageState, nowMs: number): UsageState {
  let s = state;
  let made = 0;
  while (s.running && made < MAX_SLICES_PER_TICK && unrecordedCount(s) < MAX_UNRECORDED_SLICES) {
    const { vmId, sliceStartMs, stopAtMs } = s.running;
    const until = stopAtMs ?? nowMs;
    const boundary = sliceBoundaryMs(sliceStartMs);
    if (boundary <= until) {
      s = {
        ...addSlice(s, vmId, sliceStartMs, boundary, nowMs),
        running: { ...s.running, sliceStartMs: boundary },
      };
      made++;
      continue;
    }
    if (stopAtMs === null) break;
    s = addSlice(s, vmId, sliceStartMs, stopAtMs, nowMs);
    const next = s.running?.next ?? null;
    s = {
      ...s,
      running: next ? { vmId: next.vmId, sliceStartMs: next.atMs, stopAtMs: null, next: null } : null,
    };
    made++;
  }
  if (periodRollDue(s, nowMs)) s = { ...s, ...rolledTo(nowMs) };
  return made > 0 ? { ...s, lastChangeAtMs: nowMs } : s;
}

function applyTransition(
  s: UsageState,
  event: Extract<UsageEvent, { type: 'VM_TRANSITION' }>,
  nowMs: number,
): UsageState {
  // Older than what was already applied: a late duplicate of a retried signal.
  if (s.lastTransitionAtMs !== null && event.atMs < s.lastTransitionAtMs) return s;
  // Never in the future (the actor's own clock is the reference), never absurdly far in the past.
  const atMs = Math.min(nowMs, Math.max(event.atMs, nowMs - MAX_BACKDATE_MS, s.lastTransitionAtMs ?? 0));
  const seen = { ...s, lastTransitionAtMs: atMs, lastChangeAtMs: nowMs };
  const running = s.running;
  if (event.running) {
    // The same VM again (a restart after a crash, or a retried signal): it never stopped metering.
    if (running?.vmId === event.vmId) return seen;
    if (running) {
      // A new VM while the old one was never heard to stop: the old one's time ends where the new begins.
      return {
        ...seen,
        running: {
          ...running,
          stopAtMs: Math.max(atMs, running.sliceStartMs),
          next: { vmId: event.vmId, atMs },
        },
      };
    }
    return { ...seen, running: { vmId: event.vmId, sliceStartMs: atMs, stopAtMs: null, next: null } };
  }
  if (!running || running.vmId !== event.vmId) return seen;
  return { ...seen, running: { ...running, stopAtMs: Math.max(atMs, running.sliceStartMs) } };
}

/** Back-off of a failed write or report: 5 s doubling to 30 min; the slice is kept, never dropped. */
export const sliceRetryDelayMs = (attempts: number): number =>
  Math.min(30 * 60_000, 5_000 * 2 ** Math.min(9, Math.max(0, attempts - 1)));

function failed(s: UsageState, keys: string[], nowMs: number): UsageState {
  const set = new Set(keys);
  return {
    ...s,
    slices: s.slices.map((x) =>
      set.has(x.key)
        ? { ...x, attempts: x.attempts + 1, retryAtMs: nowMs + sliceRetryDelayMs(x.attempts + 1) }
        : x,
    ),
  };
}

export function applyUsageEvent(state: UsageState, event: UsageEvent, nowMs: number): UsageState {
  switch (event.type) {
    case 'LOADED': {
      const known = new Set(state.slices.map((x) => x.key));
      const loaded: UsageSlice[] = event.unreported
        .filter((x) => !known.has(x.key))
        .map((x) => ({ ...x, recorded: true, attempts: 0, retryAtMs: nowMs }));
      const samePeriod = event.period.startMs === state.period.startMs;
      const unrecordedHere = state.slices
        .filter((x) => !x.recorded && x.startMs >= state.period.startMs && x.startMs < state.period.endMs)
        .reduce((sum, x) => sum + x.minutes, 0);
      return {
        ...state,
        loaded: true,
        moreUnreported: event.moreUnreported,
        // A plan change already received is newer than what the database said when this run began.
        account: state.account ?? { ...event.account, changedAtMs: 0 },
        usedMinutes: samePeriod ? event.usedMinutes + unrecordedHere : state.usedMinutes,
        slices: [...state.slices, ...loaded],
      };
    }
    case 'VM_TRANSITION':
      return applyTransition(state, event, nowMs);
    case 'PLAN_CHANGED':
      if (state.account && event.changedAtMs < state.account.changedAtMs) return state;
      return {
        ...state,
        account: {
          plan: event.plan,
          paymentFailedAtMs: event.paymentFailedAtMs,
          changedAtMs: event.changedAtMs,
        },
        lastChangeAtMs: nowMs,
      };
    case 'TICK':
      return tick(state, nowMs);
    case 'SLICES_RECORDED': {
      const set = new Set(event.keys);
      return {
        ...state,
        slices: state.slices.map((x) =>
          set.has(x.key) ? { ...x, recorded: true, attempts: 0, retryAtMs: nowMs } : x,
        ),
      };
    }
    case 'SLICES_RECORD_FAILED':
      return failed(state, event.keys, nowMs);
    case 'SLICES_DROPPED': {
      const set = new Set(event.keys);
      return { ...state, slices: state.slices.filter((x) => !set.has(x.key)), lastChangeAtMs: nowMs };
    }
    case 'SLICE_REPORTED':
      return { ...state, slices: state.slices.filter((x) => x.key !== event.key), lastChangeAtMs: nowMs };
    case 'SLICE_REPORT_FAILED':
      return failed(state, [event.key], nowMs);
    case 'HOLD_SENT':
      return {
        ...state,
        hold: { sinceMs: nowMs, usedMinutes: event.usedMinutes, limitMinutes: event.limitMinutes },
        lastChangeAtMs: nowMs,
      };
    case 'HOLD_LIFTED':
      return { ...state, hold: null, lastChangeAtMs: nowMs };
    case 'CARRY_OVER': {
      const dropped = state.slices.some((x) => x.recorded);
      return {
        ...state,
        loaded: false,
        moreUnreported: (state.moreUnreported ?? false) || dropped,
        slices: state.slices.filter((x) => !x.recorded),
      };
    }
  }
}

export type UsageStep =
  | { kind: 'load' }
  | { kind: 'continue-as-new' }
  | { kind: 'record'; slices: UsageSlice[] }
  | { kind: 'hold'; usedMinutes: number; limitMinutes: number }
  /** `resume`: the limit was raised in the period of the hold (an upgrade), not renewed by a new period. */
  | { kind: 'lift'; resume: boolean }
  | { kind: 'tick' }
  | { kind: 'report'; slice: UsageSlice }
  | { kind: 'end' }
  /** Nothing to do until a message arrives or `untilMs`. */
  | { kind: 'wait'; untilMs: number };

const earliest = (...times: (number | null)[]): number =>
  Math.min(...times.filter((t): t is number => t !== null));

export function nextUsageStep(input: {
  state: UsageState;
  nowMs: number;
  gracePeriodMs: number;
  lingerMs: number;
  historyIsLong: boolean;
  /** Messages received and not yet applied. */
  inboxEmpty: boolean;
}): UsageStep {
  const { state: s, nowMs } = input;
  if (!s.loaded) return { kind: 'load' };
  if (input.historyIsLong) return { kind: 'continue-as-new' };
  const unrecorded = s.slices.filter((x) => !x.recorded);
  const dueWrites = unrecorded.filter((x) => x.retryAtMs <= nowMs);
  if (dueWrites.length > 0) return { kind: 'record', slices: dueWrites.slice(0, RECORD_BATCH) };
  const exhausted = isExhausted(s, input.gracePeriodMs, nowMs);
  const limit = minuteLimitOf(s, input.gracePeriodMs, nowMs);
  if (exhausted && !s.hold && limit !== null)
    return { kind: 'hold', usedMinutes: s.usedMinutes, limitMinutes: limit };
  if (!exhausted && s.hold) return { kind: 'lift', resume: s.hold.sinceMs >= s.period.startMs };
  const roomToSlice = unrecorded.length < MAX_UNRECORDED_SLICES;
  const nextBoundary = s.running ? sliceBoundaryMs(s.running.sliceStartMs) : null;
  const tickDue =
    (s.running !== null &&
      roomToSlice &&
      (s.running.stopAtMs !== null || (nextBoundary !== null && nowMs >= nextBoundary))) ||
    periodRollDue(s, nowMs);
  if (tickDue) return { kind: 'tick' };
  const reports = s.slices.filter((x) => x.recorded);
  const dueReport = reports.find((x) => x.retryAtMs <= nowMs);
  if (dueReport) return { kind: 'report', slice: dueReport };
  if (s.moreUnreported && reports.length === 0 && unrecorded.length === 0) return { kind: 'load' };
  const lingerEnd = s.lastChangeAtMs + input.lingerMs;
  const quiet = s.running === null && s.hold === null && s.slices.length === 0 && !s.moreUnreported;
  if (quiet && input.inboxEmpty && nowMs >= lingerEnd) return { kind: 'end' };
  const graceEnd =
    s.account && s.account.plan !== 'FREE' && s.account.paymentFailedAtMs !== null
      ? s.account.paymentFailedAtMs + input.gracePeriodMs
      : null;
  return {
    kind: 'wait',
    untilMs: earliest(
      nextBoundary,
      s.period.endMs,
      graceEnd !== null && graceEnd > nowMs ? graceEnd : null,
      ...s.slices.map((x) => x.retryAtMs),
      quiet ? lingerEnd : null,
    ),
  };
}

/** What the user reads on GET /api/vms/me while the VM is held. */
export function holdMessage(s: UsageState, gracePeriodMs: number, nowMs: number): string {
  const plan = effectivePlanOf(s, gracePeriodMs, nowMs) ?? 'FREE';
  const limit = PLANS[plan].computeMinutesPerPeriod;
  const name = plan.charAt(0) + plan.slice(1).toLowerCase();
  return (
    `your VM was suspended because this period's compute minutes are used up (${s.usedMinutes} of the ` +
    `${name} plan's ${limit}); it can run again after an upgrade or when the period renews on ` +
    `${new Date(s.period.endMs).toISOString().slice(0, 10)}`
  );
}

export function toUsageView(s: UsageState, gracePeriodMs: number, nowMs: number): UsageView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    userId: s.userId,
    plan: s.account?.plan ?? null,
    effectivePlan: effectivePlanOf(s, gracePeriodMs, nowMs),
    period: { start: iso(s.period.startMs), end: iso(s.period.endMs) },
    minutes: { used: s.usedMinutes, limit: minuteLimitOf(s, gracePeriodMs, nowMs) },
    running: s.running ? { vmId: s.running.vmId, sliceStart: iso(s.running.sliceStartMs) } : null,
    unreportedSlices: s.slices.length,
    holding: s.hold !== null,
  };
}
