/**
 * A plan change from Stripe reaches the user's usage:<userId> actor: the webhook signals it (planChanged,
 * signal-with-start) with the account's new plan and payment state. Real Temporal, a real worker running
 * the production usage workflow, the api against the fake Stripe in front of stripe-mock, real Postgres.
 */
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { createMeterEventActivities } from '../../activities/billing/meter-events.js';
import { createUsageNotifyActivities } from '../../activities/usage/notify.js';
import { createUsageRecordActivities } from '../../activities/usage/records.js';
import { usageActorNotifier } from '../../api/services/billing-service.js';
import { createPool, type Pool } from '../../db/pool.js';
import { workflowIds } from '../../workflows/ids.js';
import { type UsageView, usageStateQuery } from '../../workflows/usage/messages.js';
import { connectTestTemporal, testConfig } from '../support/services.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';
import { type BillingRig, startBillingRig, subscribe } from './billing-rig.js';

const GRACE_MS = 3_600_000;

describe('billing → usage actor: plan changes are signalled (Temporal, worker, stripe-mock, Postgres)', function () {
  this.timeout(120_000);
  let temporal: Client;
  let worker: RunningTestWorker;
  let workerPool: Pool;
  let rig: BillingRig;
  const started: string[] = [];
  // Set once the worker is up (the api is made first, on the database the worker then reads).
  let notify: ReturnType<typeof usageActorNotifier> = async () => {
    throw new Error('the worker is not up yet');
  };

  before(async () => {
    temporal = await connectTestTemporal();
    // The worker's activities read the rig's database: made first, the worker joins once it exists.
    rig = await startBillingRig({
      gracePeriodMs: GRACE_MS,
      notifyPlanChanged: (userId, change) => notify(userId, change),
    });
    workerPool = createPool(rig.db.url, { max: 4 });
    worker = await startTestWorker({
      ...createUsageRecordActivities({ pool: workerPool }),
      ...createMeterEventActivities({
        stripe: null,
        meterEventName: testConfig.billing.meterEventName,
        pool: workerPool,
      }),
      ...createUsageNotifyActivities({ temporal }),
    });
    notify = usageActorNotifier({ temporal, taskQueue: worker.taskQueue, gracePeriodMs: GRACE_MS });
  });
  after(async () => {
    for (const userId of started) {
      await temporal.workflow
        .getHandle(workflowIds.usage(userId))
        .terminate('test over')
        .catch(() => undefined);
    }
    await worker?.stop();
    await workerPool?.end();
    await rig?.stop();
    await temporal?.connection.close();
  });

  async function viewUntil(userId: string, done: (view: UsageView) => boolean): Promise<UsageView> {
    const handle = temporal.workflow.getHandle(workflowIds.usage(userId));
    const deadline = Date.now() + 30_000;
    let last: UsageView | null = null;
    while (Date.now() < deadline) {
      try {
        last = await handle.query(usageStateQuery);
        if (done(last)) return last;
      } catch {
        // not started yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`the usage actor never got there; last view ${JSON.stringify(last)}`);
  }

  it('subscribing starts the actor on PRO; a failed payment, then the cancellation, reach the running actor', async () => {
    const user = rig.newUser();
    started.push(user.userId);
    const t0 = Math.floor(Date.now() / 1000);
    const { subscription } = await subscribe(rig, user, 'PRO', { created: t0 });
    await viewUntil(user.userId, (v) => v.plan === 'PRO' && v.effectivePlan === 'PRO');

    // A failure long enough ago that the grace period is over: the actor applies Free limits.
    const failedAt = t0 - Math.ceil((2 * GRACE_MS) / 1000);
    const failure = await rig.fake.invoice(subscription.id, 'payment_failed', { created: failedAt });
    // (its Stripe time is older than the subscription's, but payment state has its own clock)
    await rig.fake.deliver(failure);
    const failing = await viewUntil(user.userId, (v) => v.effectivePlan === 'FREE');
    assert.equal(failing.plan, 'PRO', 'still subscribed; only the limits are Free');

    await rig.fake.deliver(await rig.fake.subscriptionDeleted(subscription.id, { created: t0 + 60 }));
    const ended = await viewUntil(user.userId, (v) => v.plan === 'FREE');
    assert.equal(ended.effectivePlan, 'FREE');
  });
});
