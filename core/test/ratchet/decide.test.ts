import assert from 'node:assert/strict';
import {
  applyDecision,
  DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY,
  decide,
  dispatchesInLastDay,
  type FixerStatus,
  initialRatchetMemory,
  MAX_FIXER_RETRIES,
  MAX_REMEMBERED_DISPATCH_KEYS,
  type RatchetAction,
  type RatchetMemory,
  type RatchetReason,
  type RatchetSnapshot,
  settleFixer,
  snapshotKey,
} from '../../src/ratchet/index.js';
import { failingSnapshot, snapshot } from './snapshots.js';

const idle: FixerStatus = { active: false };
const enabled = initialRatchetMemory({ enabled: true });

function dispatched(snap: RatchetSnapshot, extra: Partial<RatchetMemory> = {}): RatchetMemory {
  const key = snapshotKey(snap);
  return initialRatchetMemory({
    enabled: true,
    lastDispatchKey: key,
    dispatchKeys: [key],
    reviewLastCheckedAt: snap.latestReviewActivityAt,
    dispatchOutcome: 'COMPLETED',
    ...extra,
  });
}

describe('ratchet / decide', () => {
  type Row = {
    label: string;
    memory: RatchetMemory;
    snap: RatchetSnapshot | null;
    fixer?: FixerStatus;
    action: RatchetAction;
    reason: RatchetReason;
  };
  const red = failingSnapshot('10');
  const reviewed = snapshot({ hasChangesRequested: true, latestReviewActivityAt: '2024-01-02T05:00:00Z' });
  const commented = snapshot({ latestReviewActivityAt: '2024-01-02T05:00:00Z' });
  const table: Row[] = [
    {
      label: 'ratchet off',
      memory: initialRatchetMemory(),
      snap: red,
      action: 'DISABLED',
      reason: 'disabled',
    },
    { label: 'no PR yet', memory: enabled, snap: null, action: 'WAITING', reason: 'no_pr' },
    {
      label: 'merged',
      memory: enabled,
      snap: snapshot({ state: 'MERGED' }),
      action: 'COMPLETED',
      reason: 'merged',
    },
    {
      label: 'closed',
      memory: enabled,
      snap: snapshot({ state: 'CLOSED' }),
      action: 'WAITING',
      reason: 'pr_closed',
    },
    {
      label: 'fixer alive',
      memory: enabled,
      snap: red,
      fixer: { active: true },
      action: 'FIXER_ACTIVE',
      reason: 'fixer_active',
    },
    {
      label: 'CI pending',
      memory: enabled,
      snap: snapshot({ ciStatus: 'PENDING', hasChangesRequested: true }),
      action: 'WAITING',
      reason: 'ci_running',
    },
    {
      label: 'CI unknown',
      memory: enabled,
      snap: snapshot({ ciStatus: 'UNKNOWN' }),
      action: 'WAITING',
      reason: 'ci_running',
    },
    { label: 'green, nothing new', memory: enabled, snap: snapshot(), action: 'WAITING', reason: 'clean' },
    { label: 'new CI failure', memory: enabled, snap: red, action: 'TRIGGER_FIXER', reason: 'ci_failed' },
    {
      label: 'conflict while CI runs',
      memory: enabled,
      snap: snapshot({ ciStatus: 'PENDING', hasMergeConflict: true }),
      action: 'TRIGGER_FIXER',
      reason: 'merge_conflict',
    },
    {
      label: 'changes requested',
      memory: enabled,
      snap: reviewed,
      action: 'TRIGGER_FIXER',
      reason: 'review_feedback',
    },
    {
      label: 'new comment on green PR',
      memory: enabled,
      snap: commented,
      action: 'TRIGGER_FIXER',
      reason: 'review_feedback',
    },
    {
      label: 'comment already handed to a fixer',
      memory: initialRatchetMemory({ enabled: true, reviewLastCheckedAt: '2024-01-02T05:00:00Z' }),
      snap: commented,
      action: 'WAITING',
      reason: 'clean',
    },
    {
      label: 'another session is mid-turn',
      memory: enabled,
      snap: red,
      fixer: { active: false, otherSessionWorking: true },
      action: 'WAITING',
      reason: 'session_busy',
    },
    {
      label: 'same failure after a fixer finished',
      memory: dispatched(red),
      snap: red,
      action: 'WAITING',
      reason: 'stalled',
    },
    {
      label: 'same failure after a fixer died',
      memory: dispatched(red, { dispatchOutcome: 'DIED' }),
      snap: red,
      action: 'TRIGGER_FIXER',
      reason: 'retry_after_fixer_died',
    },
    {
      label: 'died again after the last retry',
      memory: dispatched(red, { dispatchOutcome: 'DIED', dispatchRetryCount: MAX_FIXER_RETRIES }),
      snap: red,
      action: 'WAITING',
      reason: 'retries_exhausted',
    },
    {
      label: 'retry waits for a busy session',
      memory: dispatched(red, { dispatchOutcome: 'DIED' }),
      snap: red,
      fixer: { active: false, otherSessionWorking: true },
      action: 'WAITING',
      reason: 'session_busy',
    },
    {
      label: 'retry of a comment-only dispatch (no longer new, never addressed)',
      memory: dispatched(commented, { dispatchOutcome: 'DIED' }),
      snap: commented,
      action: 'TRIGGER_FIXER',
      reason: 'retry_after_fixer_died',
    },
    {
      label: 'failure in a new run after a fixer',
      memory: dispatched(red),
      snap: failingSnapshot('11'),
      action: 'TRIGGER_FIXER',
      reason: 'ci_failed',
    },
    {
      label: 'a situation seen two dispatches ago',
      memory: (() => {
        const a = dispatched(red);
        const conflicted = snapshotKey({ ...red, hasMergeConflict: true });
        return { ...a, lastDispatchKey: conflicted, dispatchKeys: [...a.dispatchKeys, conflicted] };
      })(),
      snap: red,
      action: 'WAITING',
      reason: 'already_dispatched',
    },
    {
      label: 'changes still requested, nothing new since the last dispatch (waiting for re-review)',
      memory: dispatched(reviewed),
      snap: { ...reviewed, headSha: 'b'.repeat(40) },
      action: 'WAITING',
      reason: 'clean',
    },
    {
      label: 'a standing CHANGES_REQUESTED decision alone (its review already handled elsewhere)',
      memory: initialRatchetMemory({ enabled: true, reviewLastCheckedAt: '2024-01-02T05:00:00Z' }),
      snap: reviewed,
      action: 'WAITING',
      reason: 'clean',
    },
    {
      label: 'a new review after the fix',
      memory: dispatched(reviewed),
      snap: { ...reviewed, headSha: 'b'.repeat(40), latestReviewActivityAt: '2024-01-03T05:00:00Z' },
      action: 'TRIGGER_FIXER',
      reason: 'review_feedback',
    },
    {
      label: 'the conflict is back after the fixer pushed (a new head)',
      memory: dispatched(snapshot({ hasMergeConflict: true })),
      snap: snapshot({ hasMergeConflict: true, headSha: 'c'.repeat(40) }),
      action: 'TRIGGER_FIXER',
      reason: 'merge_conflict',
    },
    {
      label: 'a new push failing the same check in the same way',
      memory: dispatched(red),
      snap: { ...red, headSha: 'd'.repeat(40) },
      action: 'TRIGGER_FIXER',
      reason: 'ci_failed',
    },
    {
      label: 'a dispatch left RUNNING with no live fixer is not retried',
      memory: dispatched(red, { dispatchOutcome: 'RUNNING' }),
      snap: red,
      action: 'WAITING',
      reason: 'stalled',
    },
  ];

  for (const row of table) {
    it(`${row.label} → ${row.action} (${row.reason})`, () => {
      const decision = decide(row.memory, row.snap, row.fixer ?? idle);
      assert.equal(decision.action, row.action);
      assert.equal(decision.reason, row.reason);
      assert.equal(decision.key, row.snap === null ? null : snapshotKey(row.snap));
    });
  }

  it('reports the derived state with every decision', () => {
    assert.equal(decide(enabled, failingSnapshot('1'), idle).state, 'CI_FAILED');
    // A review fix waiting for re-review stays REVIEW_PENDING while it waits.
    const waiting = decide(dispatched(reviewed), reviewed, idle);
    assert.equal(waiting.state, 'REVIEW_PENDING');
    assert.equal(waiting.reason, 'clean');
    assert.equal(decide(enabled, snapshot({ state: 'MERGED' }), idle).state, 'MERGED');
    assert.equal(decide(initialRatchetMemory(), failingSnapshot('1'), idle).state, 'IDLE');
  });
});

