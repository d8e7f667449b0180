/**
 * `ffc attach`: one session over the relay (ws /ws/workspaces/:id/sessions/:sid). The I/O half: the socket,
 * reconnecting with `after=<last seq>`, reading lines, asking questions and permissions, Ctrl-C. What is
 * shown comes from the pure SessionRenderer.
 */
import { randomUUID } from 'node:crypto';
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { type QuestionAnswers, safeParseJson } from '@factory-factory/core/protocol';
import type WebSocket from 'ws';
import {
  type RelayClientFrame,
  type RelayServerFrame,
  RelayServerFrameSchema,
} from '../../api/contract/session-relay.js';
import type { ApiClient } from './api-client.js';
import { CliError, ExitCode, errorText } from './errors.js';
import { isTransient, openSocket, rawText } from './relay-socket.js';
import { type PermissionPrompt, type Question, type RenderAction, SessionRenderer } from './render.js';

export type AttachOptions = {
  client: ApiClient;
  workspaceId: string;
  sessionId: string;
  /** Sent once as a queue_message (idempotent id, so a reconnect resends it safely). */
  prompt?: string;
  /** With `prompt`: exit when the turn it started is done. */
  exitWhenIdle: boolean;
  /** Print each event as one JSON line instead of the rendered conversation. */
  json: boolean;
  io: { stdin: Readable & { isTTY?: boolean }; stdout: Writable; stderr: Writable };
};

/** Two Ctrl-C within this window exit; one interrupts the running turn. */
const DOUBLE_INTERRUPT_MS = 2000;
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const MAX_RECONNECT_ATTEMPTS = 30;

type Prompt = { kind: 'question'; question: Question } | { kind: 'permission'; prompt: PermissionPrompt };

export function attachSession(options: AttachOptions): Promise<number> {
  return new Session(options).run();
}

class Session {
  private readonly renderer = new SessionRenderer();
  private ws: WebSocket | null = null;
  private finished = false;
  private resolveRun: (code: number) => void = () => {};
  private readonly outbox: RelayClientFrame[] = [];
  private failedAttempts = 0;
  private reconnecting = false;
  private rl: Interface | null = null;
  private lastInterruptAt = 0;
  private working = false;
  // The one message of --prompt and how far it got.
  private readonly promptId: string | null;
  private promptSent = false;
  private promptDispatched = false;
  private sawInterrupt = false;
  // Messages typed here: queued, then dispatched until their turn ends. Input at its end (Ctrl-D, a pipe
  // that closed) exits once they are all done, so `echo hi | ffc attach …` shows the answer first.
  private readonly ownQueued = new Set<string>();
  private readonly ownDispatched = new Set<string>();
  private inputEnded = false;
  // Interactive requests, asked one at a time in arrival order.
  private readonly prompts: Prompt[] = [];
  private active: { prompt: Prompt; index: number; answers: QuestionAnswers } | null = null;

  constructor(private readonly o: AttachOptions) {
    this.promptId = o.prompt ? `ffc-${randomUUID()}` : null;
  }

  run(): Promise<number> {
    return new Promise((resolve) => {
      this.resolveRun = resolve;
      this.startInput();
      void this.connect();
    });
  }

  private get ui(): Writable {
    return this.o.json ? this.o.io.stderr : this.o.io.stdout;
  }

  private note(text: string): void {
    this.o.io.stderr.write(`${text}\n`);
  }

