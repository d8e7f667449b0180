/**
 * ws /ws/vms/me/terminal — a shell in the caller's own VM, for onboarding (`gh auth login`, Claude's login)
 * and anything else. The api relays the desktop's terminal messages to the VM agent's PTYs:
 *
 *   client → api: create {cols, rows, requestId?} | input | resize | destroy      (TerminalClientMessage)
 *   api → client: terminal_list (on connect, with scrollback) | created | output | exit | error {code, message}
 *
 * Terminals live in the VM, not in this connection: closing the socket detaches, and reconnecting lists them
 * again with their scrollback. Any traffic counts as activity, so an open terminal keeps the VM awake.
 *
 * Every relay is bounded, because each one holds a lease on the VM's shared agent connection (AgentConnections:
 * one per VM per api process), its subscriptions on it, and a keep-alive timer that keeps the VM from idling: whatever way it ends (client close, close while the VM is still being readied, a client that
 * stops answering pings, a flood, a client that stops reading, the agent going away), everything it holds is
 * released at once. Errors sent to clients carry a stable code and a fixed message; details stay in the log.
 */
import type { IncomingMessage } from 'node:http';
import { type AgentClient, AgentClientError, type TerminalFeed } from '@factory-factory/core/agent-client';
import {
  AgentErrorCode,
  safeParseJson,
  TerminalClientMessage,
  type TerminalServerMessage,
} from '@factory-factory/core/protocol';
import type { RawData, WebSocket } from 'ws';
import type { Pool } from '../../db/pool.js';
import type { Logger } from '../../platform/logger.js';
import type { AgentConnections, AgentLease } from '../agents/connections.js';
import { authenticateRequest } from '../auth/middleware.js';
import type { Authenticator, Principal } from '../auth/principal.js';
import { ApiError } from '../errors.js';
import type { VmService } from '../services/vm-service.js';
import { rawBytes, rawText, rejectUpgrade, type WsRoute } from './upgrade.js';

export const TERMINAL_PATH = '/ws/vms/me/terminal';

export type TerminalRelayLimits = {
  /** A ws ping every interval; a client that has not answered the previous one is terminated. */
  pingIntervalMs: number;
  /**
   * How often a relay whose terminals were used (input or output) since the last tick tells the VM actor
   * it is in use. An open but silent tab is not use: it lets the VM suspend and its minutes stop.
   */
  keepAliveMs: number;
  /** Input received but not yet handed to the agent (early frames while the VM is readied, then the queue). */
  maxQueuedInputBytes: number;
  /** Sustained input rate; a paste may burst up to inputBurstBytes above it. */
  inputBytesPerSecond: number;
  inputBurstBytes: number;
  /** Output the client has not read yet (ws.bufferedAmount). */
  maxBufferedOutputBytes: number;
  /** After the api closes a socket, how long the client gets to finish the close handshake. */
  closeGraceMs: number;
};

export const defaultTerminalRelayLimits: TerminalRelayLimits = {
  pingIntervalMs: 30_000,
  keepAliveMs: 30_000,
  maxQueuedInputBytes: 1024 * 1024,
  inputBytesPerSecond: 1024 * 1024,
  inputBurstBytes: 4 * 1024 * 1024,
  maxBufferedOutputBytes: 4 * 1024 * 1024,
  closeGraceMs: 2000,
};

export type TerminalRouteDeps = {
  authenticator: Authenticator;
  pool: Pool;
  vms: VmService;
  log: Logger;
  /** The api's shared agent connections; a relay holds a lease while it is open. */
  agents: AgentConnections;
  /** config.api.wsPingIntervalMs in the api; overrides limits.pingIntervalMs. */
  pingIntervalMs?: number;
  limits?: Partial<TerminalRelayLimits>;
};

/** What the open relays hold right now, and how relays ended so far (for tests and metrics). */
export type TerminalRelayStats = {
  relays: number;
  /** Relays holding a lease on their VM's (shared) agent connection. */
  agentConnections: number;
  keepAliveTimers: number;
  pingTimers: number;
  queuedInputBytes: number;
  /** Relays ended since the route was made, by why: client_closed, ping_timeout, or an error code. */
  ended: Record<string, number>;
};

export type TerminalRoute = WsRoute & {
  /** Only the relays of `userId` when given (`ended` is always for all users). */
  stats: (userId?: string) => TerminalRelayStats;
};

