/**
 * End to end over the session relay (real api and worker processes, a real VM, the real claude in it
 * against the fake Anthropic API): questions and permissions answered through the relay, and the failures
 * users of similar products reported, each reproduced against the whole stack:
 *
 * - after a reconnect, live deltas that arrive during the catch-up shown twice or lost;
 * - a socket dropped just as a turn ends, after which new messages are refused as "already running";
 * - a pending question answered by itself after sitting idle, or an answered one coming back;
 * - three queued permission prompts, a reconnect from another client, approvals from it.
 */
import assert from 'node:assert/strict';
import type { SessionEvent } from '@factory-factory/core/protocol';
import { safeParseJson } from '@factory-factory/core/protocol';
import { RelayServerFrameSchema } from '../../api/contract/session-relay.js';
import { SessionAnswerSchema } from '../../api/contract/workspaces.js';
import { turns } from '../../core/test/support/fake-anthropic.js';
import { SessionRelayClient } from '../api/session-relay-client.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import {
  assertConsecutive,
  deltas,
  isResult,
  lastAssistantText,
  payloadOf,
  toolResults,
  toolUses,
  turnsEnded,
  waitForEvent,
} from './events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('e2e: questions, permissions and reconnects over the relay (real api, worker, VM, claude)', function () {
  this.timeout(6 * 60_000);
  let rig: CloudRig;
  let workspaceId: string;

  before(async () => {
    rig = await startCloudRig('relay');
    workspaceId = `ws-relay-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
  });

  after(async () => {
    await rig?.stop();
  });

  const open = (sessionId: string, after?: number) =>
    SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId, after), rig.user.key);
  const lastSeq = (client: SessionRelayClient, orElse: number) => client.events().at(-1)?.seq ?? orElse;
  const inWorktree = (script: string) => rig.execInVm(`cd ${rig.worktreeInVm(workspaceId)} && ${script}`);

  it('answers a question, allows one Bash and denies another: one tool result each; answered questions stay answered, unanswered ones stay pending with nothing sent', async () => {
    const sessionId = await rig.createSession(workspaceId, { permissionMode: 'default' });
    const a = await open(sessionId);
    const start = await a.waitFor('session_snapshot');

    // A question, answered over the relay: the tool result carries the answer to the model.
    rig.fake.script(turns.ask('Which color do you prefer?', ['Red', 'Blue'], 'Color'));
    a.send({ type: 'queue_message', text: 'ask me a question', requestId: 'ask' });
    const question = await waitForEvent(a, 'a user_question', (e) => e.payload.type === 'user_question');
    const asked = payloadOf(question, 'user_question');
    assert.equal(asked.questions[0]?.question, 'Which color do you prefer?');
    const modelRequestsAtQuestion = rig.fake.requests.length;
    a.send({
      type: 'question_response',
      requestId: asked.requestId,
      answers: { 'Which color do you prefer?': 'Blue' },
    });
    await a.waitFor('command_result', (f) => f.command === 'question_response');
    await a.waitUntil('the question turn to end', () => turnsEnded(a.events()) === 1);
    const askUse = toolUses(a.events()).find((t) => t.name === 'AskUserQuestion');
    const askResults = toolResults(a.events()).filter((r) => r.toolUseId === askUse?.id);
    assert.equal(askResults.length, 1, 'one tool result for the question');
    assert.equal(askResults[0]?.isError, false);
    assert.match(askResults[0]?.text ?? '', /Blue/);
    assert.match(rig.fake.requests[modelRequestsAtQuestion]?.toolResults[0]?.content ?? '', /Blue/);

    // One Bash allowed, one denied.
    rig.fake.script(turns.bash('echo ran > allowed.txt', 'Create allowed.txt'));
    a.send({ type: 'queue_message', text: 'run the allowed command', requestId: 'allow' });
    const first = payloadOf(
      await waitForEvent(a, 'the first permission_request', (e) => e.payload.type === 'permission_request'),
      'permission_request',
    );
    assert.equal(first.toolName, 'Bash');
    a.send({ type: 'permission_response', requestId: first.requestId, allow: true });
    await a.waitUntil('the allowed turn to end', () => turnsEnded(a.events()) === 2);

    rig.fake.script(turns.bash('echo ran > denied.txt', 'Create denied.txt'));
    a.send({ type: 'queue_message', text: 'run the denied command', requestId: 'deny' });
    const second = payloadOf(
      await waitForEvent(
        a,
        'the second permission_request',
        (e) => e.payload.type === 'permission_request' && e.payload.requestId !== first.requestId,
      ),
      'permission_request',
    );
    a.send({
      type: 'permission_response',
      requestId: second.requestId,
      allow: false,
      message: 'not this one, please',
    });
    await a.waitUntil('the denied turn to end', () => turnsEnded(a.events()) === 3);
    assertConsecutive(a.events(), start.seq + 1, 'everything on the first connection');

    const outcome = (requestId: string) =>
      a
        .events()
        .filter((e) => e.payload.type === 'interactive_request_resolved' && e.payload.requestId === requestId)
        .map((e) => payloadOf(e, 'interactive_request_resolved').outcome);
    assert.deepEqual(outcome(asked.requestId), ['answered']);
    assert.deepEqual(outcome(first.requestId), ['allowed']);
    assert.deepEqual(outcome(second.requestId), ['denied']);
    const resultsOf = (toolUseId: string | null) =>
      toolResults(a.events()).filter((r) => r.toolUseId === toolUseId);
    const allowed = resultsOf(first.toolUseId);
    const denied = resultsOf(second.toolUseId);
    assert.equal(allowed.length, 1, 'exactly one tool result for the allowed Bash');
    assert.equal(allowed[0]?.isError, false, allowed[0]?.text);
    assert.equal(denied.length, 1, 'exactly one tool result for the denied Bash');
    assert.equal(denied[0]?.isError, true);
    assert.match(denied[0]?.text ?? '', /not this one, please/);
    assert.equal(await inWorktree('cat allowed.txt'), 'ran\n');
    assert.equal(await inWorktree('test -e denied.txt && echo yes || echo no'), 'no\n');
    // The session reads idle after the turn's result: once a has seen that, nothing more happens.
    await a.waitUntil('the session to read idle', () => {
      const events = a.events();
      const end = events.filter(isResult).at(-1)?.seq ?? Number.POSITIVE_INFINITY;
      return events.some(
        (e) =>
          e.seq > end &&
          e.payload.type === 'session_runtime_updated' &&
          e.payload.sessionRuntime.activity === 'IDLE',
      );
    });
    const seenByA = lastSeq(a, start.seq);
    await a.close();

    // A reconnect never brings an answered question back: not as pending, not as a new event.
    const resumed = await open(sessionId, seenByA);
    await resumed.waitFor('caught_up');
    assert.deepEqual(resumed.events(), [], 'nothing happened since');
    await resumed.close();
    const fresh = await open(sessionId);
    const snapshot = await fresh.waitFor('session_snapshot');
    assert.deepEqual(snapshot.pendingInteractiveRequests, []);
    assert.equal(snapshot.pendingInteractiveRequest, null);

    // A question nobody answers stays pending, through idling and reconnects, and nothing reaches the model.
    rig.fake.script(turns.ask('Deploy on Friday?', ['Yes', 'No'], 'Deploy'));
    fresh.send({ type: 'queue_message', text: 'ask about the deploy', requestId: 'deploy' });
    const pending = payloadOf(
      await waitForEvent(
        fresh,
        'the deploy question',
        (e) => e.payload.type === 'user_question' && e.payload.requestId !== asked.requestId,
      ),
      'user_question',
    );
    const modelRequestsWhilePending = rig.fake.requests.length;
    const seenByFresh = lastSeq(fresh, snapshot.seq);
    fresh.ws.terminate();
    // Idle with nobody connected, then with a viewer connected across several of the api's pings.
    await sleep(3000);
    const viewer = await open(sessionId);
    const idleSnapshot = await viewer.waitFor('session_snapshot');
    await sleep(5000);
    assert.deepEqual(
      idleSnapshot.pendingInteractiveRequests.map((r) => [r.kind, r.requestId]),
      [['question', pending.requestId]],
      'the unanswered question is still pending',
    );
    assert.deepEqual(viewer.events(), [], 'nothing happened while it sat idle');
    assert.equal(rig.fake.requests.length, modelRequestsWhilePending, 'nothing was sent to the model');
    const replay = await open(sessionId, seenByFresh);
    await replay.waitFor('caught_up');
    assert.ok(
      !replay.events().some((e) => e.payload.type === 'interactive_request_resolved'),
      'the question was not resolved by anyone',
    );
    await replay.close();

    // Answered now, from the viewer: one answer reaches the model, once.
    viewer.send({
      type: 'question_response',
      requestId: pending.requestId,
      answers: { 'Deploy on Friday?': 'No' },
    });
    await viewer.waitUntil('the deploy turn to end', () => viewer.events().some(isResult));
    assert.equal(rig.fake.requests.length, modelRequestsWhilePending + 1);
    assert.match(rig.fake.requests[modelRequestsWhilePending]?.toolResults[0]?.content ?? '', /No/);
    const deployResults = toolResults(viewer.events()).filter((r) => r.toolUseId === pending.toolUseId);
    assert.equal(deployResults.length, 1);
    await viewer.close();
  });

  it('live deltas arriving during the catch-up after a reconnect are neither doubled nor lost', async () => {
    const sessionId = await rig.createSession(workspaceId, {});
    // Sees every event live, start to end: what the reconnecting client must end up with.
    const watcher = await open(sessionId);
    const watcherStart = await watcher.waitFor('session_snapshot');
    const a = await open(sessionId);
    const startA = await a.waitFor('session_snapshot');
    const chunks = Array.from({ length: 120 }, (_, i) => `t${i} `);
    rig.fake.script(turns.deltas(chunks, 25));
    a.send({ type: 'queue_message', text: 'stream a long answer', requestId: 'long' });
    await a.waitUntil('some deltas', () => deltas(a.events()).length >= 10);
    a.ws.terminate();
    await a.closed;
    const seenByA = lastSeq(a, startA.seq);
    // The stream goes on while nobody listens, so the reconnect has a catch-up to do ...
    await watcher.waitUntil('events the dropped client missed', () => lastSeq(watcher, 0) >= seenByA + 10);
    // ... and goes on during it, so live deltas race the replay.
    const b = await open(sessionId, seenByA);
    await b.waitUntil('the end of the turn', () => b.events().some(isResult));
    await watcher.waitUntil('the end of the turn', () => watcher.events().some(isResult));

    const caughtUpAt = b.frames.findIndex((f) => f.type === 'caught_up');
    assert.ok(caughtUpAt > 0, 'a replay, then caught_up');
    assert.ok(!b.frames.some((f) => f.type === 'session_snapshot'), 'a replay, not a snapshot');
    const framesAfter = b.frames.slice(caughtUpAt + 1);
    const replayed = b.frames
      .slice(0, caughtUpAt)
      .flatMap((f) => (f.type === 'session_event' ? [f.event] : []));
    const live = framesAfter.flatMap((f) => (f.type === 'session_event' ? [f.event] : []));
    assert.ok(replayed.length >= 10, `the reconnect caught up on what it missed (${replayed.length})`);
    assert.ok(deltas(live).length > 0, 'and deltas kept arriving live after the catch-up');
    assert.ok(!replayed.some(isResult), 'the turn was still streaming during the catch-up');

    assertConsecutive(a.events(), startA.seq + 1, 'the first connection');
    assertConsecutive(b.events(), seenByA + 1, 'the second connection');
    const together: SessionEvent[] = [...a.events(), ...b.events()];
    assertConsecutive(together, startA.seq + 1, 'both connections together: every seq exactly once');
    const end = together.at(-1)?.seq ?? 0;
    await watcher.waitUntil('the watcher to see as far', () => lastSeq(watcher, 0) >= end);
    assert.deepEqual(
      together,
      watcher.events().filter((e) => e.seq > startA.seq && e.seq <= end),
      'exactly what a client that never dropped saw',
    );
    assert.ok(watcherStart.seq <= startA.seq);
    const text = deltas(together).join('');
    assert.equal(text, chunks.join(''));
    const transcript = await open(sessionId);
    const final = await transcript.waitFor('session_snapshot');
    assert.equal(
      lastAssistantText(final),
      text,
      "the text is the agent transcript's final assistant message",
    );
    await Promise.all([transcript.close(), b.close(), watcher.close()]);
  });

  it('a socket dropped just as a turn ends: a follow-up message after the drop runs', async () => {
    const sessionId = await rig.createSession(workspaceId, {});
    const first = await open(sessionId);
    let after = (await first.waitFor('session_snapshot')).seq;
    await first.close();
    for (const round of [1, 2, 3]) {
      const a = await open(sessionId, after);
      await a.waitFor('caught_up');
      // Dropped the moment the turn's `result` arrives: the runtime going idle is never seen by this socket.
      a.ws.on('message', (data) => {
        const frame = safeParseJson(RelayServerFrameSchema, String(data), 64 * 1024 * 1024);
        if (frame.ok && frame.value.type === 'session_event' && isResult(frame.value.event)) a.ws.terminate();
      });
      rig.fake.script(turns.deltas([`turn ${round} `, 'ends ', 'now'], 20));
      a.send({ type: 'queue_message', text: `turn ${round}`, requestId: `turn-${round}` });
      await a.closed;
      assert.ok(a.events().some(isResult), 'the drop came at the end of the turn');
      after = lastSeq(a, after);

      const b = await open(sessionId, after);
      const followUp = `follow-up ${round} after the drop`;
      b.send({ type: 'queue_message', text: followUp, requestId: `follow-${round}` });
      const accepted = await b.waitFor('command_result', (f) => f.requestId === `follow-${round}`);
      assert.equal(accepted.command, 'queue_message');
      await b.waitUntil('the follow-up turn to end', () => b.events().some(isResult));
      assert.deepEqual(b.errors(), [], 'the follow-up was not refused');
      const states = b
        .events()
        .filter((e) => e.payload.type === 'message_state_changed')
        .map((e) => payloadOf(e, 'message_state_changed').newState);
      assert.ok(!states.includes('REJECTED') && !states.includes('FAILED'), `states: ${states.join(',')}`);
      const result = b.events().find(isResult);
      assert.match(JSON.stringify(result?.payload), new RegExp(`echo: ${followUp}`));
      assertConsecutive(b.events(), after + 1, `round ${round} after the drop`);
      after = lastSeq(b, after);
      await b.close();
    }
    const info = await rig.http(`/api/workspaces/${workspaceId}/sessions/${sessionId}`);
    assert.equal(SessionAnswerSchema.parse(info.json).session.sessionRuntime.activity, 'IDLE');
  });

  it('three queued permission prompts, a reconnect from another client, approvals from it: all three seen, one tool result each', async () => {
    const sessionId = await rig.createSession(workspaceId, { permissionMode: 'default' });
    const a = await open(sessionId);
    const startA = await a.waitFor('session_snapshot');
    const names = ['one', 'two', 'three'];
    // Each turn: a Bash call that needs permission, then (after its tool result) a closing text.
    rig.fake.script(
      ...names.flatMap((name) => [
        turns.bash(`echo ${name} > ${name}.txt`, `Create ${name}.txt`),
        turns.text(`${name} done`),
      ]),
    );
    for (const name of names)
      a.send({ type: 'queue_message', text: `make ${name}`, requestId: `make-${name}` });
    await waitForEvent(a, 'the first prompt', (e) => e.payload.type === 'permission_request');
    await a.waitUntil(
      'the other two queued',
      () => a.frames.filter((f) => f.type === 'command_result').length === 3,
    );
    a.ws.terminate();
    await a.closed;
    const seenByA = lastSeq(a, startA.seq);

    // Another client: the pending prompt and the two queued messages are in its snapshot.
    const b = await open(sessionId);
    const snapshot = await b.waitFor('session_snapshot');
    assert.equal(snapshot.pendingInteractiveRequests.length, 1);
    assert.equal(snapshot.queuedMessages.length, 2);
    const seen: string[] = [];
    const first = snapshot.pendingInteractiveRequests[0];
    assert.ok(first && first.kind === 'permission' && first.toolName === 'Bash');
    seen.push(first.requestId);
    b.send({ type: 'permission_response', requestId: first.requestId, allow: true });
    for (const [index, name] of names.entries()) {
      await b.waitUntil(`turn ${name} to end`, () => turnsEnded(b.events()) === index + 1);
      if (index === names.length - 1) break;
      const next = payloadOf(
        await waitForEvent(
          b,
          `prompt ${index + 2}`,
          (e) => e.payload.type === 'permission_request' && !seen.includes(e.payload.requestId),
        ),
        'permission_request',
      );
      seen.push(next.requestId);
      b.send({ type: 'permission_response', requestId: next.requestId, allow: true });
    }
    assert.equal(new Set(seen).size, 3, 'three distinct prompts, all seen by the second client');
    const acks = () =>
      b.frames.filter((f) => f.type === 'command_result' && f.command === 'permission_response');
    await b.waitUntil('three approvals acknowledged', () => acks().length >= 3);
    assert.equal(acks().length, 3);
    assert.deepEqual(b.errors(), []);
    assertConsecutive(b.events(), snapshot.seq + 1, 'the second client');

    // The first client comes back and gets the rest exactly once.
    const back = await open(sessionId, seenByA);
    await back.waitUntil('the last turn', () => turnsEnded(back.events()) === 3);
    const all = [...a.events(), ...back.events()];
    assertConsecutive(all, startA.seq + 1, 'the first client before and after its reconnect');
    const bashUses = toolUses(all).filter((t) => t.name === 'Bash');
    assert.equal(bashUses.length, 3);
    for (const use of bashUses) {
      const results = toolResults(all).filter((r) => r.toolUseId === use.id);
      assert.equal(results.length, 1, `exactly one tool result for ${JSON.stringify(use.input)}`);
      assert.equal(results[0]?.isError, false, results[0]?.text);
      const toModel = rig.fake.requests.flatMap((r) => r.toolResults).filter((r) => r.toolUseId === use.id);
      assert.equal(toModel.length, 1, 'the model got each tool result once');
    }
    const resolved = all
      .filter((e) => e.payload.type === 'interactive_request_resolved')
      .map((e) => payloadOf(e, 'interactive_request_resolved'));
    assert.deepEqual(
      resolved.map((r) => [r.requestId, r.outcome]),
      seen.map((id) => [id, 'allowed']),
    );
    assert.equal(await inWorktree('cat one.txt two.txt three.txt'), 'one\ntwo\nthree\n');
    await Promise.all([b.close(), back.close()]);
  });
});
