// The fixer outcome the agent reports, read from a session's transcript (pure; the real-process cases
// are in ratchet-methods.test.ts).
import assert from 'node:assert/strict';
import { fixerReport } from '../../src/agent/fixer-status.js';
import type { ChatMessage, SessionRuntime, SessionSnapshot } from '../../src/protocol/index.js';

const runtime = (patch: Partial<SessionRuntime> = {}): SessionRuntime => ({
  phase: 'idle',
  processState: 'stopped',
  activity: 'IDLE',
  pid: null,
  lastExit: null,
  updatedAt: '2024-01-01T00:00:00Z',
  ...patch,
});

const user = (id: string, order: number): ChatMessage => ({
  id,
  source: 'user',
  order,
  timestamp: '2024-01-01T00:00:00Z',
  text: 'fix it',
});
const result = (order: number, subtype = 'success', isError = false): ChatMessage => ({
  id: `r${order}`,
  source: 'claude',
  order,
  timestamp: '2024-01-01T00:01:00Z',
  message: { type: 'result', subtype, is_error: isError },
});
const assistant = (order: number): ChatMessage => ({
  id: `a${order}`,
  source: 'claude',
  order,
  timestamp: '2024-01-01T00:00:30Z',
  message: { type: 'assistant' },
});

function snapshot(parts: Partial<SessionSnapshot>): SessionSnapshot {
  return {
    type: 'session_snapshot',
    seq: 1,
    messages: [],
    queuedMessages: [],
    sessionRuntime: runtime(),
    pendingInteractiveRequest: null,
    pendingInteractiveRequests: [],
    claudeSessionId: null,
    lastTurn: null,
    ...parts,
  };
}

describe('agent / fixer status from the transcript', () => {
  const queued = { id: 'd1', text: 'fix it', timestamp: '2024-01-01T00:00:00Z' };

  it('RUNNING while queued, or DIED when the CLI died after the prompt was queued', () => {
    assert.equal(fixerReport(snapshot({ queuedMessages: [queued] }), 'd1').outcome, 'RUNNING');
    const earlierCrash = runtime({
      lastExit: { code: null, signal: 'SIGKILL', timestamp: '2023-12-31T00:00:00Z', unexpected: true },
    });
    assert.equal(
      fixerReport(snapshot({ queuedMessages: [queued], sessionRuntime: earlierCrash }), 'd1').outcome,
      'RUNNING',
      'a crash before this prompt (of an earlier turn) does not count',
    );
    const laterCrash = runtime({
      lastExit: { code: 1, signal: null, timestamp: '2024-01-01T00:00:05Z', unexpected: true },
    });
    const died = fixerReport(snapshot({ queuedMessages: [queued], sessionRuntime: laterCrash }), 'd1');
    assert.equal(died.outcome, 'DIED');
    assert.match(died.detail ?? '', /code 1/);
  });

  it('RUNNING while its turn runs; COMPLETED after a successful result; DIED on an error result', () => {
    const working = runtime({ phase: 'running', processState: 'alive', activity: 'WORKING', pid: 42 });
    assert.equal(
      fixerReport(snapshot({ messages: [user('d1', 0), assistant(1)], sessionRuntime: working }), 'd1')
        .outcome,
      'RUNNING',
    );
    assert.deepEqual(fixerReport(snapshot({ messages: [user('d1', 0), assistant(1), result(2)] }), 'd1'), {
      outcome: 'COMPLETED',
      detail: null,
    });
    const errored = fixerReport(
      snapshot({ messages: [user('d1', 0), result(1, 'error_max_turns', true)] }),
      'd1',
    );
    assert.equal(errored.outcome, 'DIED');
    assert.match(errored.detail ?? '', /error_max_turns/);
  });

  it("a later turn's result does not complete an earlier turn that died", () => {
    const messages = [user('d1', 0), assistant(1), user('d2', 2), result(3)];
    assert.equal(fixerReport(snapshot({ messages }), 'd1').outcome, 'DIED');
    assert.equal(fixerReport(snapshot({ messages }), 'd2').outcome, 'COMPLETED');
  });

  it('DIED when the turn ended without a result, or the prompt never reached Claude', () => {
    const exited = runtime({
      phase: 'error',
      lastExit: { code: null, signal: 'SIGKILL', timestamp: '2024-01-01T00:00:40Z', unexpected: true },
    });
    const died = fixerReport(
      snapshot({ messages: [user('d1', 0), assistant(1)], sessionRuntime: exited }),
      'd1',
    );
    assert.equal(died.outcome, 'DIED');
    assert.match(died.detail ?? '', /SIGKILL/);
    assert.equal(fixerReport(snapshot({}), 'd1').outcome, 'DIED');
    const handingOver = runtime({ phase: 'running', processState: 'alive', activity: 'WORKING' });
    assert.equal(fixerReport(snapshot({ sessionRuntime: handingOver }), 'd1').outcome, 'RUNNING');
  });
});
