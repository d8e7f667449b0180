/**
 * A meter report retried after a worker crash is counted once. The production worker process
 * (worker/main.ts) reports compute minutes with the real `stripe` client to the project's fake Stripe
 * (in front of stripe-mock). The fake holds the first meter event; the worker is SIGKILLed while the
 * report is in flight; then the held request goes through (Stripe has the minutes, our side never wrote
 * that it reported them: the crash between Stripe's answer and our own write). A new worker retries the
 * report once the dead one's attempt times out: Stripe answers the repeated identifier with a 400, which
 * counts as delivered, and reporting moves on to the next slice. Stripe ends with each slice once.
 */
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { createMeterEventActivities } from '../../activities/billing/meter-events.js';
import { createUsageNotifyActivities } from '../../activities/usage/notify.js';
import { createStripeClient } from '../../platform/stripe.js';
import { workflowIds } from '../../workflows/ids.js';
import { defaultUsageSettings, type UsageView, usageStateQuery } from '../../workflows/usage/messages.js';
import { type RunningFakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  uniqueSuffix,
} from '../support/services.js';
import { eventually } from '../support/vm.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

const METER_EVENTS = '/v1/billing/meter_events';

describe('usage: a meter report retried after a worker crash is counted once (worker process, fake Stripe)', function () {
  this.timeout(6 * 60_000);
  const suffix = uniqueSuffix();
  const userId = `crash-meter-${suffix}`;
  const customer = `cus_crash_${suffix}`;
  const taskQueue = `usage-crash-${suffix}`;
  // stripe-mock accepts sk_test_ and letters or digits
  const secretKey = `sk_test_${suffix}`;
  let client: Client;
  let db: TestDatabase;
  let fake: RunningFakeStripe;
  const workers: WorkerProcess[] = [];

  const startWorker = async () => {
    const worker = await startWorkerProcess({
      DATABASE_URL: db.url,
      TEMPORAL_TASK_QUEUE: taskQueue,
      STRIPE_SECRET_KEY: secretKey,
      STRIPE_API_URL: fake.url,
    });
    workers.push(worker);
    return worker;
  };
  const usage = () => client.workflow.getHandle(workflowIds.usage(userId));

  before(async () => {
    client = await connectTestTemporal();
    db = await createMigratedDatabase();
    fake = await startFakeStripe();
    await db.pool.query('INSERT INTO users (id, stripe_customer_id) VALUES ($1, $2)', [userId, customer]);
  });

  after(async () => {
    await usage()
      .terminate('test over')
      .catch(() => {});
    for (const worker of workers) await worker.kill('SIGKILL');
    await fake?.stop();
    await db?.drop();
    await client?.connection.close();
  });

  it('bills each slice once although the report of one was cut off by a SIGKILL and sent again', async () => {
    const held = fake.hold('POST', METER_EVENTS);
    const first = await startWorker();
    // What vm:<userId> tells the usage actor (the same activity, called here): 80 s of running time, so one
    // whole minute and a last slice of 20 s.
    const notify = createUsageNotifyActivities({
      temporal: client,
      taskQueue,
      settings: defaultUsageSettings,
    }).notifyUsageOfVm;
    const now = Date.now();
    await notify({ userId, vmId: `vm-${suffix}`, running: true, atMs: now - 90_000 });
    await notify({ userId, vmId: `vm-${suffix}`, running: false, atMs: now - 10_000 });

    await held.waitFor(1);
    await first.kill('SIGKILL');
    // Stripe takes the cut-off request: it has the minutes; the dead worker never marked them reported.
    held.release();
    await eventually('Stripe to have the first slice', async () =>
      fake.meterEvents.size === 1 ? true : undefined,
    );
    const [firstKey] = [...fake.meterEvents.keys()];
    const unmarked = await db.pool.query<{ reported: boolean }>(
      'SELECT reported_at IS NOT NULL AS reported FROM usage_records WHERE idempotency_key = $1',
      [firstKey],
    );
    assert.equal(unmarked.rows[0]?.reported, false, 'recorded, but not marked reported: the crash window');

    await startWorker();
    const settled = await eventually(
      'the usage actor to report everything',
      async () => {
        const view = await usage()
          .query<UsageView>(usageStateQuery)
          .catch(() => undefined);
        return view && view.unreportedSlices === 0 && view.running === null ? view : undefined;
      },
      180_000,
      500,
    );
    assert.equal(settled.minutes.used, 2);

    const { rows } = await db.pool.query<{ key: string; minutes: number; reported: boolean }>(
      `SELECT idempotency_key AS key, minutes, reported_at IS NOT NULL AS reported FROM usage_records
        WHERE user_id = $1 ORDER BY period_start`,
      [userId],
    );
    assert.deepEqual(
      rows.map((r) => [r.minutes, r.reported]),
      [
        [1, true],
        [1, true],
      ],
      'two slices, each recorded once and reported',
    );
    assert.deepEqual(
      [...fake.meterEvents.keys()].sort(),
      rows.map((r) => r.key).sort(),
      'Stripe has each slice',
    );
    assert.equal(fake.meterTotal(customer), 2, 'and bills two minutes, not three');
    const answers = fake.requestsTo('POST', METER_EVENTS).map((r) => r.status);
    assert.deepEqual(
      answers,
      [200, 400, 200],
      'the cut-off report, its retry answered as a duplicate, the next',
    );

    const history = await usage().fetchHistory();
    const events = history.events ?? [];
    const reports = new Set(
      events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'reportComputeMinutes')
        .map((e) => String(e.eventId)),
    );
    const retried = events.filter(
      (e) =>
        reports.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)) &&
        (e.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2,
    );
    assert.equal(retried.length, 1, "one report was retried after the dead worker's attempt timed out");

    // Running the activity again by hand changes nothing either.
    const stripe = createStripeClient({
      ...testConfig.billing,
      stripeSecretKey: secretKey,
      stripeApiUrl: fake.url,
    });
    const again = await createMeterEventActivities({
      stripe,
      meterEventName: testConfig.billing.meterEventName,
      pool: db.pool,
    }).reportComputeMinutes({
      userId,
      identifier: firstKey ?? '',
      minutes: 1,
      timestampSec: Math.floor(now / 1000),
    });
    assert.deepEqual(again, { delivered: true, duplicate: true });
    assert.equal(fake.meterTotal(customer), 2);

    if (shouldRecordHistories()) await recordHistory(client, workflowIds.usage(userId), 'usage-worker-crash');
  });
});
