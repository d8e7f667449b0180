import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  AGENT_PROTOCOL_VERSION,
  AgentAuthFrame,
  type AgentError,
  AgentHelloFrame,
  type AgentMethod,
  AgentMethods,
  type AgentParsedParams,
  AgentRequestFrame,
  type AgentResult,
  CappedLineSplitter,
  encodeJsonOnce,
  encodeNdjsonLine,
  isAgentMethod,
  MAX_AGENT_FRAME_BYTES,
  MAX_AGENT_HANDSHAKE_FRAME_BYTES,
  NdjsonWriter,
  safeParseJson,
} from '../protocol/index.js';
import { AgentRequestError, toAgentError } from './errors.js';
import { handshakeProof, newNonce, proofMatches } from './handshake.js';

/** What a subscription handler returns: the response payload and how to stop the feed. */
export interface SubscriptionStart<R> {
  result: R;
  close(): void;
}

/** Per-request view of the connection a handler runs on. */
export interface RequestContext {
  readonly connectionId: number;
  /**
   * Opens a subscription under the client's id. `start` gets a `send` for events; events sent
   * before the response is on the wire are held back, so the client always sees the response
   * (with its snapshot) first and then every event after it, in order.
   */
  subscribe<R>(subscriptionId: string, start: (send: (event: object) => void) => SubscriptionStart<R>): R;
  unsubscribe(subscriptionId: string): boolean;
}

export type AgentHandlers = {
  [M in AgentMethod]: (
    params: AgentParsedParams<M>,
    context: RequestContext,
  ) => AgentResult<M> | Promise<AgentResult<M>>;
};

export interface AgentServerOptions {
  socketPath: string;
  /** 0o600 or 0o660: only the host's agent proxy (same uid or group) may connect. */
  socketMode: number;
  /** The per-VM secret: both sides prove they know it (core/src/agent/handshake.ts); it is never sent. */
  secret: string;
  agentVersion: string;
  handlers: AgentHandlers;
  logger: Logger;
  /** A connection must finish the handshake within this long. */
  helloTimeoutMs?: number;
  /** A subscriber whose unsent output passes this is cut off (it resubscribes for a fresh snapshot). */
  maxSubscriberBacklogBytes?: number;
}

interface Subscription {
  close(): void;
  ready: boolean;
  held: object[];
}

let nextConnectionId = 1;

/** Where a connection is in the handshake; only `authenticated` ones reach the handlers. */
type HandshakeState =
  | { step: 'hello' }
  | { step: 'auth'; clientNonce: string; agentNonce: string }
  | { step: 'authenticated' };

