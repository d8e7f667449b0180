/**
 * The session view's fold (web/src/composables/session-state.ts): a history page then events, as the
 * relay delivers them. Replays that overlap what was applied change nothing, streamed tokens build the
 * assistant text until the complete message replaces it, and prompts leave once resolved.
 */
import assert from 'node:assert/strict';
import { type ChatEntry, entryOf } from '../../../web/src/composables/chat-blocks.js';
import {
  applyEvent,
  applyHistoryPage,
  applySnapshot,
  emptyTranscript,
  isWorking,
  prependHistoryPage,
} from '../../../web/src/composables/session-state.js';
import type { ChatMessage, SessionEvent } from '../../../web/src/lib/types.js';

const at = '2026-01-01T00:00:00.000Z';
const runtime = (activity: 'WORKING' | 'IDLE') => ({
  phase: activity === 'WORKING' ? ('running' as const) : ('idle' as const),
  processState: 'alive',
  activity,
  pid: 1,
  lastExit: null,
  updatedAt: at,
});
const user = (order: number): ChatMessage => ({
  id: `u${order}`,
  source: 'user',
  order,
  timestamp: at,
  text: `m${order}`,
});
const ev = (seq: number, payload: Record<string, unknown> & { type: string }): SessionEvent => ({
  seq,
  at,
  payload,
});
const delta = (text: string) => ({
  type: 'claude_message',
  data: { type: 'stream_event', event: { type: 'content_block_delta', delta: { type: 'text_delta', text } } },
});

describe('web session state', () => {
  it('starts from a history page, applies later events once, and ignores a replay of old ones', () => {
    const view = emptyTranscript();
    applyHistoryPage(view, { seq: 10, total: 60, start: 50, messages: [user(51), user(50)] });
    assert.deepEqual(
      view.messages.map((m) => m.order),
      [50, 51],
    );
    assert.equal(view.start, 50);
    const queued = ev(11, {
      type: 'message_state_changed',
      id: 'q1',
      newState: 'QUEUED',
      userMessage: { text: 'hello', timestamp: at },
    });
    applyEvent(view, queued);
    applyEvent(view, queued);
    assert.deepEqual(
      view.queued.map((q) => q.text),
      ['hello'],
    );
    applyEvent(view, ev(9, { type: 'session_error', code: 'process_exited', message: 'old' }));
    assert.deepEqual(view.notices, []);
    applyEvent(
      view,
      ev(12, {
        type: 'message_state_changed',
        id: 'q1',
        newState: 'COMMITTED',
        userMessage: { text: 'hello', timestamp: at, order: 60 },
      }),
    );
    assert.deepEqual(view.queued, []);
    assert.deepEqual(
      view.messages.map((m) => m.order),
      [50, 51, 60],
    );
    assert.equal(view.seq, 12);
  });

  it('streams token deltas into the assistant text until the complete message arrives', () => {
    const view = emptyTranscript();
    applyEvent(view, ev(1, { type: 'session_runtime_updated', sessionRuntime: runtime('WORKING') }));
    assert.equal(isWorking(view), true);
    applyEvent(view, ev(2, delta('Hel')));
    applyEvent(view, ev(3, delta('lo')));
    assert.equal(view.streaming, 'Hello');
    assert.equal(view.messages.length, 0);
    const assistant = {
      type: 'assistant',
      uuid: 'a1',
      message: {
        content: [
          { type: 'text', text: 'Hello' },
          { type: 'tool_use', name: 'Bash', input: { command: 'ls -la' } },
        ],
      },
    };
    applyEvent(view, ev(4, { type: 'claude_message', data: assistant, order: 0 }));
    assert.equal(view.streaming, '');
    const [message] = view.messages;
    assert.ok(message);
    const entry = entryOf(message) as ChatEntry;
    assert.equal(entry.role, 'assistant');
    assert.deepEqual(
      entry.blocks.map((b) => b.kind),
      ['text', 'tool_use'],
    );
    assert.equal(entry.blocks[1]?.kind === 'tool_use' && entry.blocks[1].summary, 'ls -la');
    applyEvent(view, ev(5, { type: 'session_runtime_updated', sessionRuntime: runtime('IDLE') }));
    assert.equal(isWorking(view), false);
  });

  it('holds permission prompts and questions until resolved, and removed or failed messages leave the queue', () => {
    const view = emptyTranscript();
    applyEvent(
      view,
      ev(1, {
        type: 'permission_request',
        requestId: 'p1',
        toolName: 'Bash',
        toolUseId: null,
        toolInput: { command: 'rm -rf build' },
        description: null,
        planContent: null,
      }),
    );
    applyEvent(
      view,
      ev(2, {
        type: 'user_question',
        requestId: 'q1',
        toolUseId: null,
        questions: [{ question: 'Which?', options: [{ label: 'A' }, { label: 'B' }] }],
      }),
    );
    assert.deepEqual(
      view.pending.map((p) => `${p.kind}:${p.requestId}`),
      ['permission:p1', 'question:q1'],
    );
    applyEvent(view, ev(3, { type: 'interactive_request_resolved', requestId: 'p1', outcome: 'denied' }));
    assert.deepEqual(
      view.pending.map((p) => p.requestId),
      ['q1'],
    );
    applyEvent(
      view,
      ev(4, {
        type: 'message_state_changed',
        id: 'x',
        newState: 'QUEUED',
        userMessage: { text: 't', timestamp: at },
      }),
    );
    applyEvent(
      view,
      ev(5, { type: 'message_state_changed', id: 'x', newState: 'CANCELLED', errorMessage: 'removed' }),
    );
    applyEvent(
      view,
      ev(6, {
        type: 'message_state_changed',
        id: 'y',
        newState: 'REJECTED',
        errorMessage: 'The queue is full',
      }),
    );
    assert.deepEqual(view.queued, []);
    assert.deepEqual(view.notices, ['The queue is full']);
  });

  it('prepends an earlier page without duplicates, and a snapshot replaces everything', () => {
    const view = emptyTranscript();
    applyHistoryPage(view, { seq: 5, total: 4, start: 2, messages: [user(2), user(3)] });
    prependHistoryPage(view, { seq: 5, total: 4, start: 0, messages: [user(0), user(1), user(2)] });
    assert.deepEqual(
      view.messages.map((m) => m.order),
      [0, 1, 2, 3],
    );
    assert.equal(view.start, 0);
    applySnapshot(view, {
      type: 'session_snapshot',
      seq: 9,
      messages: [user(0)],
      queuedMessages: [{ id: 'q', text: 'later', timestamp: at }],
      sessionRuntime: runtime('IDLE'),
      pendingInteractiveRequests: [
        { kind: 'question', requestId: 'r', toolUseId: null, questions: [], createdAt: at },
      ],
    });
    assert.equal(view.seq, 9);
    assert.equal(view.messages.length, 1);
    assert.deepEqual(
      view.pending.map((p) => p.requestId),
      ['r'],
    );
    assert.equal(view.queued[0]?.text, 'later');
  });
});
