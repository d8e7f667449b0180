/**
 * WebSocket endpoints share the api's HTTP server. Each route (a fixed path, or a pattern whose groups are
 * the route's params) gets its own WebSocketServer in noServer mode; an upgrade to an unknown path is
 * answered with a plain 404 and closed. Frames are capped at 1 MB unless a route says otherwise (the session
 * relay answers a frame just over the cap with an error frame instead of a close) and are never compressed.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { MAX_MESSAGE_BYTES } from '@factory-factory/core/protocol';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';

export type WsRoute = {
  /** A fixed path, or a pattern matched against the whole pathname whose capture groups become `params`. */
  path: string | RegExp;
  /** The ws hard limit on one frame (default MAX_MESSAGE_BYTES); bigger frames close the socket with 1009. */
  maxPayload?: number;
  /** May reject by writing an HTTP response to the socket (e.g. 401) and returning false. */
  authorize?: (
    req: IncomingMessage,
    socket: Duplex,
    params: string[],
  ) => Promise<Record<string, unknown> | false>;
  onConnection: (ws: WebSocket, req: IncomingMessage, context: Record<string, unknown>) => void;
};

export function rejectUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Browsers send the credential as a `bearer.<token>` subprotocol next to the real one (e.g. `ffc.v1`); the
 * server must answer with one of the offered protocols, and never with the credential.
 */
function chooseProtocol(protocols: Set<string>): string | false {
  for (const protocol of protocols) if (!protocol.startsWith('bearer.')) return protocol;
  return false;
}

export function createUpgradeRouter(routes: WsRoute[]) {
  const servers = routes.map((route) => ({
    route,
    wss: new WebSocketServer({
      noServer: true,
      maxPayload: route.maxPayload ?? MAX_MESSAGE_BYTES,
      // Off (ws's default, stated so it stays off): inflating frames would let a client make the api
      // hold far more memory than it sent over the wire.
      perMessageDeflate: false,
      handleProtocols: chooseProtocol,
    }),
  }));

  function match(path: string): { entry: (typeof servers)[number]; params: string[] } | null {
    for (const entry of servers) {
      const { path: pattern } = entry.route;
      if (typeof pattern === 'string') {
        if (pattern === path) return { entry, params: [] };
        continue;
      }
      const found = pattern.exec(path);
      if (found && found[0] === path) return { entry, params: found.slice(1).map((p) => p ?? '') };
    }
    return null;
  }

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const matched = match(path);
    if (!matched) {
      rejectUpgrade(socket, 404, 'not_found', `no WebSocket endpoint at ${path}`);
      return;
    }
    const { entry, params } = matched;
    const context = entry.route.authorize ? await entry.route.authorize(req, socket, params) : {};
    if (context === false) return;
    entry.wss.handleUpgrade(req, socket, head, (ws) => {
      // Protocol errors (e.g. a frame over the cap) close the socket with a code; without a listener they
      // would also be thrown as an uncaught exception.
      ws.on('error', () => ws.terminate());
      entry.route.onConnection(ws, req, { ...context, params });
    });
  }

  /** Closes every open socket with 1001 (going away) so clients reconnect to another instance. */
  function closeAll(): void {
    for (const { wss } of servers) {
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      wss.close();
    }
  }

  return { handleUpgrade, closeAll };
}

/** The size of a received ws message, however ws delivered it (one buffer, fragments, an ArrayBuffer). */
export function rawBytes(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

/** A received ws message as UTF-8 text. */
export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (data instanceof ArrayBuffer ? Buffer.from(data) : data).toString('utf8');
}
