/**
 * A client of `ws /ws/vms/me/terminal` speaking the dashboard's protocol (the `ws` library answers pings by
 * itself), collecting what the server sends and how the socket ended.
 */
import {
  safeParseJson,
  type TerminalServerMessage,
  TerminalServerMessage as TerminalServerMessageSchema,
} from '@factory-factory/core/protocol';
import WebSocket from 'ws';

export type ServerMessageOf<T extends TerminalServerMessage['type']> = Extract<
  TerminalServerMessage,
  { type: T }
>;

export class TerminalClient {
  /** Everything but output, which is kept per terminal in `outputs`. */
  readonly messages: TerminalServerMessage[] = [];
  private readonly outputs = new Map<string, string>();
  /** How the socket ended: the close code and reason the client saw. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.wake();
      }),
    );
    ws.on('message', (data) => {
      const parsed = safeParseJson(TerminalServerMessageSchema, String(data));
      if (!parsed.ok) throw parsed.error;
      const message = parsed.value;
      if (message.type === 'output')
        this.outputs.set(message.terminalId, (this.outputs.get(message.terminalId) ?? '') + message.data);
      else this.messages.push(message);
      this.wake();
    });
  }

  static open(url: string, token: string): Promise<TerminalClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['ffc.terminal.v1', `bearer.${token}`]);
      const client = new TerminalClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves once written to the socket, so a test can send a lot without holding it all at once. */
  sendAndFlush(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(text, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits until `condition` holds over what was received so far (re-checked on every message). */
  async waitUntil(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline)
        throw new Error(`no ${what}; got ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  async waitFor<T extends TerminalServerMessage['type']>(
    type: T,
    match: (m: ServerMessageOf<T>) => boolean = () => true,
    timeoutMs = 60_000,
  ): Promise<ServerMessageOf<T>> {
    let found: ServerMessageOf<T> | undefined;
    await this.waitUntil(
      type,
      () => {
        found = this.messages.find(
          (m): m is ServerMessageOf<T> => m.type === type && match(m as ServerMessageOf<T>),
        );
        return found !== undefined;
      },
      timeoutMs,
    );
    if (!found) throw new Error(`no ${type}`);
    return found;
  }

  errors(): ServerMessageOf<'error'>[] {
    return this.messages.filter((m): m is ServerMessageOf<'error'> => m.type === 'error');
  }

  output(terminalId: string): string {
    return this.outputs.get(terminalId) ?? '';
  }

  /** Creates a terminal and resolves with its id. */
  async createTerminal(requestId: string): Promise<string> {
    this.send({ type: 'create', requestId, cols: 120, rows: 40 });
    return (await this.waitFor('created', (m) => m.requestId === requestId)).terminalId;
  }

  /** Types `command` and waits until the output contains `expect` (a marker split so the echo never matches). */
  async run(terminalId: string, command: string, expect: string, timeoutMs = 60_000): Promise<void> {
    this.send({ type: 'input', terminalId, data: `${command}\r` });
    await this.waitUntil(
      `"${expect}" in the output`,
      () => this.output(terminalId).includes(expect),
      timeoutMs,
    );
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    this.ws.close();
    return this.closed.then(() => undefined);
  }
}
