import assert from 'node:assert/strict';
import {
  applyUsageEvent,
  isExhausted,
  MAX_SLICES_PER_TICK,
  meterIdentifierOf,
  newUsageState,
  nextUsageStep,
  SLICE_MS,
  sliceKey,
  type UsageEvent,
  type UsageState,
} from '../../workflows/usage/state.js';
import { applyVmEvent, isMeteredRunning, newVmState, toVmView } from '../../workflows/vm/state.js';

const GRACE = 3 * 24 * 3600 * 1000;
const LINGER = 15 * 60_000;
/** 2025-11-10T00:00:00Z: in the middle of a calendar month. */
const T0 = Date.UTC(2025, 10, 10);
const MIN = 60_000;

const loaded = (usedMinutes = 0, plan: 'FREE' | 'PRO' | 'TEAM' = 'FREE', at = T0): UsageState =>
  applyUsageEvent(
    newUsageState('u1', at),
    {
      type: 'LOADED',
      account: { plan, paymentFailedAtMs: null },
      period: newUsageState('u1', at).period,
      usedMinutes,
      unreported: [],
      moreUnreported: false,
    },
    at,
  );

const step = (state: UsageState, nowMs: number, inboxEmpty = true) =>
  nextUsageStep({ state, nowMs, gracePeriodMs: GRACE, lingerMs: LINGER, historyIsLong: false, inboxEmpty });

/** Applies TICK (and records every slice) until the step is no longer a tick or a record. */
function settle(state: UsageState, nowMs: number): UsageState {
  let s = state;
  for (let i = 0; i < 10_000; i++) {
    const next = step(s, nowMs);
    if (next.kind === 'tick') s = applyUsageEvent(s, { type: 'TICK' }, nowMs);
    else if (next.kind === 'record')
      s = applyUsageEvent(s, { type: 'SLICES_RECORDED', keys: next.slices.map((x) => x.key) }, nowMs);
    else return s;
  }
  throw new Error('did not settle');
}

const on = (vmId: string, atMs: number): UsageEvent => ({ type: 'VM_TRANSITION', vmId, running: true, atMs });
const off = (vmId: string, atMs: number): UsageEvent => ({
  type: 'VM_TRANSITION',
  vmId,
  running: false,
  atMs,
});

