import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SessionEvent, SessionEventPayload } from '../../src/protocol/index.js';
import {
  applySessionEvent,
  initialTranscriptState,
  replaySessionEvents,
  snapshotOf,
} from '../../src/session/index.js';

const at = '2026-01-01T00:00:00.000Z';

const payload: fc.Arbitrary<SessionEventPayload> = fc.oneof(
  fc.record({
    type: fc.constant('message_state_changed' as const),
    id: fc.constantFrom('m1', 'm2', 'm3'),
    newState: fc.constantFrom('QUEUED', 'DISPATCHED', 'COMMITTED', 'CANCELLED', 'FAILED' as const),
    userMessage: fc.record({ text: fc.string(), timestamp: fc.constant(at) }),
  }),
  fc.record({
    type: fc.constant('claude_message' as const),
    data: fc.record({ type: fc.constantFrom('assistant', 'result', 'stream_event') }),
    order: fc.option(fc.nat(50), { nil: undefined }),
  }),
  fc.record({
    type: fc.constant('permission_request' as const),
    requestId: fc.constantFrom('r1', 'r2'),
    toolName: fc.constant('Write'),
    toolUseId: fc.constant(null),
    toolInput: fc.constant({}),
    description: fc.constant(null),
    planContent: fc.option(fc.string(), { nil: null }),
  }),
  fc.record({
    type: fc.constant('interactive_request_resolved' as const),
    requestId: fc.constantFrom('r1', 'r2'),
    outcome: fc.constantFrom('allowed', 'denied', 'cancelled' as const),
  }),
  fc.record({ type: fc.constant('claude_session_id' as const), claudeSessionId: fc.uuid() }),
);

function numbered(payloads: SessionEventPayload[]): SessionEvent[] {
  return payloads.map((p, i) => ({ seq: i + 1, at, payload: p }));
}

describe('session transcript reducer', () => {
  it('snapshot at any point plus the later events equals the whole fold (no gap, no duplicate)', () => {
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 40 }), fc.nat(), (payloads, cut) => {
        const events = numbered(payloads);
        const split = events.length === 0 ? 0 : cut % (events.length + 1);
        const whole = replaySessionEvents(initialTranscriptState(at), events);
        const early = replaySessionEvents(initialTranscriptState(at), events.slice(0, split));
        assert.equal(snapshotOf(early).seq, split);
        const caughtUp = replaySessionEvents(early, events.slice(snapshotOf(early).seq));
        assert.deepEqual(snapshotOf(caughtUp), snapshotOf(whole));
      }),
    );
  });

  it('ignores an event it has already applied', () => {
    const events = numbered([
      {
        type: 'message_state_changed',
        id: 'm1',
        newState: 'QUEUED',
        userMessage: { text: 'hi', timestamp: at },
      },
    ]);
    const once = replaySessionEvents(initialTranscriptState(at), events);
    const twice = replaySessionEvents(once, events);
    assert.equal(twice, once);
    assert.equal(snapshotOf(twice).queuedMessages.length, 1);
  });

  it('moves a message from the queue into the conversation on commit', () => {
    let state = initialTranscriptState(at);
    const steps: SessionEventPayload[] = [
      {
        type: 'message_state_changed',
        id: 'm1',
        newState: 'QUEUED',
        userMessage: { text: 'hi', timestamp: at },
      },
      { type: 'message_state_changed', id: 'm1', newState: 'DISPATCHED' },
      {
        type: 'message_state_changed',
        id: 'm1',
        newState: 'COMMITTED',
        userMessage: { text: 'hi', timestamp: at, order: 0 },
      },
      { type: 'claude_message', data: { type: 'assistant' }, order: 1 },
      { type: 'claude_message', data: { type: 'stream_event' } },
      { type: 'claude_message', data: { type: 'result', subtype: 'success', total_cost_usd: 0.5 }, order: 2 },
    ];
    for (const event of numbered(steps)) state = applySessionEvent(state, event);
    const snapshot = snapshotOf(state);
    assert.deepEqual(snapshot.queuedMessages, []);
    assert.deepEqual(
      snapshot.messages.map((m) => [m.source, m.order]),
      [
        ['user', 0],
        ['claude', 1],
        ['claude', 2],
      ],
    );
    assert.equal(snapshot.lastTurn?.costUsd, 0.5);
    assert.equal(state.nextOrder, 3);
  });
});
