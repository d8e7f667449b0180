/**
 * What a conversation entry shows: the CLI's stream-json messages reduced to text (rendered as markdown),
 * compact tool calls and results (expandable), and a one-line turn summary. Unknown shapes show nothing
 * rather than raw JSON.
 */
import { isNumber, isRecord, isString } from '../lib/guards.js';
import type { ChatMessage } from '../lib/types.js';

export type ChatBlock =
  | { kind: 'text'; text: string }
  | { kind: 'thinking'; text: string }
  | { kind: 'tool_use'; name: string; summary: string; detail: string }
  | { kind: 'tool_result'; text: string; isError: boolean }
  | { kind: 'result'; text: string; isError: boolean };

export type ChatEntry = { id: string; role: 'user' | 'assistant' | 'tool' | 'meta'; blocks: ChatBlock[] };

const MAX_SUMMARY = 80;

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_SUMMARY ? `${line.slice(0, MAX_SUMMARY - 1)}…` : line;
}

/** The most telling argument of a tool call: the command, the path, the pattern. */
function toolSummary(input: Record<string, unknown>): string {
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'description', 'prompt']) {
    const value = input[key];
    if (isString(value)) return oneLine(value);
  }
  return '';
}

function resultText(content: unknown): string {
  if (isString(content)) return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (isRecord(part) && isString(part.text) ? part.text : ''))
      .filter(Boolean)
      .join('\n');
  }
  return '';
}

function blocksOfContent(content: unknown): ChatBlock[] {
  if (isString(content)) return [{ kind: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  const blocks: ChatBlock[] = [];
  for (const part of content) {
    if (!isRecord(part)) continue;
    if (part.type === 'text' && isString(part.text) && part.text.trim())
      blocks.push({ kind: 'text', text: part.text });
    else if (part.type === 'thinking' && isString(part.thinking))
      blocks.push({ kind: 'thinking', text: part.thinking });
    else if (part.type === 'tool_use' && isString(part.name)) {
      const input = isRecord(part.input) ? part.input : {};
      blocks.push({
        kind: 'tool_use',
        name: part.name,
        summary: toolSummary(input),
        detail: JSON.stringify(input, null, 2),
      });
    } else if (part.type === 'tool_result') {
      blocks.push({ kind: 'tool_result', text: resultText(part.content), isError: part.is_error === true });
    }
  }
  return blocks;
}

function turnSummary(data: Record<string, unknown>): ChatBlock {
  const isError = data.is_error === true || (isString(data.subtype) && data.subtype !== 'success');
  const parts: string[] = [isError ? 'Turn ended with an error' : 'Turn finished'];
  if (isNumber(data.duration_ms)) parts.push(`${(data.duration_ms / 1000).toFixed(1)} s`);
  if (isNumber(data.total_cost_usd)) parts.push(`$${data.total_cost_usd.toFixed(4)}`);
  return { kind: 'result', text: parts.join(' · '), isError };
}

export function entryOf(message: ChatMessage): ChatEntry | null {
  if (message.source === 'user') {
    return { id: message.id, role: 'user', blocks: [{ kind: 'text', text: message.text ?? '' }] };
  }
  const data = message.message;
  if (!data)
    return message.text
      ? { id: message.id, role: 'assistant', blocks: [{ kind: 'text', text: message.text }] }
      : null;
  const inner = isRecord(data.message) ? data.message : {};
  switch (data.type) {
    case 'assistant': {
      const blocks = blocksOfContent(inner.content);
      return blocks.length > 0 ? { id: message.id, role: 'assistant', blocks } : null;
    }
    case 'user': {
      // The CLI's "user" lines are tool results going back to the model.
      const blocks = blocksOfContent(inner.content).filter((b) => b.kind === 'tool_result');
      return blocks.length > 0 ? { id: message.id, role: 'tool', blocks } : null;
    }
    case 'result':
      return { id: message.id, role: 'meta', blocks: [turnSummary(data)] };
    default:
      return null;
  }
}
