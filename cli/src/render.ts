/**
 * The pure half of `ffc attach`: relay frames in, what to show and ask out. No I/O, no clock: attach.ts
 * writes the lines and asks the questions; test/cli/render.test.ts feeds it frames.
 *
 * - Every event is shown at most once: events at or below the last seq seen are dropped, and a snapshot
 *   (after a reconnect whose `after` was too old) shows only conversation entries newer than the newest
 *   order already shown.
 * - Assistant text streams from `stream_event` text deltas; the whole `assistant` message that the CLI prints
 *   when the block ends then adds only what the deltas did not carry (none, unless deltas were missed
 *   during a reconnect), so text is never printed twice.
 */
import type {
  AskUserQuestionItem,
  ChatMessage,
  InteractiveRequest,
  SessionEvent,
  SessionRuntime,
} from '@factory-factory/core/protocol';
import type { RelayServerFrame } from '../../api/contract/session-relay.js';

export type Question = { requestId: string; questions: AskUserQuestionItem[] };
export type PermissionPrompt = {
  requestId: string;
  toolName: string;
  /** One line: the tool and its main argument. */
  summary: string;
  planContent: string | null;
};

/** What to do, in order. `out` goes to stdout (the conversation), `note` to stderr (status). */
export type RenderAction =
  | { kind: 'out'; text: string }
  | { kind: 'note'; text: string }
  | { kind: 'question'; question: Question }
  | { kind: 'permission'; prompt: PermissionPrompt }
  | { kind: 'resolved'; requestId: string }
  | { kind: 'message_state'; id: string; state: string; errorMessage: string | null }
  | { kind: 'turn_end'; isError: boolean; subtype: string }
  | { kind: 'runtime'; runtime: SessionRuntime }
  | { kind: 'caught_up'; seq: number }
  | { kind: 'error'; code: string; message: string };

type Obj = Record<string, unknown>;
const isObj = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

const MAX_SUMMARY = 100;

function clip(text: string, max = MAX_SUMMARY): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** "Bash(ls -la)", "Write(src/a.ts)": the argument a person recognizes the call by. */
export function toolSummary(name: string, input: Obj): string {
  const preferred = ['command', 'file_path', 'path', 'pattern', 'url', 'query', 'description', 'prompt'];
  let arg: string | null = null;
  for (const key of preferred) {
    const value = str(input[key]);
    if (value) {
      arg = value;
      break;
    }
  }
  if (arg === null) {
    for (const value of Object.values(input)) {
      const text = str(value);
      if (text) {
        arg = text;
        break;
      }
    }
  }
  return arg === null ? name : `${name}(${clip(arg, MAX_SUMMARY - name.length - 2)})`;
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (isObj(part) && typeof part.text === 'string' ? part.text : ''))
      .filter((t) => t.length > 0)
      .join(' ');
  }
  return '';
}

export class SessionRenderer {
  /** The newest event seq shown; reconnect with `after=` this. */
  lastSeq = 0;
  private lastOrder = -1;
  private atLineStart = true;
  private currentMessageId: string | null = null;
  /** Per assistant message id: the text of each streamed text block, oldest first, not yet confirmed. */
  private readonly streamed = new Map<string, string[]>();
  private readonly askedRequests = new Set<string>();
  private readonly resolvedRequests = new Set<string>();
  private readonly shownUserMessages = new Set<string>();
  private readonly toolNames = new Map<string, string>();

  /** True once a snapshot or an event has been seen: the socket is attached to the session. */
  get attached(): boolean {
    return this.sawSnapshot || this.lastSeq > 0;
  }
  private sawSnapshot = false;

  /** A message this client sent and the user already sees (typed at the terminal): not echoed back. */
  markUserMessageShown(id: string): void {
    this.shownUserMessages.add(id);
  }

  handle(frame: RelayServerFrame): RenderAction[] {
    const out: RenderAction[] = [];
    switch (frame.type) {
      case 'session_snapshot':
        this.snapshot(frame, out);
        break;
      case 'session_event':
        this.event(frame.event, out);
        break;
      case 'caught_up':
        out.push({ kind: 'caught_up', seq: frame.seq });
        break;
      case 'command_result':
        break;
      case 'error':
        // attach.ts decides: a note for a refused command, or the reason it exits.
        this.endLine(out);
        out.push({ kind: 'error', code: frame.code, message: frame.message });
        break;
    }
    return out;
  }

