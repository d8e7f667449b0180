import assert from 'node:assert/strict';
import type { SessionRuntime } from '../../src/protocol/index.js';
import {
  acceptsTurn,
  type CliPhase,
  type CliTurn,
  deferred,
  exited,
  exitOutcome,
  hungAfter,
  initialized,
  isClosing,
  processOf,
  runtimeAfter,
  spawned,
  startAbandoned,
  startRequested,
  stopFinished,
  stopRequested,
  turnBegan,
  turnEnded,
  turnOf,
} from '../../src/session/cli-phase.js';

/** Processes are plain values here: the phase only holds and compares them. */
type Proc = { name: string };
const first: Proc = { name: 'first' };
const second: Proc = { name: 'second' };

const attempt = Promise.resolve();
const done = Promise.resolve();
const turn = (): CliTurn => ({ messageId: 'm1', end: deferred<void>() });

const idle: CliPhase<Proc> = { kind: 'idle' };
const starting: CliPhase<Proc> = { kind: 'starting', proc: first, attempt };
const ready: CliPhase<Proc> = { kind: 'ready', proc: first };
const running = (t = turn()): CliPhase<Proc> => ({ kind: 'running', proc: first, turn: t });
const hung: CliPhase<Proc> = { kind: 'hung', proc: first };
const closed: CliPhase<Proc> = { kind: 'closed' };

