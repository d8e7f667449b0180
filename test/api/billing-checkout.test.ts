/**
 * Upgrading and managing a subscription, end to end: the api's real `stripe` client against the project's
 * fake, which has a real stripe-mock validate every request against Stripe's API description; webhooks
 * signed with the endpoint secret; real Postgres. Checkout → Stripe's webhooks → the plan in the users row
 * and GET /api/me; two upgrades racing make one Stripe customer; the portal; billing switched off.
 */
import assert from 'node:assert/strict';
import { getAccountPlan } from '../../db/billing.js';
import { createStripeClient } from '../../platform/stripe.js';
import { startTestApi } from '../support/api.js';
import { startFakeStripe } from '../support/fake-stripe.js';
import { errorCode, request } from '../support/http.js';
import { createMigratedDatabase, testConfig } from '../support/services.js';
import { type StripeMock, startStripeMock } from '../support/stripe-mock.js';
import {
  authed,
  type BillingRig,
  billingRow,
  checkout,
  PRICES,
  planAudits,
  startBillingRig,
  subscribe,
} from './billing-rig.js';

describe('billing: checkout, portal and the fake Stripe (stripe-mock, Postgres)', function () {
  this.timeout(60_000);
  let stripeMock: StripeMock;
  let rig: BillingRig;

  before(async () => {
    stripeMock = await startStripeMock();
    rig = await startBillingRig({ stripeMock });
  });
  after(async () => {
    await rig?.stop();
    await stripeMock?.stop();
  });

  it('upgrades through Checkout: the session is for the plan’s price, and the webhooks make the account PRO', async () => {
    const user = rig.newUser();
    const answer = await checkout(rig, user, 'PRO');
    assert.equal(answer.status, 200, answer.text);
    const { url } = answer.json as { url: string };
    const session = rig.fake.sessionOfUrl(url);
    assert.equal(session.mode, 'subscription');
    assert.equal(session.price, PRICES.PRO);
    assert.equal(session.clientReferenceId, user.userId);
    const row = await billingRow(rig, user.userId);
    assert.ok(row.stripe_customer_id, 'the customer is linked before the user pays');
    assert.equal(session.customer, row.stripe_customer_id);
    assert.deepEqual(
      rig.fake.customersOf(user.userId).map((c) => c.id),
      [row.stripe_customer_id],
    );
    assert.equal(row.plan, 'FREE', 'nothing is granted before Stripe says the subscription is paid');

    const { subscription, deliveries } = await rig.fake.complete(session.id);
    assert.deepEqual(
      deliveries.map((d) => [d.event.type, d.status]),
      [
        ['customer.subscription.created', 200],
        ['checkout.session.completed', 200],
      ],
    );
    const after = await billingRow(rig, user.userId);
    assert.equal(after.plan, 'PRO');
    assert.equal(after.stripe_subscription_id, subscription.id);
    assert.equal(after.subscription_status, 'active');
    assert.equal(after.stripe_price_id, PRICES.PRO);
    const me = await request(`${rig.api.api.url}/api/me`, { headers: authed(user) });
    assert.equal(me.status, 200, me.text);
    assert.equal((me.json as { user: { plan: string } }).user.plan, 'PRO');
    assert.deepEqual(await getAccountPlan(rig.db.pool, user.userId), {
      plan: 'PRO',
      paymentFailedAtMs: null,
      stripeCustomerId: row.stripe_customer_id,
    });

    const audits = await planAudits(rig, user.userId);
    assert.equal(audits.length, 1, 'one plan change, one audit record');
    assert.equal(audits[0]?.actor, 'stripe');
    assert.equal(audits[0]?.detail.from, 'FREE');
    assert.equal(audits[0]?.detail.to, 'PRO');
    assert.deepEqual(
      rig.notified.filter((n) => n.userId === user.userId).map((n) => n.change),
      [{ plan: 'PRO', paymentFailedAtMs: null, changedAtMs: subscription.created * 1000 }],
    );
    // Every call the api made was validated by stripe-mock and accepted.
    const calls = rig.fake.requests.filter(
      (r) => r.path === '/v1/customers' || r.path === '/v1/checkout/sessions',
    );
    assert.ok(calls.length >= 2);
    assert.ok(calls.every((r) => r.status === 200 && r.answeredBy !== 'stripe-mock-error'));
  });

  it('two upgrades racing end with one Stripe customer, linked once', async () => {
    const user = rig.newUser();
    const before = rig.fake.requestsTo('POST', '/v1/customers').length;
    // All four reach Stripe's customer creation before any of them is answered: a real race.
    const hold = rig.fake.hold('POST', '/v1/customers');
    const racing = Promise.all([1, 2, 3, 4].map(() => checkout(rig, user, 'TEAM')));
    await hold.waitFor(4);
    hold.release();
    const answers = await racing;
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    const customers = rig.fake.customersOf(user.userId);
    assert.equal(customers.length, 1, 'Stripe holds one customer for the account');
    const row = await billingRow(rig, user.userId);
    assert.equal(row.stripe_customer_id, customers[0]?.id);
    const sessions = answers.map((a) => rig.fake.sessionOfUrl((a.json as { url: string }).url));
    assert.ok(sessions.every((s) => s.customer === row.stripe_customer_id));
    const creations = rig.fake.requestsTo('POST', '/v1/customers').slice(before);
    assert.equal(creations.length, 4, 'each racing upgrade asked Stripe for a customer');
    assert.equal(new Set(creations.map((r) => r.idempotencyKey)).size, 1, 'all under one idempotency key');
    assert.equal(creations.filter((r) => r.answeredBy === 'fake').length, 1, 'Stripe made it once');

    // A later upgrade reuses the stored customer without asking Stripe for one.
    const later = rig.fake.requestsTo('POST', '/v1/customers').length;
    assert.equal((await checkout(rig, user, 'PRO')).status, 200);
    assert.equal(rig.fake.requestsTo('POST', '/v1/customers').length, later);
  });

  it('even when Stripe makes two customers (idempotency keys expired), the account links one and uses only it', async () => {
    const user = rig.newUser();
    rig.fake.idempotencyKeysExpired = true;
    try {
      const hold = rig.fake.hold('POST', '/v1/customers');
      const racing = Promise.all([1, 2].map(() => checkout(rig, user, 'PRO')));
      await hold.waitFor(2);
      hold.release();
      const answers = await racing;
      for (const answer of answers) assert.equal(answer.status, 200, answer.text);
      assert.equal(rig.fake.customersOf(user.userId).length, 2, 'Stripe made two this time');
      const linked = (await billingRow(rig, user.userId)).stripe_customer_id;
      assert.ok(linked);
      const sessions = answers.map((a) => rig.fake.sessionOfUrl((a.json as { url: string }).url));
      assert.deepEqual(
        sessions.map((s) => s.customer),
        [linked, linked],
        'compare-and-swap: the first link stays, both checkouts use it',
      );
    } finally {
      rig.fake.idempotencyKeysExpired = false;
    }
  });

  it('the portal needs a customer (404 before), answers its page after; a subscribed account cannot check out again', async () => {
    const user = rig.newUser();
    const portal = () =>
      request(`${rig.api.api.url}/api/billing/portal`, { method: 'POST', headers: authed(user) });
    const none = await portal();
    assert.equal(none.status, 404);
    assert.equal(errorCode(none), 'no_billing_account');

    await subscribe(rig, user, 'PRO');
    const page = await portal();
    assert.equal(page.status, 200, page.text);
    const { url } = page.json as { url: string };
    const session = rig.fake.portalSessions.find((s) => s.url === url);
    assert.ok(session, 'the URL is the portal session Stripe made');
    assert.equal(session.customer, (await billingRow(rig, user.userId)).stripe_customer_id);
    assert.match(session.returnUrl ?? '', /\/billing$/);

    const again = await checkout(rig, user, 'TEAM');
    assert.equal(again.status, 409);
    assert.equal(errorCode(again), 'already_subscribed');
  });

  it('refuses a plan that is not for sale and an unauthenticated caller', async () => {
    const user = rig.newUser();
    for (const plan of ['FREE', 'ENTERPRISE', '']) {
      const answer = await checkout(rig, user, plan);
      assert.equal(answer.status, 400, plan);
      assert.equal(errorCode(answer), 'bad_request');
    }
    const anonymous = await request(`${rig.api.api.url}/api/billing/checkout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'PRO' }),
    });
    assert.equal(anonymous.status, 401);
    assert.equal(rig.fake.customersOf(user.userId).length, 0);
  });

  it('the fake has stripe-mock validate requests: one Stripe’s API description rejects gets stripe-mock’s error', async () => {
    const stripe = createStripeClient(rig.billing);
    assert.ok(stripe);
    await assert.rejects(
      stripe.checkout.sessions.create({ mode: 'not-a-mode' } as unknown as Parameters<
        typeof stripe.checkout.sessions.create
      >[0]),
      (err: unknown) => {
        const e = err as { statusCode?: number; rawType?: string; message?: string };
        assert.equal(e.statusCode, 400);
        assert.equal(e.rawType, 'invalid_request_error');
        assert.match(e.message ?? '', /mode/);
        return true;
      },
    );
    const last = rig.fake.requests.at(-1);
    assert.equal(last?.answeredBy, 'stripe-mock-error');
    assert.equal(rig.fake.checkoutSessions.size > 0, true);
    assert.ok(
      [...rig.fake.checkoutSessions.values()].every((s) => s.mode === 'subscription'),
      'the rejected session was not recorded',
    );
  });

  it('with billing off every billing route answers 503 billing_unavailable and accounts have Free limits', async () => {
    const db = await createMigratedDatabase();
    const fake = await startFakeStripe({ stripeMock });
    const key = 'billing-off-key-0123456789';
    const api = await startTestApi({
      databaseUrl: db.url,
      users: { [key]: 'billing-off-user' },
      billing: { ...testConfig.billing, stripeSecretKey: undefined, stripeWebhookSecret: fake.webhookSecret },
    });
    try {
      const headers = authed({ key, userId: 'billing-off-user' });
      for (const path of ['/api/billing/checkout', '/api/billing/portal']) {
        const answer = await request(`${api.api.url}${path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ plan: 'PRO' }),
        });
        assert.equal(answer.status, 503, path);
        assert.equal(errorCode(answer), 'billing_unavailable');
      }
      fake.webhookUrl = `${api.api.url}/api/webhooks/stripe`;
      const hook = await fake.send(fake.event('customer.created', { id: 'cus_x', object: 'customer' }));
      assert.equal(hook.status, 503);
      assert.equal(fake.requests.length, 0, 'nothing reached Stripe');
      assert.equal((await getAccountPlan(db.pool, 'billing-off-user')).plan, 'FREE');
    } finally {
      await api.stop();
      await fake.stop();
      await db.drop();
    }
  });

  it('a plan without a configured price cannot be bought (503), and nothing is made at Stripe', async () => {
    const other = await startBillingRig({
      stripeMock,
      billing: { prices: { PRO: PRICES.PRO, TEAM: undefined } },
    });
    try {
      const user = other.newUser();
      const answer = await checkout(other, user, 'TEAM');
      assert.equal(answer.status, 503);
      assert.equal(errorCode(answer), 'billing_unavailable');
      assert.equal(other.fake.requests.length, 0);
    } finally {
      await other.stop();
    }
  });
});
