import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { z } from 'zod';
import {
  AGENT_PROTOCOL_VERSION,
  type AgentError,
  type AgentErrorCode,
  type AgentHealth,
  type AgentMethod,
  AgentMethods,
  type AgentParams,
  type AgentResult,
  AgentServerFrame,
  type AgentSessionInfo,
  CappedLineSplitter,
  encodeNdjsonLine,
  MAX_AGENT_FRAME_BYTES,
  MAX_AGENT_HANDSHAKE_FRAME_BYTES,
  NdjsonWriter,
  type PortableWorkspaceState,
  type PortableWorkspaceStateInput,
  type PullRequestSnapshot,
  type ReviewTrustPolicy,
  SessionEvent,
  type SessionSnapshot,
  safeParseJson,
  TerminalEvent,
  type TerminalInfo,
  type Workspace,
  type WorkspaceLocation,
} from '../protocol/index.js';
import { handshakeProof, newNonce, proofMatches } from './handshake.js';

/**
 * Typed client of the agent protocol, for the cloud side (api relay, Temporal activities) and tests.
 *
 *   const agent = await AgentClient.connect({ socketPath, secret });
 *   const created = await agent.createWorkspace({ source: 'RESUME_BRANCH', repoUrl, branchName: 'main' });
 *   const ws = await agent.waitForWorkspace(created.id);   // READY, or FAILED with initError
 *   const s = await agent.createSession({ workspaceId: ws.id });
 *   const feed = await agent.subscribeSession(s.id);   // feed.snapshot, then events
 *   // after a reconnect: subscribeSession(s.id, { afterSeq }) → feed.start is the missed events or a snapshot
 *   await agent.sendMessage({ sessionId: s.id, text: 'hello' });
 *   for await (const event of feed) { ... }             // or feed.on(event => ...)
 */

export class AgentClientError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    /** Set only for a rate limit (GitHub's, from ratchetSnapshot): wait at least this long. */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'AgentClientError';
  }
}

export interface AgentClientOptions {
  socketPath: string;
  /**
   * The per-VM secret. It never crosses the socket: the agent must prove it knows it before this client
   * sends anything but a nonce, and then the client proves it too (core/src/agent/handshake.ts).
   */
  secret: string;
  /** Names the caller in the agent's log. */
  clientName?: string;
  /** Per request unless overridden (default 30 s). */
  requestTimeoutMs?: number;
  /** Connect plus hello (default 5 s). */
  connectTimeoutMs?: number;
  /** Frames from the agent over this size are dropped and reported (default MAX_AGENT_FRAME_BYTES). */
  maxFrameBytes?: number;
}

/**
 * A frame from the agent this client could not read (over the size cap, not JSON, or not a frame).
 * `subscriptionId` names the feed it was for when that could be read from it, else null.
 */
export interface AgentProtocolError {
  code: 'oversize_frame' | 'malformed_frame';
  message: string;
  subscriptionId: string | null;
}

/** What can still be read from a frame that failed the frame schema: whom it was for. */
const FrameAddress = z.looseObject({
  type: z.string().optional(),
  id: z.string().optional(),
  subscriptionId: z.string().optional(),
});

type Listener<E> = (event: E) => void;

/** Requests that run git or gh before answering (a fetch, an issue read, stopping sessions). */
const SLOW_REQUEST_MS = 5 * 60_000;

/**
 * One subscription's feed: the initial state from the response, then events in order. Events that
 * arrive before a consumer attaches are held, so nothing is lost between subscribe() and on()/for-await.
 * Use either on() or async iteration, not both.
 */
export class AgentSubscription<TInitial, TEvent> implements AsyncIterable<TEvent> {
  private readonly held: TEvent[] = [];
  private listener: Listener<TEvent> | null = null;
  private wake: (() => void) | null = null;
  private endReason: AgentError | null = null;
  private finished = false;
  private readonly endedPromise: Promise<AgentError | null>;
  private resolveEnded: (reason: AgentError | null) => void = () => {};
  /** Set by the client once the subscribe response arrived. */
  initial: TInitial | undefined;

