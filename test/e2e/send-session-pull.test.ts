/**
 * End to end through the real stack (test/support/cloud-rig.ts: api and worker processes, a real VM, the
 * real claude in it against the fake Anthropic API): a workspace sent from a bare repository becomes READY,
 * a session streams its reply token by token over the relay and writes a file into the VM's worktree, and
 * pull hands the workspace back, refused while a ratchet fixer works.
 */
import assert from 'node:assert/strict';
import type { SessionEvent } from '@factory-factory/core/protocol';
import { ErrorBodySchema, PullResultSchema, WorkspaceAnswerSchema } from '../../api/contract/workspaces.js';
import { turns } from '../../core/test/support/fake-anthropic.js';
import { SessionRelayClient } from '../api/session-relay-client.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import { assertConsecutive, deltas, isResult, toolResults, toolUses, turnsEnded } from './events.js';

describe('e2e: send → READY → session → stream → files → pull (real api, worker, VM, claude)', function () {
  this.timeout(6 * 60_000);
  let rig: CloudRig;

  before(async () => {
    rig = await startCloudRig('send');
  });

  after(async () => {
    await rig?.stop();
  });

  it('streams a session in a workspace sent from a bare repo, writes its file in the VM, and pulls it', async () => {
    const workspaceId = `ws-send-${rig.suffix}`;
    const { sent, ready } = await rig.sendAndWaitReady(workspaceId);
    assert.equal(sent.status, 'PROVISIONING', 'the send answers at once');
    assert.equal(sent.location, 'CLOUD');
    assert.equal(ready.branchName, 'feature-x');
    assert.equal(ready.repoUrl, rig.repoUrlInVm);
    const worktree = rig.worktreeInVm(workspaceId);
    assert.equal(
      await rig.execInVm(`git -C ${worktree} rev-parse --abbrev-ref HEAD && cat ${worktree}/feature.txt`),
      'feature-x\nfeature x\n',
      "the worktree is on the branch, with the branch's commit",
    );

    // A session whose first message is the prompt; its reply streams slowly enough to be watched live.
    const chunks = ['Hello', ' from', ' the', ' cloud', ' VM', ',', ' token', ' by', ' token', '.'];
    rig.fake.script(turns.deltas(chunks, 120));
    const sessionId = await rig.createSession(workspaceId, {
      prompt: 'say hello',
      permissionMode: 'acceptEdits',
      name: 'e2e',
    });
    const client = await SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId, 0), rig.user.key);
    await client.waitUntil('the first turn to end', () => turnsEnded(client.events()) === 1);
    assertConsecutive(client.events(), 1, 'from the first event of the session');
    const streamed = deltas(client.events());
    assert.deepEqual(streamed, chunks, 'every token is its own session_event, in order');

    // The agent writes a file with Write (acceptEdits: no prompt), then says so.
    rig.fake.script(
      turns.write('e2e-notes.txt', 'written by claude in the cloud\n'),
      turns.text('Wrote it.'),
    );
    client.send({ type: 'queue_message', text: 'write the notes file', requestId: 'write' });
    const accepted = await client.waitFor('command_result', (f) => f.requestId === 'write');
    assert.equal(accepted.command, 'queue_message');
    await client.waitUntil('the write turn to end', () => turnsEnded(client.events()) === 2);
    assertConsecutive(client.events(), 1, 'the whole session');
    const writes = toolUses(client.events()).filter((t) => t.name === 'Write');
    assert.equal(writes.length, 1);
    const results = toolResults(client.events()).filter((r) => r.toolUseId === writes[0]?.id);
    assert.equal(results.length, 1, 'exactly one tool result for the Write');
    assert.equal(results[0]?.isError, false, results[0]?.text);
    assert.ok(
      !client.events().some((e) => e.payload.type === 'permission_request'),
      'acceptEdits asks nothing',
    );
    assert.deepEqual(client.errors(), []);
    assert.equal(
      await rig.execInVm(`cat ${worktree}/e2e-notes.txt`),
      'written by claude in the cloud\n',
      "the file is in the VM's worktree",
    );
    await client.close();

    const pulled = await rig.http(`/api/workspaces/${workspaceId}/pull`, { method: 'POST' });
    assert.equal(pulled.status, 200, pulled.text);
    const answer = PullResultSchema.parse(pulled.json);
    assert.equal(answer.state.workspaceId, workspaceId);
    assert.equal(answer.state.location, 'DESKTOP');
    assert.equal(answer.state.branchName, 'feature-x');
    assert.equal(answer.state.repoUrl, rig.repoUrlInVm);
    const summary = answer.sessions.find((s) => s.id === sessionId);
    assert.ok(summary, `the session is in the pull: ${JSON.stringify(answer.sessions)}`);
    assert.equal(summary.workflow, 'followup');
    assert.ok(summary.messageCount > 0);
    const after = WorkspaceAnswerSchema.parse((await rig.http(`/api/workspaces/${workspaceId}`)).json);
    assert.equal(after.workspace.location, 'DESKTOP');
    // Pulled: the relay no longer reaches the session (the desktop owns the workspace now).
    const late = await SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId), rig.user.key);
    assert.equal((await late.closed).code, 4409);
  });

  it('pull is refused with 409 while a ratchet fixer session works, and succeeds once its turn ends', async () => {
    const workspaceId = `ws-fixer-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId, { branchName: 'feature-y' });
    // The REST API does not create fixers: the ratchet does, through the agent, as here.
    const agent = await rig.agent('e2e-ratchet');
    try {
      const fixer = await agent.createSession({ workspaceId, workflow: 'ratchet', name: 'fixer' });
      const feed = await agent.subscribeSession(fixer.id);
      const events: SessionEvent[] = [];
      feed.on((event) => events.push(event));
      const chunks = Array.from({ length: 60 }, (_, i) => `fix${i} `);
      rig.fake.script(turns.deltas(chunks, 100));
      await agent.sendMessage({ sessionId: fixer.id, text: 'CI failed: fix it' });
      const deadline = Date.now() + 90_000;
      while (deltas(events).length < 2) {
        assert.ok(Date.now() < deadline, 'the fixer started streaming');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }

      const refused = await rig.http(`/api/workspaces/${workspaceId}/pull`, { method: 'POST' });
      assert.equal(refused.status, 409, refused.text);
      const error = ErrorBodySchema.parse(refused.json).error;
      assert.equal(error.code, 'fixer_active');
      assert.match(error.message, /Fixer session active — wait or stop it first/);
      assert.ok(!events.some(isResult), 'the refusal came while the fixer was working');
      const still = WorkspaceAnswerSchema.parse((await rig.http(`/api/workspaces/${workspaceId}`)).json);
      assert.equal(still.workspace.location, 'CLOUD', 'a refused pull changes nothing');
      assert.equal(still.workspace.status, 'READY');

      while (!events.some(isResult)) {
        assert.ok(Date.now() < deadline + 60_000, 'the fixer turn ended');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(deltas(events), chunks, 'the fixer ran its whole turn, untouched by the refused pull');
      // The turn's end and the session reading IDLE are two events; once it reads IDLE the fixer is done.
      while ((await agent.getSession(fixer.id)).session.sessionRuntime.activity !== 'IDLE') {
        assert.ok(Date.now() < deadline + 60_000, 'the fixer session went idle');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const pulled = await rig.http(`/api/workspaces/${workspaceId}/pull`, { method: 'POST' });
      assert.equal(pulled.status, 200, pulled.text);
      const answer = PullResultSchema.parse(pulled.json);
      assert.equal(answer.state.location, 'DESKTOP');
      assert.deepEqual(
        answer.sessions.map((s) => [s.id, s.workflow]),
        [[fixer.id, 'ratchet']],
      );
      await feed.close();
    } finally {
      agent.close();
    }
  });
});
