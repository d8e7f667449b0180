/**
 * A WebSocket to the api with the key as an `Authorization: Bearer` header. An upgrade the api refuses
 * (401, 404, 503 …) becomes an ApiRefusal carrying the api's own `{error:{code,message}}` message.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { ApiRefusal, refusalFrom } from './api-client.js';
import { CliError, ExitCode, errorText } from './errors.js';

export type SocketHandlers = {
  message: (data: WebSocket.RawData) => void;
  /** Only after the socket was open (a failed open rejects instead). */
  close: () => void;
};

/**
 * Resolves once the socket is open; rejects with ApiRefusal (refused upgrade) or CliError (unreachable).
 * The handlers are attached before the handshake: frames that arrive in the same packet as the upgrade
 * answer (an immediate error and close) are emitted before the promise's continuation could attach them.
 */
export function openSocket(
  url: string,
  apiKey: string,
  handlers: SocketHandlers,
  timeoutMs = 30_000,
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${apiKey}` },
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
    });
    ws.on('message', (data) => handlers.message(data));
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners('unexpected-response');
      ws.removeAllListeners('error');
      // 'close' follows any error after the open.
      ws.on('error', () => {});
      ws.on('close', () => handlers.close());
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 64 * 1024) chunks.push(chunk);
      });
      res.on('end', () => fail(refusalFrom(res.statusCode ?? 500, Buffer.concat(chunks).toString('utf8'))));
      res.on('error', () => fail(refusalFrom(res.statusCode ?? 500, '')));
    });
    ws.once('error', (err) =>
      fail(
        new CliError(ExitCode.service, `cannot reach the api at ${new URL(url).origin}: ${errorText(err)}`),
      ),
    );
  });
}

/** A refused upgrade worth retrying: the api or the VM is briefly unavailable. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ApiRefusal) return err.status >= 500 || err.status === 429 || err.status === 408;
  return err instanceof CliError && err.exitCode === ExitCode.service;
}

export function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (data instanceof ArrayBuffer ? Buffer.from(data) : data).toString('utf8');
}
