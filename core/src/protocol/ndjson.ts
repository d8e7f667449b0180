import { MAX_MESSAGE_BYTES } from './json.js';

/** What a capped line splitter hands back for every newline-terminated piece of input. */
export type SplitLine =
  | { kind: 'line'; text: string }
  /** A line longer than the cap: its bytes were dropped, the stream carries on after its newline. */
  | { kind: 'oversize'; bytes: number };

/**
 * Splits a byte stream into NDJSON lines without ever holding more than `maxLineBytes` of one line.
 *
 * A peer that prints a 50 MB line (or never prints a newline) must not make us buffer it: once the
 * current line passes the cap we drop what we have, skip bytes until the next newline and report one
 * `oversize` item, so the process on the other side keeps working. Empty lines are skipped.
 */
export class CappedLineSplitter {
  private pieces: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of the current line that were dropped because it is over the cap (0 = not skipping). */
  private skippedBytes = 0;

  constructor(private maxLineBytes: number = MAX_MESSAGE_BYTES) {}

  /** Changes the cap for lines not yet started (e.g. a larger one once a peer has authenticated). */
  setMaxLineBytes(maxLineBytes: number): void {
    this.maxLineBytes = maxLineBytes;
  }

  /** Feeds a chunk; returns the complete lines it finished, in order. */
  push(chunk: Buffer | string): SplitLine[] {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const out: SplitLine[] = [];
    let start = 0;
    while (start < bytes.length) {
      const newline = bytes.indexOf(0x0a, start);
      const end = newline === -1 ? bytes.length : newline;
      this.append(bytes.subarray(start, end));
      if (newline === -1) break;
      this.finishLine(out);
      start = newline + 1;
    }
    return out;
  }

  /** Call at end of stream: a last line without a trailing newline still counts. */
  end(): SplitLine[] {
    const out: SplitLine[] = [];
    if (this.pendingBytes > 0 || this.skippedBytes > 0) this.finishLine(out);
    return out;
  }

  private append(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.skippedBytes > 0) {
      this.skippedBytes += piece.length;
      return;
    }
    if (this.pendingBytes + piece.length > this.maxLineBytes) {
      this.skippedBytes = this.pendingBytes + piece.length;
      this.pieces = [];
      this.pendingBytes = 0;
      return;
    }
    // Copy: the caller may reuse its buffer after push() returns.
    this.pieces.push(Buffer.from(piece));
    this.pendingBytes += piece.length;
  }

  private finishLine(out: SplitLine[]): void {
    if (this.skippedBytes > 0) {
      out.push({ kind: 'oversize', bytes: this.skippedBytes });
      this.skippedBytes = 0;
      return;
    }
    const joined = this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces);
    this.pieces = [];
    this.pendingBytes = 0;
    if (!joined) return;
    // A newline byte never occurs inside a multi-byte UTF-8 sequence, so each line decodes on its own.
    const text = joined.toString('utf8');
    const trimmed = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (trimmed.trim().length > 0) out.push({ kind: 'line', text: trimmed });
  }
}

/** One value as one NDJSON line. JSON.stringify never emits a raw newline, so the framing is safe. */
export function encodeNdjsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** The writable half of a pipe or socket, as much of it as the NDJSON writer needs. */
export interface NdjsonSink {
  write(chunk: string, callback: (error?: Error | null) => void): boolean;
  once(event: 'drain', listener: () => void): unknown;
  readonly writableEnded?: boolean;
  readonly destroyed?: boolean;
}

/**
 * Writes NDJSON lines to a stream while respecting backpressure: when the stream says its buffer is
 * full we hold further lines in our own queue until 'drain', so a slow reader cannot make Node buffer
 * without bound inside the stream. `queuedBytes` lets the owner notice a reader that never catches up.
 */
export class NdjsonWriter {
  private readonly waiting: Array<{ line: string; done: (error?: Error) => void }> = [];
  private blocked = false;
  private waitingBytes = 0;

  constructor(private readonly sink: NdjsonSink) {}

  /** Bytes accepted by write() but not yet handed to the stream. */
  get queuedBytes(): number {
    return this.waitingBytes;
  }

  /** Queues one value; the promise settles when the stream has taken (or refused) the line. */
  write(value: unknown): Promise<void> {
    return this.writeLine(encodeNdjsonLine(value));
  }

  /** Like write() for a line that is already encoded (must end with a newline). */
  writeLine(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => (error ? reject(error) : resolve());
      if (this.blocked || this.waiting.length > 0) {
        this.waiting.push({ line, done });
        this.waitingBytes += line.length;
        return;
      }
      this.send(line, done);
    });
  }

  /** Settles every queued line with an error: call when the stream closed while we were blocked. */
  failQueued(error: Error): void {
    const queued = this.waiting.splice(0);
    this.waitingBytes = 0;
    for (const item of queued) item.done(error);
  }

  private send(line: string, done: (error?: Error) => void): void {
    if (this.sink.destroyed || this.sink.writableEnded) {
      done(new Error('stream is closed'));
      return;
    }
    const ok = this.sink.write(line, (error) => done(error ?? undefined));
    if (!ok) {
      this.blocked = true;
      this.sink.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    while (!this.blocked) {
      const next = this.waiting.shift();
      if (!next) return;
      this.waitingBytes -= next.line.length;
      this.send(next.line, next.done);
    }
  }
}
