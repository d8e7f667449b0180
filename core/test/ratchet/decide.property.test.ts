// Property: whatever order PR observations and fixer endings arrive in, the ratchet dispatches at most
// once per snapshot key (plus at most MAX_FIXER_RETRIES retries when, and only when, that key's fixer
// died), never while a fixer is alive, and always for a failing key it has not dispatched before.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  applyDecision,
  decide,
  dispatchesInLastDay,
  initialRatchetMemory,
  MAX_FIXER_RETRIES,
  MAX_REMEMBERED_DISPATCH_KEYS,
  RATCHET_DISPATCH_WINDOW_MS,
  type RatchetMemory,
  type RatchetSnapshot,
  settleFixer,
} from '../../src/ratchet/index.js';
import { failingCheck, passingCheck, snapshot } from './snapshots.js';

const activityTimes = [null, '2024-01-01T10:00:00Z', '2024-01-01T11:00:00Z', '2024-01-01T12:00:00Z'];

const snapshotArb: fc.Arbitrary<RatchetSnapshot> = fc
  .record({
    state: fc.constantFrom('OPEN', 'OPEN', 'OPEN', 'OPEN', 'CLOSED', 'MERGED'),
    ci: fc.constantFrom('SUCCESS', 'FAILURE', 'FAILURE', 'PENDING', 'UNKNOWN'),
    runId: fc.constantFrom('101', '102', '103'),
    secondFailure: fc.boolean(),
    conflict: fc.boolean(),
    changesRequested: fc.boolean(),
    activity: fc.constantFrom(...activityTimes),
    head: fc.constantFrom('a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40)),
  })
  .map((r) =>
    snapshot({
      state: r.state as RatchetSnapshot['state'],
      ciStatus: r.ci as RatchetSnapshot['ciStatus'],
      checks:
        r.ci === 'FAILURE'
          ? [
              failingCheck('test', r.runId),
              r.secondFailure ? failingCheck('lint', r.runId) : passingCheck('lint'),
            ]
          : [passingCheck('test', r.runId)],
      hasMergeConflict: r.conflict,
      hasChangesRequested: r.changesRequested,
      latestReviewActivityAt: r.activity,
      headSha: r.head,
    }),
  );

type Event =
  | { type: 'poll'; snap: RatchetSnapshot }
  | { type: 'fixer_ends'; outcome: 'COMPLETED' | 'DIED' }
  | { type: 'user_busy'; busy: boolean }
  | { type: 'tick'; ms: number };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 6, arbitrary: snapshotArb.map((snap): Event => ({ type: 'poll', snap })) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom('COMPLETED', 'DIED')
      .map((outcome): Event => ({ type: 'fixer_ends', outcome })),
  },
  { weight: 1, arbitrary: fc.boolean().map((busy): Event => ({ type: 'user_busy', busy })) },
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1, max: 8 * 3600_000 }).map((ms): Event => ({ type: 'tick', ms })),
  },
);

// Shorter than the remembered-key window, so every dispatched key is still remembered.
const eventsArb = fc.array(eventArb, { maxLength: MAX_REMEMBERED_DISPATCH_KEYS - 10 });

/** With `cap`, decisions get a clock and that daily cap; without, the old call form (no cap). */
function simulate(events: Event[], cap: number | null = null): void {
  let memory: RatchetMemory = initialRatchetMemory({ enabled: true });
  let nowMs = Date.parse('2024-01-01T00:00:00Z');
  const dispatchTimes: number[] = [];
  let fixerAlive = false;
  let busy = false;
  let runningKey: string | null = null;
  const triggers = new Map<string, number>();
  const deaths = new Map<string, number>();

  for (const event of events) {
    if (event.type === 'user_busy') {
      busy = event.busy;
      continue;
    }
    if (event.type === 'tick') {
      nowMs += event.ms;
      continue;
    }
    if (event.type === 'fixer_ends') {
      if (!fixerAlive || runningKey === null) continue;
      fixerAlive = false;
      memory = settleFixer(memory, event.outcome);
      if (event.outcome === 'DIED') deaths.set(runningKey, (deaths.get(runningKey) ?? 0) + 1);
      continue;
    }
    const limits = cap === null ? undefined : { nowMs, maxDispatchesPerDay: cap };
    const decision = decide(memory, event.snap, { active: fixerAlive, otherSessionWorking: busy }, limits);
    const underCap = cap === null || dispatchesInLastDay(memory, nowMs) < cap;
    const key = decision.key;
    assert.ok(key !== null);
    const isNewFailingKey =
      event.snap.state === 'OPEN' && event.snap.ciStatus === 'FAILURE' && !triggers.has(key);
    if (isNewFailingKey && !fixerAlive && !busy && underCap) {
      assert.equal(decision.action, 'TRIGGER_FIXER', `a new failing key must trigger: ${key}`);
    }
    if (decision.action === 'TRIGGER_FIXER') {
      assert.ok(!fixerAlive, 'never dispatch while a fixer is alive');
      assert.ok(!busy, 'never dispatch while another session works');
      const count = (triggers.get(key) ?? 0) + 1;
      triggers.set(key, count);
      const allowed = 1 + Math.min(deaths.get(key) ?? 0, MAX_FIXER_RETRIES);
      assert.ok(
        count <= allowed,
        `key dispatched ${count} times with ${deaths.get(key) ?? 0} deaths: ${key}`,
      );
      fixerAlive = true;
      runningKey = key;
      dispatchTimes.push(nowMs);
      if (cap !== null) {
        const inWindow = dispatchTimes.filter((at) => at > nowMs - RATCHET_DISPATCH_WINDOW_MS).length;
        assert.ok(inWindow <= cap, `${inWindow} dispatches within 24 h, cap ${cap}`);
      }
    }
    if (cap === null) memory = applyDecision(memory, decision, event.snap);
    else memory = applyDecision(memory, decision, event.snap, nowMs);
  }
}

describe('ratchet / decide properties (fast-check)', () => {
  it('never dispatches twice for one key unless its fixer died, and always dispatches a new failing key', () => {
    fc.assert(
      fc.property(eventsArb, (events) => simulate(events)),
      { numRuns: 2000 },
    );
  });

  it('with a daily cap, no 24 h window ever holds more dispatches than the cap, retries included', () => {
    fc.assert(
      fc.property(eventsArb, fc.integer({ min: 0, max: 5 }), (events, cap) => simulate(events, cap)),
      { numRuns: 2000 },
    );
  });

  it('with fixers that always finish, every key is dispatched at most once', () => {
    const noDeaths = fc.array(
      eventArb.filter((e) => !(e.type === 'fixer_ends' && e.outcome === 'DIED')),
      { maxLength: MAX_REMEMBERED_DISPATCH_KEYS - 10 },
    );
    fc.assert(
      fc.property(noDeaths, (events) => {
        // simulate() already enforces count <= 1 + deaths; with no deaths that is "at most once".
        simulate(events);
      }),
      { numRuns: 1000 },
    );
  });
});
