/**
 * The usage:<userId> actor driven by a real vm:<userId> actor: Temporal's time-skipping server (minutes of
 * running time pass in a moment) with the real activities (Docker, the VM's agent, Postgres). The VM actor
 * tells the usage actor its transitions (signal-with-start through an activity); the usage actor turns
 * them into one-minute slices in usage_records, reports each to the meter once, and holds the VM when the
 * period's minutes are spent, until an upgrade.
 *
 * The meter here is a stand-in with the contract of BILLING's reportComputeMinutes (idempotent on the
 * identifier); test/workflows/usage-worker-crash.test.ts runs the real one against the fake Stripe.
 */
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import type { MeterEventActivities, ReportComputeMinutesInput } from '../../activities/usage/types.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultUsageSettings,
  planChangedSignal,
  type UsageView,
  usageStateQuery,
  vmTransitionSignal,
} from '../../workflows/usage/messages.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import {
  defaultVmSettings,
  ensureReadyUpdate,
  suspendForQuotaSignal,
  suspendUpdate,
  terminateUpdate,
  VmErrorType,
  type VmView,
  VmViewSchema,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
import { vmWorkflow } from '../../workflows/vm/workflow.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import {
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { createTimeSkippingEnvironment } from '../support/temporal-test-server.js';
import { eventually } from '../support/vm.js';
import { workflowBundle } from '../support/worker.js';

/** BILLING's contract, remembering what it was asked: a repeated identifier is a duplicate, not a second event. */
function recordingMeter() {
  const events = new Map<string, ReportComputeMinutesInput>();
  const calls: string[] = [];
  const meter: MeterEventActivities = {
    async reportComputeMinutes(input) {
      calls.push(input.identifier);
      const duplicate = events.has(input.identifier);
      if (!duplicate) events.set(input.identifier, input);
      return { delivered: true, duplicate };
    },
  };
  return { meter, events, calls };
}

type UsageRow = {
  key: string;
  vmId: string;
  startMs: number;
  endMs: number;
  seconds: number;
  minutes: number;
  reported: boolean;
};

