/**
 * A long session on a cloud rig's real VM, for the history paging tests: the real claude runs many tool
 * calls (Write, auto-allowed in acceptEdits) and then streams a long reply in many deltas, so the session
 * has hundreds of messages and more than `minEvents` events: what opening a busy session looks like.
 */
import assert from 'node:assert/strict';
import { turns } from '../../core/test/support/fake-anthropic.js';
import { SessionRelayClient } from '../api/session-relay-client.js';
import { turnsEnded } from '../e2e/events.js';
import type { CloudRig } from './cloud-rig.js';

export type LongSession = { sessionId: string; lastSeq: number };

export async function makeLongSession(
  rig: CloudRig,
  workspaceId: string,
  options: { minEvents?: number; toolCalls?: number } = {},
): Promise<LongSession> {
  const minEvents = options.minEvents ?? 1000;
  const toolCalls = options.toolCalls ?? 40;
  const sessionId = await rig.createSession(workspaceId, { permissionMode: 'acceptEdits', name: 'long' });
  const relay = await SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId), rig.user.key);
  try {
    await relay.waitFor('session_snapshot');
    let turn = 0;
    while ((relay.events().at(-1)?.seq ?? 0) < minEvents) {
      turn += 1;
      assert.ok(turn <= 5, `the session has ${relay.events().at(-1)?.seq} events after 4 turns`);
      rig.fake.script(
        ...Array.from({ length: turn === 1 ? toolCalls : 0 }, (_, i) =>
          turns.write(`note-${i}.txt`, `note ${i}\n`),
        ),
        turns.deltas(Array.from({ length: 600 }, (_, i) => `word${i} `)),
      );
      relay.send({ type: 'queue_message', text: `long turn ${turn}` });
      await relay.waitUntil(`turn ${turn} to end`, () => turnsEnded(relay.events()) === turn, 5 * 60_000);
    }
    return { sessionId, lastSeq: relay.events().at(-1)?.seq ?? 0 };
  } finally {
    await relay.close();
  }
}
