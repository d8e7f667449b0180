import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  CappedLineSplitter,
  type CliHostRequest,
  cliControlRequest,
  MAX_MESSAGE_BYTES,
  NdjsonWriter,
  type ParsedCliLine,
  parseCliLine,
} from '../protocol/index.js';
import { killProcessGroup } from '../protocol/process-group.js';

export interface CliExit {
  code: number | null;
  signal: string | null;
}

export type CliProtocolError =
  | { code: 'oversize_output_line'; message: string }
  | { code: 'malformed_output_line'; message: string };

export interface CliProcessHandlers {
  /** One parsed stdout line. `control_response`s to our own requests are consumed before this. */
  onLine(line: ParsedCliLine): void;
  /** A stdout line we could not use. The process keeps running; the caller decides what to report. */
  onProtocolError(error: CliProtocolError): void;
  onStderr(text: string): void;
  /** Called once, after stdout has been fully read (or shortly after exit if a grandchild holds it). */
  onExit(exit: CliExit): void;
}

export interface CliSpawnOptions {
  bin: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  maxLineBytes?: number;
  handlers: CliProcessHandlers;
}

export class ControlRequestError extends Error {
  constructor(
    readonly code: 'timeout' | 'rejected' | 'process_gone',
    message: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

interface PendingControl {
  resolve(response: Record<string, unknown> | undefined): void;
  reject(error: ControlRequestError): void;
  timer: NodeJS.Timeout;
}

/** After `exit`, how long we wait for stdout to close before reporting the exit anyway. */
const STDOUT_DRAIN_AFTER_EXIT_MS = 2000;

/**
 * One Claude Code CLI process: NDJSON in and out, control requests with ids and timeouts, and the
 * process group. It is spawned detached (its own process group) so that stopping it also stops the
 * tools it started (Bash children), with one kill of the group.
 */
export class ClaudeCliProcess {
  readonly pid: number | null;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly writer: NdjsonWriter;
  private readonly splitter: CappedLineSplitter;
  private readonly controls = new Map<string, PendingControl>();
  private readonly handlers: CliProcessHandlers;
  private exitInfo: CliExit | null = null;
  private reported = false;
  private readonly exitedPromise: Promise<CliExit>;
  private resolveExited: (exit: CliExit) => void = () => {};

  constructor(options: CliSpawnOptions) {
    this.handlers = options.handlers;
    this.splitter = new CappedLineSplitter(options.maxLineBytes ?? MAX_MESSAGE_BYTES);
    this.exitedPromise = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.child = spawn(options.bin, [...options.args], {
      cwd: options.cwd,
      env: { ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.pid = this.child.pid ?? null;
    this.writer = new NdjsonWriter(this.child.stdin);

    // Writes to a dead process fail with EPIPE on the stream; the exit path reports it instead.
    this.child.stdin.on('error', () => {});
    this.child.stdout.on('data', (chunk: Buffer) => this.onStdout(this.splitter.push(chunk)));
    this.child.stdout.on('end', () => this.onStdout(this.splitter.end()));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text: string) => this.handlers.onStderr(text));
    this.child.on('error', (error) => {
      // Spawn failure (ENOENT, EACCES): there will be no 'exit', only 'close'.
      this.handlers.onStderr(`spawn failed: ${error.message}\n`);
      this.recordExit({ code: null, signal: null });
    });
    this.child.on('exit', (code, signal) => {
      this.recordExit({ code, signal });
      setTimeout(() => this.reportExit(), STDOUT_DRAIN_AFTER_EXIT_MS).unref();
    });
    this.child.on('close', () => this.reportExit());
  }

  get exited(): Promise<CliExit> {
    return this.exitedPromise;
  }

  get hasExited(): boolean {
    return this.exitInfo !== null;
  }

  /** Bytes waiting for the CLI to read its stdin. */
  get stdinBacklogBytes(): number {
    return this.writer.queuedBytes;
  }

  /** Writes one message to stdin, waiting for room when the pipe is full. */
  send(message: unknown): Promise<void> {
    if (this.exitInfo) return Promise.reject(new Error('the CLI process has exited'));
    return this.writer.write(message);
  }

  /** Sends a control request and resolves with the CLI's `response` payload. */
  request(request: CliHostRequest, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
    if (this.exitInfo) {
      return Promise.reject(new ControlRequestError('process_gone', 'the CLI process has exited'));
    }
    const requestId = `ff_${randomUUID()}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.controls.delete(requestId);
        reject(new ControlRequestError('timeout', `no answer to ${request.subtype} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.controls.set(requestId, { resolve, reject, timer });
      this.send(cliControlRequest(requestId, request)).catch((error: unknown) => {
        const pending = this.controls.get(requestId);
        if (!pending) return;
        this.controls.delete(requestId);
        clearTimeout(pending.timer);
        const detail = error instanceof Error ? error.message : String(error);
        reject(new ControlRequestError('process_gone', `could not send ${request.subtype}: ${detail}`));
      });
    });
  }

  /** Closing stdin is the polite way to end the CLI: it exits within tens of milliseconds. */
  closeStdin(): void {
    if (!this.child.stdin.writableEnded) this.child.stdin.end();
  }

  /** Signals the whole process group (the CLI and every tool process it started). */
  killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
    const target = this.pid;
    if (target === null) return;
    if (!killProcessGroup(target, signal)) {
      // ESRCH: the group is already gone. Fall back to the child itself in case it left the group.
      try {
        this.child.kill(signal);
      } catch {
        // Nothing left to signal.
      }
    }
  }

  private onStdout(lines: ReturnType<CappedLineSplitter['push']>): void {
    for (const item of lines) {
      if (item.kind === 'oversize') {
        this.handlers.onProtocolError({
          code: 'oversize_output_line',
          message: `the CLI printed a ${item.bytes}-byte line, over the limit; it was dropped`,
        });
        continue;
      }
      const parsed = parseCliLine(item.text, Number.POSITIVE_INFINITY);
      if (!parsed.ok) {
        this.handlers.onProtocolError({
          code: 'malformed_output_line',
          message: `unreadable CLI output line (${parsed.error.message}): ${preview(item.text)}`,
        });
        continue;
      }
      if (parsed.line.kind === 'control_response' && this.settleControl(parsed.line.message.response)) {
        continue;
      }
      this.handlers.onLine(parsed.line);
    }
  }

  private settleControl(
    response:
      | { subtype: 'success'; request_id: string; response?: Record<string, unknown> | undefined }
      | {
          subtype: 'error';
          request_id: string;
          error: string;
        },
  ): boolean {
    const pending = this.controls.get(response.request_id);
    if (!pending) return false;
    this.controls.delete(response.request_id);
    clearTimeout(pending.timer);
    if (response.subtype === 'success') pending.resolve(response.response);
    else pending.reject(new ControlRequestError('rejected', response.error));
    return true;
  }

  private recordExit(exit: CliExit): void {
    if (!this.exitInfo) this.exitInfo = exit;
  }

  private reportExit(): void {
    if (this.reported) return;
    const exit = this.exitInfo ?? { code: this.child.exitCode, signal: this.child.signalCode };
    this.exitInfo = exit;
    this.reported = true;
    for (const [id, pending] of this.controls) {
      clearTimeout(pending.timer);
      pending.reject(new ControlRequestError('process_gone', 'the CLI process exited'));
      this.controls.delete(id);
    }
    this.writer.failQueued(new Error('the CLI process exited'));
    this.handlers.onExit(exit);
    this.resolveExited(exit);
  }
}

function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
