import assert from 'node:assert/strict';
import type { SessionEvent } from '../../src/protocol/index.js';
import { SessionEventRing } from '../../src/session/index.js';

function event(seq: number): SessionEvent {
  return {
    seq,
    at: new Date(0).toISOString(),
    payload: { type: 'claude_message', data: { type: 'stream_event', n: seq } },
  };
}

const seqs = (events: SessionEvent[] | null) => events?.map((e) => e.seq) ?? null;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('SessionEventRing', () => {
  it('replays exactly the events after a seq it holds, and nothing for a seq it never reached', () => {
    const ring = new SessionEventRing({ maxEvents: 100, maxBytes: 1_000_000 });
    assert.deepEqual(seqs(ring.since(0)), [], 'nothing missed at the current seq');
    assert.equal(ring.since(1), null);
    for (let seq = 1; seq <= 10; seq++) ring.push(event(seq), 10);
    assert.deepEqual(seqs(ring.since(0)), range(1, 10));
    assert.deepEqual(seqs(ring.since(7)), [8, 9, 10]);
    assert.deepEqual(seqs(ring.since(10)), []);
    assert.equal(ring.since(11), null);
    assert.equal(ring.since(-1), null);
  });

  it('keeps at most maxEvents, dropping the oldest', () => {
    const ring = new SessionEventRing({ maxEvents: 5, maxBytes: 1_000_000 });
    for (let seq = 1; seq <= 12; seq++) ring.push(event(seq), 10);
    assert.equal(ring.size, 5);
    assert.equal(ring.bytes, 50);
    assert.equal(ring.oldestAfterSeq, 7);
    assert.equal(ring.since(6), null, 'event 7 is gone, so a replay after 6 would have a gap');
    assert.deepEqual(seqs(ring.since(7)), range(8, 12));
  });

  it('keeps at most maxBytes of encoded events, dropping the oldest', () => {
    const ring = new SessionEventRing({ maxEvents: 1000, maxBytes: 250 });
    for (let seq = 1; seq <= 6; seq++) ring.push(event(seq), 100);
    assert.equal(ring.size, 2);
    assert.ok(ring.bytes <= 250);
    assert.deepEqual(seqs(ring.since(4)), [5, 6]);
    assert.equal(ring.since(3), null);
  });

  it('cannot replay across an event too large to hold', () => {
    const ring = new SessionEventRing({ maxEvents: 1000, maxBytes: 250 });
    ring.push(event(1), 10);
    ring.push(event(2), 300);
    ring.push(event(3), 10);
    assert.equal(ring.since(1), null);
    assert.deepEqual(seqs(ring.since(2)), [3]);
  });

  it('starts after the seq it is given, and starts over after a gap', () => {
    const ring = new SessionEventRing({ maxEvents: 100, maxBytes: 1_000_000 }, 4096);
    assert.deepEqual(seqs(ring.since(4096)), []);
    assert.equal(ring.since(4095), null, 'older events were never in this ring');
    ring.push(event(4097), 10);
    ring.push(event(4098), 10);
    ring.push(event(5000), 10);
    assert.equal(ring.since(4097), null, 'the events between 4098 and 5000 are not held');
    assert.deepEqual(seqs(ring.since(4999)), [5000]);
  });

  it('holds its bounds over a long run', () => {
    const ring = new SessionEventRing({ maxEvents: 5000, maxBytes: 8 * 1024 * 1024 });
    for (let seq = 1; seq <= 50_000; seq++) ring.push(event(seq), 300 + (seq % 7));
    assert.equal(ring.size, 5000);
    assert.equal(ring.lastSeq, 50_000);
    assert.deepEqual(seqs(ring.since(45_000)), range(45_001, 50_000));
    assert.equal(ring.since(44_999), null);

    const bytesBound = new SessionEventRing({ maxEvents: 5000, maxBytes: 1024 * 1024 });
    for (let seq = 1; seq <= 20_000; seq++) bytesBound.push(event(seq), 1000);
    assert.equal(bytesBound.size, 1048);
    assert.ok(bytesBound.bytes <= 1024 * 1024);
    assert.deepEqual(seqs(bytesBound.since(20_000 - 1048)), range(20_000 - 1047, 20_000));
  });
});
