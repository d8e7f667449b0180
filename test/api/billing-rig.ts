/**
 * What the billing api tests share: a fresh database, the fake Stripe in front of a real stripe-mock, and
 * the api wired to it (the real `stripe` client with STRIPE_API_URL at the fake, webhooks signed with the
 * endpoint secret). Plan changes told to usage:<userId> are recorded here instead of signalled, except in
 * the test that checks the signal reaches a real usage actor.
 */
import type { PlanChangeNotifier } from '../../api/services/billing-service.js';
import type { Config } from '../../platform/config.js';
import type { PlanChanged } from '../../workflows/usage/messages.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { type RunningFakeStripe, startFakeStripe } from '../support/fake-stripe.js';
import { request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';
import type { StripeMock } from '../support/stripe-mock.js';

export const PRICES = { PRO: 'price_ffc_pro_monthly', TEAM: 'price_ffc_team_monthly' } as const;

export type TestUser = { key: string; userId: string };

export type BillingRig = {
  db: TestDatabase;
  fake: RunningFakeStripe;
  api: TestApi;
  billing: Config['billing'];
  /** Every plan change billing told the usage actor about, in order. */
  notified: { userId: string; change: PlanChanged }[];
  newUser: () => TestUser;
  stop: () => Promise<void>;
};

export async function startBillingRig(
  options: {
    stripeMock?: StripeMock;
    gracePeriodMs?: number;
    /** Billing config overrides (e.g. no secret key: billing off). */
    billing?: Partial<Config['billing']>;
    notifyPlanChanged?: PlanChangeNotifier;
    taskQueue?: string;
  } = {},
): Promise<BillingRig> {
  const db = await createMigratedDatabase();
  const fake = await startFakeStripe(options.stripeMock ? { stripeMock: options.stripeMock } : {});
  const billing: Config['billing'] = {
    ...testConfig.billing,
    stripeSecretKey: 'sk_test_ffcBilling0123456789',
    stripeApiUrl: fake.url,
    stripeWebhookSecret: fake.webhookSecret,
    prices: { ...PRICES },
    gracePeriodMs: options.gracePeriodMs ?? 3_600_000,
    ...options.billing,
  };
  const notified: BillingRig['notified'] = [];
  const users: Record<string, string> = {};
  // Dev keys are read when the api is built: the rig makes a stock of users up front.
  const stock: TestUser[] = [];
  for (let i = 0; i < 40; i += 1) {
    const suffix = uniqueSuffix();
    const user = { key: `billing-${suffix}-0123456789`, userId: `user-${suffix}` };
    users[user.key] = user.userId;
    stock.push(user);
  }
  const api = await startTestApi({
    databaseUrl: db.url,
    users,
    auth: {},
    billing,
    ...(options.taskQueue ? { taskQueue: options.taskQueue } : {}),
    notifyPlanChanged:
      options.notifyPlanChanged ??
      (async (userId, change) => {
        notified.push({ userId, change });
      }),
  });
  fake.webhookUrl = `${api.api.url}/api/webhooks/stripe`;
  return {
    db,
    fake,
    api,
    billing,
    notified,
    newUser: () => {
      const user = stock.shift();
      if (!user) throw new Error('the billing rig ran out of test users');
      return user;
    },
    stop: async () => {
      await api.stop();
      await fake.stop();
      await db.drop();
    },
  };
}

export const authed = (user: TestUser) => ({
  authorization: `Bearer ${user.key}`,
  'content-type': 'application/json',
});

export async function checkout(rig: BillingRig, user: TestUser, plan: string) {
  return request(`${rig.api.api.url}/api/billing/checkout`, {
    method: 'POST',
    headers: authed(user),
    body: JSON.stringify({ plan }),
  });
}

export type UserBillingRow = {
  plan: string;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  subscription_status: string | null;
  stripe_price_id: string | null;
  payment_failed_at: Date | null;
  subscription_state_at: Date | null;
};

export async function billingRow(rig: BillingRig, userId: string): Promise<UserBillingRow> {
  const { rows } = await rig.db.pool.query<UserBillingRow>(
    `SELECT plan, stripe_customer_id, stripe_subscription_id, subscription_status, stripe_price_id,
            payment_failed_at, subscription_state_at
       FROM users WHERE id = $1`,
    [userId],
  );
  const row = rows[0];
  if (!row) throw new Error(`no users row for ${userId}`);
  return row;
}

export async function planAudits(rig: BillingRig, userId: string) {
  const { rows } = await rig.db.pool.query<{ actor: string; detail: Record<string, unknown> }>(
    "SELECT actor, detail FROM audit_log WHERE user_id = $1 AND action = 'plan.changed' ORDER BY id",
    [userId],
  );
  return rows;
}

/** Subscribes the user through the api and the fake's Checkout; the subscription and its start time. */
export async function subscribe(
  rig: BillingRig,
  user: TestUser,
  plan: 'PRO' | 'TEAM',
  options: { created?: number } = {},
) {
  const answer = await checkout(rig, user, plan);
  if (answer.status !== 200) throw new Error(`checkout answered ${answer.status}: ${answer.text}`);
  const { url } = answer.json as { url: string };
  const session = rig.fake.sessionOfUrl(url);
  const completed = await rig.fake.complete(session.id, options);
  return { session, subscription: completed.subscription, deliveries: completed.deliveries };
}
