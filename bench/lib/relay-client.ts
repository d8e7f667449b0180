/**
 * What the session benchmarks observe: a relay client stamping every frame on arrival (then checking it
 * against the contract's schema), and the direct agent subscription stamped as its listener is called (the
 * AgentClient has parsed it by then), so the two can be compared seq by seq. Also the event predicates: a streamed text token, the end of a turn.
 */
import { performance } from 'node:perf_hooks';
import type { AgentClient, SessionFeed } from '@factory-factory/core/agent-client';
import { type SessionEvent, safeParseJson } from '@factory-factory/core/protocol';
import WebSocket from 'ws';
import { type RelayServerFrame, RelayServerFrameSchema } from '../../api/contract/session-relay.js';

export type Stamped<T> = { value: T; at: number };

/** Whether the event is a streamed text delta (a token). */
export function isTextDelta(event: SessionEvent): boolean {
  const payload = event.payload;
  if (payload.type !== 'claude_message' || payload.data.type !== 'stream_event') return false;
  const inner = payload.data.event;
  return (
    typeof inner === 'object' &&
    inner !== null &&
    'delta' in inner &&
    typeof inner.delta === 'object' &&
    inner.delta !== null &&
    'type' in inner.delta &&
    inner.delta.type === 'text_delta'
  );
}

/** The CLI's `result`: the end of a turn. */
export function isResult(event: SessionEvent): boolean {
  return event.payload.type === 'claude_message' && event.payload.data.type === 'result';
}

/** Waits for the first item that `match`es among those `subscribe` delivers from now on. */
class Waiters<T> {
  private readonly waiters = new Set<{ match: (item: T) => boolean; resolve: (item: T) => void }>();

  push(item: T): void {
    for (const waiter of this.waiters) {
      if (!waiter.match(item)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(item);
    }
  }

  next(match: (item: T) => boolean, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (item: T) => {
          clearTimeout(timer);
          resolve(item);
        },
      };
      this.waiters.add(waiter);
    });
  }
}

/** A session relay client; every frame stamped with performance.now() once parsed. */
export class BenchRelayClient {
  readonly frames: Stamped<RelayServerFrame>[] = [];
  private readonly waiters = new Waiters<Stamped<RelayServerFrame>>();
  readonly closed: Promise<number>;

  private constructor(
    readonly ws: WebSocket,
    keep: boolean,
  ) {
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('message', (data) => {
      // Stamped on arrival, before this client's own parse: the relay's cost, not the benchmark's.
      const at = performance.now();
      const parsed = safeParseJson(RelayServerFrameSchema, String(data), 64 * 1024 * 1024);
      if (!parsed.ok) throw parsed.error;
      const stamped = { value: parsed.value, at };
      if (keep || parsed.value.type !== 'session_event') this.frames.push(stamped);
      this.waiters.push(stamped);
    });
    ws.on('error', () => undefined);
  }

  /** `keep: false` keeps no session events (only waiters see them), for long runs. */
  static open(url: string, key: string, options: { keep?: boolean } = {}): Promise<BenchRelayClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['ffc.session.v1', `bearer.${key}`], { maxPayload: 64 * 1024 * 1024 });
      const client = new BenchRelayClient(ws, options.keep ?? true);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  next(
    match: (frame: RelayServerFrame) => boolean,
    what: string,
    timeoutMs = 90_000,
  ): Promise<Stamped<RelayServerFrame>> {
    const found = this.frames.find((f) => match(f.value));
    if (found) return Promise.resolve(found);
    return this.waiters
      .next((f) => match(f.value), what, timeoutMs)
      .catch((err: unknown) => {
        const errors = this.frames
          .filter((f) => f.value.type === 'error')
          .map((f) => JSON.stringify(f.value));
        throw new Error(
          `${err instanceof Error ? err.message : String(err)} (socket state ${this.ws.readyState}; ${errors.join(', ')})`,
        );
      });
  }

  nextEvent(match: (event: SessionEvent) => boolean, what: string, timeoutMs = 90_000) {
    return this.next((f) => f.type === 'session_event' && match(f.event), what, timeoutMs);
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  close(): Promise<number> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    return this.closed;
  }
}

/** The agent's own subscription to a session, every event stamped with performance.now(). */
export class DirectFeed {
  readonly events: Stamped<SessionEvent>[] = [];
  private readonly waiters = new Waiters<Stamped<SessionEvent>>();

  private constructor(readonly feed: SessionFeed) {
    feed.on((event) => {
      const stamped = { value: event, at: performance.now() };
      this.events.push(stamped);
      this.waiters.push(stamped);
    });
  }

  static async open(agent: AgentClient, sessionId: string): Promise<DirectFeed> {
    return new DirectFeed(await agent.subscribeSession(sessionId));
  }

  next(match: (event: SessionEvent) => boolean, what: string, timeoutMs = 90_000) {
    const found = this.events.find((e) => match(e.value));
    if (found) return Promise.resolve(found);
    return this.waiters.next((e) => match(e.value), what, timeoutMs);
  }

  close(): Promise<void> {
    return this.feed.close();
  }
}
