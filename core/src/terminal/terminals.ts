import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import type { Logger } from 'pino';
import type { TerminalEvent, TerminalExit, TerminalInfo } from '../protocol/index.js';
import { ScrollbackBuffer } from './scrollback.js';

export interface CreateTerminalOptions {
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** Defaults to $SHELL from env, then /bin/bash. */
  shell?: string;
  args?: readonly string[];
  cols?: number;
  rows?: number;
  workspaceId?: string | null;
}

export type TerminalListener = (event: TerminalEvent) => void;

export interface TerminalSubscription {
  terminal: TerminalInfo;
  /** Output so far (up to the scrollback limit); live events follow with nothing missed in between. */
  scrollback: string;
  unsubscribe(): void;
}

export class TerminalNotFoundError extends Error {
  constructor(terminalId: string) {
    super(`no terminal ${terminalId}`);
    this.name = 'TerminalNotFoundError';
  }
}

let nodePty: typeof NodePty | null = null;
/** node-pty is loaded on the first terminal: most agents never open one, and it costs memory. */
function loadNodePty(): typeof NodePty {
  nodePty ??= createRequire(import.meta.url)('node-pty') as typeof NodePty;
  return nodePty;
}

/** One PTY and what its subscribers need: scrollback, live output, its exit. */
class Terminal {
  readonly scrollback: ScrollbackBuffer;
  readonly listeners = new Set<TerminalListener>();
  exit: TerminalExit | null = null;
  cols: number;
  rows: number;

  constructor(
    readonly id: string,
    readonly workspaceId: string | null,
    readonly pty: NodePty.IPty,
    readonly createdAt: string,
    scrollbackBytes: number,
    cols: number,
    rows: number,
  ) {
    this.scrollback = new ScrollbackBuffer(scrollbackBytes);
    this.cols = cols;
    this.rows = rows;
  }

  info(): TerminalInfo {
    return {
      id: this.id,
      workspaceId: this.workspaceId,
      pid: this.pty.pid,
      cols: this.cols,
      rows: this.rows,
      createdAt: this.createdAt,
      exit: this.exit,
    };
  }

  publish(event: TerminalEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}

/**
 * The PTYs of one agent (the user's shells: onboarding logins, git by hand). A terminal outlives its
 * subscribers so that a browser tab can reattach and get the scrollback. When its shell exits it
 * stays listed, with its exit and last output, until a client destroys it with kill().
 */
export class TerminalManager {
  private readonly terminals = new Map<string, Terminal>();

  constructor(private readonly options: { scrollbackBytes?: number; logger?: Logger | undefined } = {}) {}

  create(options: CreateTerminalOptions): TerminalInfo {
    const cols = options.cols ?? 80;
    const rows = options.rows ?? 24;
    const shell = options.shell ?? options.env.SHELL ?? '/bin/bash';
    const handle = loadNodePty().spawn(shell, options.args ? [...options.args] : [], {
      name: 'xterm-256color',
      cols,
      rows,
      cwd: options.cwd,
      env: { ...options.env, TERM: 'xterm-256color' },
    });
    const terminal = new Terminal(
      randomUUID(),
      options.workspaceId ?? null,
      handle,
      new Date().toISOString(),
      this.options.scrollbackBytes ?? 100 * 1024,
      cols,
      rows,
    );
    this.terminals.set(terminal.id, terminal);
    handle.onData((data) => {
      terminal.scrollback.append(data);
      terminal.publish({ type: 'output', terminalId: terminal.id, data });
    });
    handle.onExit(({ exitCode, signal }) => {
      terminal.exit = { exitCode, signal: signal ?? null };
      this.options.logger?.info({ terminalId: terminal.id, exitCode, signal }, 'terminal exited');
      terminal.publish({ type: 'exit', terminalId: terminal.id, exitCode, signal: signal ?? null });
      terminal.listeners.clear();
    });
    this.options.logger?.info({ terminalId: terminal.id, pid: handle.pid }, 'terminal created');
    return terminal.info();
  }

  list(): TerminalInfo[] {
    return [...this.terminals.values()].map((t) => t.info());
  }

  get(terminalId: string): TerminalInfo {
    return this.require(terminalId).info();
  }

  /** Live terminals (shell still running). */
  get liveCount(): number {
    let count = 0;
    for (const t of this.terminals.values()) if (!t.exit) count++;
    return count;
  }

  input(terminalId: string, data: string): void {
    const terminal = this.require(terminalId);
    if (!terminal.exit) terminal.pty.write(data);
  }

  resize(terminalId: string, cols: number, rows: number): void {
    const terminal = this.require(terminalId);
    if (terminal.exit) return;
    terminal.pty.resize(cols, rows);
    terminal.cols = cols;
    terminal.rows = rows;
  }

  /** Ends the shell (SIGHUP, like closing a terminal window) and forgets the terminal. */
  kill(terminalId: string): void {
    const terminal = this.require(terminalId);
    this.terminals.delete(terminalId);
    if (terminal.exit) return;
    try {
      terminal.pty.kill('SIGHUP');
    } catch {
      // Already gone.
    }
  }

  /** Scrollback and registration happen in one synchronous step: no output is lost or doubled. */
  subscribe(terminalId: string, listener: TerminalListener): TerminalSubscription {
    const terminal = this.require(terminalId);
    const scrollback = terminal.scrollback.toString();
    if (!terminal.exit) terminal.listeners.add(listener);
    return {
      terminal: terminal.info(),
      scrollback,
      unsubscribe: () => terminal.listeners.delete(listener),
    };
  }

  /** Kills every terminal (agent shutdown). */
  closeAll(): void {
    for (const id of [...this.terminals.keys()]) this.kill(id);
  }

  private require(terminalId: string): Terminal {
    const terminal = this.terminals.get(terminalId);
    if (!terminal) throw new TerminalNotFoundError(terminalId);
    return terminal;
  }
}
