/**
 * The session relay's output cap against a client that stops reading, with a real VM running the real
 * `claude` against the fake Anthropic API (set up like session-relay.test.ts).
 *
 * Two api processes' worth of relay routes on the same services: `slowApi` caps unread output at 64 KiB and
 * never pings (so only the cap can end a paused client, not a ping timeout); `api` has the production
 * limits. A client on `slowApi` pauses mid-turn; once the kernel's socket buffers and then the 64 KiB are
 * full the relay cuts it off with too_slow (1008) and holds nothing more for it; the client, still
 * mid-turn, reconnects to `api` with after=<the last seq it got> — as one whose api died would — and gets
 * every remaining event exactly once.
 *
 * The turn is paced (1 ms per delta) so the reconnect lands while it still streams: the agent's replay
 * ring (5000 events by default, not settable through the VM's deployment settings) then only has to hold
 * the events of the moments between the cut and the reconnect.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { type SessionEvent, safeParseJson } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { type RelayServerFrame, RelayServerFrameSchema } from '../../api/contract/session-relay.js';
import { SessionAnswerSchema } from '../../api/contract/workspaces.js';
import { type SessionRelayLimits, type SessionRoute, sessionRelayRoute } from '../../api/ws/session-relay.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import type { Config } from '../../platform/config.js';
import { createLogger } from '../../platform/logger.js';
import { startTestApi, type TestApi, type TestApiServices } from '../support/api.js';
import { request } from '../support/http.js';
import { RawWsClient } from '../support/raw-ws.js';
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
/** Enough deltas that the turn outlasts the cut-off and the reconnect; 40 characters each (720 KB). */
const CHUNKS = Array.from({ length: 18_000 }, (_, i) => `${String(i).padStart(6, '0')}:${'x'.repeat(33)}`);

