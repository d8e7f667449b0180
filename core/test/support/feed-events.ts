import type { SessionFeed } from '../../src/agent/client.js';
import type { SessionEvent } from '../../src/protocol/index.js';

export interface CollectedFeed {
  readonly events: SessionEvent[];
  /** Waits for the first collected event (from the start) that matches. */
  until(predicate: (event: SessionEvent) => boolean, timeoutMs?: number): Promise<SessionEvent>;
}

/** Collects a feed's events and waits for one that matches. */
export function collect(feed: SessionFeed): CollectedFeed {
  const events: SessionEvent[] = [];
  let wake: (() => void) | null = null;
  feed.on((event) => {
    events.push(event);
    wake?.();
  });
  return {
    events,
    async until(predicate, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let checked = 0;
      for (;;) {
        for (; checked < events.length; checked++) {
          const event = events[checked];
          if (event && predicate(event)) return event;
        }
        if (Date.now() > deadline) {
          throw new Error(`timed out; saw ${events.map((e) => e.payload.type).join(', ')}`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}

export const isResult = (event: SessionEvent): boolean =>
  event.payload.type === 'claude_message' && event.payload.data.type === 'result';

/** The text of a `stream_event` text delta, or null for any other event. */
export function textDeltaOf(event: SessionEvent): string | null {
  if (event.payload.type !== 'claude_message' || event.payload.data.type !== 'stream_event') return null;
  const inner = event.payload.data.event as { type?: string; delta?: { type?: string; text?: string } };
  if (inner?.type !== 'content_block_delta' || inner.delta?.type !== 'text_delta') return null;
  return inner.delta.text ?? '';
}