describe('ratchet / applyDecision and settleFixer', () => {
  it('a dispatch records the dedup key, the covered review activity and a running outcome', () => {
    const snap = failingSnapshot('10', { latestReviewActivityAt: '2024-01-02T05:00:00Z' });
    const decision = decide(enabled, snap, idle);
    const after = applyDecision(enabled, decision, snap);
    assert.equal(after.lastDispatchKey, snapshotKey(snap));
    assert.deepEqual(after.dispatchKeys, [snapshotKey(snap)]);
    assert.equal(after.reviewLastCheckedAt, '2024-01-02T05:00:00Z');
    assert.equal(after.dispatchOutcome, 'RUNNING');
    assert.equal(after.dispatchRetryCount, 0);
    assert.equal(decide(after, snap, { active: true }).action, 'FIXER_ACTIVE');
  });

  it('never moves the review watermark backwards', () => {
    const memory = initialRatchetMemory({ enabled: true, reviewLastCheckedAt: '2024-02-01T00:00:00Z' });
    const snap = failingSnapshot('10', { latestReviewActivityAt: '2024-01-01T00:00:00Z' });
    const after = applyDecision(memory, decide(memory, snap, idle), snap);
    assert.equal(after.reviewLastCheckedAt, '2024-02-01T00:00:00Z');
  });

  it('retries a dying fixer exactly MAX_FIXER_RETRIES times, then stalls', () => {
    const snap = failingSnapshot('10');
    let memory: RatchetMemory = enabled;
    const actions: string[] = [];
    for (let i = 0; i < MAX_FIXER_RETRIES + 3; i++) {
      const decision = decide(memory, snap, idle);
      actions.push(decision.reason);
      memory = applyDecision(memory, decision, snap);
      memory = settleFixer(memory, 'DIED');
    }
    assert.deepEqual(actions, [
      'ci_failed',
      'retry_after_fixer_died',
      'retry_after_fixer_died',
      'retry_after_fixer_died',
      'retries_exhausted',
      'retries_exhausted',
    ]);
    assert.equal(memory.dispatchStalled, true);
  });

  it('a new dispatch clears the stall and the retry count', () => {
    const red = failingSnapshot('10');
    const stalled = dispatched(red, {
      dispatchStalled: true,
      dispatchRetryCount: 3,
      dispatchOutcome: 'DIED',
    });
    const next = failingSnapshot('11');
    const after = applyDecision(stalled, decide(stalled, next, idle), next);
    assert.equal(after.dispatchStalled, false);
    assert.equal(after.dispatchRetryCount, 0);
  });

  it('settles only a running dispatch', () => {
    const running = initialRatchetMemory({ enabled: true, dispatchOutcome: 'RUNNING' });
    assert.equal(settleFixer(running, 'DIED').dispatchOutcome, 'DIED');
    const done = settleFixer(running, 'COMPLETED');
    assert.equal(settleFixer(done, 'DIED').dispatchOutcome, 'COMPLETED');
  });

  it('remembers a bounded number of dispatch keys', () => {
    let memory: RatchetMemory = enabled;
    for (let run = 0; run < MAX_REMEMBERED_DISPATCH_KEYS + 10; run++) {
      const snap = failingSnapshot(String(run));
      memory = settleFixer(applyDecision(memory, decide(memory, snap, idle), snap), 'COMPLETED');
    }
    assert.equal(memory.dispatchKeys.length, MAX_REMEMBERED_DISPATCH_KEYS);
    assert.equal(memory.dispatchKeys.at(-1), memory.lastDispatchKey);
  });

  it('an imported desktop key alone still deduplicates', () => {
    const red = failingSnapshot('10');
    const imported = initialRatchetMemory({ enabled: true, lastDispatchKey: snapshotKey(red) });
    assert.deepEqual(imported.dispatchKeys, [snapshotKey(red)]);
    assert.notEqual(decide(imported, red, idle).action, 'TRIGGER_FIXER');
  });
});

