/**
 * One live session for the session view: the newest history page over REST, then the relay from that
 * page's seq (`?after=<seq>`, so nothing is fetched twice), reconnecting with backoff from the last seq it
 * applied whenever the socket drops. Commands sent while reconnecting wait in an outbox; a queued message
 * carries its own id, so sending it again after a reconnect is harmless.
 */
import { reactive } from 'vue';
import { type ApiClient, ApiError, messageOf } from '../lib/api-client.js';
import { readJsonText } from '../lib/json.js';
import { backoffMs, frameText, SOCKET_OPEN, type SocketFactory, type SocketLike } from '../lib/socket.js';
import { isHistoryPage, isRelayFrame, isSessionAnswer } from '../lib/types.js';
import {
  applyEvent,
  applyHistoryPage,
  applySnapshot,
  emptyTranscript,
  prependHistoryPage,
  type TranscriptView,
} from './session-state.js';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export type Timers = {
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
};

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export type SessionFeedOptions = {
  api: ApiClient;
  openSocket: SocketFactory;
  /** ws(s)://host of the api. */
  wsOrigin: string;
  workspaceId: string;
  sessionId: string;
  /** Messages per history page (the api allows up to 200). */
  pageSize?: number;
  timers?: Timers;
};

/** Relay close codes that mean reconnecting will not help. */
const FINAL_CLOSES: Record<number, string> = {
  4404: 'This session does not exist, or it is not yours.',
  4409: 'This workspace is not ready in the cloud, so its sessions cannot be reached.',
};

let idCounter = 0;
/** A client message id (crypto.randomUUID needs a secure context; this does not). */
export function clientMessageId(): string {
  idCounter += 1;
  return `web-${Date.now().toString(36)}-${idCounter.toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export class SessionFeed {
  readonly view: TranscriptView = reactive(emptyTranscript());
  readonly connection = reactive({
    state: 'connecting' as ConnectionState,
    /** Why the feed stopped, or the last command's error. */
    error: null as string | null,
    loadingEarlier: false,
    /** Frames received (for tests and the bench). */
    frames: 0,
  });
  private socket: SocketLike | null = null;
  private attempt = 0;
  private retryTimer: unknown = null;
  private closed = false;
  private outbox: string[] = [];
  private readonly timers: Timers;
  private readonly pageSize: number;

  constructor(private readonly options: SessionFeedOptions) {
    this.timers = options.timers ?? defaultTimers;
    this.pageSize = options.pageSize ?? 50;
  }

  private get basePath(): string {
    const { workspaceId, sessionId } = this.options;
    return `/api/workspaces/${encodeURIComponent(workspaceId)}/sessions/${encodeURIComponent(sessionId)}`;
  }

  /** Loads the newest page, then follows the relay from its seq. */
  async open(): Promise<void> {
    let after: number | undefined;
    try {
      const [page, session] = await Promise.all([
        this.options.api.get(`${this.basePath}/messages?limit=${this.pageSize}`, isHistoryPage),
        // The page holds messages only; the session's runtime says whether it is working right now.
        this.options.api.get(this.basePath, isSessionAnswer).catch(() => null),
      ]);
      applyHistoryPage(this.view, page);
      if (!page.sessionRuntime && session) this.view.runtime = session.session.sessionRuntime;
      after = page.seq;
    } catch (err) {
      // Without the history route (or its page) the relay's snapshot brings the whole conversation.
      if (!(err instanceof ApiError) || err.status !== 404) this.connection.error = messageOf(err);
    }
    if (this.closed) return;
    this.connect(after);
  }

  /** The page before the oldest message held. */
  async loadEarlier(): Promise<void> {
    if (this.view.start <= 0 || this.connection.loadingEarlier) return;
    this.connection.loadingEarlier = true;
    try {
      const page = await this.options.api.get(
        `${this.basePath}/messages?before=${this.view.start}&limit=${this.pageSize}`,
        isHistoryPage,
      );
      prependHistoryPage(this.view, page);
    } catch (err) {
      this.connection.error = messageOf(err);
    } finally {
      this.connection.loadingEarlier = false;
    }
  }

  private connect(after: number | undefined): void {
    const { workspaceId, sessionId, wsOrigin } = this.options;
    const token = this.options.api.token();
    const query = after !== undefined ? `?after=${after}` : '';
    const url = `${wsOrigin}/ws/workspaces/${encodeURIComponent(workspaceId)}/sessions/${encodeURIComponent(sessionId)}${query}`;
    const protocols = ['ffc.session.v1', ...(token ? [`bearer.${token}`] : [])];
    let socket: SocketLike;
    try {
      socket = this.options.openSocket(url, protocols);
    } catch (err) {
      this.connection.error = messageOf(err);
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.connection.state = 'connected';
      for (const frame of this.outbox.splice(0)) socket.send(frame);
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.onFrame(frameText(event.data));
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed) return;
      const final = FINAL_CLOSES[event.code];
      if (final) {
        this.connection.state = 'closed';
        this.connection.error = final;
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.connection.state = 'reconnecting';
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed) this.connect(this.view.seq);
    }, delay);
  }

  private onFrame(text: string): void {
    const frame = readJsonText(text, isRelayFrame);
    if (!frame) return;
    this.connection.frames += 1;
    switch (frame.type) {
      case 'session_snapshot':
        applySnapshot(this.view, frame);
        this.settled();
        return;
      case 'session_event':
        applyEvent(this.view, frame.event);
        return;
      case 'caught_up':
        this.settled();
        return;
      case 'command_result':
        return;
      case 'error':
        this.connection.error = frame.message;
        return;
    }
  }

  /** The replay is done: the connection is healthy again, the next drop starts backing off from scratch. */
  private settled(): void {
    this.attempt = 0;
    this.connection.state = 'connected';
    if (this.connection.error && this.socket?.readyState === SOCKET_OPEN) this.connection.error = null;
  }

  private command(frame: Record<string, unknown>): void {
    // The relay echoes `requestId` in its answer, but question_response / permission_response use that same
    // field for the interactive request they answer: never overwrite theirs with a client id.
    const text = JSON.stringify({ requestId: clientMessageId(), ...frame });
    if (this.socket && this.socket.readyState === SOCKET_OPEN) this.socket.send(text);
    else this.outbox.push(text);
  }

  /** Queues a message; it shows as "sending" until the session acknowledges it. */
  send(text: string): string {
    const id = clientMessageId();
    this.view.sending.push({ id, text });
    this.command({ type: 'queue_message', id, text });
    return id;
  }

  answerQuestion(requestId: string, answers: Record<string, string | string[]>): void {
    this.command({ type: 'question_response', requestId, answers });
  }

  answerPermission(requestId: string, allow: boolean, message?: string): void {
    this.command({ type: 'permission_response', requestId, allow, ...(message ? { message } : {}) });
  }

  removeQueued(messageId: string): void {
    this.command({ type: 'remove_queued_message', messageId });
  }

  interrupt(): void {
    this.command({ type: 'interrupt' });
  }

  stop(): void {
    this.command({ type: 'stop' });
  }

  /** Drops the socket as if the network went away (tests; the feed reconnects by itself). */
  dropConnection(): void {
    this.socket?.close(4000, 'dropped');
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'closed');
    this.connection.state = 'closed';
  }
}
