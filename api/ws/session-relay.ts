/**
 * ws /ws/workspaces/:id/sessions/:sid[?after=<seq>] — a live Claude session, client ⇄ api ⇄ agent. Frames
 * are api/contract/session-relay.ts (read its header).
 *
 * On connect the workspace must be the caller's and READY in the cloud (read model), and the session must be
 * one of that workspace's (agent); otherwise the client gets an error frame and a 4404 close, the same for
 * "not yours" as for "does not exist". Then the relay subscribes with `afterSeq`: the agent answers with a
 * snapshot (no `after`, or one too old for its replay ring) or the replay of exactly the events after
 * `after`, and live events follow with no gap; the relay forwards them in order and drops any seq it
 * already sent, so a reconnecting client sees every event exactly once.
 *
 * Nothing about a relay lives only here: the agent holds the events and the sessions, so a client whose api
 * process died reconnects to any other with `after` and loses nothing. That is also why the relay never
 * buffers for a slow client: past `maxBufferedBytes` of unread output it closes with `too_slow`, and the
 * client catches up by reconnecting.
 *
 * Client commands are handled one at a time in the order sent (a queued message must not overtake an
 * earlier one), each answered with `command_result` or `error` carrying its `requestId`. A bad frame
 * (malformed JSON, not a command, over 1 MB) is answered with an error and the connection stays open.
 * Commands count as the user's activity (the VM's idle timer); a viewer that only watches does not.
 *
 * Like the terminal relay, every way a relay ends goes through one `release`, which gives back everything
 * it holds: its agent lease and subscription, its ping timer, its queued commands.
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentClient, SessionFeed, SessionFeedStart } from '@factory-factory/core/agent-client';
import {
  encodeJsonOnce,
  MAX_MESSAGE_BYTES,
  type SessionEvent,
  safeParseJson,
} from '@factory-factory/core/protocol';
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import type { Logger } from '../../platform/logger.js';
import type { AgentConnections, AgentLease } from '../agents/connections.js';
import { authenticateRequest } from '../auth/middleware.js';
import type { Authenticator, Principal } from '../auth/principal.js';
import {
  type RelayClientFrame,
  RelayClientFrameSchema,
  type RelayErrorCode,
  type RelayServerFrame,
  SESSION_RELAY_PATH,
} from '../contract/session-relay.js';
import { ApiError } from '../errors.js';
import type { VmService } from '../services/vm-service.js';
import { agentErrorCode, type WorkspaceService } from '../services/workspace-service.js';
import { rawBytes, rawText, rejectUpgrade, type WsRoute } from './upgrade.js';

export type SessionRelayLimits = {
  /** A ws ping every interval; a client that has not answered the previous one is terminated. */
  pingIntervalMs: number;
  /** Output the client has not read yet (ws.bufferedAmount) before it is cut off with too_slow. */
  maxBufferedBytes: number;
  /** Commands received but not answered yet, by count and bytes; past either, a command is refused. */
  maxQueuedCommands: number;
  maxQueuedCommandBytes: number;
  /** At most one touch of the VM's idle timer per this interval, however many commands come. */
  touchIntervalMs: number;
  /** After the api closes a socket, how long the client gets to finish the close handshake. */
  closeGraceMs: number;
};

export const defaultSessionRelayLimits: SessionRelayLimits = {
  pingIntervalMs: 30_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  maxQueuedCommands: 64,
  maxQueuedCommandBytes: 4 * 1024 * 1024,
  touchIntervalMs: 10_000,
  closeGraceMs: 2000,
};

/** The ws hard limit: frames up to this get an error frame (over MAX_MESSAGE_BYTES), bigger ones a 1009. */
export const SESSION_RELAY_MAX_PAYLOAD = MAX_MESSAGE_BYTES + 3 * 1024 * 1024;

/** Close codes: 4404 not found (also "not yours"), 4409 not ready, 1008 a limit broken, 1011 server side. */
export const SessionRelayClose = {
  notFound: 4404,
  notReady: 4409,
  policy: 1008,
  serverError: 1011,
} as const;

export type SessionRouteDeps = {
  authenticator: Authenticator;
  pool: Parameters<typeof authenticateRequest>[1]['pool'];
  vms: VmService;
  workspaces: WorkspaceService;
  agents: AgentConnections;
  log: Logger;
  /** config.api.wsPingIntervalMs in the api; overrides limits.pingIntervalMs. */
  pingIntervalMs?: number;
  limits?: Partial<SessionRelayLimits>;
};

