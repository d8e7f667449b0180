import type { SessionSnapshot } from '../protocol/index.js';

export type FixerOutcomeName = 'RUNNING' | 'COMPLETED' | 'DIED';

export interface FixerReport {
  outcome: FixerOutcomeName;
  detail: string | null;
}

/**
 * How the fixer turn started by message `dispatchId` stands, read from its session's transcript. Pure.
 *
 * - queued: RUNNING, unless the CLI died after the prompt was queued (the session then holds its queue
 *   until someone sends again, so the prompt would wait forever): DIED.
 * - not in the conversation: RUNNING while the session works (the prompt is being handed to Claude),
 *   otherwise DIED (it failed, was cancelled, or was lost).
 * - in the conversation: COMPLETED once a successful `result` follows it; DIED when that result is an
 *   error; RUNNING while the turn goes on; DIED when the turn is over without a result (the CLI exited,
 *   was killed by the hang watchdog, or the agent restarted during it).
 */
export function fixerReport(snapshot: SessionSnapshot, dispatchId: string): FixerReport {
  const runtime = snapshot.sessionRuntime;
  const working = runtime.activity === 'WORKING';
  const exit = runtime.lastExit;
  const exitText =
    exit === null
      ? 'the Claude process is not running'
      : `the Claude process exited (code ${exit.code ?? 'none'}, signal ${exit.signal ?? 'none'})`;

  const queued = snapshot.queuedMessages.find((m) => m.id === dispatchId);
  if (queued !== undefined) {
    const diedSinceQueued =
      runtime.processState === 'stopped' &&
      exit !== null &&
      exit.unexpected &&
      Date.parse(exit.timestamp) >= Date.parse(queued.timestamp);
    return diedSinceQueued
      ? { outcome: 'DIED', detail: `${exitText} before it took the fix prompt` }
      : { outcome: 'RUNNING', detail: 'the fix prompt is queued' };
  }

  const index = snapshot.messages.findIndex((m) => m.source === 'user' && m.id === dispatchId);
  if (index < 0) {
    return working
      ? { outcome: 'RUNNING', detail: 'the fix prompt is being handed to Claude' }
      : { outcome: 'DIED', detail: 'the fix prompt never reached Claude (it failed or was cancelled)' };
  }

  for (const message of snapshot.messages.slice(index + 1)) {
    if (message.source === 'user') break;
    const data = message.message;
    if (data?.type !== 'result') continue;
    const subtype = typeof data.subtype === 'string' ? data.subtype : 'unknown';
    if (data.is_error !== true && subtype === 'success') return { outcome: 'COMPLETED', detail: null };
    return { outcome: 'DIED', detail: `the fixer's turn ended with an error (${subtype})` };
  }
  if (working) return { outcome: 'RUNNING', detail: 'the fixer is working' };
  return { outcome: 'DIED', detail: `${exitText} during the fixer's turn` };
}
