import { snapshotKey } from './snapshot-key.js';
import { deriveRatchetState } from './state.js';
import { isLaterThan, laterOf } from './time.js';
import type {
  FixerStatus,
  RatchetDecision,
  RatchetLimits,
  RatchetMemory,
  RatchetReason,
  RatchetSnapshot,
} from './types.js';

/** A fixer that died is re-dispatched for the same key at most this many times, then the ratchet stalls. */
export const MAX_FIXER_RETRIES = 3;
/** How many past dispatch keys are remembered to refuse a situation that flips back (A → B → A). */
export const MAX_REMEMBERED_DISPATCH_KEYS = 50;
/** Fixer runs per PR per 24 h (retries included) unless the caller sets another cap. */
export const DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY = 10;
/** The window the daily cap counts dispatches in. */
export const RATCHET_DISPATCH_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Safety bound on remembered dispatch times (a cap above this would never be reached). */
export const MAX_REMEMBERED_DISPATCH_TIMES = 1000;

export function initialRatchetMemory(overrides: Partial<RatchetMemory> = {}): RatchetMemory {
  const lastDispatchKey = overrides.lastDispatchKey ?? null;
  return {
    enabled: false,
    lastDispatchKey,
    dispatchKeys: lastDispatchKey === null ? [] : [lastDispatchKey],
    reviewLastCheckedAt: null,
    dispatchOutcome: null,
    dispatchRetryCount: 0,
    dispatchStalled: false,
    dispatchTimesMs: [],
    ...overrides,
  };
}

/** How many dispatches of the memory fall in the 24 h before `nowMs` (the daily cap counts these). */
export function dispatchesInLastDay(memory: RatchetMemory, nowMs: number): number {
  const since = nowMs - RATCHET_DISPATCH_WINDOW_MS;
  // `?? []`: memory persisted before the field existed may reach here through an unchecked cast.
  return (memory.dispatchTimesMs ?? []).filter((at) => at > since).length;
}

/**
 * What the ratchet should do now. First match wins:
 * disabled → DISABLED; no PR → WAITING; merged → COMPLETED; closed → WAITING; fixer alive → FIXER_ACTIVE;
 * CI still running without a conflict → WAITING; same key as the last dispatch whose fixer died → retry
 * (at most MAX_FIXER_RETRIES) else WAITING stalled; nothing actionable → WAITING clean; same key as the
 * last dispatch → WAITING stalled; a remembered key → WAITING; the daily cap reached → WAITING daily_cap;
 * another session working → WAITING; otherwise TRIGGER_FIXER.
 *
 * Review feedback is actionable only when its newest triggering activity is later than the memory's
 * reviewLastCheckedAt: a standing CHANGES_REQUESTED decision alone is a fix waiting for re-review (clean).
 * `limits` carries the caller's clock for the daily cap; without it there is no cap.
 */
export function decide(
  memory: RatchetMemory,
  snapshot: RatchetSnapshot | null,
  fixer: FixerStatus,
  limits?: RatchetLimits,
): RatchetDecision {
  const state = deriveRatchetState(snapshot, memory.enabled);
  const key = snapshot === null ? null : snapshotKey(snapshot);
  const result = (action: RatchetDecision['action'], reason: RatchetReason): RatchetDecision => ({
    action,
    reason,
    state,
    key,
  });

  if (!memory.enabled) return result('DISABLED', 'disabled');
  if (snapshot === null || key === null) return result('WAITING', 'no_pr');
  if (snapshot.state === 'MERGED') return result('COMPLETED', 'merged');
  if (snapshot.state !== 'OPEN') return result('WAITING', 'pr_closed');
  if (fixer.active) return result('FIXER_ACTIVE', 'fixer_active');

  const ciTerminal = snapshot.ciStatus === 'SUCCESS' || snapshot.ciStatus === 'FAILURE';
  if (!ciTerminal && !snapshot.hasMergeConflict) return result('WAITING', 'ci_running');

  const capReached =
    limits !== undefined && dispatchesInLastDay(memory, limits.nowMs) >= limits.maxDispatchesPerDay;
  const trigger = (reason: RatchetReason): RatchetDecision => {
    if (capReached) return result('WAITING', 'daily_cap');
    return fixer.otherSessionWorking ? result('WAITING', 'session_busy') : result('TRIGGER_FIXER', reason);
  };

  const sameAsLastDispatch = key === memory.lastDispatchKey;
  // Checked before "actionable": the dispatch may have been for review activity that is no longer new
  // (reviewLastCheckedAt moved at dispatch), yet the fixer never got to address it.
  if (sameAsLastDispatch && memory.dispatchOutcome === 'DIED') {
    return memory.dispatchRetryCount < MAX_FIXER_RETRIES
      ? trigger('retry_after_fixer_died')
      : result('WAITING', 'retries_exhausted');
  }

  const reason = actionableReason(memory, snapshot);
  if (reason === null) return result('WAITING', 'clean');
  if (sameAsLastDispatch) return result('WAITING', 'stalled');
  if (memory.dispatchKeys.includes(key)) return result('WAITING', 'already_dispatched');
  return trigger(reason);
}

