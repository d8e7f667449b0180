import type { SessionEvent, SessionEventPayload } from '../../src/protocol/index.js';

type PayloadOf<T extends SessionEventPayload['type']> = Extract<SessionEventPayload, { type: T }>;

/**
 * Records a session's events and lets a test wait for them in order: next() returns the first match
 * after the previous match, so a test reads like the sequence it expects.
 */
export class EventRecorder {
  readonly events: SessionEvent[] = [];
  private cursor = 0;
  private wake: (() => void) | null = null;

  readonly listener = (event: SessionEvent): void => {
    this.events.push(event);
    this.wake?.();
  };

  payloads(): SessionEventPayload[] {
    return this.events.map((e) => e.payload);
  }

  ofType<T extends SessionEventPayload['type']>(type: T): PayloadOf<T>[] {
    return this.payloads().filter((p): p is PayloadOf<T> => p.type === type);
  }

  /** Waits for the next event of `type` matching `predicate`, after the last one next() returned. */
  async next<T extends SessionEventPayload['type']>(
    type: T,
    predicate: (payload: PayloadOf<T>) => boolean = () => true,
    timeoutMs = 60_000,
  ): Promise<PayloadOf<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (; this.cursor < this.events.length; this.cursor++) {
        const payload = this.events[this.cursor]?.payload;
        if (payload && payload.type === type && predicate(payload as PayloadOf<T>)) {
          this.cursor++;
          return payload as PayloadOf<T>;
        }
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const seen = this.events.map((e) => e.payload.type).join(', ');
        throw new Error(`timed out waiting for ${type}; saw: ${seen}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** Waits for the CLI's `result` line (end of a turn). */
  nextResult(timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.next('claude_message', (p) => p.data.type === 'result', timeoutMs).then((p) => p.data);
  }
}