  constructor(
    readonly id: string,
    private readonly unsubscribe: (id: string) => Promise<void>,
  ) {
    this.endedPromise = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  /** Resolves when the feed ends: null after close(), the reason when the agent or connection ended it. */
  get ended(): Promise<AgentError | null> {
    return this.endedPromise;
  }

  get isEnded(): boolean {
    return this.finished;
  }

  /** Delivers held events now and later ones as they come. Returns a function that detaches. */
  on(listener: Listener<TEvent>): () => void {
    this.listener = listener;
    for (const event of this.held.splice(0)) listener(event);
    return () => {
      if (this.listener === listener) this.listener = null;
    };
  }

  /** Iterates events until the feed ends; leaving the loop early (break, throw) closes the feed. */
  async *[Symbol.asyncIterator](): AsyncIterator<TEvent> {
    try {
      for (;;) {
        const next = this.held.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (this.finished) {
          if (this.endReason) throw new AgentClientError(this.endReason.code, this.endReason.message);
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      if (!this.finished) await this.close();
    }
  }

  /** Stops the feed on the agent and ends the iteration. */
  async close(): Promise<void> {
    if (this.finished) return;
    this.end(null);
    await this.unsubscribe(this.id).catch(() => undefined);
  }

  /** @internal */
  deliver(event: TEvent): void {
    if (this.finished) return;
    if (this.listener) {
      try {
        this.listener(event);
      } catch (error) {
        // A throwing callback must not take the connection (and every other feed) down with it.
        const message = `the subscriber's callback threw: ${error instanceof Error ? error.message : String(error)}`;
        this.end({ code: 'internal', message });
        void this.unsubscribe(this.id).catch(() => undefined);
      }
    } else {
      this.held.push(event);
    }
    this.wake?.();
    this.wake = null;
  }

  /** @internal */
  end(reason: AgentError | null): void {
    if (this.finished) return;
    this.finished = true;
    this.endReason = reason;
    this.resolveEnded(reason);
    this.wake?.();
    this.wake = null;
  }
}

/**
 * How a session feed starts: a snapshot (events follow from snapshot.seq + 1), or, for a subscriber
 * that passed `afterSeq`, the events it missed (afterSeq + 1 … seq; events follow from seq + 1).
 */
export type SessionFeedStart =
  | { kind: 'snapshot'; snapshot: SessionSnapshot }
  | { kind: 'replay'; events: SessionEvent[]; seq: number };

export type SessionFeed = AgentSubscription<SessionFeedStart, SessionEvent> & {
  readonly start: SessionFeedStart;
  /**
   * The snapshot the feed started from. Always there without `afterSeq`; with it, only when the agent
   * answered with a snapshot (reading it on a replay throws: look at `start` instead).
   */
  readonly snapshot: SessionSnapshot;
};
export type TerminalFeed = AgentSubscription<
  { terminal: TerminalInfo; scrollback: string },
  TerminalEvent
> & {
  readonly terminal: TerminalInfo;
  readonly scrollback: string;
};

interface PendingRequest {
  method: AgentMethod;
  resolve(result: unknown): void;
  reject(error: AgentClientError): void;
  timer: NodeJS.Timeout;
}

interface OpenSubscription {
  schema: z.ZodType<unknown>;
  feed: AgentSubscription<unknown, unknown>;
}

export class AgentClient {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly subscriptions = new Map<string, OpenSubscription>();
  private readonly writer: NdjsonWriter;
  private readonly closeListeners = new Set<(reason: AgentError) => void>();
  private readonly protocolErrorListeners = new Set<(error: AgentProtocolError) => void>();
  private closedReason: AgentError | null = null;
  private nextRequestId = 1;

  private constructor(
    private readonly socket: Socket,
    readonly agentVersion: string,
    private readonly requestTimeoutMs: number,
    splitter: CappedLineSplitter,
    private readonly maxFrameBytes: number,
  ) {
    this.writer = new NdjsonWriter(socket);
    socket.on('data', (chunk: Buffer) => {
      for (const item of splitter.push(chunk)) {
        if (item.kind === 'line') this.onFrame(item.text);
        else
          this.onUnreadableFrame({
            code: 'oversize_frame',
            message: `the agent sent a ${item.bytes}-byte frame, over this client's ${this.maxFrameBytes}-byte limit`,
            subscriptionId: null,
          });
      }
    });
    socket.on('close', () =>
      this.shutdown({ code: 'disconnected', message: 'the connection to the agent closed' }),
    );
    socket.on('error', () => undefined);
  }

  /**
   * Connects and runs the mutual handshake. Rejects with `unauthorized` when the peer is not an agent that
   * knows this secret (another VM's agent, a listener planted on the path) or refuses ours, before any
   * request is sent; with `unavailable` when nothing listens; with `timeout`.
   */
  static connect(options: AgentClientOptions): Promise<AgentClient> {
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const clientNonce = newNonce();
    return new Promise((resolve, reject) => {
      const socket = connect(options.socketPath);
      // Until the agent has proved itself, what it sends is read with the small handshake budget.
      const splitter = new CappedLineSplitter(MAX_AGENT_HANDSHAKE_FRAME_BYTES);
      let agentNonce: string | null = null;
      let settled = false;
      /** Settles with `error` (once); returns undefined so handlers can `return fail(…)`. */
      const fail = (error: AgentClientError): undefined => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new AgentClientError('timeout', 'no answer from the agent in time')),
        timeoutMs,
      );
      socket.once('error', (error: NodeJS.ErrnoException) =>
        fail(
          new AgentClientError('unavailable', `cannot reach the agent (${error.code ?? 'connection error'})`),
        ),
      );
      socket.once('close', () =>
        fail(new AgentClientError('disconnected', 'the agent closed the connection')),
      );
      const onFrame = (text: string): undefined => {
        const frame = safeParseJson(AgentServerFrame, text, MAX_AGENT_HANDSHAKE_FRAME_BYTES);
        if (!frame.ok)
          return fail(new AgentClientError('unauthorized', 'the peer does not speak the agent handshake'));
        const value = frame.value;
        if (value.type === 'hello_error')
          return fail(new AgentClientError(value.error.code, value.error.message));
        if (agentNonce === null) {
          if (value.type !== 'challenge')
            return fail(new AgentClientError('unauthorized', `expected a challenge, got ${value.type}`));
          if (!proofMatches(value.agentProof, options.secret, 'agent', clientNonce, value.agentNonce))
            return fail(
              new AgentClientError('unauthorized', 'the peer on this socket is not the agent of this VM'),
            );
          agentNonce = value.agentNonce;
          socket.write(
            encodeNdjsonLine({
              type: 'auth',
              clientProof: handshakeProof(options.secret, 'client', clientNonce, agentNonce),
            }),
          );
          return;
        }
        if (value.type !== 'hello_ok')
          return fail(new AgentClientError('unauthorized', `expected hello_ok, got ${value.type}`));
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        const maxFrameBytes = options.maxFrameBytes ?? MAX_AGENT_FRAME_BYTES;
        splitter.setMaxLineBytes(maxFrameBytes);
        resolve(
          new AgentClient(
            socket,
            value.agentVersion,
            options.requestTimeoutMs ?? 30_000,
            splitter,
            maxFrameBytes,
          ),
        );
      };
      const onData = (chunk: Buffer): undefined => {
        for (const item of splitter.push(chunk)) {
          if (settled) return;
          if (item.kind !== 'line')
            return fail(new AgentClientError('unauthorized', 'the peer sent an oversize handshake frame'));
          onFrame(item.text);
        }
      };
      socket.on('data', onData);
      socket.once('connect', () => {
        socket.write(
          encodeNdjsonLine({
            type: 'hello',
            protocolVersion: AGENT_PROTOCOL_VERSION,
            clientNonce,
            ...(options.clientName ? { client: options.clientName } : {}),
          }),
        );
      });
    });
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /**
   * Called for each frame from the agent that could not be read. The frame is gone, so what it carried is
   * never silently missing: the feed it was for ends with an error (every feed, when the frame does not
   * say which), and a request it answered fails; a resubscribe with `afterSeq` catches up.
   */
  onProtocolError(listener: (error: AgentProtocolError) => void): () => void {
    this.protocolErrorListeners.add(listener);
    return () => this.protocolErrorListeners.delete(listener);
  }

  /** Called once when the connection ends (closed by us, by the agent, or broken). */
  onClose(listener: (reason: AgentError) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Sends one request and resolves with its checked result. */
  request<M extends AgentMethod>(
    method: M,
    params: AgentParams<M>,
    options: { timeoutMs?: number } = {},
  ): Promise<AgentResult<M>> {
    if (this.closedReason) {
      return Promise.reject(new AgentClientError(this.closedReason.code, this.closedReason.message));
    }
    const id = String(this.nextRequestId++);
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<AgentResult<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentClientError('timeout', `${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (result) => resolve(result as AgentResult<M>),
        reject,
        timer,
      });
      this.writer.write({ type: 'request', id, method, params }).catch(() => undefined);
    });
  }

  // ---- health and workspaces ----

  health(): Promise<AgentHealth> {
    return this.request('health.ping', {});
  }

  /**
   * Answers with the workspace PROVISIONING once the input is checked; waitForWorkspace (or polling
   * getWorkspace) sees it READY or FAILED. A GitHub issue is read before the answer, hence the margin.
   */
  createWorkspace(params: AgentParams<'workspace.create'>): Promise<Workspace> {
    return this.request('workspace.create', params, { timeoutMs: SLOW_REQUEST_MS });
  }

  async listWorkspaces(params: AgentParams<'workspace.list'> = {}): Promise<Workspace[]> {
    return (await this.request('workspace.list', params)).workspaces;
  }

  getWorkspace(workspaceId: string): Promise<Workspace> {
    return this.request('workspace.get', { workspaceId });
  }

  /**
   * Polls until the workspace is no longer NEW or PROVISIONING and returns it (READY, FAILED with
   * initError, or ARCHIVED). Rejects with `timeout` after `timeoutMs` (default 15 min: a large clone).
   */
  async waitForWorkspace(
    workspaceId: string,
    options: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<Workspace> {
    const timeoutMs = options.timeoutMs ?? 15 * 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const workspace = await this.getWorkspace(workspaceId);
      if (workspace.status !== 'NEW' && workspace.status !== 'PROVISIONING') return workspace;
      if (Date.now() >= deadline) {
        throw new AgentClientError(
          'timeout',
          `workspace ${workspaceId} was still ${workspace.status} after ${timeoutMs} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
    }
  }

  /** Stops the workspace's sessions first, then removes its worktree. */
  archiveWorkspace(workspaceId: string): Promise<Workspace> {
    return this.request('workspace.archive', { workspaceId }, { timeoutMs: SLOW_REQUEST_MS });
  }

  /** Provisions a FAILED workspace again; answers PROVISIONING like createWorkspace. */
  retryWorkspace(workspaceId: string): Promise<Workspace> {
    return this.request('workspace.retry', { workspaceId });
  }

  /** The portable state; `handoffTo` flips the workspace's location in the same write (the handoff). */
  exportWorkspace(
    workspaceId: string,
    options: { handoffTo?: WorkspaceLocation } = {},
  ): Promise<PortableWorkspaceState> {
    return this.request('workspace.export', { workspaceId, ...options });
  }

  /**
   * Takes a workspace handed to the agent's side. A READY one is fast-forwarded to origin's branch before
   * the answer (a fetch), a new one answers PROVISIONING.
   */
  importWorkspace(state: PortableWorkspaceStateInput): Promise<Workspace> {
    return this.request('workspace.import', { state }, { timeoutMs: SLOW_REQUEST_MS });
  }

  // ---- sessions ----

  createSession(params: AgentParams<'session.create'>): Promise<AgentSessionInfo> {
    return this.request('session.create', params);
  }

  async listSessions(params: AgentParams<'session.list'> = {}): Promise<AgentSessionInfo[]> {
    return (await this.request('session.list', params)).sessions;
  }

  getSession(sessionId: string): Promise<AgentResult<'session.get'>> {
    return this.request('session.get', { sessionId });
  }

  /** Queues a message; rejects with `queue_full` when 100 are already waiting. */
  sendMessage(params: AgentParams<'session.send'>): Promise<AgentResult<'session.send'>> {
    return this.request('session.send', params);
  }

  async removeQueuedMessage(sessionId: string, messageId: string): Promise<boolean> {
    return (await this.request('session.remove_queued', { sessionId, messageId })).removed;
  }

  async answerQuestion(params: AgentParams<'session.answer_question'>): Promise<void> {
    await this.request('session.answer_question', params);
  }

  async answerPermission(params: AgentParams<'session.answer_permission'>): Promise<void> {
    await this.request('session.answer_permission', params);
  }

  async interrupt(sessionId: string): Promise<void> {
    await this.request('session.interrupt', { sessionId });
  }

  async stopSession(sessionId: string): Promise<void> {
    await this.request('session.stop', { sessionId }, { timeoutMs: 60_000 });
  }

  /**
   * The session's snapshot, then its events from snapshot.seq + 1 with no gap. With `afterSeq` (the last
   * seq this caller saw, e.g. when reconnecting), `feed.start` may instead be the missed events
   * (`kind: 'replay'`), when the agent still holds all of them; events follow from `start.seq + 1`.
   */
  async subscribeSession(sessionId: string, options: { afterSeq?: number } = {}): Promise<SessionFeed> {
    const { feed, initial: start } = await this.openSubscription(
      SessionEvent,
      (subscriptionId) =>
        this.request('session.subscribe', {
          sessionId,
          subscriptionId,
          ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }),
        }),
      (result): SessionFeedStart =>
        'snapshot' in result
          ? { kind: 'snapshot', snapshot: result.snapshot }
          : { kind: 'replay', events: result.replay, seq: result.seq },
    );
    return Object.defineProperties(feed, {
      start: { value: start, enumerable: true },
      snapshot: {
        enumerable: true,
        get(): SessionSnapshot {
          if (start.kind === 'snapshot') return start.snapshot;
          throw new AgentClientError(
            'bad_request',
            'this feed started with a replay of missed events, not a snapshot; read feed.start',
          );
        },
      },
    }) as SessionFeed;
  }

  // ---- the ratchet (the cloud's ratchet actor drives these) ----

  /**
   * The workspace's PR, read by gh inside the VM with the VM's own login; null when it has no PR url.
   * GitHub failures reject with `unavailable`; a rate limit also carries `retryAfterSeconds`.
   */
  ratchetSnapshot(
    workspaceId: string,
    options: { trust?: ReviewTrustPolicy } = {},
  ): Promise<{ snapshot: PullRequestSnapshot | null; prUrl: string | null }> {
    return this.request(
      'ratchet.snapshot',
      {
        workspaceId,
        ...(options.trust
          ? { trust: { triggerMode: options.trust.triggerMode, trustedBots: [...options.trust.trustedBots] } }
          : {}),
      },
      // gh pages through every line comment; a large PR takes a while.
      { timeoutMs: 2 * 60_000 },
    );
  }

  /**
   * Queues the fixer prompt in the workspace's idle ratchet session (or a new one). Idempotent on
   * dispatchId: a retry answers the same session with `reused: true`. `conflict` while a fixer works.
   */
  dispatchFixer(params: AgentParams<'ratchet.dispatch'>): Promise<AgentResult<'ratchet.dispatch'>> {
    return this.request('ratchet.dispatch', params);
  }

  /** RUNNING, COMPLETED (its turn ended normally) or DIED (crashed, errored, or the session is gone). */
  fixerStatus(params: AgentParams<'ratchet.fixer_status'>): Promise<AgentResult<'ratchet.fixer_status'>> {
    return this.request('ratchet.fixer_status', params);
  }

  /** Stops the workspace's working fixer, if there is one (a workspace id or the method's params). */
  stopFixer(
    workspace: string | AgentParams<'ratchet.stop_fixer'>,
  ): Promise<AgentResult<'ratchet.stop_fixer'>> {
    const params = typeof workspace === 'string' ? { workspaceId: workspace } : workspace;
    return this.request('ratchet.stop_fixer', params, { timeoutMs: 60_000 });
  }

  // ---- terminals ----

  createTerminal(params: AgentParams<'terminal.create'> = {}): Promise<TerminalInfo> {
    return this.request('terminal.create', params);
  }

  async listTerminals(): Promise<TerminalInfo[]> {
    return (await this.request('terminal.list', {})).terminals;
  }

  async terminalInput(terminalId: string, data: string): Promise<void> {
    await this.request('terminal.input', { terminalId, data });
  }

  async resizeTerminal(terminalId: string, cols: number, rows: number): Promise<void> {
    await this.request('terminal.resize', { terminalId, cols, rows });
  }

  async killTerminal(terminalId: string): Promise<void> {
    await this.request('terminal.kill', { terminalId });
  }

  /** The terminal's scrollback, then its live output. */
  async subscribeTerminal(terminalId: string): Promise<TerminalFeed> {
    const { feed, initial } = await this.openSubscription(
      TerminalEvent,
      (subscriptionId) => this.request('terminal.subscribe', { terminalId, subscriptionId }),
      (result) => result,
    );
    return Object.assign(feed, {
      terminal: initial.terminal,
      scrollback: initial.scrollback,
    }) as TerminalFeed;
  }

  /** Ends the connection; pending requests fail with `disconnected`. */
  close(): void {
    this.socket.end();
    this.shutdown({ code: 'disconnected', message: 'the client closed the connection' });
    this.socket.destroy();
  }

  // ---- internals ----

  /**
   * The feed is registered before the request is sent, so events that follow the response in the
   * same read are already routed to it.
   */
  private async openSubscription<TEvent, TResult, TInitial>(
    schema: z.ZodType<TEvent>,
    subscribe: (subscriptionId: string) => Promise<TResult>,
    initialOf: (result: TResult) => TInitial,
  ): Promise<{ feed: AgentSubscription<TInitial, TEvent>; initial: TInitial }> {
    const id = randomUUID();
    const feed = new AgentSubscription<TInitial, TEvent>(id, async (subscriptionId) => {
      this.subscriptions.delete(subscriptionId);
      if (!this.closedReason) await this.request('unsubscribe', { subscriptionId });
    });
    this.subscriptions.set(id, {
      schema: schema as z.ZodType<unknown>,
      feed: feed as AgentSubscription<unknown, unknown>,
    });
    try {
      const initial = initialOf(await subscribe(id));
      feed.initial = initial;
      return { feed, initial };
    } catch (error) {
      this.subscriptions.delete(id);
      feed.end(null);
      throw error;
    }
  }

  private onFrame(text: string): void {
    const parsed = safeParseJson(AgentServerFrame, text, Number.POSITIVE_INFINITY);
    if (!parsed.ok) {
      const address = safeParseJson(FrameAddress, text, Number.POSITIVE_INFINITY);
      const to = address.ok ? address.value : null;
      const subscriptionId = to?.subscriptionId ?? null;
      const pending = to?.type === 'response' && to.id !== undefined ? this.pending.get(to.id) : undefined;
      if (to?.id !== undefined && pending) {
        this.pending.delete(to.id);
        clearTimeout(pending.timer);
        pending.reject(
          new AgentClientError('bad_request', `unreadable ${pending.method} response from the agent`),
        );
      }
      this.onUnreadableFrame(
        {
          code: 'malformed_frame',
          message: `the agent sent a frame this client cannot read (${parsed.error.message})`,
          subscriptionId,
        },
        pending !== undefined,
      );
      return;
    }
    const frame = parsed.value;
    switch (frame.type) {
      case 'response': {
        const pending = this.pending.get(frame.id);
        if (!pending) return;
        this.pending.delete(frame.id);
        clearTimeout(pending.timer);
        if (!frame.ok) {
          const error = frame.error ?? { code: 'internal', message: 'request failed' };
          pending.reject(new AgentClientError(error.code, error.message, error.retryAfterSeconds ?? null));
          return;
        }
        const result = AgentMethods[pending.method].result.safeParse(frame.result);
        if (result.success) pending.resolve(result.data);
        else
          pending.reject(
            new AgentClientError('bad_request', `unexpected ${pending.method} result from the agent`),
          );
        return;
      }
      case 'event': {
        const open = this.subscriptions.get(frame.subscriptionId);
        if (!open) return;
        const event = open.schema.safeParse(frame.event);
        if (event.success) {
          open.feed.deliver(event.data);
          return;
        }
        // Dropping one event would break the no-gap promise; end the feed so the caller resubscribes.
        this.subscriptions.delete(frame.subscriptionId);
        open.feed.end({ code: 'bad_request', message: 'the agent sent an event this client cannot read' });
        return;
      }
      case 'subscription_ended': {
        const open = this.subscriptions.get(frame.subscriptionId);
        if (!open) return;
        this.subscriptions.delete(frame.subscriptionId);
        open.feed.end(frame.reason);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A dropped frame would be a silent gap in a feed: end the feed it was for, or every feed when that is
   * unknown (and it was not a response, already failed by the caller), and tell the listeners.
   */
  private onUnreadableFrame(error: AgentProtocolError, answeredRequest = false): void {
    const reason: AgentError = {
      code: 'bad_request',
      message: `${error.message}; events may be missing, subscribe again (with afterSeq) to catch up`,
    };
    const affected =
      error.subscriptionId !== null
        ? [error.subscriptionId]
        : answeredRequest
          ? []
          : [...this.subscriptions.keys()];
    for (const id of affected) {
      const open = this.subscriptions.get(id);
      if (!open) continue;
      this.subscriptions.delete(id);
      open.feed.end(reason);
      // The agent still feeds it: stop that, best effort.
      if (!this.closedReason) this.request('unsubscribe', { subscriptionId: id }).catch(() => undefined);
    }
    for (const listener of [...this.protocolErrorListeners]) {
      try {
        listener(error);
      } catch {
        // A listener's failure must not stop the frames that follow.
      }
    }
  }

  private shutdown(reason: AgentError): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new AgentClientError(reason.code, reason.message));
      this.pending.delete(id);
    }
    for (const [id, open] of this.subscriptions) {
      open.feed.end(reason);
      this.subscriptions.delete(id);
    }
    this.writer.failQueued(new Error(reason.message));
    for (const listener of [...this.closeListeners]) listener(reason);
  }
}
