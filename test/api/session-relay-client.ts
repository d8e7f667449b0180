/**
 * A client of `ws /ws/workspaces/:id/sessions/:sid` for tests (the `ws` library answers pings itself):
 * collects every frame the relay sends, checked against the contract's schema, and how the socket ended.
 */
import { safeParseJson } from '@factory-factory/core/protocol';
import WebSocket from 'ws';
import { type RelayServerFrame, RelayServerFrameSchema } from '../../api/contract/session-relay.js';

export type FrameOf<T extends RelayServerFrame['type']> = Extract<RelayServerFrame, { type: T }>;

export class SessionRelayClient {
  readonly frames: RelayServerFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.wake();
      }),
    );
    ws.on('message', (data) => {
      const parsed = safeParseJson(RelayServerFrameSchema, String(data), 64 * 1024 * 1024);
      if (!parsed.ok) throw parsed.error;
      this.frames.push(parsed.value);
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  static open(url: string, token: string): Promise<SessionRelayClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['ffc.session.v1', `bearer.${token}`], { maxPayload: 64 * 1024 * 1024 });
      const client = new SessionRelayClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async waitUntil(what: string, condition: () => boolean, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline)
        throw new Error(`no ${what}; got ${JSON.stringify(this.frames.map((f) => f.type)).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  async waitFor<T extends RelayServerFrame['type']>(
    type: T,
    match: (frame: FrameOf<T>) => boolean = () => true,
    timeoutMs = 90_000,
  ): Promise<FrameOf<T>> {
    let found: FrameOf<T> | undefined;
    await this.waitUntil(
      type,
      () => {
        found = this.frames.find((f): f is FrameOf<T> => f.type === type && match(f as FrameOf<T>));
        return found !== undefined;
      },
      timeoutMs,
    );
    if (!found) throw new Error(`no ${type}`);
    return found;
  }

  /** The session events received, in order. */
  events(): FrameOf<'session_event'>['event'][] {
    return this.frames
      .filter((f): f is FrameOf<'session_event'> => f.type === 'session_event')
      .map((f) => f.event);
  }

  errors(): FrameOf<'error'>[] {
    return this.frames.filter((f): f is FrameOf<'error'> => f.type === 'error');
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.ws.close();
    return this.closed.then(() => undefined);
  }
}

/** The text a `stream_event` text delta carries, if the event is one. */
export function deltaText(event: FrameOf<'session_event'>['event']): string | null {
  const payload = event.payload;
  if (payload.type !== 'claude_message' || payload.data.type !== 'stream_event') return null;
  const inner = payload.data.event;
  if (typeof inner !== 'object' || inner === null || !('delta' in inner)) return null;
  const delta = inner.delta;
  if (typeof delta !== 'object' || delta === null || !('text' in delta)) return null;
  return typeof delta.text === 'string' ? delta.text : null;
}

/** Whether the event is the CLI's `result` (the end of a turn). */
export function isResult(event: FrameOf<'session_event'>['event']): boolean {
  return event.payload.type === 'claude_message' && event.payload.data.type === 'result';
}
