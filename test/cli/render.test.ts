/** The pure renderer of `ffc attach`: relay frames in, lines and prompts out. */
import assert from 'node:assert/strict';
import type { SessionEventPayload, SessionRuntime } from '@factory-factory/core/protocol';
import { type RelayServerFrame, RelayServerFrameSchema } from '../../api/contract/session-relay.js';
import { chooseOptions } from '../../cli/src/attach.js';
import { type RenderAction, SessionRenderer, toolSummary } from '../../cli/src/render.js';

const at = '2026-01-01T00:00:00.000Z';
const runtime = (activity: 'WORKING' | 'IDLE'): SessionRuntime => ({
  phase: activity === 'WORKING' ? 'running' : 'idle',
  processState: 'alive',
  activity,
  pid: 42,
  lastExit: null,
  updatedAt: at,
});

/** Frames go through the contract's schema first, as attach.ts receives them. */
const frame = (value: unknown): RelayServerFrame => RelayServerFrameSchema.parse(value);
const ev = (seq: number, payload: SessionEventPayload) =>
  frame({ type: 'session_event', event: { seq, at, payload } });
const snapshot = (seq: number, extra: Record<string, unknown> = {}) =>
  frame({
    type: 'session_snapshot',
    seq,
    messages: [],
    queuedMessages: [],
    sessionRuntime: runtime('IDLE'),
    pendingInteractiveRequest: null,
    pendingInteractiveRequests: [],
    claudeSessionId: null,
    lastTurn: null,
    ...extra,
  });

const stream = (event: Record<string, unknown>) => ({
  type: 'stream_event',
  event,
  session_id: 's',
  uuid: 'u',
});
const messageStart = (id: string) =>
  stream({ type: 'message_start', message: { id, role: 'assistant', content: [] } });