describe('session relay backpressure: a client that stops reading (real VM, real claude, fake API)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-bp-${suffix}-0123456789`, userId: `alice-bp-${suffix}` };
  const workspaceId = `ws-bp-${suffix}`;
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let fake: FakeAnthropic;
  let sandbox: GitSandbox;
  let api: TestApi;
  let slowApi: TestApi;
  let slowRoute: SessionRoute;

  const auth = { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' };
  const relayUrl = (on: TestApi, sid: string, after?: number) =>
    `${on.api.url.replace('http', 'ws')}/ws/workspaces/${workspaceId}/sessions/${sid}${
      after !== undefined ? `?after=${after}` : ''
    }`;
  const makeRoute = (services: TestApiServices, limits: Partial<SessionRelayLimits>) =>
    sessionRelayRoute({
      authenticator: createDevKeyAuthenticator({ key: alice.key, userId: alice.userId }),
      pool: services.pool,
      vms: services.vms,
      workspaces: services.workspaces,
      agents: services.agents,
      log: createLogger('session-relay-backpressure-test', 'silent'),
      limits,
    });

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    fake = await startFakeAnthropic();
    sandbox = createGitSandbox();
    await sandbox.createRemote('o/r', { 'README.md': 'backpressure test\n' });
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
        ANTHROPIC_API_KEY: 'sk-fake-backpressure-test',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
      },
    };
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm }));
    const common = {
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId },
      taskQueue: worker.taskQueue,
      vmSettings: { agentTimeoutMs: 90_000 },
      repoUrlSchemes: vm.repoUrlSchemes,
      agentIdleCloseMs: 500,
    };
    api = await startTestApi({ ...common, wsRoutes: (services) => [makeRoute(services, {})] });
    slowApi = await startTestApi({
      ...common,
      wsRoutes: (services) => {
        // Never pinged: a paused client would otherwise end as ping_timeout. The long close grace lets the
        // client, once it reads again, still find the error frame and the close frame behind the backlog.
        slowRoute = makeRoute(services, {
          maxBufferedBytes: 64 * 1024,
          pingIntervalMs: 10 * 60_000,
          closeGraceMs: 60_000,
        });
        return [slowRoute];
      },
    });

    const created = await request(`${api.api.url}/api/vms`, { method: 'POST', headers: auth });
    assert.equal(created.status, 200, created.text);
    // The workspace, as the actor restores it: cloned in the VM through the agent, then the read model.
    const agent = await connectTestAgent(await api.vms.agentEndpoint(alice.userId), 'backpressure-setup');
    try {
      await agent.createWorkspace({
        source: 'MANUAL',
        id: workspaceId,
        repoUrl: `file://${REMOTES_IN_VM}/o/r.git`,
        name: 'backpressure test',
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
    await removeUserVm(temporal, docker, alice.userId);
    await slowApi?.stop();
    await api?.stop();
    await worker?.stop();
    await fake?.close();
    sandbox?.cleanup();
    await db?.drop();
    await temporal?.connection.close();
  });

  function parseFrame(text: string): RelayServerFrame {
    const parsed = safeParseJson(RelayServerFrameSchema, text, 64 * 1024 * 1024);
    if (!parsed.ok) throw parsed.error;
    return parsed.value;
  }

  function assertConsecutive(events: SessionEvent[], from: number, what: string): void {
    for (const [i, event] of events.entries())
      assert.equal(event.seq, from + i, `${what}: event ${i} has seq ${from + i}`);
  }

  it('cuts off a paused client with too_slow, holds nothing for it, and a reconnect with after=<last seq> gets the rest exactly once', async () => {
    const created = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'backpressure' }),
    });
    assert.equal(created.status, 201, created.text);
    const sessionId = SessionAnswerSchema.parse(created.json).session.id;
    const tooSlowBefore = slowRoute.stats().ended.too_slow ?? 0;

    const raw = await RawWsClient.open(relayUrl(slowApi, sessionId), [
      'ffc.session.v1',
      `bearer.${alice.key}`,
    ]);
    const snapshot = await eventually('the snapshot', async () => {
      const first = raw.texts[0];
      return first === undefined ? undefined : parseFrame(first);
    });
    if (snapshot.type !== 'session_snapshot') assert.fail(`first frame: ${snapshot.type}`);
    fake.script(turns.deltas(CHUNKS, 1));
    raw.sendText(JSON.stringify({ type: 'queue_message', text: 'stream a lot', requestId: 'long' }));
    await eventually(
      'the first deltas',
      async () => (raw.texts.filter((t) => t.includes('"text_delta"')).length >= 20 ? true : undefined),
      120_000,
      20,
    );
    raw.stopReading();

    // The kernel's buffers fill first, then the relay's 64 KiB: the cut.
    await eventually(
      'the too_slow cut-off',
      async () => ((slowRoute.stats().ended.too_slow ?? 0) === tooSlowBefore + 1 ? true : undefined),
      120_000,
      20,
    );
    // Released at once: no relay, lease, subscription, ping timer or queued command is left for it.
    const held = slowRoute.stats(alice.userId);
    assert.deepEqual(
      {
        relays: held.relays,
        agentLeases: held.agentLeases,
        subscriptions: held.subscriptions,
        pingTimers: held.pingTimers,
        queuedCommands: held.queuedCommands,
        queuedCommandBytes: held.queuedCommandBytes,
      },
      {
        relays: 0,
        agentLeases: 0,
        subscriptions: 0,
        pingTimers: 0,
        queuedCommands: 0,
        queuedCommandBytes: 0,
      },
    );

    // Reading again, the client gets what was already on its way, then why it was cut off and the close.
    raw.resumeReading();
    await eventually('the close frame', async () => (raw.closeCode !== null ? true : undefined), 60_000, 20);
    raw.destroy();
    assert.equal(raw.closeCode, 1008);
    const frames = raw.texts.map(parseFrame);
    const last = frames[frames.length - 1];
    assert.ok(last?.type === 'error' && last.code === 'too_slow', `last frame: ${JSON.stringify(last)}`);
    const seen = frames
      .filter((f): f is Extract<RelayServerFrame, { type: 'session_event' }> => f.type === 'session_event')
      .map((f) => f.event);
    assertConsecutive(seen, snapshot.seq + 1, 'before the cut-off');
    assert.ok(!seen.some(isResult), 'the cut-off came mid-turn');
    const lastSeen = seen[seen.length - 1]?.seq ?? snapshot.seq;
    // The relay's agent connection is given back too (the idle close is 500 ms).
    await eventually('the slow api released its agent connection', async () =>
      slowApi.agents.stats(alice.userId).connections === 0 ? true : undefined,
    );

    const again = await SessionRelayClient.open(relayUrl(api, sessionId, lastSeen), alice.key);
    await again.waitUntil('the end of the turn', () => again.events().some(isResult), 180_000);
    assert.ok(!again.frames.some((f) => f.type === 'session_snapshot'), 'a replay, not a snapshot');
    const caughtUp = await again.waitFor('caught_up');
    assert.ok(
      again.frames.slice(0, again.frames.indexOf(caughtUp)).every((f) => f.type === 'session_event'),
      'only missed events before caught_up',
    );
    const rest = again.events();
    assertConsecutive(rest, lastSeen + 1, 'after the reconnect');
    await again.close();

    const text = [...seen, ...rest]
      .map(deltaText)
      .filter((t): t is string => t !== null)
      .join('');
    assert.equal(text.length, CHUNKS.join('').length, 'every delta once');
    assert.equal(text, CHUNKS.join(''));
  });
});