export type SessionRelayStats = {
  relays: number;
  /** Relays holding a lease on their VM's shared agent connection. */
  agentLeases: number;
  subscriptions: number;
  pingTimers: number;
  queuedCommands: number;
  queuedCommandBytes: number;
  /** Relays ended since the route was made, by why: client_closed, ping_timeout, or an error code. */
  ended: Record<string, number>;
};

export type SessionRoute = WsRoute & { stats: (userId?: string) => SessionRelayStats };

/**
 * session.subscribe with `afterSeq`: the agent answers with the replay of exactly the events after it, or
 * with a snapshot when it has no `after` or one older than the agent's replay ring.
 */
async function subscribeAfter(
  agent: AgentClient,
  sessionId: string,
  afterSeq: number | undefined,
): Promise<{ feed: SessionFeed; start: SessionFeedStart }> {
  const feed = await agent.subscribeSession(sessionId, afterSeq === undefined ? {} : { afterSeq });
  return { feed, start: feed.start };
}

type ClientError = { code: RelayErrorCode; message: string };

/** How often a relay looks whether its catch-up has drained. */
const CATCH_UP_DRAIN_POLL_MS = 10;

const fixed = {
  not_found: 'no such session in this workspace, or no such workspace of yours',
  agent_unavailable: 'lost the connection to your VM; reconnect with after=<last seq> to continue',
  vm_unavailable: 'your VM is not reachable right now; reconnect in a moment',
  too_slow: 'you were not reading fast enough; reconnect with after=<last seq> to continue',
  internal: 'the session relay failed; reconnect with after=<last seq> to continue',
} as const;

/** A command's agent failure; the agent's words where they describe the caller's command. */
function commandError(err: unknown): ClientError {
  const message = err instanceof Error ? err.message : String(err);
  switch (agentErrorCode(err)) {
    case 'not_found':
      return { code: 'not_found', message };
    case 'conflict':
      return { code: 'conflict', message };
    case 'queue_full':
      return { code: 'queue_full', message };
    case 'bad_request':
      return { code: 'bad_request', message };
    case 'timeout':
      return { code: 'agent_unavailable', message: 'your VM did not answer in time; try again' };
    case 'unavailable':
    case 'disconnected':
      return { code: 'agent_unavailable', message: fixed.agent_unavailable };
    default:
      return { code: 'internal', message: 'your VM could not do that; try again' };
  }
}

/** Why a relay could not start, and how it closes. */
function startError(err: unknown): { error: ClientError; close: number } {
  if (err instanceof ApiError) {
    if (err.status === 404)
      return { error: { code: 'not_found', message: fixed.not_found }, close: SessionRelayClose.notFound };
    if (err.status === 409)
      return { error: { code: 'conflict', message: err.message }, close: SessionRelayClose.notReady };
    return {
      error: { code: 'vm_unavailable', message: fixed.vm_unavailable },
      close: SessionRelayClose.serverError,
    };
  }
  if (agentErrorCode(err) === 'not_found')
    return { error: { code: 'not_found', message: fixed.not_found }, close: SessionRelayClose.notFound };
  return {
    error: { code: 'vm_unavailable', message: fixed.vm_unavailable },
    close: SessionRelayClose.serverError,
  };
}

/** Only what is needed to echo a requestId on a frame that failed its schema. */
const RequestIdOnly = z.looseObject({ requestId: z.string().min(1).max(200).optional() });

