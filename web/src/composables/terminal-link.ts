/**
 * The VM terminal's connection, apart from xterm so it runs under Node: attach to the shell already
 * running in the VM (or create one), relay keystrokes and output, send size changes debounced, and after
 * a disconnect (the VM restarted, the api went away) reconnect with backoff. The relay replays each
 * terminal's scrollback on attach, so the screen is reset before it is written: no line appears twice.
 */
import { reactive } from 'vue';
import { readJsonText } from '../lib/json.js';
import { backoffMs, frameText, SOCKET_OPEN, type SocketFactory, type SocketLike } from '../lib/socket.js';
import { isTerminalFrame, type TerminalFrame } from '../lib/types.js';
import type { Timers } from './session-feed.js';

/** What the link needs of the terminal on screen (xterm's Terminal has these). */
export type TerminalScreen = {
  readonly cols: number;
  readonly rows: number;
  reset(): void;
  write(data: string): void;
};

export type TerminalState = 'connecting' | 'connected' | 'reconnecting' | 'exited';

export const TERMINAL_STATE_TEXT: Record<TerminalState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'VM restarted — reconnecting…',
  exited: 'The shell exited.',
};

export type TerminalLinkOptions = {
  url: string;
  token: () => string | null;
  openSocket: SocketFactory;
  screen: TerminalScreen;
  timers?: Timers;
  /** Quiet time before a size change is sent (a drag-resize fires many). */
  resizeDebounceMs?: number;
};

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class TerminalLink {
  readonly status = reactive({
    state: 'connecting' as TerminalState,
    error: null as string | null,
    terminalId: null as string | null,
    /** Resize messages sent (tests and the bench count them). */
    resizesSent: 0,
    /** Times the screen was reset for a (re)attach. */
    attaches: 0,
  });
  private socket: SocketLike | null = null;
  private attempt = 0;
  private connectedOnce = false;
  private closed = false;
  private retryTimer: unknown = null;
  private resizeTimer: unknown = null;
  private lastSize: { cols: number; rows: number } | null = null;
  private createRequest: string | null = null;
  private readonly timers: Timers;

  constructor(private readonly options: TerminalLinkOptions) {
    this.timers = options.timers ?? defaultTimers;
  }

  open(): void {
    this.closed = false;
    this.connect();
  }

  private connect(): void {
    const token = this.options.token();
    const socket = this.options.openSocket(this.options.url, [
      'ffc.terminal.v1',
      ...(token ? [`bearer.${token}`] : []),
    ]);
    this.socket = socket;
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      const frame = readJsonText(frameText(event.data), isTerminalFrame);
      if (frame) this.onFrame(frame);
    };
    socket.onerror = () => undefined;
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed) return;
      this.status.state = this.connectedOnce ? 'reconnecting' : 'connecting';
      const delay = backoffMs(this.attempt);
      this.attempt += 1;
      this.retryTimer = this.timers.setTimeout(() => {
        this.retryTimer = null;
        if (!this.closed) this.connect();
      }, delay);
    };
  }

  private send(message: Record<string, unknown>): boolean {
    if (!this.socket || this.socket.readyState !== SOCKET_OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  private attach(terminalId: string, scrollback: string): void {
    const { screen } = this.options;
    this.status.terminalId = terminalId;
    screen.reset();
    if (scrollback) screen.write(scrollback);
    this.status.attaches += 1;
    this.status.state = 'connected';
    this.status.error = null;
    this.connectedOnce = true;
    this.attempt = 0;
    // The PTY takes the size of the screen it is shown on now.
    this.lastSize = null;
    this.sendSize();
  }

  private onFrame(frame: TerminalFrame): void {
    switch (frame.type) {
      case 'terminal_list': {
        const known = frame.terminals.find((t) => t.id === this.status.terminalId) ?? frame.terminals[0];
        if (known) this.attach(known.id, known.outputBuffer);
        else this.create();
        return;
      }
      case 'created':
        if (frame.requestId !== undefined && frame.requestId !== this.createRequest) return;
        this.createRequest = null;
        this.attach(frame.terminalId, frame.outputBuffer ?? '');
        return;
      case 'output':
        if (frame.terminalId === this.status.terminalId) this.options.screen.write(frame.data);
        return;
      case 'exit':
        if (frame.terminalId !== this.status.terminalId) return;
        this.status.terminalId = null;
        this.status.state = 'exited';
        return;
      case 'error':
        this.status.error = frame.message;
        return;
    }
  }

  private create(): void {
    const { cols, rows } = this.options.screen;
    this.createRequest = `create-${Date.now().toString(36)}`;
    this.lastSize = { cols, rows };
    this.send({ type: 'create', requestId: this.createRequest, cols, rows });
  }

  /** After the shell exited: a new one. */
  restart(): void {
    this.status.state = 'connecting';
    this.create();
  }

  input(data: string): void {
    if (this.status.terminalId) this.send({ type: 'input', terminalId: this.status.terminalId, data });
  }

  /** The screen changed size: sent once it has been still for resizeDebounceMs. */
  resized(): void {
    if (this.resizeTimer !== null) this.timers.clearTimeout(this.resizeTimer);
    this.resizeTimer = this.timers.setTimeout(() => {
      this.resizeTimer = null;
      this.sendSize();
    }, this.options.resizeDebounceMs ?? 100);
  }

  private sendSize(): void {
    const terminalId = this.status.terminalId;
    if (!terminalId) return;
    const { cols, rows } = this.options.screen;
    if (this.lastSize && this.lastSize.cols === cols && this.lastSize.rows === rows) return;
    if (this.send({ type: 'resize', terminalId, cols, rows })) {
      this.lastSize = { cols, rows };
      this.status.resizesSent += 1;
    }
  }

  /** Drops the socket as if the connection broke (tests). */
  dropConnection(): void {
    this.socket?.close(4000, 'dropped');
  }

  close(): void {
    this.closed = true;
    for (const timer of [this.retryTimer, this.resizeTimer])
      if (timer !== null) this.timers.clearTimeout(timer);
    this.retryTimer = null;
    this.resizeTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'closed');
  }
}
