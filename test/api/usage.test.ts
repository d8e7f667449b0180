/**
 * GET /api/usage over HTTP against a real Postgres: the plan and the plan whose limits apply (a failed
 * payment's grace period), the billing period, compute minutes of this period only (usage_records as the
 * usage actor writes them), cloud workspaces that count (not archived, in the cloud), the invoices link
 * only for an account with a Stripe customer on a deployment with billing, and only the caller's own.
 * Nothing here reaches Temporal: the api's task queue has no worker.
 */
import assert from 'node:assert/strict';
import { UsageAnswerSchema } from '../../api/contract/usage.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';

describe('GET /api/usage (Postgres, no worker)', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-usage-${suffix}-0123456789`, userId: `alice-${suffix}` };
  const bob = { key: `bob-usage-${suffix}-0123456789`, userId: `bob-${suffix}` };
  let db: TestDatabase;
  let api: TestApi;
  let billed: TestApi;

  const get = (on: TestApi, who: { key: string }) =>
    request(`${on.api.url}/api/usage`, { headers: { authorization: `Bearer ${who.key}` } });

  async function slice(userId: string, key: string, startMs: number, minutes: number): Promise<void> {
    await db.pool.query(
      `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes, idempotency_key)
       VALUES ($1, 'vm', to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0 + 60), 60, $3, $4)`,
      [userId, startMs, minutes, key],
    );
  }

  async function workspace(userId: string, id: string, location: string, status: string): Promise<void> {
    await db.pool.query(
      'INSERT INTO workspaces (id, user_id, name, location, status) VALUES ($1, $2, $3, $4, $5)',
      [id, userId, id, location, status],
    );
  }

  before(async () => {
    db = await createMigratedDatabase();
    const users = { [alice.key]: alice.userId, [bob.key]: bob.userId };
    api = await startTestApi({ databaseUrl: db.url, users, quotas: true });
    // A deployment with Stripe configured: accounts with a customer have invoices.
    billed = await startTestApi({
      databaseUrl: db.url,
      users,
      quotas: true,
      billing: {
        ...testConfig.billing,
        stripeSecretKey: 'sk_test_usage',
        stripeApiUrl: 'http://127.0.0.1:9',
      },
    });
    for (const who of [alice, bob]) await db.pool.query('INSERT INTO users (id) VALUES ($1)', [who.userId]);
  });
  after(async () => {
    await api?.stop();
    await billed?.stop();
    await db?.drop();
  });

  it("answers the plan, this period's minutes and the cloud workspaces that count", async () => {
    const period = billingPeriodOf(Date.now());
    await slice(alice.userId, `a-1-${suffix}`, period.startMs, 1);
    await slice(alice.userId, `a-2-${suffix}`, period.startMs + 3600_000, 41);
    // The previous period's use does not count in this one.
    await slice(alice.userId, `a-old-${suffix}`, period.startMs - 3600_000, 500);
    await slice(bob.userId, `b-1-${suffix}`, period.startMs, 7);
    await workspace(alice.userId, `wa-ready-${suffix}`, 'CLOUD', 'READY');
    await workspace(alice.userId, `wa-failed-${suffix}`, 'CLOUD', 'FAILED');
    await workspace(alice.userId, `wa-archived-${suffix}`, 'CLOUD', 'ARCHIVED');
    await workspace(alice.userId, `wa-desk-${suffix}`, 'DESKTOP', 'READY');
    await workspace(bob.userId, `wb-${suffix}`, 'CLOUD', 'READY');

    const answer = await get(api, alice);
    assert.equal(answer.status, 200, answer.text);
    const usage = UsageAnswerSchema.parse(answer.json);
    assert.deepEqual(usage, {
      plan: 'FREE',
      effectivePlan: 'FREE',
      paymentFailedAt: null,
      period: { start: new Date(period.startMs).toISOString(), end: new Date(period.endMs).toISOString() },
      minutes: { used: 42, limit: 600 },
      workspaces: { active: 2, limit: 1 },
      upgradeUrl: new URL('/billing', testConfig.api.publicUrl).toString(),
      invoicesUrl: null,
      daily: usage.daily.map((day, i) => ({ date: day.date, minutes: i === 0 ? 42 : 0 })),
    });
    assert.equal(usage.daily[0]?.date, new Date(period.startMs).toISOString().slice(0, 10));
    const bobs = UsageAnswerSchema.parse((await get(api, bob)).json);
    assert.deepEqual([bobs.minutes.used, bobs.workspaces.active], [7, 1], 'each caller sees only their own');
  });

  it('shows the paid plan and, after the grace period of a failed payment, Free limits', async () => {
    await db.pool.query("UPDATE users SET plan = 'PRO', payment_failed_at = now() WHERE id = $1", [
      bob.userId,
    ]);
    const during = UsageAnswerSchema.parse((await get(api, bob)).json);
    assert.deepEqual([during.plan, during.effectivePlan, during.minutes.limit], ['PRO', 'PRO', 6000]);
    assert.ok(during.paymentFailedAt);
    await db.pool.query("UPDATE users SET payment_failed_at = now() - interval '30 days' WHERE id = $1", [
      bob.userId,
    ]);
    const after = UsageAnswerSchema.parse((await get(api, bob)).json);
    assert.deepEqual(
      [after.plan, after.effectivePlan, after.minutes.limit, after.workspaces.limit],
      ['PRO', 'FREE', 600, 1],
    );
  });

  it('links to the invoices only for an account with a Stripe customer on a deployment with billing', async () => {
    await db.pool.query('UPDATE users SET stripe_customer_id = $2 WHERE id = $1', [
      alice.userId,
      `cus_${suffix}`,
    ]);
    assert.equal(UsageAnswerSchema.parse((await get(billed, alice)).json).invoicesUrl, '/api/billing/portal');
    assert.equal(UsageAnswerSchema.parse((await get(billed, bob)).json).invoicesUrl, null, 'no customer');
    assert.equal(UsageAnswerSchema.parse((await get(api, alice)).json).invoicesUrl, null, 'no billing here');
  });

  it('answers 401 without credentials', async () => {
    const answer = await request(`${api.api.url}/api/usage`);
    assert.equal(answer.status, 401);
    assert.equal(errorCode(answer), 'unauthorized');
  });
});
