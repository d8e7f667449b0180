/**
 * The api killed with SIGKILL mid-stream (api/main.ts as a child process, test/support/cloud-rig.ts) while
 * the real claude in a real VM keeps streaming: a client reconnects to the api process started after it
 * with `after=<last seq>` and gets every event exactly once; `ffc attach` does the same by itself.
 */
import assert from 'node:assert/strict';
import type { SessionEvent } from '@factory-factory/core/protocol';
import { turns } from '../../core/test/support/fake-anthropic.js';
import { SessionRelayClient } from '../api/session-relay-client.js';
import { freshConfigDir, runFfc } from '../cli/run-ffc.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import { assertConsecutive, deltas, isResult, lastAssistantText } from './events.js';

describe('e2e: SIGKILL the api mid-stream (real api processes, worker, VM, claude)', function () {
  this.timeout(6 * 60_000);
  let rig: CloudRig;
  let workspaceId: string;

  before(async () => {
    rig = await startCloudRig('kill');
    workspaceId = `ws-kill-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
  });

  after(async () => {
    await rig?.stop();
  });

  const open = (sessionId: string, after?: number) =>
    SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId, after), rig.user.key);

  it('a client reconnecting to the next api process with after=<last seq> loses nothing and gets nothing twice', async () => {
    const sessionId = await rig.createSession(workspaceId, {});
    const a = await open(sessionId);
    const startA = await a.waitFor('session_snapshot');
    const chunks = Array.from({ length: 100 }, (_, i) => `k${i} `);
    rig.fake.script(turns.deltas(chunks, 60));
    a.send({ type: 'queue_message', text: 'stream through the crash', requestId: 'crash' });
    await a.waitUntil('some deltas', () => deltas(a.events()).length >= 10);

    const killedPid = rig.api.child.pid;
    const next = await rig.restartApi({ signal: 'SIGKILL' });
    assert.notEqual(next.child.pid, killedPid, 'another api process');
    const closed = await a.closed;
    assert.equal(closed.code, 1006, 'the socket died with the process (no close frame)');
    const seenByA = a.events();
    assert.ok(!seenByA.some(isResult), 'the kill came mid-stream');
    const lastSeen = seenByA.at(-1)?.seq ?? startA.seq;

    const b = await open(sessionId, lastSeen);
    await b.waitUntil('the end of the turn', () => b.events().some(isResult));
    assert.ok(!b.frames.some((f) => f.type === 'session_snapshot'), 'a replay, not a snapshot');
    assertConsecutive(seenByA, startA.seq + 1, 'before the kill');
    assertConsecutive(b.events(), lastSeen + 1, 'after the kill');
    const together: SessionEvent[] = [...seenByA, ...b.events()];
    assertConsecutive(together, startA.seq + 1, 'across both api processes: every seq exactly once');
    const text = deltas(together).join('');
    assert.equal(text, chunks.join(''));
    const result = b.events().find(isResult);
    assert.ok(result && result.payload.type === 'claude_message');
    assert.equal(result.payload.data.is_error, false, 'the turn itself never noticed the crash');
    await b.close();
    const viewer = await open(sessionId);
    assert.equal(lastAssistantText(await viewer.waitFor('session_snapshot')), text);
    await viewer.close();
  });

  it('ffc attach rides out the kill by itself: the whole reply printed once, exit 0', async () => {
    const sessionId = await rig.createSession(workspaceId, {});
    const watcher = await open(sessionId);
    await watcher.waitFor('session_snapshot');
    const chunks = Array.from({ length: 100 }, (_, i) => `w${i} `);
    rig.fake.script(turns.deltas(chunks, 60));
    const attached = runFfc(
      ['attach', workspaceId, '--session', sessionId, '--prompt', 'stream to ffc', '--exit-when-idle'],
      {
        env: {
          FFC_CONFIG_DIR: freshConfigDir(),
          FFC_API_URL: rig.api.url,
          FFC_API_KEY: rig.user.key,
        },
        killAfterMs: 3 * 60_000,
      },
    );
    await watcher.waitUntil('ffc’s turn to stream', () => deltas(watcher.events()).length >= 10);
    await rig.restartApi({ signal: 'SIGKILL' });
    const result = await attached;
    assert.equal(result.code, 0, `${result.stderr}\n${result.stdout}`);
    assert.match(result.stderr, /reconnecting…/);
    assert.match(result.stderr, /reconnected/);
    for (const chunk of chunks) {
      const count = result.stdout.split(chunk).length - 1;
      assert.equal(count, 1, `"${chunk}" printed once: ${result.stdout}`);
    }
    assert.ok(result.stdout.includes(chunks.join('')), `the reply in order: ${result.stdout}`);
  });
});