  private finish(code: number, message?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (message) this.note(message);
    this.rl?.close();
    process.removeListener('SIGINT', this.onSigint);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.close(1000, 'client done');
      // A server that never answers the close handshake must not keep ffc alive.
      setTimeout(() => ws.terminate(), 1000).unref();
    }
    this.resolveRun(code);
  }

  // ---- the socket ----

  private async connect(): Promise<void> {
    if (this.finished) return;
    const query: Record<string, string> = {};
    if (this.renderer.attached) query.after = String(this.renderer.lastSeq);
    const path = `/ws/workspaces/${encodeURIComponent(this.o.workspaceId)}/sessions/${encodeURIComponent(this.o.sessionId)}`;
    let connectedThisSocket = false;
    let socket: WebSocket | null = null;
    const onMessage = (data: WebSocket.RawData) => {
      if (this.finished) return;
      const parsed = safeParseJson(RelayServerFrameSchema, rawText(data), 16 * 1024 * 1024);
      if (!parsed.ok) {
        this.note(`ffc: ignored a frame from the api that it could not read (${parsed.error.message})`);
        return;
      }
      const frame = parsed.value;
      if (!connectedThisSocket && (frame.type === 'session_snapshot' || frame.type === 'caught_up')) {
        connectedThisSocket = true;
        this.failedAttempts = 0;
        if (this.reconnecting) this.note('reconnected');
        this.reconnecting = false;
      }
      this.onFrame(frame);
      if (connectedThisSocket) {
        this.flush();
        this.exitIfInputDone();
      }
    };
    const onClose = () => {
      // A socket that closed before connect() took it (same packet as the upgrade) is this one too.
      if (this.ws !== null && this.ws !== socket) return;
      this.ws = null;
      socket = null;
      if (!this.finished) this.scheduleReconnect();
    };
    let ws: WebSocket;
    try {
      ws = await openSocket(this.o.client.wsUrl(path, query), this.o.client.credentials.apiKey, {
        message: onMessage,
        close: onClose,
      });
    } catch (err) {
      if (this.finished) return;
      if (isTransient(err) && this.failedAttempts < MAX_RECONNECT_ATTEMPTS) {
        this.scheduleReconnect();
        return;
      }
      const code = err instanceof CliError ? err.exitCode : ExitCode.service;
      this.finish(code, `ffc: ${errorText(err)}`);
      return;
    }
    if (this.finished) {
      ws.terminate();
      return;
    }
    if (ws.readyState !== ws.OPEN) return; // closed already; onClose has scheduled the reconnect
    socket = ws;
    this.ws = ws;
    this.flush();
  }

  private scheduleReconnect(): void {
    if (this.finished) return;
    if (!this.reconnecting) this.note('reconnecting…');
    this.reconnecting = true;
    const delay = BACKOFF_MS[Math.min(this.failedAttempts, BACKOFF_MS.length - 1)] ?? 8000;
    this.failedAttempts += 1;
    if (this.failedAttempts > MAX_RECONNECT_ATTEMPTS) {
      this.finish(ExitCode.service, 'ffc: lost the connection to the api and could not reconnect');
      return;
    }
    setTimeout(() => void this.connect(), delay);
  }

  private send(frame: RelayClientFrame): void {
    this.outbox.push(frame);
    this.flush();
  }

  /** Frames wait for an attached socket; every one carries an id or is harmless to repeat. */
  private flush(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== ws.OPEN || !this.renderer.attached) return;
    while (this.outbox.length > 0) {
      const frame = this.outbox.shift();
      if (frame) ws.send(JSON.stringify(frame));
    }
  }

  // ---- frames ----

  private onFrame(frame: RelayServerFrame): void {
    if (this.o.json) {
      const fresh = frame.type !== 'session_event' || frame.event.seq > this.renderer.lastSeq;
      if (fresh && frame.type !== 'caught_up' && frame.type !== 'command_result') {
        this.o.io.stdout.write(`${JSON.stringify(frame)}\n`);
      }
    }
    for (const action of this.renderer.handle(frame)) this.onAction(action);
    if (
      (frame.type === 'session_snapshot' || frame.type === 'caught_up') &&
      this.promptId &&
      !this.promptSent
    ) {
      this.promptSent = true;
      this.send({ type: 'queue_message', id: this.promptId, text: this.o.prompt ?? '' });
    }
    if (frame.type === 'session_snapshot') this.settleFromSnapshot(frame);
  }

  /** After a reconnect whose `after` was too old the events in between are gone; the snapshot tells. */
  private settleFromSnapshot(frame: Extract<RelayServerFrame, { type: 'session_snapshot' }>): void {
    this.working = frame.sessionRuntime.activity === 'WORKING';
    if (!this.o.exitWhenIdle || !this.promptId || !this.promptDispatched) return;
    const done = frame.messages.some((m) => m.id === this.promptId) && !this.working;
    if (done) this.finish(frame.lastTurn?.isError ? ExitCode.service : ExitCode.ok);
  }

  private onAction(action: RenderAction): void {
    switch (action.kind) {
      case 'out':
        if (!this.o.json) this.o.io.stdout.write(action.text);
        return;
      case 'note':
        this.note(action.text);
        return;
      case 'question':
      case 'permission':
        this.prompts.push(action);
        if (!this.active) this.askNext();
        return;
      case 'resolved':
        this.dropPrompt(action.requestId);
        return;
      case 'message_state':
        if (this.ownQueued.has(action.id) && action.state !== 'QUEUED') {
          this.ownQueued.delete(action.id);
          if (action.state === 'DISPATCHED' || action.state === 'COMMITTED')
            this.ownDispatched.add(action.id);
        }
        if (action.id !== this.promptId) return;
        if (action.state === 'DISPATCHED' || action.state === 'COMMITTED') this.promptDispatched = true;
        if (action.state === 'REJECTED' || action.state === 'CANCELLED') {
          this.finish(
            ExitCode.conflict,
            `ffc: the message was ${action.state.toLowerCase()}: ${action.errorMessage ?? ''}`,
          );
        }
        if (action.state === 'FAILED') {
          this.finish(ExitCode.service, `ffc: the message failed: ${action.errorMessage ?? ''}`);
        }
        return;
      case 'runtime':
        this.working = action.runtime.activity === 'WORKING';
        if (this.o.exitWhenIdle && this.promptDispatched && action.runtime.phase === 'error') {
          this.finish(ExitCode.service, 'ffc: the session failed (see the error above)');
        }
        return;
      case 'turn_end':
        this.ownDispatched.clear();
        if (this.o.exitWhenIdle && this.promptDispatched) {
          if (!action.isError) this.finish(ExitCode.ok);
          else if (this.sawInterrupt) this.finish(ExitCode.interrupted);
          else this.finish(ExitCode.service);
        }
        return;
      case 'caught_up':
        return;
      case 'error':
        // not_found: the session or workspace is not (or no longer) there; nothing to reconnect to. Errors
        // that close the socket for a passing reason (VM unavailable, too slow) are followed by a reconnect.
        if (action.code === 'not_found') this.finish(ExitCode.notFound, `ffc: ${action.message}`);
        else this.note(`error: ${action.message}`);
        return;
    }
  }

  // ---- input ----

  private readonly onSigint = () => this.interrupt();

  private startInput(): void {
    const { stdin } = this.o.io;
    const terminal = stdin.isTTY === true;
    const rl = createInterface({ input: stdin, output: terminal ? this.o.io.stdout : undefined, terminal });
    this.rl = rl;
    rl.on('line', (line) => this.onLine(line));
    rl.on('close', () => {
      // End of input: interactive use is over once what was typed is answered; a --prompt script waits
      // for its turn instead.
      this.inputEnded = true;
      this.exitIfInputDone();
    });
    // readline takes Ctrl-C from a raw terminal; without a terminal it arrives as a signal.
    rl.on('SIGINT', this.onSigint);
    process.on('SIGINT', this.onSigint);
  }

  private exitIfInputDone(): void {
    if (!this.inputEnded || this.o.exitWhenIdle || this.finished || !this.renderer.attached) return;
    if (this.active) {
      this.finish(
        ExitCode.ok,
        'ffc: input ended with a question unanswered; it stays pending in the session',
      );
      return;
    }
    const busy = this.outbox.length > 0 || this.ownQueued.size > 0 || this.ownDispatched.size > 0;
    if (!busy) this.finish(ExitCode.ok);
  }

  private interrupt(): void {
    const now = Date.now();
    if (now - this.lastInterruptAt < DOUBLE_INTERRUPT_MS) {
      this.finish(ExitCode.interrupted);
      return;
    }
    this.lastInterruptAt = now;
    if (this.working) {
      this.sawInterrupt = true;
      this.send({ type: 'interrupt' });
      this.note('interrupting… (Ctrl-C again to exit)');
    } else {
      this.note('(Ctrl-C again to exit)');
    }
  }

  private onLine(line: string): void {
    if (this.active) {
      this.answer(line.trim());
      return;
    }
    const text = line.trim();
    if (text.length === 0) return;
    const id = `ffc-${randomUUID()}`;
    // The user has just seen it typed; do not echo it back when the session takes it.
    if (this.o.io.stdin.isTTY) this.renderer.markUserMessageShown(id);
    this.ownQueued.add(id);
    this.send({ type: 'queue_message', id, text });
  }

  private dropPrompt(requestId: string): void {
    const index = this.prompts.findIndex((p) => requestIdOf(p) === requestId);
    if (index >= 0) this.prompts.splice(index, 1);
    if (this.active && requestIdOf(this.active.prompt) === requestId) {
      this.active = null;
      this.ui.write('(answered)\n');
      this.askNext();
    }
  }

  private askNext(): void {
    const next = this.prompts.shift();
    if (!next) {
      this.active = null;
      return;
    }
    this.active = { prompt: next, index: 0, answers: {} };
    this.showPrompt();
  }

  private showPrompt(): void {
    const active = this.active;
    if (!active) return;
    const p = active.prompt;
    if (p.kind === 'permission') {
      if (p.prompt.planContent) this.ui.write(`Plan:\n${p.prompt.planContent}\n`);
      const what = p.prompt.planContent ? 'Approve this plan' : `Allow ${p.prompt.summary}`;
      this.ui.write(`? ${what}? [y/n] `);
      return;
    }
    const item = p.question.questions[active.index];
    if (!item) return;
    const lines = [`? ${item.header ? `[${item.header}] ` : ''}${item.question}`];
    item.options.forEach((option, i) => {
      lines.push(`  ${i + 1}) ${option.label}${option.description ? ` — ${option.description}` : ''}`);
    });
    const hint =
      item.options.length === 0
        ? 'answer'
        : item.multiSelect
          ? 'numbers, e.g. 1,3, or text'
          : 'number or text';
    this.ui.write(`${lines.join('\n')}\n(${hint}) `);
  }

  private answer(input: string): void {
    const active = this.active;
    if (!active) return;
    const p = active.prompt;
    if (p.kind === 'permission') {
      const yes = /^(y|yes)$/i.test(input);
      const no = /^(n|no)$/i.test(input);
      if (!yes && !no) {
        this.ui.write('please answer y or n: ');
        return;
      }
      this.send({ type: 'permission_response', requestId: p.prompt.requestId, allow: yes });
      this.askNext();
      return;
    }
    const item = p.question.questions[active.index];
    if (!item) return;
    const chosen = chooseOptions(
      input,
      item.options.map((o) => o.label),
      item.multiSelect === true,
    );
    if (chosen === null) {
      this.ui.write(
        `(${item.options.length > 0 ? `a number from 1 to ${item.options.length}, or text` : 'an answer'}) `,
      );
      return;
    }
    active.answers[item.question] = chosen;
    active.index += 1;
    if (active.index < p.question.questions.length) {
      this.showPrompt();
      return;
    }
    this.send({ type: 'question_response', requestId: p.question.requestId, answers: active.answers });
    this.askNext();
  }
}

function requestIdOf(p: Prompt): string {
  return p.kind === 'question' ? p.question.requestId : p.prompt.requestId;
}

/**
 * What a typed answer means: option numbers ("2", or "1,3" for a multi-select) pick labels; anything else
 * is a free-text answer; empty is no answer yet.
 */
export function chooseOptions(input: string, labels: string[], multi: boolean): string | string[] | null {
  const text = input.trim();
  if (text.length === 0) return null;
  const parts = text.split(/[\s,]+/).filter((s) => s.length > 0);
  const numbers = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : Number.NaN));
  if (labels.length > 0 && numbers.every((n) => Number.isInteger(n))) {
    if (numbers.some((n) => n < 1 || n > labels.length)) return null;
    const picked = numbers.map((n) => labels[n - 1] ?? '');
    if (multi) return [...new Set(picked)];
    return picked.length === 1 ? (picked[0] ?? null) : null;
  }
  return multi ? [text] : text;
}
