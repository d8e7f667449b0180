import assert from 'node:assert/strict';
import { ClaudeSession, type ClaudeSessionOptions } from '../../src/session/index.js';
import { TempDirs } from '../support/claude-cli.js';
import { EventRecorder } from '../support/session-events.js';
import { type StubClaudeMode, stubClaudeEnv, writeStubClaude } from '../support/stub-claude.js';

/**
 * Behaviour the real CLI will not show on demand (garbage output, silence), driven by a small stub
 * process in its place: the session must report it and keep going.
 */
describe('ClaudeSession with a misbehaving CLI', () => {
  const dirs = new TempDirs();
  const sessions: ClaudeSession[] = [];

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    dirs.cleanup();
  });

  function open(mode: StubClaudeMode, overrides: Partial<ClaudeSessionOptions> = {}) {
    const session = new ClaudeSession({
      id: `stub-${mode}`,
      cwd: dirs.make('work'),
      claudeBin: writeStubClaude(dirs.make('bin')),
      env: stubClaudeEnv(mode),
      limits: { stopGraceMs: 1000, ...overrides.limits },
      ...overrides,
    });
    sessions.push(session);
    const events = new EventRecorder();
    session.subscribe(events.listener);
    return { session, events };
  }

  it('reports malformed and oversize lines and keeps the process and the turn going', async () => {
    const { session, events } = open('garbage');
    session.send({ text: 'first' });
    const result = await events.nextResult();
    assert.equal(result.result, 'still here');
    const errors = events.ofType('session_error').map((e) => e.code);
    assert.deepEqual(errors, ['malformed_output_line', 'malformed_output_line', 'oversize_output_line']);
    const pid = session.pid;

    session.send({ text: 'second' });
    await events.nextResult();
    assert.equal(session.pid, pid, 'the same process served both turns');
    assert.equal(session.snapshot().sessionRuntime.processState, 'alive');
  });

  it('ends the turn on a result without a session_id, and takes the next message', async () => {
    const { session, events } = open('no-session-id');
    const first = session.send({ text: 'first' });
    assert.equal((await events.nextResult()).result, 'no id');
    await events.next('session_runtime_updated', (p) => p.sessionRuntime.phase === 'idle');
    assert.deepEqual(events.ofType('session_error'), [], 'the result is not reported as malformed');
    const states = events.ofType('message_state_changed').filter((p) => p.id === first.messageId);
    assert.deepEqual(
      states.map((p) => p.newState),
      ['QUEUED', 'DISPATCHED', 'COMMITTED'],
    );

    session.send({ text: 'second' });
    assert.equal((await events.nextResult()).result, 'no id');
    assert.equal(session.snapshot().sessionRuntime.activity, 'IDLE');
    assert.equal(session.snapshot().lastTurn?.subtype, 'success');
  });

  it('rejects the 101st queued message with a clear reason', async () => {
    const { session, events } = open('silent');
    const first = session.send({ text: 'this turn never ends' });
    await events.next('message_state_changed', (p) => p.id === first.messageId && p.newState === 'COMMITTED');
    for (let i = 0; i < 100; i++) {
      assert.equal(session.send({ id: `queued-${i}`, text: `queued ${i}` }).state, 'QUEUED');
    }
    const rejected = session.send({ text: 'one too many' });
    assert.equal(rejected.state, 'REJECTED');
    assert.match(rejected.errorMessage ?? '', /100 messages/);
    const event = await events.next('message_state_changed', (p) => p.newState === 'REJECTED');
    assert.equal(event.id, rejected.messageId);
    assert.equal(session.snapshot().queuedMessages.length, 100);

    // Resending a queued id (a client retry) is idempotent: same place, no new message.
    const again = session.send({ id: 'queued-5', text: 'queued 5' });
    assert.deepEqual([again.state, again.queuePosition], ['QUEUED', 5]);

    await session.stop();
    assert.equal(session.snapshot().queuedMessages.length, 0);
    const cancelled = events.ofType('message_state_changed').filter((p) => p.newState === 'CANCELLED');
    assert.equal(cancelled.length, 100);
  });

  it('kills a turn that prints nothing for too long and surfaces it', async () => {
    const { session, events } = open('silent', { limits: { hungTimeoutMs: 200 } });
    session.send({ text: 'hang' });
    const error = await events.next('session_error');
    assert.equal(error.code, 'process_hung');
    await events.next('session_runtime_updated', (p) => p.sessionRuntime.processState === 'stopped');
    const runtime = session.snapshot().sessionRuntime;
    assert.equal(runtime.lastExit?.unexpected, true);
    assert.equal(runtime.phase, 'error');
  });

  it('reports a CLI binary that cannot be started', async () => {
    const { session, events } = open('garbage', { claudeBin: '/nonexistent/claude' });
    const sent = session.send({ text: 'hello' });
    const error = await events.next('session_error');
    assert.equal(error.code, 'spawn_failed');
    assert.match(error.message, /ENOENT|exited/);
    // The message waits in the queue; nothing loops trying to respawn.
    assert.deepEqual(
      session.snapshot().queuedMessages.map((m) => m.id),
      [sent.messageId],
    );
    assert.equal(session.snapshot().sessionRuntime.phase, 'error');
  });
});
