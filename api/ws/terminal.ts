/**
 * ws /ws/vms/me/terminal — a shell in the caller's own VM, for onboarding (`gh auth login`, Claude's login)
 * and anything else. The api relays the desktop's terminal messages to the VM agent's PTYs:
 *
 *   client → api: create {cols, rows, requestId?} | input | resize | destroy      (TerminalClientMessage)
 *   api → client: terminal_list (on connect, with scrollback) | created | output | exit | error
 *
 * Terminals live in the VM, not in this connection: closing the socket detaches, and reconnecting lists them
 * again with their scrollback. Any traffic counts as activity, so an open terminal keeps the VM awake.
 */
import type { IncomingMessage } from 'node:http';
import type { AgentClient, TerminalFeed } from '@factory-factory/core/agent-client';
import {
  safeParseJson,
  TerminalClientMessage,
  type TerminalServerMessage,
} from '@factory-factory/core/protocol';
import type { WebSocket } from 'ws';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type { Pool } from '../../db/pool.js';
import type { Logger } from '../../platform/logger.js';
import { authenticateRequest } from '../auth/middleware.js';
import type { Authenticator, Principal } from '../auth/principal.js';
import { ApiError } from '../errors.js';
import type { VmService } from '../services/vm-service.js';
import { rejectUpgrade, type WsRoute } from './upgrade.js';

export const TERMINAL_PATH = '/ws/vms/me/terminal';
const KEEPALIVE_MS = 30_000;

export type TerminalRouteDeps = {
  authenticator: Authenticator;
  pool: Pool;
  vms: VmService;
  log: Logger;
  connectAgent: (ref: VmContainerRef) => Promise<AgentClient>;
};

export function terminalRoute(deps: TerminalRouteDeps): WsRoute {
  return {
    path: TERMINAL_PATH,
    authorize: async (req: IncomingMessage, socket) => {
      try {
        return { principal: await authenticateRequest(req, deps) };
      } catch (err) {
        if (err instanceof ApiError) rejectUpgrade(socket, err.status, err.code, err.message);
        else throw err;
        return false;
      }
    },
    onConnection: (ws, _req, context) => {
      const principal = context.principal as Principal;
      relayTerminals(ws, principal.userId, deps).catch((err: unknown) => {
        deps.log.warn({ err, userId: principal.userId }, 'terminal relay ended with an error');
        closeWithError(ws, err);
      });
    },
  };
}

function send(ws: WebSocket, message: TerminalServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function closeWithError(ws: WebSocket, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  send(ws, { type: 'error', message });
  if (ws.readyState === ws.OPEN) ws.close(1011, message.slice(0, 120));
}

async function relayTerminals(ws: WebSocket, userId: string, deps: TerminalRouteDeps): Promise<void> {
  // Messages that arrive while the VM is being readied are kept in order and handled afterwards.
  const early: string[] = [];
  const keepEarly = (data: unknown) => early.push(String(data));
  ws.on('message', keepEarly);

  const ref = await deps.vms.agentEndpoint(userId);
  if (ws.readyState !== ws.OPEN) return;
  const agent = await deps.connectAgent(ref);
  const feeds = new Map<string, TerminalFeed>();

  const keepAlive = setInterval(() => void deps.vms.touch(userId), KEEPALIVE_MS);
  let closed = false;
  const cleanup = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    for (const feed of feeds.values()) void feed.close();
    agent.close();
  };
  ws.on('close', cleanup);
  agent.onClose((reason) => {
    if (closed) return;
    cleanup();
    closeWithError(
      ws,
      new Error(`lost the connection to your VM (${reason.message}); reconnect to continue`),
    );
  });

  function attach(feed: TerminalFeed): void {
    feeds.set(feed.terminal.id, feed);
    feed.on((event) => {
      if (event.type === 'output')
        send(ws, { type: 'output', terminalId: event.terminalId, data: event.data });
      else {
        send(ws, {
          type: 'exit',
          terminalId: event.terminalId,
          exitCode: event.exitCode,
          signal: event.signal,
        });
        feeds.delete(event.terminalId);
        void feed.close();
      }
    });
  }

  // Reattach: every live terminal with what it printed so far.
  const live = (await agent.listTerminals()).filter((t) => t.exit === null);
  const listed: { id: string; createdAt: string; outputBuffer: string }[] = [];
  for (const terminal of live) {
    const feed = await agent.subscribeTerminal(terminal.id);
    listed.push({ id: terminal.id, createdAt: terminal.createdAt, outputBuffer: feed.scrollback });
    attach(feed);
  }
  send(ws, { type: 'terminal_list', terminals: listed });

  let lastTouch = 0;
  async function handle(raw: string): Promise<void> {
    const parsed = safeParseJson(TerminalClientMessage, raw);
    if (!parsed.ok) {
      send(ws, { type: 'error', message: parsed.error.message });
      return;
    }
    const message = parsed.value;
    if (Date.now() - lastTouch > 10_000) {
      lastTouch = Date.now();
      void deps.vms.touch(userId);
    }
    try {
      switch (message.type) {
        case 'create': {
          const info = await agent.createTerminal({
            cols: message.cols,
            rows: message.rows,
            ...(message.workspaceId ? { workspaceId: message.workspaceId } : {}),
          });
          const feed = await agent.subscribeTerminal(info.id);
          send(ws, {
            type: 'created',
            terminalId: info.id,
            outputBuffer: feed.scrollback,
            ...(message.requestId ? { requestId: message.requestId } : {}),
          });
          attach(feed);
          break;
        }
        case 'input':
          await agent.terminalInput(message.terminalId, message.data);
          break;
        case 'resize':
          await agent.resizeTerminal(message.terminalId, message.cols, message.rows);
          break;
        case 'destroy':
          await agent.killTerminal(message.terminalId);
          break;
      }
    } catch (err) {
      send(ws, {
        type: 'error',
        message: err instanceof Error ? err.message : String(err),
        ...(message.type === 'create' && message.requestId ? { requestId: message.requestId } : {}),
      });
    }
  }

  // One message at a time, in arrival order: input must reach the PTY in the order it was typed.
  let queue = Promise.resolve();
  const enqueue = (raw: string) => {
    queue = queue.then(() => handle(raw));
  };
  ws.off('message', keepEarly);
  for (const raw of early) enqueue(raw);
  ws.on('message', (data) => enqueue(String(data)));
}