/** One client connection: hello, then requests, responses and subscription events as NDJSON. */
class AgentConnection {
  readonly id = nextConnectionId++;
  /** Small until the peer has authenticated: an unproven peer cannot make the agent buffer much. */
  private readonly splitter = new CappedLineSplitter(MAX_AGENT_HANDSHAKE_FRAME_BYTES);
  private readonly writer: NdjsonWriter;
  private readonly subscriptions = new Map<string, Subscription>();
  private handshake: HandshakeState = { step: 'hello' };
  private closed = false;
  private readonly helloTimer: NodeJS.Timeout;
  private readonly logger: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly server: AgentServerOptions,
    private readonly onClosed: (connection: AgentConnection) => void,
  ) {
    this.logger = server.logger.child({ connectionId: this.id });
    this.writer = new NdjsonWriter(socket);
    this.helloTimer = setTimeout(
      () => this.refuse({ code: 'unauthorized', message: 'the handshake did not finish in time' }),
      server.helloTimeoutMs ?? 5000,
    );
    socket.on('data', (chunk: Buffer) => {
      for (const item of this.splitter.push(chunk)) {
        if (this.closed) return;
        if (item.kind === 'oversize') {
          const cap =
            this.handshake.step === 'authenticated' ? MAX_AGENT_FRAME_BYTES : MAX_AGENT_HANDSHAKE_FRAME_BYTES;
          this.refuse({ code: 'bad_request', message: `frame over ${cap} bytes` });
          return;
        }
        this.onFrame(item.text);
      }
    });
    socket.on('error', (error) => this.logger.debug({ error: error.message }, 'connection error'));
    socket.on('close', () => this.cleanup());
  }

  private onFrame(text: string): void {
    if (this.handshake.step !== 'authenticated') {
      this.onHandshakeFrame(text, this.handshake);
      return;
    }
    const request = safeParseJson(AgentRequestFrame, text, Number.POSITIVE_INFINITY);
    if (!request.ok) {
      // Without a readable id there is nobody to answer; the client's request will time out.
      this.logger.warn({ error: request.error.message }, 'unreadable request frame');
      return;
    }
    void this.handle(request.value.id, request.value.method, request.value.params);
  }

  private onHandshakeFrame(text: string, state: Exclude<HandshakeState, { step: 'authenticated' }>): void {
    if (state.step === 'hello') {
      const hello = safeParseJson(AgentHelloFrame, text);
      if (!hello.ok) {
        this.refuse({ code: 'unauthorized', message: 'the first frame must be a hello with a client nonce' });
        return;
      }
      if (hello.value.protocolVersion !== AGENT_PROTOCOL_VERSION) {
        this.refuse({
          code: 'unsupported_protocol',
          message: `agent speaks protocol ${AGENT_PROTOCOL_VERSION}, client asked for ${hello.value.protocolVersion}`,
        });
        return;
      }
      const { clientNonce } = hello.value;
      const agentNonce = newNonce();
      this.handshake = { step: 'auth', clientNonce, agentNonce };
      this.logger.debug({ client: hello.value.client }, 'hello; challenging the client');
      this.send({
        type: 'challenge',
        agentNonce,
        agentProof: handshakeProof(this.server.secret, 'agent', clientNonce, agentNonce),
      });
      return;
    }
    const auth = safeParseJson(AgentAuthFrame, text);
    if (
      !auth.ok ||
      !proofMatches(auth.value.clientProof, this.server.secret, 'client', state.clientNonce, state.agentNonce)
    ) {
      this.logger.warn('refused a connection that could not prove it knows this VM secret');
      this.refuse({ code: 'unauthorized', message: 'the client did not prove it knows this VM secret' });
      return;
    }
    clearTimeout(this.helloTimer);
    this.handshake = { step: 'authenticated' };
    this.splitter.setMaxLineBytes(MAX_AGENT_FRAME_BYTES);
    this.logger.debug('client authenticated');
    this.send({
      type: 'hello_ok',
      protocolVersion: AGENT_PROTOCOL_VERSION,
      agentVersion: this.server.agentVersion,
    });
  }

  get isAuthenticated(): boolean {
    return this.handshake.step === 'authenticated';
  }

  private async handle(id: string, method: string, rawParams: unknown): Promise<void> {
    if (!isAgentMethod(method)) {
      this.respondError(id, { code: 'unknown_method', message: `unknown method ${method}` });
      return;
    }
    const activations: Array<() => void> = [];
    try {
      const result = await this.invoke(method, rawParams ?? {}, activations);
      this.send({ type: 'response', id, ok: true, result });
      for (const activate of activations) activate();
    } catch (error) {
      const agentError = toAgentError(error);
      if (agentError.code === 'internal')
        this.logger.error({ method, error: String(error) }, 'request failed');
      this.respondError(id, agentError);
    }
  }

  private async invoke<M extends AgentMethod>(
    method: M,
    rawParams: unknown,
    activations: Array<() => void>,
  ): Promise<AgentResult<M>> {
    const parsed = AgentMethods[method].params.safeParse(rawParams);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw new AgentRequestError('bad_request', `invalid params for ${method}${where}: ${issue?.message}`);
    }
    const context: RequestContext = {
      connectionId: this.id,
      subscribe: (subscriptionId, start) => this.openSubscription(subscriptionId, start, activations),
      unsubscribe: (subscriptionId) => this.closeSubscription(subscriptionId),
    };
    // The params schema and the handler come from the same method key; TypeScript cannot relate
    // them through the generic lookup, so the handler is typed here once.
    const handler = this.server.handlers[method] as (
      params: AgentParsedParams<M>,
      context: RequestContext,
    ) => AgentResult<M> | Promise<AgentResult<M>>;
    return handler(parsed.data as AgentParsedParams<M>, context);
  }

  private openSubscription<R>(
    subscriptionId: string,
    start: (send: (event: object) => void) => SubscriptionStart<R>,
    activations: Array<() => void>,
  ): R {
    if (this.subscriptions.has(subscriptionId)) {
      throw new AgentRequestError(
        'conflict',
        `subscription ${subscriptionId} is already open on this connection`,
      );
    }
    const subscription: Subscription = { close: () => {}, ready: false, held: [] };
    this.subscriptions.set(subscriptionId, subscription);
    const send = (event: object) => {
      if (subscription.ready) this.sendEvent(subscriptionId, event);
      else subscription.held.push(event);
    };
    try {
      const started = start(send);
      subscription.close = started.close;
      activations.push(() => {
        subscription.ready = true;
        for (const event of subscription.held.splice(0)) this.sendEvent(subscriptionId, event);
      });
      return started.result;
    } catch (error) {
      this.subscriptions.delete(subscriptionId);
      throw error;
    }
  }

  private closeSubscription(subscriptionId: string): boolean {
    const subscription = this.subscriptions.get(subscriptionId);
    if (!subscription) return false;
    this.subscriptions.delete(subscriptionId);
    subscription.close();
    return true;
  }

  private sendEvent(subscriptionId: string, event: object): void {
    if (this.closed || !this.subscriptions.has(subscriptionId)) return;
    const limit = this.server.maxSubscriberBacklogBytes ?? 32 * 1024 * 1024;
    if (this.writer.queuedBytes > limit) {
      this.closeSubscription(subscriptionId);
      this.send({
        type: 'subscription_ended',
        subscriptionId,
        reason: {
          code: 'unavailable',
          message: 'this subscriber fell too far behind; subscribe again for a fresh snapshot',
        },
      });
      return;
    }
    // One stringify per event, shared by every subscriber (and already done when the replay ring weighed it).
    const line = `{"type":"event","subscriptionId":${JSON.stringify(subscriptionId)},"event":${encodeJsonOnce(event)}}\n`;
    this.writer.writeLine(line).catch(() => undefined);
  }

  private send(frame: object): void {
    if (this.closed) return;
    this.writer.writeLine(encodeNdjsonLine(frame)).catch(() => undefined);
  }

  private respondError(id: string, error: AgentError): void {
    this.send({ type: 'response', id, ok: false, error });
  }

  private refuse(error: AgentError): void {
    if (this.closed) return;
    this.send({ type: 'hello_error', error });
    this.closed = true;
    this.socket.end();
    // A peer that does not read would keep the socket half-open; do not wait on it.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  close(): void {
    this.socket.destroy();
    this.cleanup();
  }

  private cleanup(): void {
    clearTimeout(this.helloTimer);
    this.closed = true;
    for (const id of [...this.subscriptions.keys()]) this.closeSubscription(id);
    this.writer.failQueued(new Error('connection closed'));
    this.onClosed(this);
  }
}

