/**
 * Stripe's webhooks as Stripe delivers them: twice, late, out of order, and forged by someone without the
 * endpoint secret. Every event is signed for real by the fake (stripe.webhooks.generateTestHeaderString)
 * and verified by the api's production code (stripe.webhooks.constructEvent); objects are stripe-mock's
 * fixtures with the fake's state laid over them. Real Postgres; the plan changes the usage actor is told
 * about are recorded (test/api/billing-usage-signal.test.ts delivers them to a real one).
 */
import assert from 'node:assert/strict';
import { getAccountPlan } from '../../db/billing.js';
import { effectivePlan } from '../../workflows/usage/plans.js';
import type { Forgery } from '../support/fake-stripe.js';
import { errorCode, request } from '../support/http.js';
import { type StripeMock, startStripeMock } from '../support/stripe-mock.js';
import {
  authed,
  type BillingRig,
  billingRow,
  PRICES,
  planAudits,
  startBillingRig,
  subscribe,
  type TestUser,
} from './billing-rig.js';

const GRACE_MS = 2 * 3_600_000;

describe('billing: Stripe webhooks (signed, duplicated, reordered, forged; Postgres)', function () {
  this.timeout(60_000);
  let stripeMock: StripeMock;
  let rig: BillingRig;

  before(async () => {
    stripeMock = await startStripeMock();
    rig = await startBillingRig({ stripeMock, gracePeriodMs: GRACE_MS });
  });
  after(async () => {
    await rig?.stop();
    await stripeMock?.stop();
  });

  const processed = async (eventId: string) =>
    (
      await rig.db.pool.query(
        "SELECT 1 FROM processed_webhook_events WHERE provider = 'stripe' AND event_id = $1",
        [eventId],
      )
    ).rowCount;
  const notifiedOf = (user: TestUser) =>
    rig.notified.filter((n) => n.userId === user.userId).map((n) => n.change);
  const planOfMe = async (user: TestUser) => {
    const me = await request(`${rig.api.api.url}/api/me`, { headers: authed(user) });
    assert.equal(me.status, 200, me.text);
    return (me.json as { user: { plan: string } }).user.plan;
  };

  it('a redelivered event is acknowledged and applied once, even when the copies arrive together', async () => {
    const user = rig.newUser();
    const { subscription } = await subscribe(rig, user, 'PRO');
    const upgrade = await rig.fake.subscriptionUpdated(subscription.id, { price: PRICES.TEAM });

    const first = await rig.fake.send(upgrade);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, { received: true });
    const again = await rig.fake.send(upgrade);
    assert.equal(again.status, 200, 'Stripe must stop redelivering it');
    assert.deepEqual(again.body, { received: true, duplicate: true });

    // Three copies of one new event at once: one applies it, the others wait for it and see it done.
    const cancel = await rig.fake.subscriptionDeleted(subscription.id);
    const copies = await Promise.all([1, 2, 3].map(() => rig.fake.send(cancel)));
    assert.deepEqual(
      copies.map((c) => c.status),
      [200, 200, 200],
    );
    assert.equal(copies.filter((c) => (c.body as { duplicate?: boolean }).duplicate === true).length, 2);

    assert.equal(await processed(upgrade.id), 1);
    assert.equal(await processed(cancel.id), 1);
    const audits = await planAudits(rig, user.userId);
    assert.deepEqual(
      audits.map((a) => [a.detail.from, a.detail.to]),
      [
        ['FREE', 'PRO'],
        ['PRO', 'TEAM'],
        ['TEAM', 'FREE'],
      ],
      'each change audited once',
    );
    assert.deepEqual(
      notifiedOf(user).map((c) => c.plan),
      ['PRO', 'TEAM', 'FREE'],
      'the usage actor is told once per change',
    );
    assert.equal(await planOfMe(user), 'FREE');
  });

  it('an older event arriving after a newer one changes nothing: the newer state stays', async () => {
    const user = rig.newUser();
    const t0 = Math.floor(Date.now() / 1000);
    const { subscription } = await subscribe(rig, user, 'PRO', { created: t0 });
    // Stripe made these in this order (past_due at t0+100, then back to active on TEAM at t0+200)...
    const older = await rig.fake.subscriptionUpdated(
      subscription.id,
      { status: 'past_due' },
      { created: t0 + 100 },
    );
    const newer = await rig.fake.subscriptionUpdated(
      subscription.id,
      { status: 'active', price: PRICES.TEAM },
      { created: t0 + 200 },
    );
    // ...and delivered them the other way round.
    assert.deepEqual((await rig.fake.deliver(newer)).body, { received: true });
    assert.deepEqual((await rig.fake.deliver(older)).body, { received: true, ignored: 'stale' });
    let row = await billingRow(rig, user.userId);
    assert.equal(row.plan, 'TEAM');
    assert.equal(row.subscription_status, 'active');
    assert.equal(row.stripe_price_id, PRICES.TEAM);
    assert.equal(row.subscription_state_at?.getTime(), (t0 + 200) * 1000);
    assert.equal(await processed(older.id), 1, 'the stale event is recorded as processed too');

    // The subscription ends at t0+300; an update made at t0+250 arrives after that: still FREE.
    const late = await rig.fake.subscriptionUpdated(
      subscription.id,
      { status: 'active' },
      { created: t0 + 250 },
    );
    const ended = await rig.fake.subscriptionDeleted(subscription.id, { created: t0 + 300 });
    await rig.fake.deliver(ended);
    assert.deepEqual((await rig.fake.deliver(late)).body, { received: true, ignored: 'stale' });
    row = await billingRow(rig, user.userId);
    assert.equal(row.plan, 'FREE');
    assert.equal(row.subscription_status, 'canceled');
    assert.deepEqual(
      notifiedOf(user).map((c) => [c.plan, c.changedAtMs]),
      [
        ['PRO', t0 * 1000],
        ['TEAM', (t0 + 200) * 1000],
        ['FREE', (t0 + 300) * 1000],
      ],
    );
  });

  it('events of one second apply in Stripe’s order: created, checkout completed, updated, deleted', async () => {
    const user = rig.newUser();
    const t = Math.floor(Date.now() / 1000) + 1000;
    const { subscription, events } = await (async () => {
      const answer = await request(`${rig.api.api.url}/api/billing/checkout`, {
        method: 'POST',
        headers: authed(user),
        body: JSON.stringify({ plan: 'PRO' }),
      });
      const session = rig.fake.sessionOfUrl((answer.json as { url: string }).url);
      return rig.fake.complete(session.id, { created: t, deliver: false });
    })();
    const deleted = await rig.fake.subscriptionDeleted(subscription.id, { created: t });
    // All in the same second, delivered backwards: the deletion is the last word.
    for (const event of [deleted, ...events.reverse()]) await rig.fake.deliver(event);
    const row = await billingRow(rig, user.userId);
    assert.equal(row.plan, 'FREE');
    assert.equal(row.subscription_status, 'canceled');
  });

  for (const forgery of [
    'wrong-secret',
    'tampered-body',
    'stale-timestamp',
    'no-signature',
  ] satisfies Forgery[]) {
    it(`a forged delivery (${forgery}) is refused with 400 and changes nothing`, async () => {
      const user = rig.newUser();
      const { subscription } = await subscribe(rig, user, 'PRO');
      const auditsBefore = (await planAudits(rig, user.userId)).length;
      const notifiedBefore = notifiedOf(user).length;
      const cancel = await rig.fake.subscriptionDeleted(subscription.id);

      const forged = await rig.fake.send(cancel, { forgery });
      assert.equal(forged.status, 400);
      assert.equal((forged.body as { error: { code: string } }).error.code, 'invalid_signature');
      assert.equal((await billingRow(rig, user.userId)).plan, 'PRO');
      assert.equal(await processed(cancel.id), 0, 'not recorded: the real delivery must still apply');
      assert.equal((await planAudits(rig, user.userId)).length, auditsBefore);
      assert.equal(notifiedOf(user).length, notifiedBefore);

      // The same event, signed with the endpoint secret, is applied.
      assert.deepEqual((await rig.fake.deliver(cancel)).body, { received: true });
      assert.equal((await billingRow(rig, user.userId)).plan, 'FREE');
    });
  }

  it('a failed payment keeps the paid limits for the grace period, then Free; a later paid invoice restores them', async () => {
    const user = rig.newUser();
    const t0 = Math.floor(Date.now() / 1000);
    const { subscription } = await subscribe(rig, user, 'TEAM', { created: t0 });
    const failedAt = t0 + 3600;
    await rig.fake.deliver(await rig.fake.invoice(subscription.id, 'payment_failed', { created: failedAt }));
    // Stripe retries the charge; the retry fails too. The grace period still counts from the first failure.
    await rig.fake.deliver(
      await rig.fake.invoice(subscription.id, 'payment_failed', { created: failedAt + 600 }),
    );

    const account = await getAccountPlan(rig.db.pool, user.userId);
    assert.deepEqual(account, {
      plan: 'TEAM',
      paymentFailedAtMs: failedAt * 1000,
      stripeCustomerId: subscription.customer,
    });
    assert.equal(effectivePlan(account, GRACE_MS, failedAt * 1000 + GRACE_MS - 1), 'TEAM', 'within grace');
    assert.equal(effectivePlan(account, GRACE_MS, failedAt * 1000 + GRACE_MS), 'FREE', 'after grace');
    assert.equal(await rig.api.billing.effectivePlanOf(user.userId, failedAt * 1000 + GRACE_MS + 1), 'FREE');
    assert.equal(await planOfMe(user), 'TEAM', 'the stored plan is the subscription’s');
    assert.deepEqual(notifiedOf(user).at(-1), {
      plan: 'TEAM',
      paymentFailedAtMs: failedAt * 1000,
      changedAtMs: failedAt * 1000,
    });
    const failureAudit = (await planAudits(rig, user.userId)).at(-1);
    assert.equal(failureAudit?.detail.paymentFailedAt, new Date(failedAt * 1000).toISOString());

    const paid = await rig.fake.invoice(subscription.id, 'paid', { created: failedAt + 7200 });
    const lateFailure = await rig.fake.invoice(subscription.id, 'payment_failed', {
      created: failedAt + 3600,
    });
    await rig.fake.deliver(paid);
    assert.deepEqual((await rig.fake.deliver(lateFailure)).body, { received: true, ignored: 'stale' });
    const restored = await getAccountPlan(rig.db.pool, user.userId);
    assert.equal(restored.paymentFailedAtMs, null);
    assert.equal(effectivePlan(restored, GRACE_MS, failedAt * 1000 + 10 * GRACE_MS), 'TEAM');
    assert.deepEqual(notifiedOf(user).at(-1), {
      plan: 'TEAM',
      paymentFailedAtMs: null,
      changedAtMs: (failedAt + 7200) * 1000,
    });
  });

  it('an active subscription after a failed payment clears it; a past_due one does not', async () => {
    const user = rig.newUser();
    const t0 = Math.floor(Date.now() / 1000);
    const { subscription } = await subscribe(rig, user, 'PRO', { created: t0 });
    await rig.fake.deliver(await rig.fake.invoice(subscription.id, 'payment_failed', { created: t0 + 10 }));
    await rig.fake.deliver(
      await rig.fake.subscriptionUpdated(subscription.id, { status: 'past_due' }, { created: t0 + 11 }),
    );
    assert.equal((await getAccountPlan(rig.db.pool, user.userId)).paymentFailedAtMs, (t0 + 10) * 1000);
    await rig.fake.deliver(
      await rig.fake.subscriptionUpdated(subscription.id, { status: 'active' }, { created: t0 + 20 }),
    );
    assert.deepEqual(await getAccountPlan(rig.db.pool, user.userId), {
      plan: 'PRO',
      paymentFailedAtMs: null,
      stripeCustomerId: subscription.customer,
    });
  });

  it('a deleted subscription makes the account FREE; a new checkout makes it paid again', async () => {
    const user = rig.newUser();
    const { subscription } = await subscribe(rig, user, 'PRO');
    await rig.fake.deliver(await rig.fake.subscriptionDeleted(subscription.id));
    assert.equal(await planOfMe(user), 'FREE');
    assert.equal((await billingRow(rig, user.userId)).subscription_status, 'canceled');
    assert.equal((await getAccountPlan(rig.db.pool, user.userId)).plan, 'FREE');

    const renewed = await subscribe(rig, user, 'TEAM');
    assert.notEqual(renewed.subscription.id, subscription.id);
    assert.equal(renewed.subscription.customer, subscription.customer, 'the same customer is reused');
    const row = await billingRow(rig, user.userId);
    assert.equal(row.plan, 'TEAM');
    assert.equal(row.stripe_subscription_id, renewed.subscription.id);
    // A late update about the old, ended subscription is not about the account's current one.
    await rig.fake.deliver(await rig.fake.subscriptionDeleted(subscription.id));
    assert.equal((await billingRow(rig, user.userId)).plan, 'TEAM');
  });

  it('events for customers of no account, and types billing does not handle, are acknowledged and ignored', async () => {
    const stranger = rig.fake.event('customer.subscription.updated', {
      ...(
        await rig.fake.subscriptionUpdated((await subscribe(rig, rig.newUser(), 'PRO')).subscription.id, {})
      ).data.object,
      customer: 'cus_not_ours',
      metadata: {},
    });
    assert.deepEqual((await rig.fake.deliver(stranger)).body, {
      received: true,
      ignored: 'unknown_customer',
    });
    const other = rig.fake.event('customer.created', { id: 'cus_x', object: 'customer' });
    assert.deepEqual((await rig.fake.deliver(other)).body, { received: true, ignored: 'unhandled_type' });
    assert.equal(await processed(other.id), 0);
  });

  it('a signed payload billing cannot read is refused (400) without being recorded', async () => {
    const broken = rig.fake.event('customer.subscription.updated', {
      id: 'sub_broken',
      object: 'subscription',
    });
    const answer = await rig.fake.send(broken);
    assert.equal(answer.status, 400);
    assert.equal((answer.body as { error: { code: string } }).error.code, 'unreadable_event');
    assert.equal(await processed(broken.id), 0);
  });

  it('the webhook is public and described in the OpenAPI document; only POST is the webhook', async () => {
    const doc = await request(`${rig.api.api.url}/api/openapi.json`);
    const paths = (doc.json as { paths: Record<string, Record<string, { security?: unknown[] }>> }).paths;
    assert.deepEqual(paths['/api/webhooks/stripe']?.post?.security, []);
    assert.ok(paths['/api/billing/checkout']?.post);
    assert.ok(paths['/api/billing/portal']?.post);
    // Only POST is mounted raw and public; anything else falls through to the authenticated routes.
    const get = await request(`${rig.api.api.url}/api/webhooks/stripe`);
    assert.equal(get.status, 401);
    assert.equal(errorCode(get), 'unauthorized');
  });
});
