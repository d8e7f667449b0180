/**
 * A fake of the Anthropic Messages API for driving the real Claude Code CLI in tests and benchmarks.
 *
 * It answers `POST /v1/messages` with SSE exactly as the CLI expects (message_start, content_block_*,
 * message_delta, message_stop), plus the side requests the CLI makes (`HEAD /`, count_tokens, title
 * generation). Replies come from a queue of scripted turns, consumed by the CLI's main-loop requests
 * (the ones that carry tools); with an empty queue it echoes the user's text, or summarizes the
 * tool_result it just received.
 *
 * Script it in-process (`fake.script(...)`) or from another process over HTTP:
 *   POST /__script  {"turns":[FakeTurn, ...]}   append turns
 *   POST /__reset                              clear turns and the request log
 *   GET  /__requests                           the request log (FakeRequest[])
 * String values in a tool_use input may contain `{{cwd}}`, replaced by the CLI's working directory
 * (read from the system prompt), so scripts can name files without knowing the temp dir.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { safeParseJson } from '../../src/protocol/json.js';

export const FakeTurn = z.discriminatedUnion('kind', [
  /** One text block, sent as a single delta. */
  z.object({ kind: z.literal('text'), text: z.string() }),
  /** One text block streamed as these deltas, `delayMs` apart (0 = as fast as possible). */
  z.object({
    kind: z.literal('deltas'),
    chunks: z.array(z.string()),
    delayMs: z.number().int().nonnegative().default(0),
  }),
  /** Optional text, then one tool call; the CLI runs the tool and calls the API again. */
  z.object({
    kind: z.literal('tool_use'),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
    text: z.string().optional(),
    id: z.string().optional(),
  }),
  /** An HTTP error with the Anthropic error body. */
  z.object({ kind: z.literal('error'), status: z.number().int(), message: z.string().optional() }),
]);
export type FakeTurn = z.input<typeof FakeTurn>;
type ParsedTurn = z.output<typeof FakeTurn>;

const ScriptBody = z.object({ turns: z.array(FakeTurn) });

const ContentBlock = z.looseObject({ type: z.string() });
const RequestBody = z.looseObject({
  model: z.string().optional(),
  messages: z
    .array(
      z.looseObject({
        role: z.string(),
        content: z.union([z.string(), z.array(ContentBlock)]),
      }),
    )
    .default([]),
  system: z.union([z.string(), z.array(z.looseObject({ text: z.string().optional() }))]).optional(),
  tools: z.array(z.unknown()).optional(),
  stream: z.boolean().optional(),
});
type RequestBody = z.output<typeof RequestBody>;

export interface FakeToolResult {
  toolUseId: string;
  isError: boolean;
  content: string;
}

/** What the fake saw in one main-loop request. */
export interface FakeRequest {
  /** Index in the log, from 0. */
  index: number;
  model: string | null;
  /** The conversation without `role: system` entries, as role + flattened text. */
  messages: Array<{ role: string; text: string }>;
  /** Text of the last user message, without <system-reminder> blocks. */
  lastUserText: string;
  /** tool_result blocks of the last user message. */
  toolResults: FakeToolResult[];
  /** The turn the fake answered with, or null for the default echo. */
  turn: ParsedTurn | null;
}

export interface FakeAnthropic {
  /** e.g. http://127.0.0.1:43210, for ANTHROPIC_BASE_URL. */
  readonly url: string;
  readonly port: number;
  /** Main-loop requests seen so far. */
  readonly requests: readonly FakeRequest[];
  /** Appends turns to the script. */
  script(...turns: FakeTurn[]): void;
  /** Turns not consumed yet. */
  readonly pendingTurns: number;
  reset(): void;
  /** Resolves once at least `count` main-loop requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartFakeAnthropicOptions {
  /** 0 (default) picks a free port. */
  port?: number;
}

function textOf(content: RequestBody['messages'][number]['content']): string {
  if (typeof content === 'string') return content;
  const parts: string[] = [];
  for (const block of content) {
    if (block.type === 'text' && typeof block.text === 'string') {
      if (!block.text.startsWith('<system-reminder>')) parts.push(block.text);
    } else if (block.type === 'tool_result') {
      parts.push(`[tool_result] ${flattenToolContent(block.content)}`);
    } else if (block.type === 'tool_use') {
      parts.push(`[tool_use ${String(block.name)}]`);
    }
  }
  return parts.join('\n');
}

function flattenToolContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((item) => (typeof item === 'object' && item !== null && 'text' in item ? String(item.text) : ''))
      .join('');
  }
  return '';
}

function cwdOf(body: RequestBody): string {
  const system = body.system;
  const text = typeof system === 'string' ? system : (system ?? []).map((b) => b.text ?? '').join('\n');
  const match = /Primary working directory: (.+)/.exec(text);
  return match?.[1]?.trim() ?? '';
}

function substitute(value: unknown, cwd: string): unknown {
  if (typeof value === 'string') return value.replaceAll('{{cwd}}', cwd);
  if (Array.isArray(value)) return value.map((v) => substitute(v, cwd));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, cwd)]));
  }
  return value;
}

class SseReply {
  private closed = false;

  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': `req_fake_${Date.now()}`,
    });
    res.on('close', () => {
      this.closed = true;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(type: string, data: Record<string, unknown>): void {
    if (this.closed) return;
    this.res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}

let messageCounter = 0;

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function streamMessage(
  reply: SseReply,
  model: string,
  blocks: Array<
    | { kind: 'text'; chunks: string[]; delayMs: number }
    | { kind: 'tool_use'; id: string; name: string; input: unknown }
  >,
  stopReason: 'end_turn' | 'tool_use',
): Promise<void> {
  messageCounter += 1;
  reply.send('message_start', {
    message: {
      id: `msg_fake_${messageCounter}`,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 10,
        output_tokens: 1,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    },
  });
  reply.send('ping', {});
  let outputTokens = 0;
  for (const [index, block] of blocks.entries()) {
    if (block.kind === 'text') {
      reply.send('content_block_start', { index, content_block: { type: 'text', text: '' } });
      for (const chunk of block.chunks) {
        if (block.delayMs > 0) await wait(block.delayMs);
        if (reply.isClosed) return;
        reply.send('content_block_delta', { index, delta: { type: 'text_delta', text: chunk } });
        outputTokens += 1;
      }
    } else {
      reply.send('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
      });
      reply.send('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
      });
      outputTokens += 5;
    }
    reply.send('content_block_stop', { index });
  }
  reply.send('message_delta', {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: Math.max(1, outputTokens) },
  });
  reply.send('message_stop', {});
  reply.end();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Starts the fake on 127.0.0.1. Close it in an `after` hook. */