/**
 * The agent's listener: a unix socket (never TCP: control traffic must not cross an IP network)
 * where every connection authenticates with the per-VM secret before anything else.
 */
export class AgentServer {
  private server: Server | null = null;
  private readonly connections = new Set<AgentConnection>();
  constructor(private readonly options: AgentServerOptions) {}

  /** Authenticated connections only: a peer still in the handshake is not a client yet. */
  get connectionCount(): number {
    let count = 0;
    for (const connection of this.connections) if (connection.isAuthenticated) count++;
    return count;
  }

  async listen(): Promise<void> {
    await removeStaleSocket(this.options.socketPath);
    const server = createServer((socket) => {
      const connection = new AgentConnection(socket, this.options, (c) => this.connections.delete(c));
      this.connections.add(connection);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket file is created by bind() inside listen(); a restrictive umask for that one call means
      // it never exists with a wider mode, not even for a moment before the chmod below.
      const umask = process.umask(0o177);
      try {
        server.listen(this.options.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    await chmod(this.options.socketPath, this.options.socketMode);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const connection of [...this.connections]) connection.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Whatever is at the socket path goes: a socket left by a previous agent (crash, restart), or anything the
 * VM's user put there (a symlink, a directory, a FIFO). The path is inside this VM, so this only ever
 * touches the user's own files, and the agent comes back however the path was tampered with.
 */
async function removeStaleSocket(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
