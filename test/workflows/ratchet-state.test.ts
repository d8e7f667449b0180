/**
 * The ratchet actor's pure transitions (workflows/ratchet/state.ts) over core's real decide/applyDecision:
 * what a poll's answer does to the state and what the actor does next, without Temporal or a VM.
 */
import assert from 'node:assert/strict';
import { initialRatchetMemory, isQuietPoll, type RatchetSnapshot } from '@factory-factory/core/ratchet';
import { failingSnapshot, snapshot } from '../../core/test/ratchet/snapshots.js';
import {
  CarriedRatchetStateSchema,
  defaultRatchetSettings,
  RatchetActorInputSchema,
  type RatchetSettings,
  RatchetViewSchema,
} from '../../workflows/ratchet/messages.js';
import {
  applyPollOutcome,
  enabledSet,
  fixerChecked,
  fixerDispatched,
  fixerSettled,
  fixerUnreachable,
  newRatchetState,
  nextRatchetStep,
  type PendingRatchetRequests,
  type RatchetActorState,
  type RatchetPollOutcome,
  ratchetEnded,
  toRatchetView,
  wakesSuspendedVm,
  watchBaseline,
} from '../../workflows/ratchet/state.js';
import { applyVmEvent, idleDeadlineMs, newVmState, type VmState } from '../../workflows/vm/state.js';

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const settings: RatchetSettings = { ...defaultRatchetSettings };
const noRequests: PendingRatchetRequests = { stopFixer: false, wake: false };

function fresh(overrides: Partial<ReturnType<typeof initialRatchetMemory>> = {}): RatchetActorState {
  return newRatchetState({
    workspaceId: 'ws-1',
    userId: 'user-1',
    memory: initialRatchetMemory({ enabled: true, ...overrides }),
    nowMs: T0,
  });
}

let dispatchSeq = 0;
function poll(
  state: RatchetActorState,
  outcome: RatchetPollOutcome,
  nowMs: number,
  options: { wokeVm?: boolean; settings?: RatchetSettings } = {},
) {
  return applyPollOutcome(state, outcome, {
    nowMs,
    settings: options.settings ?? settings,
    dispatchId: `dispatch-${++dispatchSeq}`,
    wokeVm: options.wokeVm ?? false,
  });
}

const seen = (s: RatchetSnapshot | null): RatchetPollOutcome => ({ kind: 'snapshot', snapshot: s });

function step(state: RatchetActorState, nowMs: number, pending = noRequests, historyIsLong = false) {
  return nextRatchetStep({ state, pending, nowMs, settings, historyIsLong });
}

/** Dispatched, taken by the VM as `sessionId`, and ended with `outcome` at `atMs`. */
function runFixer(state: RatchetActorState, outcome: 'COMPLETED' | 'DIED', atMs: number): RatchetActorState {
  const taken = fixerDispatched(state, `session-${state.activeFixer?.dispatchId}`, atMs);
  return fixerChecked(taken, { outcome, detail: null }, atMs + 1);
}

