/**
 * The session relay and the REST session routes against a real VM: real Temporal, Docker and VM image, the
 * real `claude` in the VM talking to the fake Anthropic API on the host's loopback (VM network `host`), a
 * workspace cloned inside the VM from a bare repository mounted into it (file:// clone URLs, a test
 * deployment's VM_REPO_URL_SCHEMES). The workspace is made through the agent and its read-model row written
 * the way the workspace actor writes it, so this file does not depend on the actor.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { SessionEvent } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { firstOf } from '../../api/auth/principal.js';
import { SessionAnswerSchema, SessionListSchema } from '../../api/contract/workspaces.js';
import { type SessionRoute, sessionRelayRoute } from '../../api/ws/session-relay.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import type { Config } from '../../platform/config.js';
import { createLogger } from '../../platform/logger.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { eventually, removeUserVm } from '../support/vm.js';
import { connectTestAgent } from '../support/vm-terminal.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';
import { deltaText, isResult, SessionRelayClient } from './session-relay-client.js';

const REMOTES_IN_VM = '/srv/remotes';
const MB = 1024 * 1024;

describe('session relay and session routes (real VM, real claude, fake Anthropic API)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-relay-${suffix}-0123456789`, userId: `alice-${suffix}` };
  const bob = { key: `bob-relay-${suffix}-0123456789`, userId: `bob-${suffix}` };
  const workspaceId = `ws-${suffix}`;
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let fake: FakeAnthropic;
  let sandbox: GitSandbox;
  let api: TestApi;
  let route: SessionRoute;
  let sessionId: string;

  const auth = (who: { key: string }) => ({
    authorization: `Bearer ${who.key}`,
    'content-type': 'application/json',
  });
  const relayUrl = (sid: string, options: { workspace?: string; after?: number } = {}) =>
    `${api.api.url.replace('http', 'ws')}/ws/workspaces/${options.workspace ?? workspaceId}/sessions/${sid}${
      options.after !== undefined ? `?after=${options.after}` : ''
    }`;

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    fake = await startFakeAnthropic();
    sandbox = createGitSandbox();
    await sandbox.createRemote('o/r', { 'README.md': 'relay test\n' });
    // The VM user (1000) clones it: git refuses repositories owned by someone else.
    chmodSync(sandbox.dir, 0o755);
    execFileSync('chown', ['-R', '1000:1000', join(sandbox.dir, 'remotes')]);
    const vm: Config['vm'] = {
      ...testConfig.vm,
      networkMode: 'host',
      repoUrlSchemes: ['https', 'ssh', 'file'],
      extraMounts: [{ hostPath: join(sandbox.dir, 'remotes'), containerPath: REMOTES_IN_VM, readOnly: true }],
      extraEnv: {
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'sk-fake-relay-test',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
      },
    };
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm }));
    api = await startTestApi({
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId, [bob.key]: bob.userId },
      taskQueue: worker.taskQueue,
      vmSettings: { agentTimeoutMs: 90_000 },
      repoUrlSchemes: vm.repoUrlSchemes,
      agentIdleCloseMs: 500,
      wsRoutes: (services) => {
        route = sessionRelayRoute({
          authenticator: firstOf(
            createDevKeyAuthenticator({ key: alice.key, userId: alice.userId }),
            createDevKeyAuthenticator({ key: bob.key, userId: bob.userId }),
          ),
          pool: services.pool,
          vms: services.vms,
          workspaces: services.workspaces,
          agents: services.agents,
          log: createLogger('session-relay-test', 'silent'),
          pingIntervalMs: 2000,
        });
        return [route];
      },
    });

    const created = await request(`${api.api.url}/api/vms`, { method: 'POST', headers: auth(alice) });
    assert.equal(created.status, 200, created.text);
    // The workspace, as the actor restores it: cloned in the VM through the agent, then the read model.
    const agent = await connectTestAgent(await api.vms.agentEndpoint(alice.userId), 'relay-test-setup');
    try {
      await agent.createWorkspace({
        source: 'MANUAL',
        id: workspaceId,
        repoUrl: `file://${REMOTES_IN_VM}/o/r.git`,
        name: 'relay test',
        user: 'alice',
      });
      const ready = await agent.waitForWorkspace(workspaceId, { timeoutMs: 120_000 });
      assert.equal(ready.status, 'READY', ready.initError ?? '');
      const now = new Date().toISOString();
      await createWorkspaceReadModelActivities({ pool: db.pool }).recordWorkspaceView({
        id: workspaceId,
        userId: alice.userId,
        name: ready.name,
        status: 'READY',
        location: 'CLOUD',
        repoUrl: ready.repoUrl,
        branchName: ready.branchName,
        baseBranch: ready.baseBranch,
        prUrl: null,
        prNumber: null,
        githubIssueUrl: null,
        githubIssueNumber: null,
        ratchetEnabled: false,
        ratchetState: 'IDLE',
        failureReason: null,
        step: 'done',
        createdAt: now,
        updatedAt: now,
        version: 0,
      });
    } finally {
      agent.close();
    }
  });

  after(async () => {
    for (const userId of [alice.userId, bob.userId]) await removeUserVm(temporal, docker, userId);
    await api?.stop();
    await worker?.stop();
    await fake?.close();
    sandbox?.cleanup();
    await db?.drop();
    await temporal?.connection.close();
  });

  /** Asserts `events` are consecutive seqs from `from`. */
  function assertConsecutive(events: SessionEvent[], from: number, what: string): void {
    for (const [i, event] of events.entries())
      assert.equal(event.seq, from + i, `${what}: event ${i} has seq ${from + i}`);
  }

  it('creates a session over REST and lists it; streamed text arrives as session_event deltas', async () => {
    const created = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions`, {
      method: 'POST',
      headers: auth(alice),
      body: JSON.stringify({ name: 'relay' }),
    });
    assert.equal(created.status, 201, created.text);
    sessionId = SessionAnswerSchema.parse(created.json).session.id;
    const listed = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions`, {
      headers: auth(alice),
    });
    assert.deepEqual(
      SessionListSchema.parse(listed.json).sessions.map((s) => s.id),
      [sessionId],
    );

    const client = await SessionRelayClient.open(relayUrl(sessionId), alice.key);
    const snapshot = await client.waitFor('session_snapshot');
    fake.script(turns.deltas(['Hello', ', relay', ' world', '!'], 30));
    client.send({ type: 'queue_message', text: 'say hello', requestId: 'm1' });
    const result = await client.waitFor('command_result', (f) => f.requestId === 'm1');
    assert.equal(result.command, 'queue_message');
    await client.waitUntil('the end of the turn', () => client.events().some(isResult));
    const events = client.events();
    assertConsecutive(events, snapshot.seq + 1, 'live events');
    const streamed = events.map(deltaText).filter((t): t is string => t !== null);
    assert.ok(streamed.length >= 4, `text came as deltas: ${JSON.stringify(streamed)}`);
    assert.equal(streamed.join(''), 'Hello, relay world!');
    await client.close();
    await eventually('the relay released everything', async () =>
      route.stats(alice.userId).relays === 0 ? true : undefined,
    );
  });

  it('a reconnect with after=N mid-stream gets every event exactly once, text equal to the transcript', async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => `chunk${i} `);
    fake.script(turns.deltas(chunks, 40));
    const first = await SessionRelayClient.open(relayUrl(sessionId), alice.key);
    const snapshot = await first.waitFor('session_snapshot');
    first.send({ type: 'queue_message', text: 'stream a lot', requestId: 'long' });
    await first.waitUntil(
      'some deltas',
      () => first.events().filter((e) => deltaText(e) !== null).length >= 5,
    );
    await first.close();
    const seen = first.events();
    const lastSeen = seen[seen.length - 1]?.seq ?? snapshot.seq;
    assertConsecutive(seen, snapshot.seq + 1, 'before the drop');
    assert.ok(!seen.some(isResult), 'the drop came mid-stream');

    const second = await SessionRelayClient.open(relayUrl(sessionId, { after: lastSeen }), alice.key);
    await second.waitUntil('the end of the turn', () => second.events().some(isResult));
    const caughtUp = await second.waitFor('caught_up');
    // A replay (the events missed, possibly none), then caught_up; never a snapshot.
    assert.ok(!second.frames.some((f) => f.type === 'session_snapshot'), 'a replay, not a snapshot');
    const caughtUpAt = second.frames.indexOf(caughtUp);
    assert.ok(second.frames.slice(0, caughtUpAt).every((f) => f.type === 'session_event'));
    const after = second.events();
    assertConsecutive(after, lastSeen + 1, 'after the reconnect');
    assert.ok(caughtUp.seq >= lastSeen);

    // Together: exactly what a replay of the whole turn holds, each seq once.
    const together = [...seen, ...after];
    const lastSeq = together[together.length - 1]?.seq ?? 0;
    const replay = await SessionRelayClient.open(relayUrl(sessionId, { after: snapshot.seq }), alice.key);
    const replayed = await replay.waitFor('caught_up');
    assert.ok(replayed.seq >= lastSeq);
    assert.deepEqual(
      replay.events().filter((e) => e.seq <= lastSeq),
      together,
    );
    await replay.close();
    await second.close();

    const text = together
      .map(deltaText)
      .filter((t): t is string => t !== null)
      .join('');
    assert.equal(text, chunks.join(''));
    // The agent's transcript (what a new viewer's snapshot shows) says the same.
    const viewer = await SessionRelayClient.open(relayUrl(sessionId), alice.key);
    const transcript = await viewer.waitFor('session_snapshot');
    await viewer.close();
    const lastAssistant = [...transcript.messages].reverse().find((m) => m.message?.type === 'assistant');
    assert.ok(lastAssistant?.message, 'the turn is in the transcript');
    assert.ok(JSON.stringify(lastAssistant.message).includes(JSON.stringify(chunks.join('')).slice(1, -1)));
  });

  it('answers malformed, invalid and oversize frames with error frames and keeps the connection', async () => {
    const client = await SessionRelayClient.open(relayUrl(sessionId), alice.key);
    await client.waitFor('session_snapshot');
    client.send('{not json');
    assert.equal((await client.waitFor('error', (f) => f.code === 'malformed_json')).requestId, undefined);
    client.send({ type: 'bogus', requestId: 'r-bad' });
    assert.equal((await client.waitFor('error', (f) => f.requestId === 'r-bad')).code, 'bad_request');
    client.send({ type: 'queue_message', text: 'x'.repeat(1.5 * MB), requestId: 'r-big' });
    await client.waitFor('error', (f) => f.code === 'frame_too_large');
    client.send({ type: 'remove_queued_message', messageId: 'no-such-message', requestId: 'r-ok' });
    const ok = await client.waitFor('command_result', (f) => f.requestId === 'r-ok');
    assert.deepEqual(ok.result, { removed: false });
    assert.equal(client.ws.readyState, client.ws.OPEN, 'bad frames do not end the relay');
    // Past the hard limit, ws itself closes (1009) without reading the frame.
    client.send('x'.repeat(8 * MB));
    assert.equal((await client.closed).code, 1009);
  });

  it('closes with not_found for an unknown session, and for anyone else’s workspace or session', async () => {
    const unknown = await SessionRelayClient.open(relayUrl('no-such-session'), alice.key);
    assert.equal((await unknown.closed).code, 4404);
    assert.deepEqual(
      unknown.errors().map((e) => e.code),
      ['not_found'],
    );
    const otherWorkspace = await SessionRelayClient.open(
      relayUrl(sessionId, { workspace: `nope-${suffix}` }),
      alice.key,
    );
    assert.equal((await otherWorkspace.closed).code, 4404);

    // Bob, on alice's workspace and session, sends a command at once: it never reaches alice's VM.
    const requestsBefore = fake.requests.length;
    const intruder = await SessionRelayClient.open(relayUrl(sessionId), bob.key);
    intruder.send({ type: 'queue_message', text: `bob was here ${suffix}`, requestId: 'intrude' });
    assert.equal((await intruder.closed).code, 4404);
    assert.deepEqual(
      intruder.errors().map((e) => e.code),
      ['not_found'],
    );
    assert.ok(!intruder.frames.some((f) => f.type === 'command_result' || f.type === 'session_snapshot'));
    assert.equal(api.agents.stats(bob.userId).connections, 0, 'no agent was reached for bob');
    for (const path of [`/sessions/${sessionId}`, '/sessions', `/sessions/${sessionId}/stop`]) {
      const res = await request(`${api.api.url}/api/workspaces/${workspaceId}${path}`, {
        method: path.endsWith('stop') ? 'POST' : 'GET',
        headers: auth(bob),
      });
      assert.equal(res.status, 404, `${path}: ${res.text}`);
      assert.equal(errorCode(res), 'workspace_not_found');
    }
    const viewer = await SessionRelayClient.open(relayUrl(sessionId), alice.key);
    const snapshot = await viewer.waitFor('session_snapshot');
    await viewer.close();
    assert.ok(
      !JSON.stringify(snapshot).includes(`bob was here ${suffix}`),
      "bob's text is not in the session",
    );
    assert.equal(fake.requests.length, requestsBefore, 'no turn ran for bob');
  });

  it('REST: a session created with a prompt starts on it; stop stops it; one agent connection serves all', async () => {
    fake.script(turns.text('prompted answer'));
    const created = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions`, {
      method: 'POST',
      headers: auth(alice),
      body: JSON.stringify({ prompt: 'answer the prompt', id: `prompted-${suffix}` }),
    });
    assert.equal(created.status, 201, created.text);
    const session = SessionAnswerSchema.parse(created.json).session;
    assert.equal(session.workspaceId, workspaceId);
    const viewer = await SessionRelayClient.open(relayUrl(session.id, { after: 0 }), alice.key);
    await viewer.waitUntil('the prompt answered', () =>
      viewer.frames.some((f) => JSON.stringify(f).includes('prompted answer')),
    );
    // The relay and the REST calls share the VM's one agent connection.
    assert.equal(api.agents.stats(alice.userId).connections, 1);
    const stopped = await request(
      `${api.api.url}/api/workspaces/${workspaceId}/sessions/${session.id}/stop`,
      {
        method: 'POST',
        headers: auth(alice),
      },
    );
    assert.equal(stopped.status, 200, stopped.text);
    await viewer.close();
    const missing = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions/no-such-session`, {
      headers: auth(alice),
    });
    assert.equal(missing.status, 404, missing.text);
    assert.equal(errorCode(missing), 'session_not_found');
    await eventually('the unused connection closed', async () =>
      api.agents.stats(alice.userId).connections === 0 ? true : undefined,
    );
  });
});