const textStart = (index: number) =>
  stream({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
const textDelta = (index: number, text: string) =>
  stream({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
const assistantText = (id: string, text: string) => ({
  type: 'assistant',
  message: { id, role: 'assistant', content: [{ type: 'text', text }] },
});
const assistantTool = (id: string, toolId: string, name: string, input: Record<string, unknown>) => ({
  type: 'assistant',
  message: { id, role: 'assistant', content: [{ type: 'tool_use', id: toolId, name, input }] },
});
const toolResult = (toolId: string, content: string, isError = false) => ({
  type: 'user',
  message: {
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: toolId, content, is_error: isError }],
  },
});
const result = (subtype = 'success') => ({
  type: 'result',
  subtype,
  is_error: subtype !== 'success',
  num_turns: 1,
});
const claude = (data: Record<string, unknown>, order?: number): SessionEventPayload =>
  order === undefined ? { type: 'claude_message', data } : { type: 'claude_message', data, order };

/** What a terminal would show on stdout. */
const stdoutOf = (actions: RenderAction[]) => actions.map((a) => (a.kind === 'out' ? a.text : '')).join('');
const notesOf = (actions: RenderAction[]) => actions.flatMap((a) => (a.kind === 'note' ? [a.text] : []));

/** A whole turn: a user message, streamed text confirmed by its assistant message, a tool call, the result. */
function turnFrames(): RelayServerFrame[] {
  return [
    ev(1, { type: 'message_state_changed', id: 'm1', newState: 'DISPATCHED' }),
    ev(2, {
      type: 'message_state_changed',
      id: 'm1',
      newState: 'COMMITTED',
      userMessage: { text: 'make hello.txt', timestamp: at, order: 0 },
    }),
    ev(3, { type: 'session_runtime_updated', sessionRuntime: runtime('WORKING') }),
    ev(4, claude(messageStart('msg_1'))),
    ev(5, claude(textStart(0))),
    ev(6, claude(textDelta(0, 'I will '))),
    ev(7, claude(textDelta(0, 'create hello.txt.'))),
    ev(8, claude(assistantText('msg_1', 'I will create hello.txt.'), 1)),
    ev(
      9,
      claude(assistantTool('msg_1', 'toolu_1', 'Write', { file_path: '/w/hello.txt', content: 'hi' }), 2),
    ),
    ev(10, claude(toolResult('toolu_1', 'File created successfully at: /w/hello.txt'), 3)),
    ev(11, claude(messageStart('msg_2'))),
    ev(12, claude(textStart(0))),
    ev(13, claude(textDelta(0, 'Done.'))),
    ev(14, claude(assistantText('msg_2', 'Done.'), 4)),
    ev(15, claude(result(), 5)),
    ev(16, { type: 'session_runtime_updated', sessionRuntime: runtime('IDLE') }),
  ];
}

const EXPECTED_TURN =
  '> make hello.txt\nI will create hello.txt.\n⏺ Write(/w/hello.txt)\n  ✓ File created successfully at: /w/hello.txt\nDone.\n';

describe('ffc attach renderer (pure)', () => {
  it('streams assistant text as it arrives and never prints it a second time', () => {
    const r = new SessionRenderer();
    const frames = turnFrames();
    const perFrame = frames.map((f) => r.handle(f));
    // The first delta is shown on its own, before the block is complete.
    assert.equal(stdoutOf(perFrame[5] ?? []), 'I will ');
    assert.equal(stdoutOf(perFrame.flat()), EXPECTED_TURN);
    assert.equal(r.lastSeq, 16);
    const ends = perFrame.flat().filter((a) => a.kind === 'turn_end');
    assert.deepEqual(ends, [{ kind: 'turn_end', isError: false, subtype: 'success' }]);
  });

  it('drops events it has already shown (a replay after reconnecting with after=<seq>)', () => {
    const r = new SessionRenderer();
    const frames = turnFrames();
    const first = frames.slice(0, 7).flatMap((f) => r.handle(f));
    // The socket dropped after seq 7; the relay replays from 5 (overlap) and goes on.
    const replay = [...frames.slice(4)].flatMap((f) => r.handle(f));
    assert.equal(stdoutOf(first) + stdoutOf(replay), EXPECTED_TURN);
  });

  it('prints the rest of a block whose deltas were missed, once', () => {
    const r = new SessionRenderer();
    const frames = turnFrames();
    // Seq 7 (the second delta) never arrives: the assistant message carries the whole text.
    const shown = frames.filter((_, i) => i !== 6).flatMap((f) => r.handle(f));
    assert.equal(stdoutOf(shown), EXPECTED_TURN);
  });

  it('a snapshot shows the conversation so far, and a later snapshot only what is new', () => {
    const r = new SessionRenderer();
    const messages = [
      { id: 'm1', source: 'user', order: 0, timestamp: at, text: 'hello' },
      { id: 'c1', source: 'claude', order: 1, timestamp: at, message: assistantText('msg_1', 'Hi there.') },
    ];
    const first = stdoutOf(r.handle(snapshot(10, { messages })));
    assert.equal(first, '> hello\nHi there.\n');
    assert.equal(r.lastSeq, 10);
    assert.ok(r.attached);
    const more = [
      ...messages,
      { id: 'm2', source: 'user', order: 2, timestamp: at, text: 'again' },
      { id: 'c2', source: 'claude', order: 3, timestamp: at, message: assistantText('msg_2', 'Again.') },
    ];
    assert.equal(stdoutOf(r.handle(snapshot(20, { messages: more }))), '> again\nAgain.\n');
    assert.equal(r.lastSeq, 20);
    // Events the snapshot already covers are not shown.
    assert.deepEqual(r.handle(ev(19, claude(assistantText('msg_x', 'old'), 9))), []);
  });

  it('asks a question and a permission once, even when a snapshot brings them back', () => {
    const r = new SessionRenderer();
    const question = {
      type: 'user_question' as const,
      requestId: 'q1',
      toolUseId: 't1',
      questions: [
        { question: 'Which colour?', options: [{ label: 'red' }, { label: 'blue', description: 'calm' }] },
      ],
    };
    const asked = r.handle(ev(1, question));
    assert.deepEqual(
      asked.filter((a) => a.kind === 'question'),
      [
        {
          kind: 'question',
          question: {
            requestId: 'q1',
            questions: [
              {
                question: 'Which colour?',
                options: [{ label: 'red' }, { label: 'blue', description: 'calm' }],
              },
            ],
          },
        },
      ],
    );
    const permission = r.handle(
      ev(2, {
        type: 'permission_request',
        requestId: 'p1',
        toolName: 'Bash',
        toolUseId: 't2',
        toolInput: { command: 'rm -rf build', description: 'clean' },
        description: null,
        planContent: null,
      }),
    );
    assert.deepEqual(
      permission.filter((a) => a.kind === 'permission'),
      [
        {
          kind: 'permission',
          prompt: { requestId: 'p1', toolName: 'Bash', summary: 'Bash(rm -rf build)', planContent: null },
        },
      ],
    );
    // p1 is answered (elsewhere or here); then a snapshot still lists q1 and an old copy of p1.
    const resolved = r.handle(
      ev(3, { type: 'interactive_request_resolved', requestId: 'p1', outcome: 'allowed' }),
    );
    assert.deepEqual(resolved, [{ kind: 'resolved', requestId: 'p1' }]);
    const pending = [
      { kind: 'question', requestId: 'q1', toolUseId: 't1', questions: question.questions, createdAt: at },
      {
        kind: 'permission',
        requestId: 'p1',
        toolName: 'Bash',
        toolUseId: 't2',
        toolInput: {},
        description: null,
        createdAt: at,
      },
      {
        kind: 'permission',
        requestId: 'p2',
        toolName: 'Write',
        toolUseId: 't3',
        toolInput: { file_path: 'a.txt' },
        description: null,
        createdAt: at,
      },
    ];
    const again = r.handle(
      snapshot(30, { pendingInteractiveRequests: pending, pendingInteractiveRequest: pending[0] }),
    );
    const prompts = again.filter((a) => a.kind === 'question' || a.kind === 'permission');
    assert.deepEqual(prompts, [
      {
        kind: 'permission',
        prompt: { requestId: 'p2', toolName: 'Write', summary: 'Write(a.txt)', planContent: null },
      },
    ]);
  });

  it('shows a failed tool and an interrupted turn, and ends a half-printed line before a note', () => {
    const r = new SessionRenderer();
    const actions = [
      ev(1, claude(messageStart('msg_1'))),
      ev(2, claude(textStart(0))),
      ev(3, claude(textDelta(0, 'Working on'))),
      ev(4, claude(toolResult('toolu_9', 'Exit code 1\ncommand not found', true), 1)),
      ev(5, claude(result('error_during_execution'), 2)),
    ].flatMap((f) => r.handle(f));
    assert.equal(stdoutOf(actions), 'Working on\n  ✗ Exit code 1 command not found\n');
    assert.deepEqual(notesOf(actions), ['(turn ended: interrupted)']);
    assert.ok(
      actions.some((a) => a.kind === 'turn_end' && a.isError && a.subtype === 'error_during_execution'),
    );
  });

  it('passes relay errors on, turns session errors into notes; does not echo messages the user typed', () => {
    const r = new SessionRenderer();
    const error = r.handle(frame({ type: 'error', code: 'not_found', message: 'no such session' }));
    assert.deepEqual(error, [{ kind: 'error', code: 'not_found', message: 'no such session' }]);
    assert.deepEqual(
      notesOf(
        r.handle(ev(1, { type: 'session_error', code: 'process_exited', message: 'claude exited (code 1)' })),
      ),
      ['session error: claude exited (code 1)'],
    );
    r.markUserMessageShown('typed');
    const typed = r.handle(
      ev(2, {
        type: 'message_state_changed',
        id: 'typed',
        newState: 'COMMITTED',
        userMessage: { text: 'hi', timestamp: at, order: 0 },
      }),
    );
    assert.equal(stdoutOf(typed), '');
  });

  it('summarizes tool calls by their main argument', () => {
    assert.equal(toolSummary('Bash', { command: 'ls -la', description: 'list' }), 'Bash(ls -la)');
    assert.equal(toolSummary('Read', { file_path: '/a/b.ts' }), 'Read(/a/b.ts)');
    assert.equal(toolSummary('TodoWrite', { todos: [] }), 'TodoWrite');
    assert.ok(toolSummary('Bash', { command: 'x'.repeat(500) }).length <= 100);
  });

  it('reads typed answers: option numbers, several for a multi-select, or free text', () => {
    const labels = ['red', 'green', 'blue'];
    assert.equal(chooseOptions('2', labels, false), 'green');
    assert.deepEqual(chooseOptions('1, 3', labels, true), ['red', 'blue']);
    assert.equal(chooseOptions('4', labels, false), null);
    assert.equal(chooseOptions('1 2', labels, false), null);
    assert.equal(chooseOptions('purple please', labels, false), 'purple please');
    assert.equal(chooseOptions('  ', labels, false), null);
  });
});