describe('usage state (pure)', () => {
  it('slices running time per whole minute, and closes a last short slice at the stop as one minute', () => {
    let s = applyUsageEvent(loaded(), on('vm-1', T0), T0);
    s = settle(s, T0 + 3 * MIN + 20_000);
    assert.equal(s.slices.length, 3, 'three whole minutes so far');
    assert.equal(s.usedMinutes, 3);
    s = applyUsageEvent(s, off('vm-1', T0 + 3 * MIN + 20_000), T0 + 3 * MIN + 20_000);
    s = settle(s, T0 + 3 * MIN + 20_000);
    assert.equal(s.running, null);
    assert.deepEqual(
      s.slices.map((x) => [x.key, x.seconds, x.minutes]),
      [
        [sliceKey('u1', 'vm-1', T0), 60, 1],
        [sliceKey('u1', 'vm-1', T0 + MIN), 60, 1],
        [sliceKey('u1', 'vm-1', T0 + 2 * MIN), 60, 1],
        [sliceKey('u1', 'vm-1', T0 + 3 * MIN), 20, 1],
      ],
    );
    assert.equal(s.usedMinutes, 4, 'a started minute counts');
    assert.equal(s.slices[0]?.key, 'usage:u1:vm-1:1762732800000', 'the key is made of what the slice is');
    assert.equal(meterIdentifierOf(s.slices[0] ?? { key: '', vmId: '', startMs: 0 }), s.slices[0]?.key);
    const long = { key: sliceKey('u'.repeat(128), 'vm-1', T0), vmId: 'vm-1', startMs: T0 };
    assert.equal(meterIdentifierOf(long), `usage:vm-1:${T0}`, "within Stripe's 100 characters");
  });

  it('applies a transition once: a retried signal, a restart of the same VM and a late older one change nothing', () => {
    let s = applyUsageEvent(loaded(), on('vm-1', T0), T0);
    const again = applyUsageEvent(s, on('vm-1', T0), T0 + 1000);
    assert.deepEqual(again.running, s.running, 'the same start twice');
    const restarted = applyUsageEvent(s, on('vm-1', T0 + 30_000), T0 + 30_000);
    assert.equal(restarted.running?.sliceStartMs, T0, 'a restart of the same VM keeps metering');
    s = applyUsageEvent(s, off('vm-1', T0 + 90_000), T0 + 90_000);
    s = settle(s, T0 + 90_000);
    const slices = s.slices.length;
    s = applyUsageEvent(s, off('vm-1', T0 + 90_000), T0 + 91_000);
    s = applyUsageEvent(s, on('vm-1', T0), T0 + 92_000);
    s = settle(s, T0 + 92_000);
    assert.equal(s.running, null, 'a stale start (older than the stop) is ignored');
    assert.equal(s.slices.length, slices, 'a repeated stop makes no slice');
  });

  it('closes the open slice at the end of the period and counts the new period from nothing', () => {
    const end = Date.UTC(2025, 11, 1);
    let s = loaded(500, 'FREE', end - 90_000);
    s = applyUsageEvent(s, on('vm-1', end - 90_000), end - 90_000);
    s = settle(s, end + 2 * MIN);
    const bounds = s.slices.map((x) => [x.startMs - end, x.endMs - end, x.minutes]);
    assert.deepEqual(bounds, [
      [-90_000, -30_000, 1],
      [-30_000, 0, 1],
      [0, 60_000, 1],
      [60_000, 120_000, 1],
    ]);
    assert.equal(s.period.startMs, end, 'the new period');
    assert.equal(s.usedMinutes, 2, "only the new period's minutes");
  });

  it('is exhausted exactly at the limit: the VM is held, and an upgrade releases it', () => {
    let s = applyUsageEvent(loaded(598), on('vm-1', T0), T0);
    s = settle(s, T0 + MIN);
    assert.equal(s.usedMinutes, 599);
    assert.equal(isExhausted(s, GRACE, T0 + MIN), false, 'one below the limit');
    s = settle(s, T0 + 2 * MIN);
    assert.equal(s.usedMinutes, 600);
    assert.equal(isExhausted(s, GRACE, T0 + 2 * MIN), true, 'at the limit');
    const hold = step(s, T0 + 2 * MIN);
    assert.deepEqual(hold, { kind: 'hold', usedMinutes: 600, limitMinutes: 600 });
    s = applyUsageEvent(s, { type: 'HOLD_SENT', usedMinutes: 600, limitMinutes: 600 }, T0 + 2 * MIN);
    assert.notEqual(step(s, T0 + 2 * MIN).kind, 'hold', 'held once');
    s = applyUsageEvent(
      s,
      { type: 'PLAN_CHANGED', plan: 'PRO', paymentFailedAtMs: null, changedAtMs: 5 },
      T0,
    );
    assert.deepEqual(step(s, T0 + 2 * MIN), { kind: 'lift', resume: true }, 'an upgrade restarts a held VM');
    const older = applyUsageEvent(
      s,
      { type: 'PLAN_CHANGED', plan: 'FREE', paymentFailedAtMs: null, changedAtMs: 4 },
      T0,
    );
    assert.equal(older.account?.plan, 'PRO', 'an older plan change arriving late is ignored');
  });

  it('holds until the period ends, then lifts the hold without starting the VM', () => {
    const end = Date.UTC(2025, 11, 1);
    let s = loaded(600, 'FREE', end - 10 * MIN);
    assert.equal(step(s, end - 10 * MIN).kind, 'hold');
    s = applyUsageEvent(s, { type: 'HOLD_SENT', usedMinutes: 600, limitMinutes: 600 }, end - 10 * MIN);
    assert.deepEqual(step(s, end - MIN), { kind: 'wait', untilMs: end }, 'the period end is the deadline');
    const short = nextUsageStep({
      state: s,
      nowMs: end - 2 * MIN,
      gracePeriodMs: GRACE,
      lingerMs: MIN,
      historyIsLong: false,
      inboxEmpty: true,
    });
    assert.deepEqual(short, { kind: 'wait', untilMs: end }, 'a holding actor does not end, however quiet');
    s = applyUsageEvent(s, { type: 'TICK' }, end);
    assert.deepEqual([s.period.startMs, s.usedMinutes], [end, 0]);
    assert.deepEqual(step(s, end), { kind: 'lift', resume: false }, 'a new period allows, does not start');
  });

  it('keeps paid limits for the grace period after a failed payment, then Free, waking at the end of it', () => {
    const failedAt = T0 - 1000;
    let s = loaded(700, 'PRO');
    s = applyUsageEvent(
      s,
      { type: 'PLAN_CHANGED', plan: 'PRO', paymentFailedAtMs: failedAt, changedAtMs: 1 },
      T0,
    );
    assert.equal(isExhausted(s, GRACE, T0), false, 'Pro limits during the grace period');
    const wait = nextUsageStep({
      state: s,
      nowMs: T0,
      gracePeriodMs: GRACE,
      lingerMs: 2 * GRACE,
      historyIsLong: false,
      inboxEmpty: true,
    });
    assert.equal(wait.kind === 'wait' && wait.untilMs, failedAt + GRACE, 'wakes when the grace period ends');
    assert.equal(step(s, failedAt + GRACE).kind, 'hold', 'Free limits after it: 700 >= 600');
  });

  it('reads back what the database holds, and carries only unwritten slices across continue-as-new', () => {
    let s = applyUsageEvent(loaded(10), on('vm-1', T0), T0);
    s = applyUsageEvent(s, { type: 'TICK' }, T0 + 2 * MIN + 1);
    assert.equal(s.slices.length, 2);
    const first = s.slices[0]?.key ?? '';
    s = applyUsageEvent(s, { type: 'SLICES_RECORDED', keys: [first] }, T0 + 2 * MIN + 1);
    const carried = applyUsageEvent(s, { type: 'CARRY_OVER' }, T0 + 2 * MIN + 1);
    assert.equal(carried.loaded, false, 'the next run reads the database first');
    assert.deepEqual(
      carried.slices.map((x) => x.key),
      [s.slices[1]?.key],
      'the recorded one is in usage_records',
    );
    const reloaded = applyUsageEvent(
      carried,
      {
        type: 'LOADED',
        account: { plan: 'FREE', paymentFailedAtMs: null },
        period: carried.period,
        usedMinutes: 11,
        unreported: [{ key: first, vmId: 'vm-1', startMs: T0, endMs: T0 + MIN, seconds: 60, minutes: 1 }],
        moreUnreported: false,
      },
      T0 + 2 * MIN + 2,
    );
    assert.equal(reloaded.usedMinutes, 12, 'recorded 11 plus the unwritten one');
    assert.deepEqual(reloaded.slices.map((x) => [x.key, x.recorded]).sort(), [
      [first, true],
      [s.slices[1]?.key, false],
    ]);
  });

  it('works through a long backlog in bounded steps, and a transition waits until the last stop is sliced', () => {
    let s = applyUsageEvent(loaded(0, 'TEAM'), on('vm-1', T0), T0);
    const later = T0 + 5 * 3600 * 1000;
    s = applyUsageEvent(s, off('vm-1', later), later);
    s = applyUsageEvent(s, { type: 'TICK' }, later);
    assert.equal(s.slices.length, MAX_SLICES_PER_TICK, 'one step makes a bounded number of slices');
    assert.ok(s.running?.stopAtMs, 'still closing');
    const start = on('vm-2', later + 1000);
    s = settle(s, later + 1000);
    assert.equal(s.running, null);
    assert.equal(s.usedMinutes, 300);
    s = applyUsageEvent(s, start, later + 1000);
    assert.equal(s.running?.vmId, 'vm-2');
  });

  it('ends only after a linger with nothing running, held, unwritten or queued', () => {
    let s = applyUsageEvent(loaded(), on('vm-1', T0), T0);
    s = applyUsageEvent(s, off('vm-1', T0 + 10_000), T0 + 10_000);
    s = settle(s, T0 + 10_000);
    assert.equal(step(s, T0 + 10_000).kind, 'report');
    s = applyUsageEvent(s, { type: 'SLICE_REPORTED', key: s.slices[0]?.key ?? '' }, T0 + 11_000);
    const waiting = step(s, T0 + 11_000);
    assert.deepEqual(waiting, { kind: 'wait', untilMs: T0 + 11_000 + LINGER });
    assert.equal(step(s, T0 + 11_000 + LINGER, false).kind, 'wait', 'a queued message keeps it');
    assert.equal(step(s, T0 + 11_000 + LINGER).kind, 'end');
  });

  it('backs off a failed report and keeps the slice', () => {
    let s = applyUsageEvent(loaded(), on('vm-1', T0), T0);
    s = applyUsageEvent(s, off('vm-1', T0 + 10_000), T0 + 10_000);
    s = settle(s, T0 + 10_000);
    const key = s.slices[0]?.key ?? '';
    s = applyUsageEvent(s, { type: 'SLICE_REPORT_FAILED', key }, T0 + 11_000);
    s = applyUsageEvent(s, { type: 'SLICE_REPORT_FAILED', key }, T0 + 11_000);
    assert.equal(s.slices[0]?.retryAtMs, T0 + 11_000 + 10_000);
    assert.deepEqual(step(s, T0 + 12_000), { kind: 'wait', untilMs: T0 + 21_000 });
    assert.equal(step(s, T0 + 21_000).kind, 'report');
  });

  it('never meters from the future or from absurdly far back', () => {
    const s = applyUsageEvent(loaded(), on('vm-1', T0 + 10 * MIN), T0);
    assert.equal(s.running?.sliceStartMs, T0, 'clamped to now');
    const old = applyUsageEvent(loaded(), on('vm-1', 0), T0);
    assert.equal(old.running?.sliceStartMs, T0 - 6 * 3600 * 1000);
    assert.equal(SLICE_MS, MIN);
  });

  it("the VM's quota hold is shown in its view until released, whatever the VM's status", () => {
    const vm = newVmState('u1', 'vm-1', 0);
    assert.equal(isMeteredRunning(vm), false, 'provisioning is not running');
    const held = applyVmEvent(
      vm,
      {
        type: 'QUOTA_HOLD',
        hold: { message: 'spent', resume: true, usedMinutes: 600, limitMinutes: 600, untilMs: 100 },
      },
      5,
    );
    assert.deepEqual(
      [toVmView(held).suspendReason, toVmView(held).suspendMessage],
      ['quota_exhausted', 'spent'],
    );
    assert.equal(held.updatedAtMs, 5, 'a hold is a change the read model gets');
    const released = applyVmEvent(held, { type: 'QUOTA_RELEASED' }, 6);
    assert.deepEqual([toVmView(released).suspendReason, toVmView(released).suspendMessage], [null, null]);
  });
});
