// isQuietPoll: which polls a watcher may keep to itself. A quiet poll changes nothing the caller holds;
// anything that acts (a fixer to start, a PR that ended) or shows differently is never quiet.
import assert from 'node:assert/strict';
import {
  applyDecision,
  type DecisionOutline,
  decide,
  initialRatchetMemory,
  isQuietPoll,
  type RatchetMemory,
  type RatchetSnapshot,
} from '../../src/ratchet/index.js';
import { failingSnapshot, snapshot } from './snapshots.js';

const NOW = Date.parse('2024-01-03T00:00:00Z');
const limits = { nowMs: NOW, maxDispatchesPerDay: 10 };

/** What a caller holds after applying `snap` to `memory`: the memory and the decision's outline. */
function held(memory: RatchetMemory, snap: RatchetSnapshot | null) {
  const decision = decide(memory, snap, { active: false }, limits);
  const outline: DecisionOutline = {
    action: decision.action,
    reason: decision.reason,
    key: decision.key,
    state: decision.state,
  };
  return { memory: applyDecision(memory, decision, snap, NOW), outline, decision };
}

describe('ratchet / isQuietPoll', () => {
  const enabled = initialRatchetMemory({ enabled: true });

  it('the same green PR polled again is quiet', () => {
    const green = snapshot();
    const { memory, outline } = held(enabled, green);
    assert.equal(isQuietPoll(memory, outline, green, limits), true);
    assert.equal(isQuietPoll(memory, outline, snapshot(), limits), true, 'an equal snapshot, another object');
  });

  it('a failing check after green is not quiet (the fixer must start)', () => {
    const { memory, outline } = held(enabled, snapshot());
    assert.equal(isQuietPoll(memory, outline, failingSnapshot('11'), limits), false);
  });

  it('a failure already dispatched, polled again, is quiet; a new run of it is not', () => {
    const red = failingSnapshot('11');
    const first = held(enabled, red);
    assert.equal(first.decision.action, 'TRIGGER_FIXER');
    // The caller records the dispatch; the fixer ends; the same failure comes back.
    const settled: RatchetMemory = { ...first.memory, dispatchOutcome: 'COMPLETED' };
    const again = held(settled, red);
    assert.equal(again.decision.action, 'WAITING');
    assert.equal(isQuietPoll(again.memory, again.outline, red, limits), true);
    const newPush = failingSnapshot('12', { headSha: 'b'.repeat(40) });
    assert.equal(isQuietPoll(again.memory, again.outline, newPush, limits), false);
  });

  it('a merged or closed PR is never quiet', () => {
    const { memory, outline } = held(enabled, snapshot());
    assert.equal(isQuietPoll(memory, outline, snapshot({ state: 'MERGED' }), limits), false);
    assert.equal(isQuietPoll(memory, outline, snapshot({ state: 'CLOSED' }), limits), false);
  });

  it('a PR appearing, or going away, is not quiet', () => {
    const none = held(enabled, null);
    assert.equal(isQuietPoll(none.memory, none.outline, null, limits), true);
    assert.equal(isQuietPoll(none.memory, none.outline, snapshot(), limits), false);
    const green = held(enabled, snapshot());
    assert.equal(isQuietPoll(green.memory, green.outline, null, limits), false);
  });

  it('a change of shown state without any action is not quiet (CI pending → green)', () => {
    const pending = snapshot({ ciStatus: 'PENDING', checks: [] });
    const { memory, outline } = held(enabled, pending);
    assert.equal(isQuietPoll(memory, outline, pending, limits), true);
    assert.equal(isQuietPoll(memory, outline, snapshot(), limits), false);
  });

  it('the same poll later, when time alone changes the decision (the daily cap frees up), is not quiet', () => {
    const red = failingSnapshot('11');
    // Capped: ten dispatches in the last day, the newest an hour ago; this failure is new.
    const capped: RatchetMemory = {
      ...enabled,
      dispatchTimesMs: Array.from({ length: 10 }, (_, i) => NOW - 23 * 3600_000 + i * 60_000),
    };
    const now = held(capped, red);
    assert.equal(now.outline.reason, 'daily_cap');
    assert.equal(isQuietPoll(now.memory, now.outline, red, limits), true);
    const later = { ...limits, nowMs: NOW + 2 * 3600_000 };
    assert.equal(isQuietPoll(now.memory, now.outline, red, later), false);
  });
});
