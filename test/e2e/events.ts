/**
 * Reading session events the way a client of the relay sees them: tool calls and their results in the
 * CLI's stream-json messages, the assistant's final text, and "every seq exactly once" checks.
 */
import assert from 'node:assert/strict';
import type { SessionEvent, SessionSnapshot } from '@factory-factory/core/protocol';
import { deltaText, isResult } from '../api/session-relay-client.js';

export { deltaText, isResult };

type Obj = Record<string, unknown>;
const isObj = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Content blocks of a CLI message (`assistant` or `user`) carried by an event, if it is one. */
function blocksOf(event: SessionEvent, type: 'assistant' | 'user'): Obj[] {
  const payload = event.payload;
  if (payload.type !== 'claude_message' || payload.data.type !== type) return [];
  const message = payload.data.message;
  if (!isObj(message) || !Array.isArray(message.content)) return [];
  return message.content.filter(isObj);
}

export type ToolUse = { id: string; name: string; input: Obj };
export type ToolResult = { toolUseId: string; isError: boolean; text: string };

export function toolUses(events: SessionEvent[]): ToolUse[] {
  return events.flatMap((e) =>
    blocksOf(e, 'assistant')
      .filter((b) => b.type === 'tool_use')
      .map((b) => ({ id: String(b.id), name: String(b.name), input: isObj(b.input) ? b.input : {} })),
  );
}

function flatten(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content.map((c) => (isObj(c) && typeof c.text === 'string' ? c.text : '')).join('');
  return '';
}

export function toolResults(events: SessionEvent[]): ToolResult[] {
  return events.flatMap((e) =>
    blocksOf(e, 'user')
      .filter((b) => b.type === 'tool_result')
      .map((b) => ({
        toolUseId: String(b.tool_use_id),
        isError: b.is_error === true,
        text: flatten(b.content),
      })),
  );
}

/** The text deltas of `events`, in order. */
export function deltas(events: SessionEvent[]): string[] {
  return events.map(deltaText).filter((t): t is string => t !== null);
}

/** Asserts `events` are exactly the seqs from, from+1, …: no gap and no duplicate. */
export function assertConsecutive(events: SessionEvent[], from: number, what: string): void {
  const seqs = events.map((e) => e.seq);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => from + i),
    `${what}: seqs ${from}, ${from + 1}, … each once (got ${seqs.join(',')})`,
  );
}

/** The text of the last assistant message in a snapshot's transcript (what the agent recorded). */
export function lastAssistantText(snapshot: SessionSnapshot): string {
  const last = [...snapshot.messages]
    .reverse()
    .find(
      (m) => m.message?.type === 'assistant' && blocksOfMessage(m.message).some((b) => b.type === 'text'),
    );
  assert.ok(last?.message, 'the transcript has an assistant message with text');
  return blocksOfMessage(last.message)
    .filter((b) => b.type === 'text')
    .map((b) => String(b.text))
    .join('');
}

function blocksOfMessage(message: Obj): Obj[] {
  const inner = message.message;
  if (!isObj(inner) || !Array.isArray(inner.content)) return [];
  return inner.content.filter(isObj);
}

/** Number of `result` events (turn ends) in `events`. */
export function turnsEnded(events: SessionEvent[]): number {
  return events.filter(isResult).length;
}

type RelayClient = {
  events(): SessionEvent[];
  waitUntil(what: string, condition: () => boolean): Promise<void>;
};

/** The first event matching `match`, waiting for it. */
export async function waitForEvent(
  client: RelayClient,
  what: string,
  match: (event: SessionEvent) => boolean,
): Promise<SessionEvent> {
  let found: SessionEvent | undefined;
  await client.waitUntil(what, () => {
    found = client.events().find(match);
    return found !== undefined;
  });
  assert.ok(found);
  return found;
}

/** The payload of an event, narrowed to `type` (asserts it is one). */
export function payloadOf<T extends SessionEvent['payload']['type']>(
  event: SessionEvent,
  type: T,
): Extract<SessionEvent['payload'], { type: T }> {
  assert.equal(event.payload.type, type);
  return event.payload as Extract<SessionEvent['payload'], { type: T }>;
}
