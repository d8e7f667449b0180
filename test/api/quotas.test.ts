/**
 * Quotas over HTTP: the api (in process, quotas on) with a real Temporal dev server, a real worker running
 * the production workflows and activities, real Docker and Postgres. Compute minutes are checked before a
 * VM is started (exactly at the limit is exceeded) and enforced on a running VM by the usage actor, which
 * suspends it with a reason GET /api/vms/me shows; an upgrade resumes it. Cloud workspaces are checked
 * before a send. Every refusal is a 402 naming the limit, the use, the maximum and where to upgrade.
 */
import assert from 'node:assert/strict';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { UsageAnswerSchema } from '../../api/contract/usage.js';
import { ErrorBodySchema } from '../../api/contract/workspaces.js';
import { usageActorNotifier } from '../../api/services/billing-service.js';
import { workflowIds } from '../../workflows/ids.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import { VmViewSchema } from '../../workflows/vm/messages.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { type HttpResult, request } from '../support/http.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { eventually, removeUserVm } from '../support/vm.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

describe('quotas: compute minutes and cloud workspaces (api, real worker, VM, Postgres)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const who = (name: string) => ({ key: `${name}-quota-${suffix}-0123456789`, userId: `${name}-${suffix}` });
  const atLimit = who('atlimit');
  const spender = who('spender');
  const crowded = who('crowded');
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let api: TestApi;
  const upgradeUrl = new URL('/billing', testConfig.api.publicUrl).toString();

  const call = (user: { key: string }, path: string, method = 'GET', body?: unknown): Promise<HttpResult> =>
    request(`${api.api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  /** Minutes used earlier this period, as the usage actor would have recorded them. */
  async function used(userId: string, minutes: number): Promise<void> {
    const { startMs } = billingPeriodOf(Date.now());
    await db.pool.query(
      `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes,
                                  idempotency_key, reported_at)
       VALUES ($1, 'earlier', to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0 + 1), $3 * 60, $3, $4, now())`,
      [userId, startMs, minutes, `seed:${userId}:${minutes}`],
    );
  }

  function limitError(result: HttpResult) {
    assert.equal(result.status, 402, result.text);
    return ErrorBodySchema.parse(result.json).error;
  }

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    // Billing off (no Stripe client): slices are recorded and their reports skipped.
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm: testConfig.vm }));
    api = await startTestApi({
      databaseUrl: db.url,
      users: Object.fromEntries([atLimit, spender, crowded].map((u) => [u.key, u.userId])),
      taskQueue: worker.taskQueue,
      quotas: true,
    });
    for (const u of [atLimit, spender, crowded])
      await db.pool.query('INSERT INTO users (id) VALUES ($1)', [u.userId]);
  });

  after(async () => {
    for (const u of [atLimit, spender, crowded]) {
      await temporal?.workflow
        .getHandle(workflowIds.usage(u.userId))
        .terminate('test over')
        .catch(() => {});
      if (temporal && docker) await removeUserVm(temporal, docker, u.userId);
    }
    await api?.stop();
    await worker?.stop();
    await db?.drop();
    await temporal?.connection.close();
  });

  it('refuses to provision exactly at the limit, with a 402 naming the limit, and starts nothing', async () => {
    await used(atLimit.userId, 600);
    const error = limitError(await call(atLimit, '/api/vms', 'POST'));
    assert.equal(error.code, 'quota_compute_minutes');
    assert.deepEqual(error.limit, { name: 'compute_minutes', used: 600, max: 600, upgradeUrl });
    assert.match(error.message, /Compute quota exceeded: 600 of the Free plan's 600 compute minutes/);
    assert.ok(error.message.includes(upgradeUrl), 'the message says where to upgrade');
    await assert.rejects(
      temporal.workflow.getHandle(workflowIds.vm(atLimit.userId)).describe(),
      WorkflowNotFoundError,
      'no VM actor was started',
    );
    // The same limit guards a send: it would start the VM.
    const send = limitError(
      await call(atLimit, '/api/workspaces', 'POST', { issueUrl: 'https://github.com/o/r/issues/1' }),
    );
    assert.equal(send.code, 'quota_compute_minutes');
  });

  it('suspends a running VM whose minutes run out, says why on GET /api/vms/me, refuses it, and resumes it after an upgrade', async () => {
    await used(spender.userId, 599);
    const started = await call(spender, '/api/vms', 'POST');
    assert.equal(started.status, 200, `one minute below the limit the VM starts: ${started.text}`);

    // One more minute of running time: the usage actor spends the last minute and holds the VM.
    const held = await eventually(
      'the VM to be suspended for quota',
      async () => {
        const me = await call(spender, '/api/vms/me');
        const vm = VmViewSchema.parse((me.json as { vm: unknown }).vm);
        return vm.status === 'SUSPENDED' && vm.operation === null && vm.suspendReason === 'quota_exhausted'
          ? vm
          : undefined;
      },
      180_000,
      1_000,
    );
    assert.match(held.suspendMessage ?? '', /compute minutes are used up \(600 of the Free plan's 600\)/);
    assert.equal((await docker.getContainer(`ffc-vm-${spender.userId}`).inspect()).State.Running, false);

    const refused = limitError(await call(spender, '/api/vms', 'POST'));
    assert.equal(refused.code, 'quota_compute_minutes');
    assert.deepEqual(refused.limit, { name: 'compute_minutes', used: 600, max: 600, upgradeUrl });
    const usage = UsageAnswerSchema.parse((await call(spender, '/api/usage')).json);
    assert.deepEqual(usage.minutes, { used: 600, limit: 600 });

    // An upgrade, as billing's webhook records it and tells the usage actor.
    await db.pool.query("UPDATE users SET plan = 'PRO' WHERE id = $1", [spender.userId]);
    await usageActorNotifier({
      temporal,
      taskQueue: worker.taskQueue,
      gracePeriodMs: testConfig.billing.gracePeriodMs,
    })(spender.userId, { plan: 'PRO', paymentFailedAtMs: null, changedAtMs: Date.now() });
    const resumed = await eventually(
      'the VM to resume by itself after the upgrade',
      async () => {
        const vm = VmViewSchema.parse(((await call(spender, '/api/vms/me')).json as { vm: unknown }).vm);
        return (vm.status === 'READY' || vm.status === 'ONBOARDING') && vm.operation === null
          ? vm
          : undefined;
      },
      120_000,
      500,
    );
    assert.equal(resumed.suspendReason, null, 'the reason is gone with the hold');
    const again = await call(spender, '/api/vms', 'POST');
    assert.equal(again.status, 200, again.text);
    const pro = UsageAnswerSchema.parse((await call(spender, '/api/usage')).json);
    assert.equal(pro.minutes.limit, 6000);
  });

  it("refuses a send beyond the plan's cloud workspaces (exactly at the limit), counting only live cloud ones", async () => {
    const existing = `ws-live-${suffix}`;
    await db.pool.query(
      "INSERT INTO workspaces (id, user_id, name, location, status) VALUES ($1, $2, 'live', 'CLOUD', 'READY')",
      [existing, crowded.userId],
    );
    await db.pool.query(
      `INSERT INTO workspaces (id, user_id, name, location, status) VALUES
         ($1, $3, 'gone', 'CLOUD', 'ARCHIVED'), ($2, $3, 'home', 'DESKTOP', 'READY')`,
      [`ws-archived-${suffix}`, `ws-desktop-${suffix}`, crowded.userId],
    );
    const error = limitError(
      await call(crowded, '/api/workspaces', 'POST', { issueUrl: 'https://github.com/o/r/issues/2' }),
    );
    assert.equal(error.code, 'quota_cloud_workspaces');
    assert.deepEqual(error.limit, { name: 'cloud_workspaces', used: 1, max: 1, upgradeUrl });
    assert.match(error.message, /1 of the Free plan's 1 cloud workspaces are in use; archive or pull one/);
    const quotas = api.quotas;
    assert.ok(quotas);
    // Sending the workspace that is already in the cloud again is the same workspace, not another.
    await quotas.checkWorkspaceSend(crowded.userId, existing);
    await db.pool.query("UPDATE workspaces SET status = 'ARCHIVED' WHERE id = $1", [existing]);
    await quotas.checkWorkspaceSend(crowded.userId, `ws-new-${suffix}`);
    await db.pool.query("UPDATE users SET plan = 'TEAM' WHERE id = $1", [crowded.userId]);
    await db.pool.query("UPDATE workspaces SET status = 'READY', location = 'CLOUD' WHERE user_id = $1", [
      crowded.userId,
    ]);
    await quotas.checkWorkspaceSend(crowded.userId, `ws-new-${suffix}`);
    const usage = UsageAnswerSchema.parse((await call(crowded, '/api/usage')).json);
    assert.deepEqual(usage.workspaces, { active: 3, limit: 20 });
  });
});