describe('ratchet actor state (pure)', () => {
  it('starts with a poll due at once, and dispatches exactly one fixer for a CI failure', () => {
    const start = fresh();
    assert.deepEqual(step(start, T0), { kind: 'poll' });

    const failure = failingSnapshot('100');
    const applied = poll(start, seen(failure), T0 + 10);
    assert.equal(applied.next.kind, 'dispatch');
    assert.ok(applied.next.kind === 'dispatch' && applied.next.prompt.includes('pull request #7'));
    const s = applied.state;
    assert.equal(s.lastDecision?.action, 'TRIGGER_FIXER');
    assert.equal(s.lastDecision?.reason, 'ci_failed');
    assert.equal(s.ratchetState, 'CI_FAILED');
    assert.ok(s.activeFixer, 'the dispatch is recorded before the VM is asked');
    assert.equal(s.activeFixer.sessionId, null);
    assert.equal(s.activeFixer.dispatchId, `dispatch-${dispatchSeq}`);
    assert.equal(s.activeFixer.attempt, 1);
    assert.equal(s.memory.lastDispatchKey, s.activeFixer.key);
    assert.equal(s.memory.dispatchOutcome, 'RUNNING');
    assert.deepEqual(s.memory.dispatchTimesMs, [T0 + 10]);
    assert.deepEqual(step(s, T0 + 10), { kind: 'dispatch' });

    const taken = fixerDispatched(s, 'session-a', T0 + 20);
    assert.equal(taken.activeFixer?.sessionId, 'session-a');
    assert.deepEqual(step(taken, T0 + 20), {
      kind: 'wait',
      untilMs: T0 + 20 + settings.fixerCheckIntervalMs,
    });
    assert.deepEqual(step(taken, T0 + 21, { stopFixer: false, wake: true }), { kind: 'check-fixer' });

    const running = fixerChecked(taken, { outcome: 'RUNNING', detail: null }, T0 + 10_020);
    assert.ok(running.activeFixer, 'still running');
    const done = fixerChecked(running, { outcome: 'COMPLETED', detail: null }, T0 + 20_020);
    assert.equal(done.activeFixer, null);
    assert.equal(done.memory.dispatchOutcome, 'COMPLETED');
    assert.deepEqual(
      step(done, T0 + 20_020),
      { kind: 'poll' },
      'a settled fixer is followed by a poll at once',
    );

    const again = poll(done, seen(failure), T0 + 20_030);
    assert.equal(again.next.kind, 'none', 'the same failure polled again starts nothing');
    assert.equal(again.state.lastDecision?.action, 'WAITING');
    assert.equal(again.state.activeFixer, null);
    assert.equal(again.state.memory.dispatchTimesMs.length, 1);
  });

  it('a new push that fails the same check is a new key and gets a new fixer', () => {
    const first = poll(fresh(), seen(failingSnapshot('100', { headSha: 'aaa' })), T0);
    const settled = runFixer(first.state, 'COMPLETED', T0 + 1000);
    const pushed = poll(settled, seen(failingSnapshot('101', { headSha: 'bbb' })), T0 + 2000);
    assert.equal(pushed.next.kind, 'dispatch');
    assert.notEqual(pushed.state.activeFixer?.key, first.state.activeFixer?.key);
    assert.equal(pushed.state.memory.dispatchTimesMs.length, 2);
  });

  it('a fixer that dies is retried for the same key up to three times, then the ratchet is stalled', () => {
    const failure = failingSnapshot('200');
    let s = poll(fresh(), seen(failure), T0).state;
    const key = s.activeFixer?.key;
    const attempts: number[] = [];
    for (let i = 1; i <= 3; i++) {
      s = runFixer(s, 'DIED', T0 + i * 1000);
      const retried = poll(s, seen(failure), T0 + i * 1000 + 10);
      assert.equal(retried.next.kind, 'dispatch', `retry ${i}`);
      assert.equal(retried.state.lastDecision?.reason, 'retry_after_fixer_died');
      assert.equal(retried.state.activeFixer?.key, key);
      attempts.push(retried.state.activeFixer?.attempt ?? 0);
      s = retried.state;
    }
    assert.deepEqual(attempts, [2, 3, 4]);
    s = runFixer(s, 'DIED', T0 + 10_000);
    const stalled = poll(s, seen(failure), T0 + 10_010);
    assert.equal(stalled.next.kind, 'none');
    assert.equal(stalled.state.lastDecision?.reason, 'retries_exhausted');
    const view = toRatchetView(stalled.state, { nowMs: T0 + 10_010, maxDispatchesPerDay: 10 });
    assert.equal(view.stalled, true, 'the user sees it is stalled');
    assert.equal(view.retryCount, 3);
    assert.equal(view.dispatchesToday, 4, 'retries count against the daily cap');
  });

  it('stops dispatching at the daily cap, visibly, and dispatches again a day later', () => {
    const capped = { ...settings, maxDispatchesPerDay: 2 };
    let s = fresh();
    for (const run of ['1', '2']) {
      const applied = poll(s, seen(failingSnapshot(run, { headSha: run })), T0 + Number(run), {
        settings: capped,
      });
      assert.equal(applied.next.kind, 'dispatch');
      s = runFixer(applied.state, 'COMPLETED', T0 + Number(run) + 5);
    }
    const third = poll(s, seen(failingSnapshot('3', { headSha: '3' })), T0 + 100, { settings: capped });
    assert.equal(third.next.kind, 'none');
    assert.equal(third.state.lastDecision?.reason, 'daily_cap');
    const view = toRatchetView(third.state, { nowMs: T0 + 100, maxDispatchesPerDay: 2 });
    assert.equal(view.dispatchesToday, 2);
    assert.equal(view.maxDispatchesPerDay, 2);
    const nextDay = poll(third.state, seen(failingSnapshot('3', { headSha: '3' })), T0 + 25 * 3600_000, {
      settings: capped,
    });
    assert.equal(nextDay.next.kind, 'dispatch');
  });

  it('ends when the PR is merged or closed, and the loop completes', () => {
    const merged = poll(fresh(), seen(snapshot({ state: 'MERGED' })), T0);
    assert.equal(merged.state.endedReason, 'merged');
    assert.deepEqual(step(merged.state, T0), { kind: 'complete' });
    const closed = poll(fresh(), seen(snapshot({ state: 'CLOSED' })), T0);
    assert.equal(closed.state.endedReason, 'pr_closed');
    const noPr = poll(fresh(), seen(null), T0);
    assert.equal(noPr.state.endedReason, null, 'no PR yet: keep looking');
    assert.equal(noPr.state.nextPollAtMs, T0 + settings.pollIntervalMs);
    const gone = poll(fresh(), { kind: 'vm_terminated' }, T0);
    assert.equal(gone.state.endedReason, 'vm_terminated');
  });

  it('lets a suspended VM sleep its interval, then wakes it for a poll and keeps the suspended interval', () => {
    const s0 = fresh();
    assert.equal(wakesSuspendedVm(s0, false), false, 'the first sight of a sleeping VM does not wake it');
    assert.equal(wakesSuspendedVm(s0, true), true, 'a wake signal (poll now) does');
    const asleep = poll(s0, { kind: 'vm_suspended' }, T0).state;
    assert.equal(asleep.vmSuspended, true);
    assert.equal(asleep.problem, null, 'asleep is not a problem');
    assert.equal(asleep.nextPollAtMs, T0 + settings.suspendedPollIntervalMs);
    assert.deepEqual(step(asleep, T0 + 1), { kind: 'wait', untilMs: T0 + settings.suspendedPollIntervalMs });
    assert.equal(wakesSuspendedVm(asleep, false), true);
    const woken = poll(asleep, seen(snapshot()), T0 + settings.suspendedPollIntervalMs, {
      wokeVm: true,
    }).state;
    assert.equal(
      woken.nextPollAtMs,
      T0 + 2 * settings.suspendedPollIntervalMs,
      'it may sleep again in between',
    );
    const userResumed = poll(woken, seen(snapshot()), woken.nextPollAtMs).state;
    assert.equal(userResumed.vmSuspended, false, 'found running without a wake: the normal interval again');
    assert.equal(userResumed.nextPollAtMs, woken.nextPollAtMs + settings.pollIntervalMs);
    const quota = poll(asleep, { kind: 'quota', message: 'compute minutes are spent' }, T0 + 5).state;
    assert.equal(quota.problem?.code, 'quota');
  });

  it('backs off on rate limits (a longer retry-after wins), keeps the problem start, and resets when clean', () => {
    const first = poll(fresh(), { kind: 'rate_limited', retryAfterMs: null }, T0).state;
    assert.equal(first.backoffMultiplier, 2);
    assert.equal(first.nextPollAtMs, T0 + 2 * settings.pollIntervalMs);
    assert.equal(first.problem?.code, 'rate_limited');
    const second = poll(first, { kind: 'rate_limited', retryAfterMs: 600_000 }, T0 + 1000).state;
    assert.equal(second.backoffMultiplier, 4);
    assert.equal(second.nextPollAtMs, T0 + 1000 + 600_000);
    assert.equal(second.problem?.sinceMs, T0, 'since when it started');
    const capped = poll(second, { kind: 'rate_limited', retryAfterMs: null }, T0 + 2000).state;
    assert.equal(capped.backoffMultiplier, 4, 'at most ×4');
    const clean = poll(capped, seen(snapshot()), T0 + 3000).state;
    assert.equal(clean.backoffMultiplier, 1);
    assert.equal(clean.problem, null);
    const github = poll(clean, { kind: 'unavailable', message: 'gh: not logged in' }, T0 + 4000).state;
    assert.equal(github.problem?.code, 'github_unavailable');
    assert.equal(github.problem?.message, 'gh: not logged in');
    const vm = poll(clean, { kind: 'vm_unavailable', message: 'agent gone' }, T0 + 4000).state;
    assert.equal(vm.problem?.code, 'vm_unavailable');
  });

  it('waits without polling while disabled; enabling polls at once; a fixer still finishes', () => {
    const off = fresh({ enabled: false });
    assert.deepEqual(step(off, T0 + 999_999), { kind: 'wait', untilMs: null });
    assert.equal(toRatchetView(off, { nowMs: T0, maxDispatchesPerDay: 10 }).phase, 'disabled');
    const on = enabledSet(off, true, T0 + 5);
    assert.deepEqual(step(on, T0 + 5), { kind: 'poll' });
    const working = poll(on, seen(failingSnapshot('9')), T0 + 6).state;
    const disabledWhileWorking = enabledSet(fixerDispatched(working, 's', T0 + 7), false, T0 + 8);
    assert.equal(
      toRatchetView(disabledWhileWorking, { nowMs: T0, maxDispatchesPerDay: 10 }).phase,
      'fixer_running',
    );
    assert.equal(step(disabledWhileWorking, T0 + 8 + settings.fixerCheckIntervalMs).kind, 'check-fixer');
  });

  it('stops a fixer that runs out of time, and answers a stop request before anything else', () => {
    const working = fixerDispatched(poll(fresh(), seen(failingSnapshot('5')), T0).state, 's', T0 + 1);
    assert.deepEqual(step(working, T0 + settings.fixerTimeoutMs), { kind: 'fixer-timeout' });
    assert.deepEqual(step(working, T0 + 2, { stopFixer: true, wake: false }), { kind: 'stop-fixer' });
    const stopped = fixerSettled(working, 'COMPLETED', T0 + 3);
    assert.equal(stopped.memory.dispatchOutcome, 'COMPLETED', 'a stopped fixer is not retried');
  });

  it('retries a dispatch the VM did not take under the same id after the poll interval', () => {
    const recorded = poll(fresh(), seen(failingSnapshot('6')), T0).state;
    const unreachable = fixerUnreachable(recorded, 'the VM did not answer', T0 + 10);
    assert.equal(unreachable.problem?.code, 'vm_unavailable');
    assert.deepEqual(step(unreachable, T0 + 11), {
      kind: 'wait',
      untilMs: T0 + 10 + settings.pollIntervalMs,
    });
    assert.deepEqual(step(unreachable, T0 + 10 + settings.pollIntervalMs), { kind: 'dispatch' });
    const taken = fixerDispatched(unreachable, 's', T0 + 40_000);
    assert.equal(taken.activeFixer?.dispatchId, recorded.activeFixer?.dispatchId, 'the same dispatch id');
    assert.equal(taken.problem, null);
  });

  it('continues as new only between fixers; an ended loop completes', () => {
    const idle = poll(fresh(), seen(snapshot()), T0).state;
    assert.deepEqual(step(idle, T0 + 1, noRequests, true), { kind: 'continue-as-new' });
    const working = poll(fresh(), seen(failingSnapshot('7')), T0).state;
    assert.equal(step(working, T0 + 1, noRequests, true).kind, 'dispatch');
    const handedOff = ratchetEnded(idle, 'handed_off', T0 + 2);
    assert.deepEqual(step(handedOff, T0 + 2), { kind: 'complete' });
    assert.equal(
      ratchetEnded(handedOff, 'archived', T0 + 3).endedReason,
      'handed_off',
      'the first end stays',
    );
  });

  it('its view and carried state pass their own schemas; the input fills in default settings', () => {
    const s = poll(fresh(), seen(failingSnapshot('8')), T0).state;
    const view = toRatchetView(s, { nowMs: T0, maxDispatchesPerDay: 10 });
    assert.deepEqual(RatchetViewSchema.parse(view), view);
    assert.equal(view.phase, 'fixer_running');
    assert.equal(view.nextPollAtMs, null);
    assert.deepEqual(CarriedRatchetStateSchema.parse(s), s);
    const input = RatchetActorInputSchema.parse({
      workspaceId: 'ws-1',
      userId: 'user-1',
      memory: { ...initialRatchetMemory(), dispatchTimesMs: undefined },
    });
    assert.deepEqual(input.settings, defaultRatchetSettings);
    assert.deepEqual(input.memory.dispatchTimesMs, []);
    assert.equal(
      RatchetActorInputSchema.safeParse({
        workspaceId: 'ws/../x',
        userId: 'u',
        memory: initialRatchetMemory(),
      }).success,
      false,
    );
  });
});