/** Codes a terminal client can branch on; each comes with a fixed message below. */
export type TerminalErrorCode =
  | 'invalid_message'
  | 'input_overflow'
  | 'output_overflow'
  | 'terminal_not_found'
  | 'workspace_not_found'
  | 'workspace_not_ready'
  | 'terminal_failed'
  | 'vm_not_found'
  | 'vm_terminating'
  | 'vm_busy'
  | 'vm_failed'
  | 'vm_unavailable'
  | 'vm_timeout'
  | 'vm_disconnected'
  | 'vm_error'
  | 'internal';

type ClientError = { code: TerminalErrorCode; message: string };

const messages: Record<TerminalErrorCode, string> = {
  invalid_message: 'not a terminal message',
  input_overflow: 'too much input too fast; the connection was closed, reconnect to continue',
  output_overflow: 'output was not being read; the connection was closed, reconnect to continue',
  terminal_not_found: 'that terminal no longer exists',
  workspace_not_found: 'that workspace does not exist in your VM',
  workspace_not_ready: 'that workspace is not ready yet (still being set up, failed or archived)',
  terminal_failed: 'your VM could not do that; try again',
  vm_not_found: 'you have no VM yet: POST /api/vms creates it',
  vm_terminating: 'your VM is being terminated',
  vm_busy: 'your VM is busy with another change; try again in a moment',
  vm_failed: 'your VM failed to start; try again, or contact support if it persists',
  vm_unavailable: 'your VM is not reachable right now; reconnect in a moment',
  vm_timeout: 'your VM did not answer in time; try again',
  vm_disconnected: 'lost the connection to your VM; reconnect to continue',
  vm_error: 'something went wrong with your VM; try again',
  internal: 'the terminal relay failed; reconnect to continue',
};

const clientError = (code: TerminalErrorCode): ClientError => ({ code, message: messages[code] });

/** ws close codes: 1008 policy violation (the client broke a limit), 1011 server-side condition. */
const CLOSE_POLICY = 1008;
const CLOSE_SERVER_ERROR = 1011;

/** The agent's error code, if `err` carries one (AgentClientError and anything shaped like it). */
function agentCode(err: unknown): AgentErrorCode | null {
  if (!(err instanceof Error) || !('code' in err)) return null;
  const parsed = AgentErrorCode.safeParse(err.code);
  return parsed.success ? parsed.data : null;
}

/** Why the relay could not start: the VM actor's answers (ApiError), or reaching the agent. */
function startError(err: unknown): ClientError {
  if (err instanceof ApiError) {
    const known: TerminalErrorCode[] = [
      'vm_not_found',
      'vm_terminating',
      'vm_busy',
      'vm_failed',
      'vm_unavailable',
    ];
    const code = known.find((c) => c === err.code);
    return clientError(code ?? 'vm_error');
  }
  // Anything else went wrong on the way to the agent (its socket, its secret, the handshake).
  return clientError(agentCode(err) === 'timeout' ? 'vm_timeout' : 'vm_unavailable');
}

/** An agent request for one client message failed; the relay goes on. */
function requestError(err: unknown, messageType: TerminalClientMessage['type']): ClientError {
  switch (agentCode(err)) {
    case 'not_found':
      return clientError(messageType === 'create' ? 'workspace_not_found' : 'terminal_not_found');
    case 'conflict':
      return clientError(messageType === 'create' ? 'workspace_not_ready' : 'terminal_failed');
    case 'timeout':
      return clientError('vm_timeout');
    case 'disconnected':
    case 'unavailable':
      return clientError('vm_unavailable');
    default:
      return clientError('terminal_failed');
  }
}

export function terminalRoute(deps: TerminalRouteDeps): TerminalRoute {
  const limits: TerminalRelayLimits = {
    ...defaultTerminalRelayLimits,
    ...deps.limits,
    ...(deps.pingIntervalMs !== undefined ? { pingIntervalMs: deps.pingIntervalMs } : {}),
  };
  const open = new Set<TerminalRelay>();
  const ended: Record<string, number> = {};
  const agents = deps.agents;
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
      const relay = new TerminalRelay(ws, principal.userId, { ...deps, agents }, limits, (why) => {
        open.delete(relay);
        ended[why] = (ended[why] ?? 0) + 1;
      });
      open.add(relay);
      relay.start();
    },
    stats: (userId) => {
      const stats: TerminalRelayStats = {
        relays: 0,
        agentConnections: 0,
        keepAliveTimers: 0,
        pingTimers: 0,
        queuedInputBytes: 0,
        ended: { ...ended },
      };
      for (const relay of open) {
        if (userId !== undefined && relay.userId !== userId) continue;
        const held = relay.held();
        stats.relays += 1;
        stats.agentConnections += held.agent ? 1 : 0;
        stats.keepAliveTimers += held.keepAlive ? 1 : 0;
        stats.pingTimers += held.ping ? 1 : 0;
        stats.queuedInputBytes += held.queuedBytes;
      }
      return stats;
    },
  };
}