const AfterSchema = z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export function sessionRelayRoute(deps: SessionRouteDeps): SessionRoute {
  const limits: SessionRelayLimits = {
    ...defaultSessionRelayLimits,
    ...deps.limits,
    ...(deps.pingIntervalMs !== undefined ? { pingIntervalMs: deps.pingIntervalMs } : {}),
  };
  const open = new Set<SessionRelay>();
  const ended: Record<string, number> = {};
  return {
    path: SESSION_RELAY_PATH,
    maxPayload: SESSION_RELAY_MAX_PAYLOAD,
    authorize: async (req: IncomingMessage, socket, params) => {
      try {
        const principal = await authenticateRequest(req, deps);
        const after = new URL(req.url ?? '/', 'http://localhost').searchParams.get('after');
        let afterSeq: number | undefined;
        if (after !== null) {
          const parsed = AfterSchema.safeParse(after);
          if (!parsed.success || after.trim() === '')
            throw new ApiError(
              400,
              'bad_request',
              'after must be the seq of the last event you saw (0, 1, 2, …)',
            );
          afterSeq = parsed.data;
        }
        const [workspaceId, sessionId] = params;
        if (!workspaceId || !sessionId) throw new ApiError(404, 'not_found', 'no such session');
        return { principal, workspaceId, sessionId, afterSeq };
      } catch (err) {
        if (err instanceof ApiError) rejectUpgrade(socket, err.status, err.code, err.message);
        else throw err;
        return false;
      }
    },
    onConnection: (ws, _req, context) => {
      const principal = context.principal as Principal;
      const target = {
        workspaceId: String(context.workspaceId),
        sessionId: String(context.sessionId),
        afterSeq: typeof context.afterSeq === 'number' ? context.afterSeq : undefined,
      };
      const relay = new SessionRelay(ws, principal.userId, target, deps, limits, (why) => {
        open.delete(relay);
        ended[why] = (ended[why] ?? 0) + 1;
      });
      open.add(relay);
      relay.start();
    },
    stats: (userId) => {
      const stats: SessionRelayStats = {
        relays: 0,
        agentLeases: 0,
        subscriptions: 0,
        pingTimers: 0,
        queuedCommands: 0,
        queuedCommandBytes: 0,
        ended: { ...ended },
      };
      for (const relay of open) {
        if (userId !== undefined && relay.userId !== userId) continue;
        const held = relay.held();
        stats.relays += 1;
        stats.agentLeases += held.lease ? 1 : 0;
        stats.subscriptions += held.feed ? 1 : 0;
        stats.pingTimers += held.ping ? 1 : 0;
        stats.queuedCommands += held.queued;
        stats.queuedCommandBytes += held.queuedBytes;
      }
      return stats;
    },
  };
}

type QueuedCommand = { frame: RelayClientFrame; bytes: number };