describe('vm actor: a background-only wake (pure)', () => {
  const ready = (): VmState => ({
    ...newVmState('user-1', 'vm-1', T0),
    status: 'READY',
    lastActiveAtMs: T0,
  });
  it('caps the idle deadline at the grace until the user shows up; a suspend clears it', () => {
    const idle = 30 * 60_000;
    const woken = applyVmEvent(ready(), { type: 'BACKGROUND_WAKE', untilMs: T0 + 120_000 }, T0);
    assert.equal(idleDeadlineMs(woken, idle), T0 + 120_000, 'a poll never keeps the VM awake');
    const touched = applyVmEvent(woken, { type: 'TOUCHED' }, T0 + 60_000);
    assert.equal(idleDeadlineMs(touched, idle), T0 + 60_000 + idle, 'the user is here: the full timeout');
    const earlier = applyVmEvent(woken, { type: 'BACKGROUND_WAKE', untilMs: T0 + 500_000 }, T0 + 1);
    assert.equal(idleDeadlineMs(earlier, idle), T0 + 120_000, 'min(current, now + grace)');
    const suspending = applyVmEvent(woken, { type: 'SUSPEND_STARTED' }, T0 + 120_000);
    const suspended = applyVmEvent(suspending, { type: 'SUSPENDED' }, T0 + 120_001);
    assert.equal(suspended.backgroundUntilMs, null);
    assert.equal(idleDeadlineMs(ready(), idle), T0 + idle, 'without a background wake nothing changes');
  });
});

