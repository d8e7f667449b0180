/**
 * The WebSocket surface the relay clients use: the browser's WebSocket, or `ws`'s in the unit tests (both
 * have these members). Credentials travel as a `bearer.<token>` subprotocol, as the api's upgrade expects.
 */
export type SocketLike = {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
};

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export const SOCKET_OPEN = 1;

/** ws:// or wss:// for an http(s) base url ('' means the page's own origin). */
export function wsUrl(baseUrl: string, path: string, pageOrigin?: string): string {
  const origin = baseUrl || pageOrigin || '';
  return `${origin.replace(/^http/, 'ws')}${path}`;
}

/** Text of a received frame, whichever way the socket delivers it. */
export function frameText(data: unknown): string {
  return typeof data === 'string' ? data : String(data);
}

/** Reconnect delays: 0.5 s, 1 s, 2 s, … capped at 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, attempt));
}