class SessionRelay {
  private lease: AgentLease | null = null;
  private agent: AgentClient | null = null;
  private feed: SessionFeed | null = null;
  private stopWatchingAgent: (() => void) | null = null;
  private readonly queue: QueuedCommand[] = [];
  private queuedBytes = 0;
  private ready = false;
  private draining = false;
  private ended = false;
  /** The last seq the client was sent (or the snapshot's): anything at or below it is a duplicate. */
  private lastSeq = 0;
  /** While the catch-up is written: it is bounded by the agent's ring, and drains before live events. */
  private catchingUp = false;
  private pingTimer: NodeJS.Timeout | null = null;
  private awaitingPong = false;
  private lastTouch = 0;
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    readonly userId: string,
    private readonly target: { workspaceId: string; sessionId: string; afterSeq: number | undefined },
    private readonly deps: SessionRouteDeps,
    private readonly limits: SessionRelayLimits,
    private readonly onEnd: (why: string) => void,
  ) {
    this.log = deps.log.child({ userId, workspaceId: target.workspaceId, sessionId: target.sessionId });
  }

  held(): { lease: boolean; feed: boolean; ping: boolean; queued: number; queuedBytes: number } {
    return {
      lease: this.lease !== null,
      feed: this.feed !== null && !this.feed.isEnded,
      ping: this.pingTimer !== null,
      queued: this.queue.length,
      queuedBytes: this.queuedBytes,
    };
  }

  start(): void {
    this.ws.on('message', this.onMessage);
    this.ws.on('pong', this.onPong);
    this.ws.once('close', () => this.release('client_closed'));
    this.pingTimer = setInterval(this.onPingTick, this.limits.pingIntervalMs);
    this.connect().catch((err: unknown) => {
      if (this.ended) return;
      const { error, close } = startError(err);
      if (error.code === 'vm_unavailable') this.log.warn({ err }, 'session relay could not reach the VM');
      else this.log.info({ code: error.code }, 'session relay refused');
      this.cutOff(error, close);
    });
  }

  private readonly onPong = () => {
    this.awaitingPong = false;
  };

  private readonly onPingTick = () => {
    if (this.awaitingPong) {
      this.log.info('session client did not answer a ping; terminating');
      this.release('ping_timeout');
      this.ws.terminate();
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  };

  private async connect(): Promise<void> {
    const { workspaceId, sessionId, afterSeq } = this.target;
    // Tenancy first, from the read model: another user's workspace never reaches their VM's agent.
    await this.deps.workspaces.readyWorkspace(this.userId, workspaceId);
    if (this.ended) return;
    const lease = await this.deps.agents.acquire(this.userId);
    if (this.ended) {
      lease.release();
      return;
    }
    this.lease = lease;
    const agent = lease.agent;
    this.agent = agent;
    this.stopWatchingAgent = agent.onClose((reason) => {
      if (this.ended) return;
      this.log.warn({ reason: reason.code }, 'session relay lost the agent connection');
      this.cutOff(
        { code: 'agent_unavailable', message: fixed.agent_unavailable },
        SessionRelayClose.serverError,
      );
    });
    const { session } = await agent.getSession(sessionId);
    if (session.workspaceId !== workspaceId) throw new ApiError(404, 'not_found', fixed.not_found);
    if (this.ended) return;
    const { feed, start } = await subscribeAfter(agent, sessionId, afterSeq);
    if (this.ended) {
      void feed.close();
      return;
    }
    this.feed = feed;
    void feed.ended.then((reason) => {
      if (this.ended || reason === null) return;
      if (reason.code === 'not_found') {
        this.cutOff(
          { code: 'not_found', message: 'this session no longer exists' },
          SessionRelayClose.notFound,
        );
        return;
      }
      this.log.info({ reason: reason.code }, 'the agent ended the session feed');
      this.cutOff(
        { code: 'agent_unavailable', message: fixed.agent_unavailable },
        SessionRelayClose.serverError,
      );
    });

    // The catch-up (a snapshot, or the replay of up to the agent's whole ring) may be larger than the
    // output cap, and it is bounded by the agent's ring, so it is written in full and then given time to
    // drain; live events wait in the feed meanwhile. Only a client that does not read it in time is cut off.
    this.catchingUp = true;
    if (start.kind === 'snapshot') {
      this.lastSeq = start.snapshot.seq;
      this.sendText(JSON.stringify(start.snapshot satisfies RelayServerFrame));
    } else {
      this.lastSeq = afterSeq ?? 0;
      for (const event of start.events) this.forward(event);
      this.lastSeq = Math.max(this.lastSeq, start.seq);
      this.sendFrame({ type: 'caught_up', seq: this.lastSeq });
    }
    this.catchingUp = false;
    if (!(await this.drainedBelowCap())) {
      if (!this.ended) {
        this.log.warn({ bufferedBytes: this.ws.bufferedAmount }, 'session client did not read its catch-up');
        this.cutOff({ code: 'too_slow', message: fixed.too_slow }, SessionRelayClose.policy);
      }
      return;
    }
    if (this.ended) return;
    feed.on((event) => this.forward(event));
    this.ready = true;
    void this.drain();
  }

  /** One event to the client, in order, each seq once. */
  private forward(event: SessionEvent): void {
    if (this.ended || event.seq <= this.lastSeq) return;
    if (event.seq !== this.lastSeq + 1)
      this.log.warn({ expected: this.lastSeq + 1, got: event.seq }, 'session events skipped a seq');
    this.lastSeq = event.seq;
    // The agent's events are immutable once received; their JSON is made once however many relays send it.
    this.sendText(`{"type":"session_event","event":${encodeJsonOnce(event)}}`);
  }

  private sendFrame(frame: RelayServerFrame): void {
    this.sendText(JSON.stringify(frame));
  }

  /**
   * Waits until the client has read enough of what it was sent to be under the output cap again, for at
   * most one ping interval. False when it did not (or the relay ended meanwhile).
   */
  private async drainedBelowCap(): Promise<boolean> {
    const deadline = Date.now() + this.limits.pingIntervalMs;
    while (!this.ended && this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      if (Date.now() >= deadline) return false;
      await sleep(CATCH_UP_DRAIN_POLL_MS);
    }
    return !this.ended;
  }

  private sendText(text: string): void {
    if (this.ended || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(text);
    if (!this.catchingUp && this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.log.warn(
        { bufferedBytes: this.ws.bufferedAmount },
        'session client is not reading; cutting it off',
      );
      this.cutOff({ code: 'too_slow', message: fixed.too_slow }, SessionRelayClose.policy);
    }
  }

  private sendError(error: ClientError, requestId?: string | null): void {
    this.sendFrame({ type: 'error', ...error, ...(requestId ? { requestId } : {}) });
  }

  private readonly onMessage = (data: RawData, isBinary: boolean) => {
    if (this.ended) return;
    const bytes = rawBytes(data);
    if (bytes > MAX_MESSAGE_BYTES) {
      this.sendError({
        code: 'frame_too_large',
        message: `a frame may carry at most ${MAX_MESSAGE_BYTES} bytes`,
      });
      return;
    }
    if (isBinary) {
      this.sendError({ code: 'bad_request', message: 'frames are JSON text' });
      return;
    }
    const text = rawText(data);
    const parsed = safeParseJson(RelayClientFrameSchema, text);
    if (!parsed.ok) {
      const echo = safeParseJson(RequestIdOnly, text);
      const requestId = echo.ok ? echo.value.requestId : undefined;
      // The parser's message describes only what the client sent.
      const code: RelayErrorCode = parsed.error.code === 'malformed_json' ? 'malformed_json' : 'bad_request';
      this.sendError({ code, message: parsed.error.message }, requestId);
      return;
    }
    const frame = parsed.value;
    if (
      this.queue.length >= this.limits.maxQueuedCommands ||
      this.queuedBytes + bytes > this.limits.maxQueuedCommandBytes
    ) {
      this.sendError(
        { code: 'queue_full', message: 'too many commands waiting for an answer; wait for their results' },
        frame.requestId,
      );
      return;
    }
    this.queue.push({ frame, bytes });
    this.queuedBytes += bytes;
    void this.drain();
  };

  private async drain(): Promise<void> {
    if (this.draining || !this.ready) return;
    this.draining = true;
    try {
      for (;;) {
        const next = this.queue.shift();
        if (!next || this.ended) break;
        this.queuedBytes -= next.bytes;
        await this.handle(next.frame);
      }
    } catch (err) {
      this.log.error({ err }, 'session relay failed');
      this.cutOff({ code: 'internal', message: fixed.internal }, SessionRelayClose.serverError);
    } finally {
      this.draining = false;
    }
  }

  private async handle(frame: RelayClientFrame): Promise<void> {
    const agent = this.agent;
    if (!agent || this.ended) return;
    const sessionId = this.target.sessionId;
    if (Date.now() - this.lastTouch > this.limits.touchIntervalMs) {
      this.lastTouch = Date.now();
      void this.deps.vms.touch(this.userId);
    }
    let result: Record<string, unknown>;
    try {
      switch (frame.type) {
        case 'queue_message':
        case 'user_message':
          result = await agent.sendMessage({
            sessionId,
            text: frame.text,
            ...(frame.id !== undefined ? { id: frame.id } : {}),
            ...(frame.settings !== undefined ? { settings: frame.settings } : {}),
          });
          break;
        case 'question_response':
          await agent.answerQuestion({ sessionId, requestId: frame.requestId, answers: frame.answers });
          result = { ok: true };
          break;
        case 'permission_response':
          await agent.answerPermission({
            sessionId,
            requestId: frame.requestId,
            allow: frame.allow,
            ...(frame.message !== undefined ? { message: frame.message } : {}),
            ...(frame.updatedInput !== undefined ? { updatedInput: frame.updatedInput } : {}),
          });
          result = { ok: true };
          break;
        case 'remove_queued_message':
          result = { removed: await agent.removeQueuedMessage(sessionId, frame.messageId) };
          break;
        case 'interrupt':
          await agent.interrupt(sessionId);
          result = { ok: true };
          break;
        case 'stop':
          await agent.stopSession(sessionId);
          result = { ok: true };
          break;
      }
    } catch (err) {
      if (this.ended) return;
      this.log.info({ err, command: frame.type }, 'session command failed in the VM');
      this.sendError(commandError(err), frame.requestId);
      return;
    }
    this.sendFrame({
      type: 'command_result',
      requestId: frame.requestId ?? null,
      command: frame.type,
      result,
    });
  }

  /** Tells the client why (when it can still hear it), closes with `closeCode`, and releases everything. */
  private cutOff(error: ClientError, closeCode: number): void {
    if (this.ended) return;
    if (this.ws.readyState === this.ws.OPEN) {
      // Straight to the socket: sendText would re-check the output cap.
      this.ws.send(JSON.stringify({ type: 'error', ...error } satisfies RelayServerFrame));
      this.ws.close(closeCode, error.code);
    }
    this.release(error.code);
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
    this.pingTimer = null;
    this.queue.length = 0;
    this.queuedBytes = 0;
    // The connection is shared: end this relay's subscription on it, then give it back.
    void this.feed?.close();
    this.feed = null;
    this.stopWatchingAgent?.();
    this.stopWatchingAgent = null;
    this.lease?.release();
    this.lease = null;
    this.agent = null;
    this.log.debug({ why }, 'session relay released');
    this.onEnd(why);
  }
}