describe('session / CLI phase transitions', () => {
  it('starts only from idle, and an attempt owns the phase it began', () => {
    assert.deepEqual(startRequested(idle, attempt), { kind: 'starting', proc: null, attempt });
    for (const phase of [starting, ready, running(), hung, closed]) {
      assert.equal(startRequested(phase, attempt), null, phase.kind);
    }
    const begun = startRequested<Proc>(idle, attempt);
    assert.ok(begun);
    assert.deepEqual(spawned(begun, attempt, first), { kind: 'starting', proc: first, attempt });
    // Another attempt's spawn, or one after a stop took over, does not move the phase.
    assert.equal(spawned(begun, Promise.resolve(), first), null);
    const stopping = stopRequested(begun, 'idle', done);
    assert.ok(stopping);
    assert.equal(spawned(stopping, attempt, first), null);
  });

  it('is ready once initialize is answered, unless a stop took over meanwhile', () => {
    assert.deepEqual(initialized(starting, first), { kind: 'ready', proc: first });
    assert.equal(initialized(starting, second), null, 'another process');
    const stopping = stopRequested(starting, 'idle', done);
    assert.ok(stopping);
    assert.equal(stopping.proc, first, 'the stop waits for the process the start has');
    assert.equal(initialized(stopping, first), null);
  });

  it('gives up a start only while the attempt still owns the phase', () => {
    assert.deepEqual(startAbandoned(starting, attempt), { kind: 'idle' });
    assert.equal(startAbandoned(starting, Promise.resolve()), null);
    const stopping = stopRequested(starting, 'idle', done);
    assert.ok(stopping);
    assert.equal(startAbandoned(stopping, attempt), null);
  });

  it('runs a turn from ready only, and ends it back in ready', () => {
    const t = turn();
    const began = turnBegan(ready, t);
    assert.deepEqual(began, { kind: 'running', proc: first, turn: t });
    for (const phase of [idle, starting, running(), hung, closed]) {
      assert.equal(turnBegan(phase, t), null, phase.kind);
    }
    assert.ok(began);
    assert.equal(turnOf(began), t);
    assert.deepEqual(turnEnded(began), { kind: 'ready', proc: first });
    for (const phase of [idle, starting, ready, hung, closed]) {
      assert.equal(turnEnded(phase), null, phase.kind);
    }
  });

  it('lets a queued message go only when the CLI is idle, starting or ready', () => {
    const stopping = stopRequested(ready, 'idle', done);
    assert.ok(stopping);
    assert.deepEqual(
      [idle, starting, ready, running(), hung, stopping, closed].map((p) => [p.kind, acceptsTurn(p)]),
      [
        ['idle', true],
        ['starting', true],
        ['ready', true],
        ['running', false],
        ['hung', false],
        ['stopping', false],
        ['closed', false],
      ],
    );
  });

  it('calls a turn hung only after the limit, and never while a human is being asked', () => {
    assert.equal(hungAfter(running(), 999, 1000, false), null);
    assert.deepEqual(hungAfter(running(), 1000, 1000, false), { kind: 'hung', proc: first });
    assert.equal(hungAfter(running(), 60_000, 1000, true), null, 'a question open is not a hang');
    for (const phase of [idle, starting, ready, hung, closed]) {
      assert.equal(hungAfter(phase, 60_000, 1000, false), null, phase.kind);
    }
  });

  it('stops whatever has or may get a process, keeping the open turn until it ends', () => {
    const t = turn();
    const fromRunning = stopRequested(running(t), 'idle', done);
    assert.deepEqual(fromRunning, { kind: 'stopping', proc: first, turn: t, after: 'idle', done });
    assert.ok(fromRunning);
    assert.equal(turnOf(fromRunning), t);
    const turnOver = turnEnded(fromRunning);
    assert.deepEqual(turnOver, { kind: 'stopping', proc: first, turn: null, after: 'idle', done });
    assert.ok(turnOver);
    assert.equal(turnEnded(turnOver), null, 'no turn left to end');

    for (const phase of [ready, hung]) {
      assert.deepEqual(stopRequested(phase, 'closed', done), {
        kind: 'stopping',
        proc: first,
        turn: null,
        after: 'closed',
        done,
      });
    }
    // Nothing to stop, or a stop already under way: the caller handles those.
    for (const phase of [idle, closed, fromRunning]) assert.equal(stopRequested(phase, 'idle', done), null);
  });

  it('rests where the stop said once it is over: idle after stop(), closed after close()', () => {
    const stop = stopRequested(ready, 'idle', done);
    const close = stopRequested(ready, 'closed', done);
    assert.ok(stop && close);
    assert.deepEqual(stopFinished(stop, done), { kind: 'idle' });
    assert.deepEqual(stopFinished(close, done), { kind: 'closed' });
    assert.equal(stopFinished(stop, Promise.resolve()), null, 'another stop');
    assert.equal(isClosing(stop), false);
    assert.equal(isClosing(close), true, 'closing from the moment close() is called');
    assert.equal(isClosing(closed), true);
  });

  it('reads why a process ended from the phase it ended in', () => {
    const stopping = stopRequested(running(), 'idle', done);
    assert.ok(stopping);
    const cases: Array<[CliPhase<Proc>, string, string]> = [
      [starting, 'startup', 'starting'],
      [ready, 'crash', 'idle'],
      [running(), 'crash', 'idle'],
      [hung, 'hung', 'idle'],
      [stopping, 'stop', 'stopping'],
    ];
    for (const [phase, cause, next] of cases) {
      const result = exited(phase, first);
      assert.ok(result, phase.kind);
      assert.equal(result.cause, cause, phase.kind);
      assert.equal(result.phase.kind, next, phase.kind);
      assert.equal(processOf(result.phase), null, `${phase.kind}: the process is gone`);
      assert.equal(turnOf(result.phase), null, `${phase.kind}: its turn is over`);
    }
    // A start keeps its attempt (it retries or gives up); a stop keeps going to its end.
    assert.deepEqual(exited(starting, first)?.phase, { kind: 'starting', proc: null, attempt });
    assert.deepEqual(exited(stopping, first)?.phase, {
      kind: 'stopping',
      proc: null,
      turn: null,
      after: 'idle',
      done,
    });
  });

  it('ignores the exit of a process the phase does not hold', () => {
    for (const phase of [idle, closed, starting, ready, running(), hung]) {
      assert.equal(exited(phase, second), null, phase.kind);
    }
  });

  it('reports a crash, holds the queue after a crash or a hang, and calls only our stop expected', () => {
    assert.deepEqual(exitOutcome('stop'), {
      runtimePhase: 'stopping',
      unexpected: false,
      reportAsCrash: false,
      holdsQueue: false,
    });
    assert.deepEqual(exitOutcome('crash'), {
      runtimePhase: 'error',
      unexpected: true,
      reportAsCrash: true,
      holdsQueue: true,
    });
    assert.deepEqual(exitOutcome('hung'), {
      runtimePhase: 'error',
      unexpected: true,
      reportAsCrash: false,
      holdsQueue: true,
    });
    assert.deepEqual(exitOutcome('startup'), {
      runtimePhase: 'error',
      unexpected: true,
      reportAsCrash: false,
      holdsQueue: false,
    });
  });

  it('publishes a runtime change only when something a subscriber sees changes, WORKING while starting or running', () => {
    const current: SessionRuntime = {
      phase: 'idle',
      processState: 'alive',
      activity: 'IDLE',
      pid: 42,
      lastExit: null,
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    const at = '2026-01-01T00:00:01.000Z';
    assert.equal(runtimeAfter(current, { phase: 'idle' }, at), null);
    assert.equal(runtimeAfter(current, { pid: 42, processState: 'alive' }, at), null);
    assert.deepEqual(runtimeAfter(current, { phase: 'running' }, at), {
      ...current,
      phase: 'running',
      activity: 'WORKING',
      updatedAt: at,
    });
    assert.equal(runtimeAfter(current, { phase: 'starting' }, at)?.activity, 'WORKING');
    assert.equal(runtimeAfter(current, { phase: 'stopping' }, at)?.activity, 'IDLE');
    assert.equal(runtimeAfter(current, { phase: 'error', processState: 'stopped' }, at)?.activity, 'IDLE');
  });
});