export async function startFakeAnthropic(options: StartFakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const queue: ParsedTurn[] = [];
  const requests: FakeRequest[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let toolCounter = 0;

  const notify = () => {
    for (const waiter of [...waiters]) {
      if (requests.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  async function answerMessages(body: RequestBody, res: ServerResponse): Promise<void> {
    const model = body.model ?? 'claude-fake';
    // Side requests without tools (title generation) do not consume the script.
    if (!body.tools || body.tools.length === 0) {
      const reply = new SseReply(res);
      await streamMessage(
        reply,
        model,
        [{ kind: 'text', chunks: ['{"title":"Fake session"}'], delayMs: 0 }],
        'end_turn',
      );
      return;
    }
    const conversation = body.messages.filter((m) => m.role !== 'system');
    const last = [...conversation].reverse().find((m) => m.role === 'user');
    const toolResults: FakeToolResult[] = [];
    if (last && Array.isArray(last.content)) {
      for (const block of last.content) {
        if (block.type === 'tool_result') {
          toolResults.push({
            toolUseId: String(block.tool_use_id),
            isError: block.is_error === true,
            content: flattenToolContent(block.content),
          });
        }
      }
    }
    const lastUserText = last ? textOf(last.content) : '';
    const turn = queue.shift() ?? null;
    requests.push({
      index: requests.length,
      model: body.model ?? null,
      messages: conversation.map((m) => ({ role: m.role, text: textOf(m.content) })),
      lastUserText,
      toolResults,
      turn,
    });
    notify();

    if (turn?.kind === 'error') {
      sendJson(res, turn.status, {
        type: 'error',
        error: { type: 'api_error', message: turn.message ?? `fake ${turn.status}` },
      });
      return;
    }
    const reply = new SseReply(res);
    if (!turn) {
      const text =
        toolResults.length > 0
          ? `done. ${toolResults.map((r) => `tool_result(is_error=${r.isError}): ${r.content}`).join(' | ')}`
          : `echo: ${lastUserText}`;
      await streamMessage(reply, model, [{ kind: 'text', chunks: [text], delayMs: 0 }], 'end_turn');
      return;
    }
    switch (turn.kind) {
      case 'text':
        await streamMessage(reply, model, [{ kind: 'text', chunks: [turn.text], delayMs: 0 }], 'end_turn');
        return;
      case 'deltas':
        await streamMessage(
          reply,
          model,
          [{ kind: 'text', chunks: turn.chunks, delayMs: turn.delayMs }],
          'end_turn',
        );
        return;
      case 'tool_use': {
        toolCounter += 1;
        const input = substitute(turn.input, cwdOf(body));
        const blocks: Parameters<typeof streamMessage>[2] = [];
        if (turn.text) blocks.push({ kind: 'text', chunks: [turn.text], delayMs: 0 });
        blocks.push({ kind: 'tool_use', id: turn.id ?? `toolu_fake_${toolCounter}`, name: turn.name, input });
        await streamMessage(reply, model, blocks, 'tool_use');
        return;
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    if (req.method === 'HEAD' || (req.method === 'GET' && path === '/')) {
      res.writeHead(200);
      res.end();
      return;
    }
    if (req.method === 'POST' && path === '/v1/messages/count_tokens') {
      await readBody(req);
      sendJson(res, 200, { input_tokens: 100 });
      return;
    }
    if (req.method === 'POST' && path === '/v1/messages') {
      const body = safeParseJson(RequestBody, await readBody(req), 64 * 1024 * 1024);
      if (!body.ok) {
        sendJson(res, 400, {
          type: 'error',
          error: { type: 'invalid_request_error', message: body.error.message },
        });
        return;
      }
      await answerMessages(body.value, res);
      return;
    }
    if (req.method === 'POST' && path === '/__script') {
      const body = safeParseJson(ScriptBody, await readBody(req));
      if (!body.ok) {
        sendJson(res, 400, { error: { code: 'bad_request', message: body.error.message } });
        return;
      }
      queue.push(...body.value.turns.map((t) => FakeTurn.parse(t)));
      sendJson(res, 200, { pendingTurns: queue.length });
      return;
    }
    if (req.method === 'POST' && path === '/__reset') {
      queue.length = 0;
      requests.length = 0;
      sendJson(res, 200, { ok: true });
      return;
    }
    if (req.method === 'GET' && path === '/__requests') {
      sendJson(res, 200, requests);
      return;
    }
    sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route ${path}` } });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        sendJson(res, 500, { type: 'error', error: { type: 'api_error', message: String(error) } });
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get pendingTurns() {
      return queue.length;
    },
    script(...turns) {
      queue.push(...turns.map((t) => FakeTurn.parse(t)));
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
    },
    waitForRequests(count, timeoutMs = 30_000) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`fake Anthropic saw ${requests.length} of ${count} requests`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** Scripted turns by name, for readable tests. */
export const turns = {
  text: (text: string): FakeTurn => ({ kind: 'text', text }),
  deltas: (chunks: string[], delayMs = 0): FakeTurn => ({ kind: 'deltas', chunks, delayMs }),
  write: (relativePath: string, content: string): FakeTurn => ({
    kind: 'tool_use',
    name: 'Write',
    input: { file_path: `{{cwd}}/${relativePath}`, content },
  }),
  bash: (command: string, description = 'Run a command'): FakeTurn => ({
    kind: 'tool_use',
    name: 'Bash',
    input: { command, description },
  }),
  ask: (question: string, labels: string[], header = 'Question'): FakeTurn => ({
    kind: 'tool_use',
    name: 'AskUserQuestion',
    input: {
      questions: [
        {
          question,
          header,
          options: labels.map((label) => ({ label, description: `Pick ${label}` })),
          multiSelect: false,
        },
      ],
    },
  }),
  exitPlanMode: (plan: string): FakeTurn => ({ kind: 'tool_use', name: 'ExitPlanMode', input: { plan } }),
  error: (status: number, message?: string): FakeTurn => ({
    kind: 'error',
    status,
    ...(message ? { message } : {}),
  }),
};
