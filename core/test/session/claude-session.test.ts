import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClaudeSession, type ClaudeSessionOptions, DEFAULT_SESSION_LIMITS } from '../../src/session/index.js';
import { claudeBinPath, claudeTestEnv, TempDirs } from '../support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../support/fake-anthropic.js';
import { EventRecorder } from '../support/session-events.js';

/** The real Claude Code CLI, driven through ClaudeSession, against the fake Anthropic API. */
describe('ClaudeSession with the real Claude CLI', () => {
  let fake: FakeAnthropic;
  const dirs = new TempDirs();
  const sessions: ClaudeSession[] = [];

  before(async () => {
    fake = await startFakeAnthropic();
  });

  after(async () => {
    await fake.close();
  });

  beforeEach(() => fake.reset());

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    dirs.cleanup();
  });

  function open(overrides: Partial<ClaudeSessionOptions> = {}) {
    const cwd = dirs.make('work');
    const home = dirs.make('home');
    const session = new ClaudeSession({
      id: `test-${sessions.length}`,
      cwd,
      claudeBin: claudeBinPath(),
      env: claudeTestEnv({ fakeUrl: fake.url, home }),
      permissionMode: 'default',
      ...overrides,
    });
    sessions.push(session);
    const events = new EventRecorder();
    session.subscribe(events.listener);
    return { session, events, cwd, home };
  }

  it('runs a plain text turn and reports cost and usage', async () => {
    const { session, events } = open();
    fake.script(turns.text('Hello from the fake model'));
    const sent = session.send({ text: 'say hello' });
    assert.equal(sent.state, 'QUEUED');

    const result = await events.nextResult();
    assert.equal(result.subtype, 'success');
    assert.equal(result.is_error, false);
    assert.equal(result.result, 'Hello from the fake model');
    assert.equal(typeof result.total_cost_usd, 'number');
    assert.ok(result.usage && typeof result.usage === 'object');

    const states = events.ofType('message_state_changed').filter((p) => p.id === sent.messageId);
    assert.deepEqual(
      states.map((p) => p.newState),
      ['QUEUED', 'DISPATCHED', 'COMMITTED'],
    );
    const snapshot = session.snapshot();
    assert.equal(snapshot.sessionRuntime.activity, 'IDLE');
    assert.equal(snapshot.sessionRuntime.processState, 'alive');
    assert.equal(snapshot.lastTurn?.subtype, 'success');
    assert.ok(snapshot.claudeSessionId);
    assert.equal(snapshot.messages[0]?.source, 'user');
    assert.equal(snapshot.messages[0]?.text, 'say hello');
    const assistantTexts = snapshot.messages
      .filter((m) => m.message?.type === 'assistant')
      .map((m) => JSON.stringify(m.message));
    assert.ok(assistantTexts.some((t) => t.includes('Hello from the fake model')));
    assert.equal(fake.requests[0]?.lastUserText, 'say hello');
  });

  it('follows turns scripted over HTTP (how a fake in another process is driven)', async () => {
    const { session, events } = open();
    const response = await fetch(`${fake.url}/__script`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ turns: [{ kind: 'text', text: 'scripted over HTTP' }] }),
    });
    assert.equal(response.status, 200);
    session.send({ text: 'hi' });
    assert.equal((await events.nextResult()).result, 'scripted over HTTP');
    const log = (await (await fetch(`${fake.url}/__requests`)).json()) as Array<{ lastUserText: string }>;
    assert.equal(log[0]?.lastUserText, 'hi');
  });

  it('streams text deltas in order when partial messages are on', async () => {
    const { session, events } = open({ includePartialMessages: true });
    fake.script(turns.deltas(['Stre', 'amed ', 'text ', 'arrives ', 'in order']));
    session.send({ text: 'stream please' });
    await events.nextResult();
    const deltas = events
      .ofType('claude_message')
      .filter((p) => p.data.type === 'stream_event')
      .map((p) => p.data.event as { type: string; delta?: { type: string; text?: string } })
      .filter((e) => e.type === 'content_block_delta' && e.delta?.type === 'text_delta')
      .map((e) => e.delta?.text ?? '');
    assert.deepEqual(deltas, ['Stre', 'amed ', 'text ', 'arrives ', 'in order']);
    // Deltas are live only: the snapshot keeps the whole assistant message instead.
    const snapshot = session.snapshot();
    assert.ok(snapshot.messages.every((m) => m.message?.type !== 'stream_event'));
    assert.ok(JSON.stringify(snapshot.messages).includes('Streamed text arrives in order'));
  });

  it('asks permission for Write and writes the file when allowed', async () => {
    const { session, events, cwd } = open();
    fake.script(turns.write('hello.txt', 'hello from Write\n'));
    session.send({ text: 'create hello.txt' });

    const request = await events.next('permission_request');
    assert.equal(request.toolName, 'Write');
    assert.equal(request.planContent, null);
    assert.equal(session.snapshot().pendingInteractiveRequest?.requestId, request.requestId);
    session.answerPermission(request.requestId, { allow: true });

    const resolved = await events.next('interactive_request_resolved');
    assert.equal(resolved.outcome, 'allowed');
    const result = await events.nextResult();
    assert.equal(result.is_error, false);
    assert.equal(readFileSync(join(cwd, 'hello.txt'), 'utf8'), 'hello from Write\n');
    assert.equal(fake.requests[1]?.toolResults[0]?.isError, false);
    assert.equal(session.snapshot().pendingInteractiveRequest, null);
  });

  it('does not run Bash when permission is denied, and tells the model why', async () => {
    const { session, events, cwd } = open();
    fake.script(turns.bash('touch denied.txt && echo created', 'Create denied.txt'));
    session.send({ text: 'run bash' });

    const request = await events.next('permission_request');
    assert.equal(request.toolName, 'Bash');
    session.answerPermission(request.requestId, { allow: false, message: 'not in this repo' });
    assert.equal((await events.next('interactive_request_resolved')).outcome, 'denied');

    const result = await events.nextResult();
    assert.equal(existsSync(join(cwd, 'denied.txt')), false);
    const denials = result.permission_denials as unknown[];
    assert.equal(denials.length, 1);
    const toolResult = fake.requests[1]?.toolResults[0];
    assert.equal(toolResult?.isError, true);
    assert.match(toolResult?.content ?? '', /not in this repo/);
  });

  it('turns AskUserQuestion into a user_question and returns the answers', async () => {
    const { session, events } = open();
    fake.script(turns.ask('Which color do you prefer?', ['Red', 'Blue'], 'Color'));
    session.send({ text: 'ask me' });

    const question = await events.next('user_question');
    assert.equal(question.questions[0]?.question, 'Which color do you prefer?');
    assert.deepEqual(
      question.questions[0]?.options.map((o) => o.label),
      ['Red', 'Blue'],
    );
    assert.throws(() => session.answerPermission(question.requestId, { allow: true }), /question/);
    session.answerQuestion(question.requestId, { 'Which color do you prefer?': 'Blue' });

    await events.nextResult();
    const toolResult = fake.requests[1]?.toolResults[0];
    assert.equal(toolResult?.isError, false);
    assert.match(toolResult?.content ?? '', /Blue/);
  });

  it('asks for plan approval on ExitPlanMode in plan mode', async () => {
    const { session, events } = open({ permissionMode: 'plan' });
    fake.script(turns.exitPlanMode('1. Read the code\n2. Fix the bug'));
    session.send({ text: 'plan the fix' });

    const request = await events.next('permission_request');
    assert.equal(request.toolName, 'ExitPlanMode');
    assert.equal(request.planContent, '1. Read the code\n2. Fix the bug');
    assert.equal(session.snapshot().pendingInteractiveRequest?.kind, 'plan_approval');
    session.answerPermission(request.requestId, { allow: true });
    await events.nextResult();
    assert.equal(fake.requests[1]?.toolResults[0]?.isError, false);
  });

  it('denies a request nobody answers once the timeout passes', async () => {
    const { session, events, cwd } = open({ limits: { interactiveTimeoutMs: 300 } });
    fake.script(turns.write('never.txt', 'never\n'));
    session.send({ text: 'write never.txt' });
    await events.next('permission_request');
    const resolved = await events.next('interactive_request_resolved');
    assert.equal(resolved.outcome, 'timed_out');
    await events.nextResult();
    assert.equal(existsSync(join(cwd, 'never.txt')), false);
    assert.match(fake.requests[1]?.toolResults[0]?.content ?? '', /No answer/);
  });

  it('interrupts a turn mid-stream and takes the next message on the same process', async () => {
    const { session, events } = open({ includePartialMessages: true });
    fake.script(
      turns.deltas(
        Array.from({ length: 200 }, () => 'tick '),
        100,
      ),
    );
    session.send({ text: 'count slowly' });
    await events.next('claude_message', (p) => {
      const event = p.data.event as { type?: string } | undefined;
      return p.data.type === 'stream_event' && event?.type === 'content_block_delta';
    });
    const pid = session.pid;
    await session.interrupt();

    const interrupted = await events.nextResult();
    assert.equal(interrupted.subtype, 'error_during_execution');
    assert.equal(session.snapshot().sessionRuntime.activity, 'IDLE');

    session.send({ text: 'after the interrupt' });
    const next = await events.nextResult();
    assert.match(String(next.result), /after the interrupt/);
    assert.equal(next.is_error, false);
    assert.equal(session.pid, pid);
  });

  it('stops mid-turn: keeps the interrupted result, and says stopping until the process is gone', async () => {
    const { session, events } = open({ includePartialMessages: true });
    fake.script(
      turns.deltas(
        Array.from({ length: 200 }, () => 'tick '),
        100,
      ),
    );
    session.send({ text: 'count slowly' });
    await events.next('claude_message', (p) => p.data.type === 'stream_event');
    const pid = session.pid;
    assert.ok(pid);

    const before = events.events.length;
    await session.stop();
    const during = events.events.slice(before).map((e) => e.payload);
    const result = during.find((p) => p.type === 'claude_message' && p.data.type === 'result');
    assert.ok(result?.type === 'claude_message', 'the CLI answered the interrupt with its result');
    assert.equal(result.data.subtype, 'error_during_execution');
    assert.notEqual(result.order, undefined, 'the result is kept in the conversation');
    const phases = during.flatMap((p) =>
      p.type === 'session_runtime_updated' ? [p.sessionRuntime.phase] : [],
    );
    assert.equal(phases.at(-1), 'idle');
    assert.ok(
      phases.slice(0, -1).every((phase) => phase === 'stopping'),
      `no other phase while stopping: ${phases.join(', ')}`,
    );
    const runtime = session.snapshot().sessionRuntime;
    assert.equal(runtime.processState, 'stopped');
    assert.equal(runtime.lastExit?.unexpected, false);
    assert.equal(session.snapshot().lastTurn?.subtype, 'error_during_execution');
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the CLI is gone');
  });

  it('cancels a pending permission request when the turn is interrupted', async () => {
    const { session, events } = open();
    fake.script(turns.write('cancelled.txt', 'x\n'));
    session.send({ text: 'write then get interrupted' });
    const request = await events.next('permission_request');
    await session.interrupt();
    const resolved = await events.next('interactive_request_resolved');
    assert.equal(resolved.requestId, request.requestId);
    assert.equal(resolved.outcome, 'cancelled');
    const result = await events.nextResult();
    assert.equal(result.subtype, 'error_during_execution');
    assert.equal(session.snapshot().pendingInteractiveRequest, null);
  });

  it('runs a second turn on the same process with the first in its history', async () => {
    const { session, events } = open();
    session.send({ text: 'first message' });
    await events.nextResult();
    const pid = session.pid;
    session.send({ text: 'second message' });
    const second = await events.nextResult();
    assert.equal(second.result, 'echo: second message');
    assert.equal(session.pid, pid);
    const history = fake.requests[1]?.messages.map((m) => m.text).join('\n') ?? '';
    assert.match(history, /first message/);
    assert.match(history, /echo: first message/);
  });

  it('runs queued messages one turn at a time, in order', async () => {
    const { session, events } = open();
    const ids = ['one', 'two', 'three'].map((text) => session.send({ text }).messageId);
    for (const text of ['one', 'two', 'three']) {
      assert.equal((await events.nextResult()).result, `echo: ${text}`);
    }
    const committed = events
      .ofType('message_state_changed')
      .filter((p) => p.newState === 'COMMITTED')
      .map((p) => p.id);
    assert.deepEqual(committed, ids);
    assert.deepEqual(
      session
        .snapshot()
        .messages.filter((m) => m.source === 'user')
        .map((m) => m.text),
      ['one', 'two', 'three'],
    );
  });

  it('resumes the conversation with --resume after stop', async () => {
    const { session, events } = open();
    session.send({ text: 'remember the word apple' });
    await events.nextResult();
    const firstPid = session.pid;
    const claudeSessionId = session.claudeSessionId;

    await session.stop();
    const stopped = session.snapshot().sessionRuntime;
    assert.equal(stopped.processState, 'stopped');
    assert.equal(stopped.phase, 'idle');
    assert.equal(stopped.lastExit?.unexpected, false);
    assert.equal(session.isAlive, false);

    session.send({ text: 'what was the word?' });
    const result = await events.nextResult();
    assert.equal(result.result, 'echo: what was the word?');
    assert.notEqual(session.pid, firstPid);
    const history =
      fake.requests
        .at(-1)
        ?.messages.map((m) => m.text)
        .join('\n') ?? '';
    assert.match(history, /remember the word apple/);
    assert.ok(claudeSessionId);
    // The resumed process does not replay old messages into our transcript: one copy of each turn.
    const kinds = session
      .snapshot()
      .messages.map((m) => (m.source === 'user' ? 'user' : String(m.message?.type)));
    assert.deepEqual(kinds, ['user', 'assistant', 'result', 'user', 'assistant', 'result']);
  });

  it('surfaces a CLI killed with -9 and resumes on the next message', async () => {
    const { session, events, home } = open();
    session.send({ text: 'before the crash' });
    await events.nextResult();
    const pid = session.pid;
    assert.ok(pid);
    // The CLI saves the conversation just after the result; a crash before that is the next test.
    await waitForSavedConversation(home, session.claudeSessionId, 'echo: before the crash');
    process.kill(pid, 'SIGKILL');

    const error = await events.next('session_error');
    assert.equal(error.code, 'process_exited');
    assert.match(error.message, /SIGKILL/);
    const runtime = session.snapshot().sessionRuntime;
    assert.equal(runtime.phase, 'error');
    assert.equal(runtime.lastExit?.unexpected, true);
    assert.equal(runtime.lastExit?.signal, 'SIGKILL');

    session.send({ text: 'after the crash' });
    const result = await events.nextResult();
    assert.equal(result.result, 'echo: after the crash');
    const history =
      fake.requests
        .at(-1)
        ?.messages.map((m) => m.text)
        .join('\n') ?? '';
    assert.match(history, /before the crash/);
  });

  it('starts a new conversation when the one to resume was never saved', async () => {
    const { session, events } = open({
      history: [
        {
          seq: 1,
          at: new Date().toISOString(),
          payload: { type: 'claude_session_id', claudeSessionId: '0b7c9a3e-5f1d-4c2a-9e8b-123456789abc' },
        },
      ],
    });
    session.send({ text: 'hello again' });
    const error = await events.next('session_error');
    assert.equal(error.code, 'resume_failed');
    const result = await events.nextResult();
    assert.equal(result.result, 'echo: hello again');
    assert.notEqual(session.claudeSessionId, '0b7c9a3e-5f1d-4c2a-9e8b-123456789abc');

    // The new conversation is the one resumed from now on.
    await session.stop();
    session.send({ text: 'and after a stop' });
    assert.equal((await events.nextResult()).result, 'echo: and after a stop');
    const history =
      fake.requests
        .at(-1)
        ?.messages.map((m) => m.text)
        .join('\n') ?? '';
    assert.match(history, /hello again/);
  });

  it('keeps a question waiting for the human: no timeout by default, and the hung watchdog waits too', async () => {
    assert.equal(DEFAULT_SESSION_LIMITS.interactiveTimeoutMs, 0, 'no deadline on a human by default');
    // A turn silent for 1 s counts as hung; waiting for an answer is not silence.
    const hungTimeoutMs = 1000;
    const { session, events } = open({ limits: { hungTimeoutMs } });
    fake.script(turns.ask('Deploy on Friday?', ['Yes', 'No'], 'Deploy'));
    session.send({ text: 'ask before deploying' });
    const question = await events.next('user_question');
    const pid = session.pid;
    const requestsBefore = fake.requests.length;

    // Several hung timeouts (and watchdog rounds) pass with the question open.
    await new Promise((resolve) => setTimeout(resolve, hungTimeoutMs * 4));
    assert.equal(session.snapshot().pendingInteractiveRequest?.requestId, question.requestId);
    assert.deepEqual(events.ofType('interactive_request_resolved'), [], 'nobody answered for the human');
    assert.deepEqual(events.ofType('session_error'), [], 'no hung kill');
    assert.equal(session.isAlive, true);
    assert.equal(session.pid, pid);
    assert.equal(session.snapshot().sessionRuntime.activity, 'WORKING');
    // The CLI got nothing: an answer would have sent the tool result to the API.
    assert.equal(fake.requests.length, requestsBefore);

    session.answerQuestion(question.requestId, { 'Deploy on Friday?': 'No' });
    assert.equal((await events.next('interactive_request_resolved')).outcome, 'answered');
    const result = await events.nextResult();
    assert.equal(result.is_error, false);
    assert.match(fake.requests.at(-1)?.toolResults[0]?.content ?? '', /No/);
  });

  it('starts the CLI ahead of the first message and uses that process for it', async () => {
    const { session, events } = open();
    await session.start();
    const runtime = session.snapshot().sessionRuntime;
    assert.equal(runtime.processState, 'alive');
    assert.equal(runtime.activity, 'IDLE');
    const pid = session.pid;
    assert.ok(pid);
    assert.equal(fake.requests.length, 0, 'starting asks the model nothing');
    session.send({ text: 'already warm' });
    assert.equal((await events.nextResult()).result, 'echo: already warm');
    assert.equal(session.pid, pid);
  });

  for (const [name, overrides] of [
    ['a NUL byte in an argument', { model: 'claude\0-sonnet' }],
    ['an argument over the 128 KiB kernel limit', { appendSystemPrompt: 'x'.repeat(200 * 1024) }],
  ] as const) {
    it(`fails the message and goes back to idle when spawn refuses ${name}`, async () => {
      const { session, events } = open(overrides);
      const sent = session.send({ text: 'never reaches Claude' });
      const error = await events.next('session_error');
      assert.equal(error.code, 'spawn_failed');
      const failed = await events.next(
        'message_state_changed',
        (p) => p.id === sent.messageId && p.newState === 'FAILED',
      );
      assert.match(failed.errorMessage ?? '', /could not be started/);
      const snapshot = session.snapshot();
      assert.equal(snapshot.sessionRuntime.phase, 'idle');
      assert.equal(snapshot.sessionRuntime.activity, 'IDLE');
      assert.equal(snapshot.sessionRuntime.processState, 'stopped');
      assert.deepEqual(snapshot.queuedMessages, []);
      assert.equal(session.isAlive, false);

      // Not wedged: the next message is tried (and fails the same way) instead of queueing forever.
      const again = session.send({ text: 'try again' });
      await events.next('message_state_changed', (p) => p.id === again.messageId && p.newState === 'FAILED');
      assert.equal(session.snapshot().sessionRuntime.activity, 'IDLE');

      // start() ahead of a message fails the same way and also leaves the session idle.
      await assert.rejects(() => session.start(), /could not be started/);
      assert.equal(session.snapshot().sessionRuntime.activity, 'IDLE');
      assert.equal(fake.requests.length, 0);
    });
  }

  it('runs bypassPermissions as root: the CLI gets IS_SANDBOX=1, without which it refuses to start', async function () {
    if (process.getuid?.() !== 0) this.skip();
    // Without the variable (as if we were not root), the real CLI refuses the mode under uid 0.
    const refused = open({ permissionMode: 'bypassPermissions', runningAsRoot: false });
    await assert.rejects(() => refused.session.start());
    const error = await refused.events.next('session_error');
    assert.equal(error.code, 'spawn_failed');
    assert.match(error.message, /root/);

    const { session, events } = open({ permissionMode: 'bypassPermissions' });
    fake.script(turns.text('sandboxed'));
    session.send({ text: 'as root' });
    assert.equal((await events.nextResult()).result, 'sandboxed');
  });

  it('leaves the session idle with a session_error when start() cannot run the binary', async () => {
    const { session, events } = open({ claudeBin: '/nonexistent/claude' });
    await assert.rejects(() => session.start());
    assert.equal((await events.next('session_error')).code, 'spawn_failed');
    assert.equal(session.snapshot().sessionRuntime.activity, 'IDLE');
    assert.equal(session.isAlive, false);
  });
});

/** Polls until the CLI's own conversation file for `sessionId` contains `text`. */
async function waitForSavedConversation(home: string, sessionId: string | null, text: string): Promise<void> {
  assert.ok(sessionId);
  const projects = join(home, '.claude', 'projects');
  for (let attempt = 0; attempt < 400; attempt++) {
    const dirs = existsSync(projects) ? readdirSync(projects) : [];
    for (const dir of dirs) {
      const file = join(projects, dir, `${sessionId}.jsonl`);
      if (existsSync(file) && readFileSync(file, 'utf8').includes(text)) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`conversation ${sessionId} was never saved with ${JSON.stringify(text)}`);
}
