import type { SessionEvent } from '../protocol/index.js';

export interface EventRingLimits {
  /** Events held at most. */
  maxEvents: number;
  /** Encoded JSON bytes held at most (the oldest events go first). */
  maxBytes: number;
}

export const DEFAULT_EVENT_RING_LIMITS: EventRingLimits = {
  maxEvents: 5000,
  maxBytes: 8 * 1024 * 1024,
};

interface Held {
  event: SessionEvent;
  bytes: number;
}

/**
 * A session's most recent events, transient ones (token deltas, which SQLite never sees) included, so a
 * subscriber that lost its connection can be given exactly what it missed instead of a whole snapshot.
 * Events are pushed in seq order with no gap; the ring only answers for a run it holds completely.
 */
export class SessionEventRing {
  /** Evicted entries become undefined and are dropped in batches (no shift() per event). */
  private readonly held: Array<Held | undefined> = [];
  /** Index of the oldest live entry in `held`. */
  private head = 0;
  private heldBytes = 0;
  /** seq of the event just before the oldest one held: replays start after it. */
  private base: number;
  private last: number;

  /**
   * `startSeq` is the session's seq when the ring starts (0 for a new session): the first event pushed
   * must be startSeq + 1.
   */
  constructor(
    private readonly limits: EventRingLimits,
    startSeq = 0,
  ) {
    this.base = startSeq;
    this.last = startSeq;
  }

  get size(): number {
    return this.held.length - this.head;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** The oldest seq a replay can start after. */
  get oldestAfterSeq(): number {
    return this.base;
  }

  get lastSeq(): number {
    return this.last;
  }

  /**
   * Adds the next event (`bytes`: the length of its encoding). An event that does not follow the last
   * one would make a replay lie about what it covers, so the ring starts over from it.
   */
  push(event: SessionEvent, bytes: number): void {
    if (event.seq !== this.last + 1) this.reset(event.seq - 1);
    this.last = event.seq;
    if (bytes > this.limits.maxBytes || this.limits.maxEvents <= 0) {
      // Too large to hold at all: a replay across it is impossible, so it starts after this event.
      this.reset(event.seq);
      return;
    }
    this.held.push({ event, bytes });
    this.heldBytes += bytes;
    while (this.size > this.limits.maxEvents || this.heldBytes > this.limits.maxBytes) this.evictOldest();
    // Compact now and then, so the array does not grow with every evicted entry.
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * The events after `afterSeq` through the last one, in order, when the ring holds every one of them
   * (an empty list when afterSeq is the last seq); null when some are gone or afterSeq is in the future.
   */
  since(afterSeq: number): SessionEvent[] | null {
    if (afterSeq < this.base || afterSeq > this.last) return null;
    const events: SessionEvent[] = [];
    for (let i = this.head + (afterSeq - this.base); i < this.held.length; i++) {
      const held = this.held[i];
      if (held) events.push(held.event);
    }
    return events;
  }

  private evictOldest(): void {
    const oldest = this.held[this.head];
    if (!oldest) return;
    this.heldBytes -= oldest.bytes;
    this.base = oldest.event.seq;
    this.held[this.head] = undefined;
    this.head++;
  }

  private reset(seq: number): void {
    this.held.length = 0;
    this.head = 0;
    this.heldBytes = 0;
    this.base = seq;
    this.last = seq;
  }
}