describe('ratchet / daily cap', () => {
  const day = 24 * 60 * 60 * 1000;
  const t0 = Date.parse('2024-03-01T00:00:00Z');
  const limits = (nowMs: number, maxDispatchesPerDay = 3) => ({ nowMs, maxDispatchesPerDay });

  it('applyDecision records dispatch times (retries included) and drops those older than 24 h', () => {
    let memory: RatchetMemory = initialRatchetMemory({ enabled: true });
    assert.deepEqual(memory.dispatchTimesMs, []);
    const first = failingSnapshot('1');
    memory = applyDecision(memory, decide(memory, first, idle, limits(t0)), first, t0);
    assert.deepEqual(memory.dispatchTimesMs, [t0]);
    memory = settleFixer(memory, 'DIED');
    const retry = decide(memory, first, idle, limits(t0 + 1000));
    assert.equal(retry.reason, 'retry_after_fixer_died');
    memory = applyDecision(memory, retry, first, t0 + 1000);
    assert.deepEqual(memory.dispatchTimesMs, [t0, t0 + 1000]);
    assert.equal(dispatchesInLastDay(memory, t0 + 2000), 2);
    assert.equal(dispatchesInLastDay(memory, t0 + day + 500), 1, 'the first one left the window');

    const later = failingSnapshot('2');
    const nowMs = t0 + day + 500;
    memory = applyDecision(memory, decide(memory, later, idle, limits(nowMs)), later, nowMs);
    assert.deepEqual(memory.dispatchTimesMs, [t0 + 1000, nowMs], 'times older than 24 h are trimmed');
  });

  it('waits with daily_cap once the cap is reached, for new keys and retries alike, until the window moves', () => {
    let memory: RatchetMemory = initialRatchetMemory({ enabled: true });
    const reasons: string[] = [];
    for (let run = 0; run < 5; run++) {
      const snap = failingSnapshot(String(run));
      const nowMs = t0 + run * 60_000;
      const decision = decide(memory, snap, idle, limits(nowMs));
      reasons.push(decision.reason);
      memory = settleFixer(applyDecision(memory, decision, snap, nowMs), 'COMPLETED');
    }
    assert.deepEqual(reasons, ['ci_failed', 'ci_failed', 'ci_failed', 'daily_cap', 'daily_cap']);
    assert.equal(memory.dispatchTimesMs.length, 3);

    const died = dispatched(failingSnapshot('9'), {
      dispatchOutcome: 'DIED',
      dispatchTimesMs: memory.dispatchTimesMs,
    });
    const capped = decide(died, failingSnapshot('9'), idle, limits(t0 + 10 * 60_000));
    assert.equal(capped.action, 'WAITING');
    assert.equal(capped.reason, 'daily_cap', 'a retry counts against the cap too');

    const nextDay = decide(memory, failingSnapshot('7'), idle, limits(t0 + day + 1));
    assert.equal(nextDay.action, 'TRIGGER_FIXER');
  });

  it('without limits there is no cap, and the default cap is 10', () => {
    const memory = initialRatchetMemory({
      enabled: true,
      dispatchTimesMs: Array.from({ length: 50 }, (_, i) => t0 + i),
    });
    assert.equal(decide(memory, failingSnapshot('x'), idle).action, 'TRIGGER_FIXER');
    assert.equal(DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY, 10);
    const nine = initialRatchetMemory({
      enabled: true,
      dispatchTimesMs: Array.from({ length: 9 }, () => t0),
    });
    const cap = { nowMs: t0 + 1, maxDispatchesPerDay: DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY };
    assert.equal(decide(nine, failingSnapshot('x'), idle, cap).action, 'TRIGGER_FIXER');
    const ten = { ...nine, dispatchTimesMs: [...nine.dispatchTimesMs, t0] };
    assert.equal(decide(ten, failingSnapshot('x'), idle, cap).reason, 'daily_cap');
  });

  it('a dispatch without a clock records no time (the old call form)', () => {
    const memory = initialRatchetMemory({ enabled: true });
    const snap = failingSnapshot('1');
    assert.deepEqual(applyDecision(memory, decide(memory, snap, idle), snap).dispatchTimesMs, []);
  });
});