type Queued = { text: string; bytes: number };

/** One client socket relayed to the agent of the user's VM. */
class TerminalRelay {
  private lease: AgentLease | null = null;
  private agent: AgentClient | null = null;
  private stopWatchingAgent: (() => void) | null = null;
  private readonly feeds = new Set<TerminalFeed>();
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private ready = false;
  private draining = false;
  private ended = false;
  private pingTimer: NodeJS.Timeout | null = null;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  private inputTokens: number;
  private tokensAt = Date.now();
  private lastTouch = 0;
  /** When a terminal of this relay last took input or printed output. */
  private lastActivityAt = 0;
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly userId: string,
    private readonly deps: TerminalRouteDeps & { agents: AgentConnections },
    private readonly limits: TerminalRelayLimits,
    private readonly onEnd: (why: string) => void,
  ) {
    this.inputTokens = limits.inputBurstBytes;
    this.log = deps.log.child({ userId });
  }

  held(): { agent: boolean; keepAlive: boolean; ping: boolean; queuedBytes: number } {
    return {
      agent: this.lease !== null && this.agent !== null && !this.agent.isClosed,
      keepAlive: this.keepAliveTimer !== null,
      ping: this.pingTimer !== null,
      queuedBytes: this.queuedBytes,
    };
  }

  start(): void {
    this.ws.on('message', this.onMessage);
    this.ws.on('pong', this.onPong);
    this.ws.once('close', () => this.release('client_closed'));
    this.pingTimer = setInterval(this.onPingTick, this.limits.pingIntervalMs);
    this.connect().catch((err: unknown) => {
      if (this.ended) {
        this.log.debug({ err }, 'terminal relay: the client left before the VM was reached');
        return;
      }
      this.log.warn({ err }, 'terminal relay could not reach the VM');
      this.cutOff(startError(err), CLOSE_SERVER_ERROR);
    });
  }

  private readonly onPong = () => {
    this.awaitingPong = false;
  };

  private readonly onPingTick = () => {
    if (this.awaitingPong) {
      // Half-open (or hung) client: no close handshake is possible, drop the socket.
      this.log.info('terminal client did not answer a ping; terminating');
      this.release('ping_timeout');
      this.ws.terminate();
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  };

  private readonly onMessage = (data: RawData) => {
    if (this.ended) return;
    const bytes = rawBytes(data);
    const now = Date.now();
    this.inputTokens = Math.min(
      this.limits.inputBurstBytes,
      this.inputTokens + ((now - this.tokensAt) * this.limits.inputBytesPerSecond) / 1000,
    );
    this.tokensAt = now;
    this.inputTokens -= bytes;
    if (this.inputTokens < 0 || this.queuedBytes + bytes > this.limits.maxQueuedInputBytes) {
      this.log.warn(
        { queuedBytes: this.queuedBytes, frameBytes: bytes },
        'terminal client sent input faster than it can be relayed; cutting it off',
      );
      this.cutOff(clientError('input_overflow'), CLOSE_POLICY);
      return;
    }
    // Kept in order until the VM is ready, then handled one at a time: input must reach the PTY in the
    // order it was typed.
    this.queue.push({ text: rawText(data), bytes });
    this.queuedBytes += bytes;
    void this.drain();
  };

  private async connect(): Promise<void> {
    const lease = await this.deps.agents.acquire(this.userId);
    if (this.ended) {
      // The client left while the agent was being reached: give the shared connection back.
      lease.release();
      return;
    }
    this.lease = lease;
    const agent = lease.agent;
    this.agent = agent;
    if (agent.isClosed) throw new AgentClientError('disconnected', 'the agent connection closed');
    this.stopWatchingAgent = agent.onClose((reason) => {
      if (this.ended) return;
      this.log.warn({ reason }, 'terminal relay lost the agent connection');
      this.cutOff(clientError('vm_disconnected'), CLOSE_SERVER_ERROR);
    });
    this.keepAliveTimer = setInterval(() => {
      if (Date.now() - this.lastActivityAt < this.limits.keepAliveMs) void this.deps.vms.touch(this.userId);
    }, this.limits.keepAliveMs);

    // Reattach: every live terminal with what it printed so far.
    const live = (await agent.listTerminals()).filter((t) => t.exit === null);
    const listed: { id: string; createdAt: string; outputBuffer: string }[] = [];
    for (const terminal of live) {
      if (this.ended) return;
      let feed: TerminalFeed;
      try {
        feed = await agent.subscribeTerminal(terminal.id);
      } catch (err) {
        // It exited between the list and the subscribe.
        if (agentCode(err) === 'not_found') continue;
        throw err;
      }
      listed.push({ id: terminal.id, createdAt: terminal.createdAt, outputBuffer: feed.scrollback });
      this.attach(feed);
    }
    if (this.ended) return;
    this.send({ type: 'terminal_list', terminals: listed });
    this.ready = true;
    void this.drain();
  }

  private attach(feed: TerminalFeed): void {
    if (this.ended) {
      void feed.close();
      return;
    }
    this.feeds.add(feed);
    void feed.ended.then(() => this.feeds.delete(feed));
    feed.on((event) => {
      if (event.type === 'output') {
        this.lastActivityAt = Date.now();
        this.send({ type: 'output', terminalId: event.terminalId, data: event.data });
        return;
      }
      this.send({
        type: 'exit',
        terminalId: event.terminalId,
        exitCode: event.exitCode,
        signal: event.signal,
      });
      void feed.close();
    });
  }

  private send(message: TerminalServerMessage): void {
    if (this.ended || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(message));
    if (this.ws.bufferedAmount > this.limits.maxBufferedOutputBytes) {
      this.log.warn(
        { bufferedBytes: this.ws.bufferedAmount },
        'terminal client is not reading its output; cutting it off',
      );
      this.cutOff(clientError('output_overflow'), CLOSE_POLICY);
    }
  }

  private async drain(): Promise<void> {
    if (this.draining || !this.ready) return;
    this.draining = true;
    try {
      for (;;) {
        const next = this.queue.shift();
        if (!next || this.ended) break;
        await this.handle(next.text);
        if (this.ended) break;
        this.queuedBytes -= next.bytes;
      }
    } catch (err) {
      this.log.error({ err }, 'terminal relay failed');
      this.cutOff(clientError('internal'), CLOSE_SERVER_ERROR);
    } finally {
      this.draining = false;
    }
  }

  private async handle(raw: string): Promise<void> {
    const agent = this.agent;
    if (!agent || this.ended) return;
    const parsed = safeParseJson(TerminalClientMessage, raw);
    if (!parsed.ok) {
      // The parser's message describes only what the client sent.
      this.send({ type: 'error', code: 'invalid_message', message: parsed.error.message });
      return;
    }
    const message = parsed.value;
    this.lastActivityAt = Date.now();
    if (Date.now() - this.lastTouch > 10_000) {
      this.lastTouch = Date.now();
      void this.deps.vms.touch(this.userId);
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
          if (this.ended) {
            void feed.close();
            return;
          }
          this.send({
            type: 'created',
            terminalId: info.id,
            outputBuffer: feed.scrollback,
            ...(message.requestId ? { requestId: message.requestId } : {}),
          });
          this.attach(feed);
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
      if (this.ended) return;
      this.log.info({ err, messageType: message.type }, 'terminal request failed in the VM');
      this.send({
        type: 'error',
        ...requestError(err, message.type),
        ...(message.type === 'create' && message.requestId ? { requestId: message.requestId } : {}),
      });
    }
  }

  /** Tells the client why (when it can still hear it), closes with `closeCode`, and releases everything. */
  private cutOff(error: ClientError, closeCode: number): void {
    if (this.ended) return;
    if (this.ws.readyState === this.ws.OPEN) {
      // Straight to the socket: send() would re-check the output cap.
      this.ws.send(JSON.stringify({ type: 'error', ...error } satisfies TerminalServerMessage));
      this.ws.close(closeCode, error.code);
    }
    this.release(error.code);
    // A client that does not read (or answer the close) is not waited for.
    const grace = setTimeout(() => this.ws.terminate(), this.limits.closeGraceMs);
    this.ws.once('close', () => clearTimeout(grace));
  }

  /** Idempotent; every exit path ends here. */
  private release(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.ws.off('message', this.onMessage);
    this.ws.off('pong', this.onPong);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.pingTimer = null;
    this.keepAliveTimer = null;
    this.queue.length = 0;
    this.queuedBytes = 0;
    // The connection is shared: end this relay's own subscriptions on it, then give it back.
    for (const feed of this.feeds) void feed.close();
    this.feeds.clear();
    this.stopWatchingAgent?.();
    this.stopWatchingAgent = null;
    this.lease?.release();
    this.lease = null;
    this.agent = null;
    this.log.debug({ why }, 'terminal relay released');
    this.onEnd(why);
  }
}