  // ---- output helpers ----

  /** Writes text to stdout, keeping track of whether the cursor is at a line start. */
  private write(out: RenderAction[], text: string): void {
    if (text.length === 0) return;
    out.push({ kind: 'out', text });
    this.atLineStart = text.endsWith('\n');
  }

  private endLine(out: RenderAction[]): void {
    if (!this.atLineStart) this.write(out, '\n');
  }

  /** A whole line, on a line of its own. */
  private line(out: RenderAction[], kind: 'out' | 'note', text: string): void {
    this.endLine(out);
    if (kind === 'out') this.write(out, `${text}\n`);
    else out.push({ kind: 'note', text });
  }

  // ---- snapshot ----

  private snapshot(
    frame: Extract<RelayServerFrame, { type: 'session_snapshot' }>,
    out: RenderAction[],
  ): void {
    this.sawSnapshot = true;
    for (const message of [...frame.messages].sort((a, b) => a.order - b.order)) {
      if (message.order <= this.lastOrder) continue;
      this.chatMessage(message, out);
    }
    // Deltas of a message that was in flight are gone; what the snapshot holds is whole.
    this.streamed.clear();
    this.currentMessageId = null;
    this.lastSeq = Math.max(this.lastSeq, frame.seq);
    for (const request of frame.pendingInteractiveRequests) this.interactive(request, out);
  }

  private chatMessage(message: ChatMessage, out: RenderAction[]): void {
    this.lastOrder = Math.max(this.lastOrder, message.order);
    if (message.source === 'user') {
      this.userMessage(message.id, message.text ?? '', out);
      return;
    }
    if (message.message) this.claudeData(message.message, out);
  }

  private userMessage(id: string, text: string, out: RenderAction[]): void {
    if (this.shownUserMessages.has(id)) return;
    this.shownUserMessages.add(id);
    const lines = text.split('\n');
    this.line(out, 'out', `> ${lines.join('\n  ')}`);
  }

  private interactive(request: InteractiveRequest, out: RenderAction[]): void {
    if (request.kind === 'question') {
      this.ask(out, {
        kind: 'question',
        question: { requestId: request.requestId, questions: request.questions },
      });
      return;
    }
    this.ask(out, {
      kind: 'permission',
      prompt: {
        requestId: request.requestId,
        toolName: request.toolName,
        summary: toolSummary(request.toolName, request.toolInput),
        planContent: request.kind === 'plan_approval' ? request.planContent : null,
      },
    });
  }

  /** An interactive request is asked once, and never after it was resolved (it may come back in a snapshot). */
  private ask(out: RenderAction[], action: Extract<RenderAction, { kind: 'question' | 'permission' }>): void {
    const id = action.kind === 'question' ? action.question.requestId : action.prompt.requestId;
    if (this.askedRequests.has(id) || this.resolvedRequests.has(id)) return;
    this.askedRequests.add(id);
    this.endLine(out);
    out.push(action);
  }

  // ---- events ----