describe('ratchet actor state: what a watch compares its polls with', () => {
  it('nothing before the first decision, nor while a problem, a back-off or a suspended VM is shown', () => {
    assert.equal(watchBaseline(fresh(), settings), null, 'the first poll is always reported');
    const green = poll(fresh(), { kind: 'snapshot', snapshot: snapshot() }, T0).state;
    assert.notEqual(watchBaseline(green, settings), null);
    const troubled = poll(green, { kind: 'unavailable', message: 'GitHub down' }, T0 + 1).state;
    assert.equal(watchBaseline(troubled, settings), null, 'a good poll must clear the problem');
    const limited = poll(green, { kind: 'rate_limited', retryAfterMs: null }, T0 + 1).state;
    assert.equal(watchBaseline(limited, settings), null, 'a good poll must end the back-off');
    const asleep = poll(green, { kind: 'vm_suspended' }, T0 + 1).state;
    assert.equal(watchBaseline(asleep, settings), null);
  });

  it('holds the last decision: the same PR is quiet against it, a failing one is not', () => {
    const green = poll(fresh(), { kind: 'snapshot', snapshot: snapshot() }, T0).state;
    const baseline = watchBaseline(green, settings);
    assert.ok(baseline);
    const limits = { nowMs: T0 + 30_000, maxDispatchesPerDay: baseline.maxDispatchesPerDay };
    assert.equal(isQuietPoll(baseline.memory, baseline.decision, snapshot(), limits), true);
    assert.equal(isQuietPoll(baseline.memory, baseline.decision, failingSnapshot('9'), limits), false);
    // What the workflow would do with that same quiet snapshot: nothing shown changes but times.
    const again = poll(green, { kind: 'snapshot', snapshot: snapshot() }, T0 + 30_000).state;
    assert.deepEqual(
      {
        ...toRatchetView(again, { nowMs: T0, maxDispatchesPerDay: 10 }),
        lastDecision: null,
        nextPollAtMs: 0,
        updatedAt: '',
      },
      {
        ...toRatchetView(green, { nowMs: T0, maxDispatchesPerDay: 10 }),
        lastDecision: null,
        nextPollAtMs: 0,
        updatedAt: '',
      },
    );
  });
});
