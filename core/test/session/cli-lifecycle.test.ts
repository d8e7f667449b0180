import assert from 'node:assert/strict';
import type { SessionRuntime } from '../../src/protocol/index.js';
import { ClaudeSession, SessionError } from '../../src/session/index.js';
import { TempDirs } from '../support/claude-cli.js';
import { EventRecorder } from '../support/session-events.js';
import { stubClaudeEnv, writeStubClaude } from '../support/stub-claude.js';

/** True while a process with this pid exists (and is not a zombie waiting for its parent). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * How the CLI's life (start, stop, close) overlaps with calls that arrive meanwhile, driven through
 * ClaudeSession with the stub CLI in its silent mode: it initializes and takes messages, and never
 * ends a turn on its own, so a turn stays open for as long as a test needs it.
 */
describe('ClaudeSession: starts, stops and closes that overlap', () => {
  const dirs = new TempDirs();
  const sessions: ClaudeSession[] = [];

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    dirs.cleanup();
  });

  function open() {
    const session = new ClaudeSession({
      id: `lifecycle-${sessions.length}`,
      cwd: dirs.make('work'),
      claudeBin: writeStubClaude(dirs.make('bin')),
      env: stubClaudeEnv('silent'),
      limits: { stopGraceMs: 500 },
    });
    sessions.push(session);
    const events = new EventRecorder();
    session.subscribe(events.listener);
    return { session, events };
  }

  function runtimesSince(events: EventRecorder, from: number): SessionRuntime[] {
    return events.events
      .slice(from)
      .flatMap((e) => (e.payload.type === 'session_runtime_updated' ? [e.payload.sessionRuntime] : []));
  }

  it('says stopping from the stop of a turn until the process is gone, then idle, with an expected exit', async () => {
    const { session, events } = open();
    const sent = session.send({ text: 'a turn that never ends' });
    await events.next('message_state_changed', (p) => p.id === sent.messageId && p.newState === 'COMMITTED');
    const queued = session.send({ text: 'waits behind it' });
    const pid = session.pid;
    assert.ok(pid);

    const before = events.events.length;
    await session.stop();
    const runtimes = runtimesSince(events, before);
    assert.deepEqual(
      runtimes.map((r) => [r.phase, r.processState]),
      [
        ['stopping', 'alive'],
        ['stopping', 'stopped'],
        ['idle', 'stopped'],
      ],
      'no idle while the process still runs',
    );
    assert.equal(runtimes.at(-1)?.lastExit?.unexpected, false);
    assert.equal(session.isAlive, false);
    assert.equal(running(pid), false);
    assert.deepEqual(events.ofType('session_error'), []);
    const states = events.ofType('message_state_changed').filter((p) => p.id === queued.messageId);
    assert.deepEqual(
      states.map((p) => p.newState),
      ['QUEUED', 'CANCELLED'],
    );
    assert.deepEqual(session.snapshot().queuedMessages, []);
  });

  it('lets a stop called while the CLI starts wait for the start, then end that process', async () => {
    const { session, events } = open();
    const starting = session.start();
    const stopping = session.stop();
    await Promise.all([starting, stopping]);

    const alive = events.ofType('session_runtime_updated').find((p) => p.sessionRuntime.pid !== null);
    const pid = alive?.sessionRuntime.pid;
    assert.ok(pid, 'the start got as far as a process');
    assert.equal(running(pid), false);
    assert.equal(session.isAlive, false);
    const runtime = session.snapshot().sessionRuntime;
    assert.deepEqual([runtime.phase, runtime.processState], ['idle', 'stopped']);
    assert.equal(runtime.lastExit?.unexpected, false);
    assert.deepEqual(events.ofType('session_error'), []);
  });

  it('gives a start called during a stop a new process once the old one is gone', async () => {
    const { session } = open();
    await session.start();
    const firstPid = session.pid;
    assert.ok(firstPid);
    const stopping = session.stop();
    const starting = session.start();
    await Promise.all([stopping, starting]);
    assert.equal(running(firstPid), false);
    assert.equal(session.isAlive, true);
    assert.notEqual(session.pid, firstPid);
    assert.equal(session.snapshot().sessionRuntime.processState, 'alive');
  });

  it('refuses messages from the moment close() is called, and keeps the queue for the next agent', async () => {
    const { session, events } = open();
    const sent = session.send({ text: 'in the turn' });
    await events.next('message_state_changed', (p) => p.id === sent.messageId && p.newState === 'COMMITTED');
    const kept = session.send({ text: 'queued behind it' });
    const pid = session.pid;
    assert.ok(pid);

    const closing = session.close();
    assert.throws(
      () => session.send({ text: 'too late' }),
      (error: unknown) => error instanceof SessionError && error.code === 'unavailable',
    );
    await closing;
    assert.equal(running(pid), false);
    assert.equal(session.isAlive, false);
    assert.deepEqual(
      session.snapshot().queuedMessages.map((m) => m.id),
      [kept.messageId],
    );
    await assert.rejects(
      () => session.start(),
      (error: unknown) => error instanceof SessionError && error.code === 'unavailable',
    );
    assert.equal(session.isAlive, false, 'nothing started after close');
  });
});