describe('usage actor (time-skipping server, real VM actor, Docker and Postgres)', function () {
  this.timeout(8 * 60_000);
  let env: TestWorkflowEnvironment;
  let docker: Docker;
  let db: TestDatabase;
  let worker: Worker;
  let running: Promise<void>;
  const recorded = recordingMeter();
  const suffix = uniqueSuffix();
  const taskQueue = `usage-${suffix}`;
  const users: string[] = [];
  const settings = {
    ...defaultVmSettings,
    idleTimeoutMs: 60 * 60 * 1000,
    healthIntervalMs: 10 * 60 * 1000,
    agentTimeoutMs: 90_000,
    searchAttributes: false,
  };

  async function newUser(name: string): Promise<string> {
    const userId = `${name}-${suffix}`;
    users.push(userId);
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    return userId;
  }

  const vm = (userId: string) => env.client.workflow.getHandle<typeof vmWorkflow>(workflowIds.vm(userId));
  const usage = (userId: string) => env.client.workflow.getHandle(workflowIds.usage(userId));
  const usageState = (userId: string): Promise<UsageView> => usage(userId).query(usageStateQuery);

  async function rows(userId: string): Promise<UsageRow[]> {
    const { rows: found } = await db.pool.query<{
      key: string;
      vm_id: string;
      start_ms: string;
      end_ms: string;
      compute_seconds: number;
      minutes: number;
      reported: boolean;
    }>(
      `SELECT idempotency_key AS key, vm_id, compute_seconds, minutes, reported_at IS NOT NULL AS reported,
              (extract(epoch FROM period_start) * 1000)::bigint::text AS start_ms,
              (extract(epoch FROM period_end) * 1000)::bigint::text AS end_ms
         FROM usage_records WHERE user_id = $1 AND idempotency_key LIKE 'usage:%' ORDER BY period_start`,
      [userId],
    );
    return found.map((r) => ({
      key: r.key,
      vmId: r.vm_id,
      startMs: Number(r.start_ms),
      endMs: Number(r.end_ms),
      seconds: r.compute_seconds,
      minutes: r.minutes,
      reported: r.reported,
    }));
  }

  /** Waits until the usage actor meters nothing and has written and reported everything it made. */
  async function settled(userId: string): Promise<UsageView> {
    return eventually(`usage of ${userId} to settle`, async () => {
      const view = await usageState(userId).catch(() => undefined);
      return view && view.running === null && view.unreportedSlices === 0 ? view : undefined;
    });
  }

  async function startVm(userId: string): Promise<VmView> {
    await env.client.workflow.start(vmWorkflow, {
      workflowId: workflowIds.vm(userId),
      taskQueue,
      args: [{ userId, settings }],
    });
    return vm(userId).executeUpdate(ensureReadyUpdate);
  }

  const ms = (iso: string | null): number => {
    assert.ok(iso, 'a transition time');
    return Date.parse(iso);
  };

  before(async () => {
    env = await createTimeSkippingEnvironment();
    docker = testDocker();
    db = await createMigratedDatabase();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        ...createActivities({
          docker,
          temporal: env.client,
          pool: db.pool,
          vm: testConfig.vm,
          usageSettings: defaultUsageSettings,
        }),
        ...recorded.meter,
      },
    });
    running = worker.run();
  });

  after(async () => {
    for (const userId of users) {
      for (const handle of [vm(userId), usage(userId)]) await handle.terminate('test over').catch(() => {});
      const leftovers = await docker.listContainers({ all: true, filters: { name: [`ffc-vm-${userId}`] } });
      for (const c of leftovers) await docker.getContainer(c.Id).remove({ force: true, v: true });
    }
    worker?.shutdown();
    await running;
    await db?.drop();
    await env?.teardown();
  });

  it('turns VM transitions into one-minute slices, recorded and reported once each', async () => {
    const userId = await newUser('meter');
    const ready = await startVm(userId);
    assert.ok(ready.status === 'ONBOARDING' || ready.status === 'READY');
    const view = await eventually('the usage actor to meter the running VM', async () => {
      const state = await usageState(userId).catch(() => undefined);
      return state?.running ? state : undefined;
    });
    assert.equal(view.running?.vmId, ready.vmId);
    assert.equal(view.running?.sliceStart, ready.readyAt, "metering starts at the VM's own transition time");

    await env.sleep('5 minutes');
    const suspended = await vm(userId).executeUpdate(suspendUpdate);
    assert.equal(suspended.status, 'SUSPENDED');
    const after = await settled(userId);

    const found = await rows(userId);
    const startMs = ms(ready.readyAt);
    const stopMs = ms(suspended.suspendedAt);
    const full = Math.floor((stopMs - startMs) / 60_000);
    assert.ok(full >= 5, `at least five whole minutes ran (${full})`);
    assert.equal(found[0]?.startMs, startMs, 'the first slice starts when the VM started running');
    // The started minute after the last whole one counts (unless it is under half a second: not started).
    const partial = stopMs - (startMs + full * 60_000) >= 500 ? 1 : 0;
    assert.equal(
      found.at(-1)?.endMs,
      partial ? stopMs : startMs + full * 60_000,
      'the last slice ends when it was suspended',
    );
    found.forEach((row, i) => {
      assert.equal(row.key, `usage:${userId}:${ready.vmId}:${row.startMs}`, 'the key is what the slice is');
      assert.equal(row.vmId, ready.vmId);
      if (i > 0) assert.equal(row.startMs, found[i - 1]?.endMs, 'slices follow each other without gaps');
      if (i < full) assert.deepEqual([row.seconds, row.minutes], [60, 1], `slice ${i} is a whole minute`);
      assert.equal(row.reported, true, 'reported and marked');
    });
    assert.equal(found.length, full + partial, 'whole minutes, then the started one');
    assert.equal(after.minutes.used, full + partial);
    assert.equal(after.minutes.limit, 600, 'Free limits (no plan yet)');
    for (const row of found) {
      assert.equal(
        recorded.events.get(row.key)?.minutes,
        row.minutes,
        'the meter got the slice under its key',
      );
      assert.equal(recorded.calls.filter((k) => k === row.key).length, 1, 'reported once');
    }

    // A retried notify delivers the same transitions again: nothing is metered twice.
    const transition = (running: boolean, atMs: number) =>
      usage(userId).signal(vmTransitionSignal, { vmId: ready.vmId, running, atMs });
    await transition(true, startMs);
    await transition(false, stopMs);
    await env.sleep('3 minutes');
    const again = await settled(userId);
    assert.deepEqual(await rows(userId), found, 'no slice was added by the repeated transitions');
    assert.equal(again.minutes.used, after.minutes.used);

    // Resumed and terminated: a second stretch, metered from its own transitions.
    const resumed = await vm(userId).executeUpdate(ensureReadyUpdate);
    await env.sleep('2 minutes');
    const terminated = await vm(userId).executeUpdate(terminateUpdate);
    assert.equal(terminated.status, 'TERMINATED');
    const final = await settled(userId);
    const second = (await rows(userId)).slice(found.length);
    assert.equal(second[0]?.startMs, ms(resumed.readyAt), 'the second stretch starts at the resume');
    const endMs = second.at(-1)?.endMs ?? 0;
    assert.ok(ms(terminated.updatedAt) - endMs < 500, 'and ends at the termination');
    assert.ok(second.length >= 2, `two whole minutes at least (${second.length})`);
    assert.equal(
      final.minutes.used,
      [...found, ...second].reduce((sum, r) => sum + r.minutes, 0),
      'the actor counts exactly what was recorded',
    );

    if (shouldRecordHistories()) {
      await recordHistory(env.client, workflowIds.vm(userId), 'vm-metered');
      await recordHistory(env.client, workflowIds.usage(userId), 'usage-metering');
    }
  });

  it('suspends the VM with a reason the user sees when the minutes are spent, and resumes it after an upgrade', async () => {
    const userId = await newUser('quota');
    // 598 minutes used earlier this period (of Free's 600).
    const period = billingPeriodOf(await env.currentTimeMs());
    await db.pool.query(
      `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes,
                                  idempotency_key, reported_at)
       VALUES ($1, 'earlier', to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0 + 1), 35880, 598, $3, now())`,
      [userId, period.startMs, `seed:${userId}`],
    );
    const ready = await startVm(userId);
    assert.ok(ready.status === 'ONBOARDING' || ready.status === 'READY');
    await eventually('the usage actor to meter', async () =>
      (await usageState(userId).catch(() => undefined))?.running ? true : undefined,
    );

    await env.sleep('3 minutes');
    const held = await eventually('the VM to be suspended for quota', async () => {
      const state = await vm(userId).query(vmStateQuery);
      return state.status === 'SUSPENDED' && state.suspendReason === 'quota_exhausted' ? state : undefined;
    });
    assert.match(held.suspendMessage ?? '', /compute minutes are used up \(600 of the Free plan's 600\)/);
    const stored = await db.pool.query<{ view: unknown }>(
      "SELECT view FROM vms WHERE user_id = $1 AND status <> 'TERMINATED'",
      [userId],
    );
    const readModel = VmViewSchema.parse(stored.rows[0]?.view);
    assert.equal(readModel.status, 'SUSPENDED', 'GET /api/vms/me reads this row');
    assert.equal(readModel.suspendReason, 'quota_exhausted', 'and sees why');
    const state = await usageState(userId);
    assert.equal(state.holding, true);
    assert.ok(state.minutes.used >= 600);

    const refused = await vm(userId)
      .executeUpdate(ensureReadyUpdate)
      .then(
        () => assert.fail('ensureReady was accepted while the minutes are spent'),
        (err: unknown) => err,
      );
    assert.ok(refused instanceof WorkflowUpdateFailedError);
    assert.ok(refused.cause instanceof ApplicationFailure);
    assert.equal(refused.cause.type, VmErrorType.quotaExhausted);
    assert.deepEqual(refused.cause.details?.[0], { usedMinutes: state.minutes.used, limitMinutes: 600 });

    // Billing's webhook tells the usage actor of the upgrade; the VM was running when held, so it resumes.
    await usage(userId).signal(planChangedSignal, {
      plan: 'PRO',
      paymentFailedAtMs: null,
      changedAtMs: await env.currentTimeMs(),
    });
    const resumed = await eventually('the VM to resume after the upgrade', async () => {
      const now = await vm(userId).query(vmStateQuery);
      return (now.status === 'READY' || now.status === 'ONBOARDING') && now.operation === null
        ? now
        : undefined;
    });
    assert.equal(resumed.suspendReason, null);
    assert.equal((await usageState(userId)).holding, false);
    assert.equal((await usageState(userId)).minutes.limit, 6000, 'Pro limits now');
    assert.equal((await docker.getContainer(`ffc-vm-${userId}`).inspect()).State.Running, true);
    const again = await vm(userId).executeUpdate(ensureReadyUpdate);
    assert.ok(again.status === 'READY' || again.status === 'ONBOARDING', 'ensureReady is allowed again');
    await vm(userId).executeUpdate(terminateUpdate);
    if (shouldRecordHistories()) await recordHistory(env.client, workflowIds.vm(userId), 'vm-quota-hold');
  });

  it('lets a quota hold lapse at the end of its period even if nobody lifts it', async () => {
    const userId = await newUser('lapse');
    await startVm(userId);
    const now = await env.currentTimeMs();
    // As the usage actor would send it (the usage actor itself is not needed for this).
    await vm(userId).signal(suspendForQuotaSignal, {
      usedMinutes: 600,
      limitMinutes: 600,
      periodEndMs: now + 10 * 60_000,
      message: 'the minutes of this period are used up',
    });
    await eventually('the VM to be held', async () => {
      const state = await vm(userId).query(vmStateQuery);
      return state.status === 'SUSPENDED' && state.suspendReason === 'quota_exhausted' ? true : undefined;
    });
    await assert.rejects(vm(userId).executeUpdate(ensureReadyUpdate), WorkflowUpdateFailedError);
    await env.sleep('11 minutes');
    const lapsed = await vm(userId).query(vmStateQuery);
    assert.deepEqual([lapsed.status, lapsed.suspendReason], ['SUSPENDED', null], 'released, not started');
    const again = await vm(userId).executeUpdate(ensureReadyUpdate);
    assert.ok(again.status === 'READY' || again.status === 'ONBOARDING', 'it may start again');
    await vm(userId).executeUpdate(terminateUpdate);
  });
});
