/**
 * An open but idle dashboard tab neither keeps the VM running nor keeps its minutes counting. A real VM
 * (Temporal dev server, real worker, Docker, the VM image with the real `claude`, the fake Anthropic API),
 * a workspace and a session in it, and the session relay's WebSocket open and silent: the only traffic is
 * the relay's pings (answered by the client's ws library) and the VM actor's own health checks every two
 * seconds. Neither is user activity, so the VM is suspended at its idle timeout, the usage actor closes
 * the last slice at that moment, and a minute later nothing more has been metered.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { SessionAnswerSchema } from '../../api/contract/workspaces.js';
import { type SessionRoute, sessionRelayRoute } from '../../api/ws/session-relay.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../core/test/support/fake-anthropic.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import type { Config } from '../../platform/config.js';
import { createLogger } from '../../platform/logger.js';
import { workflowIds } from '../../workflows/ids.js';
import { type UsageView, usageStateQuery } from '../../workflows/usage/messages.js';
import { type VmView, VmViewSchema } from '../../workflows/vm/messages.js';
import { SessionRelayClient } from '../api/session-relay-client.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { request } from '../support/http.js';
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

const REMOTES_IN_VM = '/srv/remotes';
const IDLE_TIMEOUT_MS = 20_000;
const PING_INTERVAL_MS = 1_000;

describe('usage: an idle dashboard tab does not keep the VM running or its minutes counting (real VM)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-idle-${suffix}-0123456789`, userId: `alice-idle-${suffix}` };
  const workspaceId = `ws-idle-${suffix}`;
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let fake: FakeAnthropic;
  let sandbox: GitSandbox;
  let api: TestApi;
  let route: SessionRoute;

  const auth = { authorization: `Bearer ${alice.key}`, 'content-type': 'application/json' };
  const myVm = async (): Promise<VmView> =>
    VmViewSchema.parse(
      ((await request(`${api.api.url}/api/vms/me`, { headers: auth })).json as { vm: unknown }).vm,
    );
  const usageState = (): Promise<UsageView> =>
    temporal.workflow.getHandle(workflowIds.usage(alice.userId)).query<UsageView>(usageStateQuery);
  async function slices(): Promise<{ endMs: number; minutes: number }[]> {
    const { rows } = await db.pool.query<{ end_ms: string; minutes: number }>(
      `SELECT (extract(epoch FROM period_end) * 1000)::bigint::text AS end_ms, minutes
         FROM usage_records WHERE user_id = $1 ORDER BY period_start`,
      [alice.userId],
    );
    return rows.map((r) => ({ endMs: Number(r.end_ms), minutes: r.minutes }));
  }

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    fake = await startFakeAnthropic();
    sandbox = createGitSandbox();
    await sandbox.createRemote('o/r', { 'README.md': 'idle tab\n' });
    chmodSync(sandbox.dir, 0o755);
    execFileSync('chown', ['-R', '1000:1000', join(sandbox.dir, 'remotes')]);
    const vm: Config['vm'] = {
      ...testConfig.vm,
      networkMode: 'host',
      repoUrlSchemes: ['https', 'ssh', 'file'],
      extraMounts: [{ hostPath: join(sandbox.dir, 'remotes'), containerPath: REMOTES_IN_VM, readOnly: true }],
      extraEnv: {
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'sk-fake-idle-test',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
      },
    };
    // Billing off: slices are recorded, their meter reports skipped.
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm }));
    api = await startTestApi({
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId },
      taskQueue: worker.taskQueue,
      // Health checks every 2 s: the actor's own traffic to the VM, which must not count as use.
      vmSettings: { agentTimeoutMs: 90_000, idleTimeoutMs: IDLE_TIMEOUT_MS, healthIntervalMs: 2_000 },
      repoUrlSchemes: vm.repoUrlSchemes,
      quotas: true,
      wsRoutes: (services) => {
        route = sessionRelayRoute({
          authenticator: createDevKeyAuthenticator({ key: alice.key, userId: alice.userId }),
          pool: services.pool,
          vms: services.vms,
          workspaces: services.workspaces,
          agents: services.agents,
          log: createLogger('usage-idle-test', 'silent'),
          pingIntervalMs: PING_INTERVAL_MS,
        });
        return [route];
      },
    });
    await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING', [alice.userId]);

    const created = await request(`${api.api.url}/api/vms`, { method: 'POST', headers: auth });
    assert.equal(created.status, 200, created.text);
    const agent = await connectTestAgent(await api.vms.agentEndpoint(alice.userId), 'idle-test-setup');
    try {
      await agent.createWorkspace({
        source: 'MANUAL',
        id: workspaceId,
        repoUrl: `file://${REMOTES_IN_VM}/o/r.git`,
        name: 'idle tab',
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
    await temporal?.workflow
      .getHandle(workflowIds.usage(alice.userId))
      .terminate('test over')
      .catch(() => {});
    if (temporal && docker) await removeUserVm(temporal, docker, alice.userId);
    await api?.stop();
    await worker?.stop();
    await fake?.close();
    sandbox?.cleanup();
    await db?.drop();
    await temporal?.connection.close();
  });

  it('suspends the VM at its idle timeout with a silent relay socket open, and meters nothing after', async () => {
    const created = await request(`${api.api.url}/api/workspaces/${workspaceId}/sessions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'idle tab' }),
    });
    assert.equal(created.status, 201, created.text);
    const sessionId = SessionAnswerSchema.parse(created.json).session.id;
    const url = `${api.api.url.replace('http', 'ws')}/ws/workspaces/${workspaceId}/sessions/${sessionId}`;
    const tab = await SessionRelayClient.open(url, alice.key);
    await tab.waitFor('session_snapshot');
    // Creating the session told the VM of it without waiting (a touch a moment after the answer): the
    // tab's idle time is measured from after that.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const openedAt = Date.now();
    let pings = 0;
    tab.ws.on('ping', () => {
      pings++;
    });
    let closedAt: number | null = null;
    void tab.closed.then(() => {
      closedAt = Date.now();
    });

    const suspended = await eventually(
      'the VM to be suspended as idle',
      async () => {
        const vm = await myVm();
        return vm.status === 'SUSPENDED' && vm.operation === null ? vm : undefined;
      },
      IDLE_TIMEOUT_MS + 90_000,
      500,
    );
    const suspendedAtMs = Date.parse(suspended.suspendedAt ?? '');
    const lastActiveMs = Date.parse(suspended.lastActiveAt);
    assert.ok(lastActiveMs <= openedAt, 'nothing the open tab did counted as activity');
    assert.ok(suspendedAtMs - lastActiveMs >= IDLE_TIMEOUT_MS, 'it ran its whole idle timeout, not less');
    assert.ok(
      closedAt === null || closedAt >= suspendedAtMs - 1_000,
      'the tab was open until the VM was suspended (the relay closes it only when the VM goes)',
    );
    assert.ok(pings >= Math.floor(IDLE_TIMEOUT_MS / PING_INTERVAL_MS / 2), `the tab was pinged (${pings})`);
    assert.ok((suspended.lastHealthAt ?? '') > suspended.lastActiveAt, 'health checks ran while idle');
    assert.equal(suspended.suspendReason, null, 'idle, not a quota');

    // The usage actor closed the last slice when the VM stopped.
    const stopped = await eventually('the usage actor to stop metering', async () => {
      const view = await usageState().catch(() => undefined);
      return view && view.running === null && view.unreportedSlices === 0 ? view : undefined;
    });
    const metered = await slices();
    const lastEnd = metered.at(-1)?.endMs ?? 0;
    assert.ok(Math.abs(suspendedAtMs - lastEnd) < 1_000, 'the last slice ends at the suspension');
    const total = metered.reduce((sum, s) => sum + s.minutes, 0);
    assert.equal(stopped.minutes.used, total);

    // A whole slice length later, with the tab still around: nothing more was metered, the VM still sleeps.
    await new Promise((resolve) => setTimeout(resolve, 65_000));
    assert.deepEqual(await slices(), metered, 'no minutes after the suspension');
    assert.equal((await usageState()).minutes.used, total);
    assert.equal((await myVm()).status, 'SUSPENDED', 'the idle tab did not wake the VM');
    await tab.close();
  });
});