  private event(event: SessionEvent, out: RenderAction[]): void {
    if (event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    const p = event.payload;
    switch (p.type) {
      case 'claude_message':
        if (p.order !== undefined) {
          if (p.order <= this.lastOrder) return;
          this.lastOrder = p.order;
        }
        this.claudeData(p.data, out);
        return;
      case 'message_state_changed':
        if (p.newState === 'COMMITTED' && p.userMessage) {
          const order = p.userMessage.order;
          if (order === undefined || order > this.lastOrder) {
            if (order !== undefined) this.lastOrder = order;
            this.userMessage(p.id, p.userMessage.text, out);
          }
        } else if (p.newState === 'QUEUED' && p.queuePosition !== undefined && p.queuePosition > 0) {
          this.line(out, 'note', `(queued, position ${p.queuePosition})`);
        } else if (p.newState === 'REJECTED' || p.newState === 'FAILED') {
          this.line(
            out,
            'note',
            `message ${p.newState.toLowerCase()}: ${p.errorMessage ?? 'no reason given'}`,
          );
        }
        out.push({
          kind: 'message_state',
          id: p.id,
          state: p.newState,
          errorMessage: p.errorMessage ?? null,
        });
        return;
      case 'session_runtime_updated':
        out.push({ kind: 'runtime', runtime: p.sessionRuntime });
        return;
      case 'permission_request':
        this.ask(out, {
          kind: 'permission',
          prompt: {
            requestId: p.requestId,
            toolName: p.toolName,
            summary: toolSummary(p.toolName, p.toolInput),
            planContent: p.planContent,
          },
        });
        return;
      case 'user_question':
        this.ask(out, { kind: 'question', question: { requestId: p.requestId, questions: p.questions } });
        return;
      case 'interactive_request_resolved':
        this.resolvedRequests.add(p.requestId);
        if (this.askedRequests.has(p.requestId)) out.push({ kind: 'resolved', requestId: p.requestId });
        if (p.outcome === 'timed_out' || p.outcome === 'cancelled') {
          this.line(out, 'note', `(request ${p.outcome === 'timed_out' ? 'timed out' : 'cancelled'})`);
        }
        return;
      case 'claude_session_id':
        return;
      case 'session_error':
        this.line(out, 'note', `session error: ${p.message}`);
        return;
    }
  }

  // ---- Claude's stream-json messages ----

  private claudeData(data: Obj, out: RenderAction[]): void {
    switch (str(data.type)) {
      case 'stream_event':
        if (isObj(data.event)) this.streamEvent(data.event, out);
        return;
      case 'assistant':
        if (isObj(data.message)) this.assistant(data.message, out);
        return;
      case 'user':
        if (isObj(data.message)) this.toolResults(data.message, out);
        return;
      case 'result':
        this.result(data, out);
        return;
      default:
        return;
    }
  }

  private streamEvent(event: Obj, out: RenderAction[]): void {
    switch (str(event.type)) {
      case 'message_start': {
        const message = isObj(event.message) ? event.message : {};
        this.currentMessageId = str(message.id);
        return;
      }
      case 'content_block_start': {
        const block = isObj(event.content_block) ? event.content_block : {};
        if (block.type === 'text' && this.currentMessageId) {
          const blocks = this.streamed.get(this.currentMessageId) ?? [];
          blocks.push('');
          this.streamed.set(this.currentMessageId, blocks);
        }
        return;
      }
      case 'content_block_delta': {
        const delta = isObj(event.delta) ? event.delta : {};
        const text = str(delta.text);
        if (delta.type !== 'text_delta' || !text || !this.currentMessageId) return;
        const blocks = this.streamed.get(this.currentMessageId);
        const last = blocks ? blocks.length - 1 : -1;
        if (!blocks || last < 0) return; // a delta without its block start (missed): the message brings it
        blocks[last] = `${blocks[last] ?? ''}${text}`;
        this.write(out, text);
        return;
      }
      default:
        return;
    }
  }

  private assistant(message: Obj, out: RenderAction[]): void {
    const id = str(message.id);
    const content = Array.isArray(message.content) ? message.content : [];
    for (const block of content) {
      if (!isObj(block)) continue;
      if (block.type === 'text') {
        const text = str(block.text) ?? '';
        const streamedBlocks = id ? this.streamed.get(id) : undefined;
        const already = streamedBlocks?.shift() ?? '';
        if (already.length > 0 && text.startsWith(already)) {
          this.write(out, text.slice(already.length));
        } else {
          this.endLine(out);
          this.write(out, text);
        }
        this.endLine(out);
      } else if (block.type === 'tool_use') {
        const name = str(block.name) ?? 'tool';
        const toolId = str(block.id);
        if (toolId) this.toolNames.set(toolId, name);
        this.line(out, 'out', `⏺ ${toolSummary(name, isObj(block.input) ? block.input : {})}`);
      }
    }
  }

  private toolResults(message: Obj, out: RenderAction[]): void {
    const content = Array.isArray(message.content) ? message.content : [];
    for (const block of content) {
      if (!isObj(block) || block.type !== 'tool_result') continue;
      const text = clip(toolResultText(block.content) || '(no output)');
      const mark = block.is_error === true ? '✗' : '✓';
      this.line(out, 'out', `  ${mark} ${text}`);
    }
  }

  private result(data: Obj, out: RenderAction[]): void {
    const subtype = str(data.subtype) ?? 'unknown';
    const isError = data.is_error === true || subtype !== 'success';
    this.endLine(out);
    if (isError) {
      const reason = subtype === 'error_during_execution' ? 'interrupted' : subtype.replace(/_/g, ' ');
      out.push({ kind: 'note', text: `(turn ended: ${reason})` });
    }
    out.push({ kind: 'turn_end', isError, subtype });
  }
}
