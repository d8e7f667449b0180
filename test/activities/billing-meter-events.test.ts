/**
 * The meter report (activities/billing/meter-events.ts) with the real `stripe` client against the fake in
 * front of a real stripe-mock (which validates each meter event against Stripe's API description), and a
 * real Postgres. A repeated identifier is answered 400 as Stripe does, which must count as delivered;
 * a report retried after a crash (Stripe answered, our write never happened) bills nothing twice.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type Stripe from 'stripe';
import {
  createMeterEventActivities,
  type MeterEventActivities,
} from '../../activities/billing/meter-events.js';
import { createStripeClient } from '../../platform/stripe.js';
import { type RunningFakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';

const METER = 'ffc_compute_minutes_test';
const recently = () => Math.floor(Date.now() / 1000) - 600;

describe('billing: meter events activity (fake Stripe + stripe-mock, Postgres)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let fake: RunningFakeStripe;
  let stripe: Stripe;
  let activities: MeterEventActivities;

  const billingTo = (url: string) => ({
    ...testConfig.billing,
    stripeSecretKey: 'sk_test_ffcMeter0123456789',
    stripeApiUrl: url,
  });

  /** An account with a Stripe customer, as checkout leaves it. */
  async function customerAccount(): Promise<{ userId: string; customerId: string }> {
    const userId = `meter-${uniqueSuffix()}`;
    const customer = await stripe.customers.create({ metadata: { userId } });
    await db.pool.query('INSERT INTO users (id, stripe_customer_id) VALUES ($1, $2)', [userId, customer.id]);
    return { userId, customerId: customer.id };
  }

  before(async () => {
    db = await createMigratedDatabase();
    fake = await startFakeStripe();
    const client = createStripeClient(billingTo(fake.url));
    assert.ok(client);
    stripe = client;
    activities = createMeterEventActivities({ stripe, meterEventName: METER, pool: db.pool });
  });
  after(async () => {
    await fake?.stop();
    await db?.drop();
  });

  it('reports minutes under the slice identifier; the same identifier again is a duplicate, counted once', async () => {
    const { userId, customerId } = await customerAccount();
    const slice = { userId, identifier: `usage:${userId}:slice-1`, minutes: 7, timestampSec: recently() };
    assert.deepEqual(await activities.reportComputeMinutes(slice), { delivered: true, duplicate: false });
    assert.deepEqual(await activities.reportComputeMinutes(slice), { delivered: true, duplicate: true });
    assert.equal(fake.meterTotal(customerId, METER), 7, 'Stripe counted the minutes once');

    const sent = fake
      .requestsTo('POST', '/v1/billing/meter_events')
      .filter((r) => r.params.identifier === slice.identifier);
    assert.deepEqual(
      sent.map((r) => [r.status, r.answeredBy]),
      [
        [200, 'fake'],
        [400, 'fake'],
      ],
      'both passed stripe-mock’s validation; the second was refused as Stripe refuses it',
    );
    assert.deepEqual(sent[0]?.params, {
      event_name: METER,
      identifier: slice.identifier,
      payload: { stripe_customer_id: customerId, value: '7' },
      timestamp: String(slice.timestampSec),
    });

    // Another slice is reported and adds up.
    const next = { ...slice, identifier: `usage:${userId}:slice-2`, minutes: 5 };
    assert.deepEqual(await activities.reportComputeMinutes(next), { delivered: true, duplicate: false });
    assert.equal(fake.meterTotal(customerId, METER), 12);
  });

  it('a crash between Stripe’s answer and our own write bills nothing twice when the report is retried', async () => {
    const { userId, customerId } = await customerAccount();
    const key = `usage:${userId}:crash`;
    await db.pool.query(
      `INSERT INTO usage_records (user_id, period_start, period_end, compute_seconds, idempotency_key)
       VALUES ($1, now() - interval '10 minutes', now(), 600, $2)`,
      [userId, key],
    );
    const report = { userId, identifier: key, minutes: 10, timestampSec: Math.floor(Date.now() / 1000) };
    // The first attempt reaches Stripe, then the worker dies before marking the record reported.
    assert.deepEqual(await activities.reportComputeMinutes(report), { delivered: true, duplicate: false });
    const unmarked = await db.pool.query('SELECT reported_at FROM usage_records WHERE idempotency_key = $1', [
      key,
    ]);
    assert.equal(unmarked.rows[0]?.reported_at, null, 'our write never happened');
    // Temporal retries the activity on another worker: a fresh client, the same identifier.
    const fresh = createStripeClient(billingTo(fake.url));
    assert.ok(fresh);
    const retried = createMeterEventActivities({ stripe: fresh, meterEventName: METER, pool: db.pool });
    assert.deepEqual(await retried.reportComputeMinutes(report), { delivered: true, duplicate: true });
    assert.equal(fake.meterTotal(customerId, METER), 10);
  });

  it('an account without a Stripe customer, or billing off, is skipped without calling Stripe', async () => {
    const userId = `meter-free-${uniqueSuffix()}`;
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    const before = fake.requests.length;
    const report = { userId, identifier: `usage:${userId}:1`, minutes: 3, timestampSec: recently() };
    assert.deepEqual(await activities.reportComputeMinutes(report), {
      delivered: false,
      duplicate: false,
      skipped: 'no_customer',
    });
    const off = createMeterEventActivities({ stripe: null, meterEventName: METER, pool: db.pool });
    assert.deepEqual(await off.reportComputeMinutes(report), {
      delivered: false,
      duplicate: false,
      skipped: 'billing_off',
    });
    assert.equal(fake.requests.length, before);
  });

  it('other failures throw for Temporal to retry; a malformed report fails for good', async () => {
    const { userId } = await customerAccount();
    // A Stripe that does not answer: a port that was just closed.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const down = createStripeClient(billingTo(`http://127.0.0.1:${port}`));
    assert.ok(down);
    const unreachable = createMeterEventActivities({ stripe: down, meterEventName: METER, pool: db.pool });
    const report = { userId, identifier: `usage:${userId}:down`, minutes: 1, timestampSec: recently() };
    await assert.rejects(unreachable.reportComputeMinutes(report), (err: unknown) => {
      assert.equal((err as { type?: string }).type, 'StripeConnectionError');
      assert.ok(!(err instanceof ApplicationFailure && err.nonRetryable), 'retryable');
      return true;
    });
    // A 400 other than the duplicate is not taken for a delivery.
    await assert.rejects(
      activities.reportComputeMinutes({
        ...report,
        identifier: `usage:${userId}:old`,
        timestampSec: 1_000_000_000,
      }),
      (err: unknown) => {
        assert.equal((err as { statusCode?: number }).statusCode, 400);
        assert.equal((err as { code?: string }).code, 'timestamp_too_far_in_past');
        return true;
      },
    );
    await assert.rejects(
      activities.reportComputeMinutes({ ...report, minutes: -1 }),
      (err: unknown) =>
        err instanceof ApplicationFailure && err.nonRetryable && err.type === 'MeterReportInvalid',
    );
  });
});