function actionableReason(memory: RatchetMemory, snapshot: RatchetSnapshot): RatchetReason | null {
  if (snapshot.ciStatus === 'FAILURE') return 'ci_failed';
  if (snapshot.hasMergeConflict) return 'merge_conflict';
  if (isLaterThan(snapshot.latestReviewActivityAt, memory.reviewLastCheckedAt)) return 'review_feedback';
  return null;
}

/**
 * The memory after acting on a decision. A dispatch records its key (the dedup key) and the newest review
 * activity it covers; the snapshot's own activity time is used rather than "now" so a comment written
 * between the fetch and the dispatch still counts as new on the next poll. With `nowMs` (the caller's
 * clock), the dispatch time is recorded for the daily cap and times older than 24 h are dropped.
 */
export function applyDecision(
  memory: RatchetMemory,
  decision: RatchetDecision,
  snapshot: RatchetSnapshot | null,
  nowMs?: number,
): RatchetMemory {
  if (decision.action === 'TRIGGER_FIXER' && decision.key !== null) {
    const isRetry = decision.reason === 'retry_after_fixer_died';
    const keys = memory.dispatchKeys.filter((k) => k !== decision.key);
    keys.push(decision.key);
    const times = memory.dispatchTimesMs ?? [];
    return {
      ...memory,
      lastDispatchKey: decision.key,
      dispatchKeys: keys.slice(-MAX_REMEMBERED_DISPATCH_KEYS),
      reviewLastCheckedAt: laterOf(memory.reviewLastCheckedAt, snapshot?.latestReviewActivityAt ?? null),
      dispatchOutcome: 'RUNNING',
      dispatchRetryCount: isRetry ? memory.dispatchRetryCount + 1 : 0,
      dispatchStalled: false,
      dispatchTimesMs:
        nowMs === undefined
          ? times
          : [...times.filter((at) => at > nowMs - RATCHET_DISPATCH_WINDOW_MS), nowMs].slice(
              -MAX_REMEMBERED_DISPATCH_TIMES,
            ),
    };
  }
  if (decision.reason === 'stalled' || decision.reason === 'retries_exhausted') {
    return memory.dispatchStalled ? memory : { ...memory, dispatchStalled: true };
  }
  return memory;
}

/**
 * Records how the last dispatched fixer ended; only a still-running dispatch can be settled. A dispatch
 * left RUNNING while no fixer is alive counts as completed (never retried): only a reported death retries.
 */
export function settleFixer(memory: RatchetMemory, outcome: 'COMPLETED' | 'DIED'): RatchetMemory {
  if (memory.dispatchOutcome !== 'RUNNING') return memory;
  return { ...memory, dispatchOutcome: outcome };
}

/**
 * A decision as a watcher compares it: what it did, why, on which key, and the state it showed. The reason
 * is a plain string because it comes back from storage (a workflow's state), where it was written by us.
 */
export type DecisionOutline = Pick<RatchetDecision, 'action' | 'key' | 'state'> & { readonly reason: string };

/**
 * Whether a poll would change nothing the caller holds: the same decision as `previous` (so the same state
 * shown and nothing to do) and a memory left as it is. A loop that polls far more often than anything
 * happens (a watcher between two decisions) reports only the polls that are not quiet. Never quiet when the
 * decision acts (a fixer to start, a PR that ended), so no quiet poll can hide work.
 */
export function isQuietPoll(
  memory: RatchetMemory,
  previous: DecisionOutline,
  snapshot: RatchetSnapshot | null,
  limits: RatchetLimits,
): boolean {
  const decision = decide(memory, snapshot, { active: false }, limits);
  if (decision.action !== 'WAITING') return false;
  if (decision.reason === 'pr_closed') return false;
  const same =
    decision.action === previous.action &&
    decision.reason === previous.reason &&
    decision.key === previous.key &&
    decision.state === previous.state;
  return same && applyDecision(memory, decision, snapshot, limits.nowMs) === memory;
}
