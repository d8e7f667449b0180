/**
 * The Stripe side of the users table: which Stripe customer and subscription an account has, its plan, and
 * when a payment failed. Only verified Stripe webhooks change the plan (api/services/billing-service.ts);
 * the checkout route links the customer. Everything is scoped by the user id.
 */
import type pg from 'pg';
import type { PlanName } from '../workflows/usage/plans.js';
import type { Pool } from './pool.js';

/** What limits apply to an account: its plan, and since when a payment is failing (grace period). */
export type AccountPlan = {
  plan: PlanName;
  /** Epoch ms of the failed payment that is still unpaid; null when payments are in order. */
  paymentFailedAtMs: number | null;
  stripeCustomerId: string | null;
};

const freeAccount: AccountPlan = { plan: 'FREE', paymentFailedAtMs: null, stripeCustomerId: null };

/** The account's plan as stored; an unknown (or not yet recorded) user is on Free with no customer. */
export async function getAccountPlan(pool: Pool, userId: string): Promise<AccountPlan> {
  const { rows } = await pool.query<{
    plan: PlanName;
    payment_failed_ms: string | null;
    stripe_customer_id: string | null;
  }>(
    `SELECT plan, (extract(epoch FROM payment_failed_at) * 1000)::bigint::text AS payment_failed_ms,
            stripe_customer_id
       FROM users WHERE id = $1`,
    [userId],
  );
  const row = rows[0];
  if (!row) return freeAccount;
  return {
    plan: row.plan,
    paymentFailedAtMs: row.payment_failed_ms === null ? null : Number(row.payment_failed_ms),
    stripeCustomerId: row.stripe_customer_id,
  };
}

/** Anything that runs a query: the pool, or one client inside a transaction. */
type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** The subscription part of an account, with the Stripe time it was taken from. */
export type SubscriptionState = {
  id: string | null;
  status: string | null;
  priceId: string | null;
  currentPeriodEndMs: number | null;
  /** The Stripe timestamp (ms) of the event this state came from; null before any. */
  atMs: number | null;
  /** Orders events of the same second (see the migration). */
  rank: number;
};

/** Everything billing knows about one account. */
export type BillingAccount = {
  userId: string;
  email: string | null;
  deleted: boolean;
  plan: PlanName;
  stripeCustomerId: string | null;
  subscription: SubscriptionState;
  paymentFailedAtMs: number | null;
  /** The Stripe timestamp (ms) of the last event that set or cleared paymentFailedAtMs. */
  paymentStateAtMs: number | null;
};

type AccountRow = {
  id: string;
  email: string | null;
  deleted: boolean;
  plan: PlanName;
  stripe_customer_id: string | null;
  stripe_subscription_id: string | null;
  subscription_status: string | null;
  stripe_price_id: string | null;
  current_period_end_ms: string | null;
  subscription_state_at_ms: string | null;
  subscription_state_rank: number;
  payment_failed_ms: string | null;
  payment_state_at_ms: string | null;
};

/** Epoch ms of a timestamptz column, exact to the ms, as text (bigint) so pg does not round it. */
const ms = (column: string, as: string) => `(extract(epoch FROM ${column}) * 1000)::bigint::text AS ${as}`;

const ACCOUNT_COLUMNS = [
  'id',
  'email',
  'deleted_at IS NOT NULL AS deleted',
  'plan',
  'stripe_customer_id',
  'stripe_subscription_id',
  'subscription_status',
  'stripe_price_id',
  ms('current_period_end', 'current_period_end_ms'),
  ms('subscription_state_at', 'subscription_state_at_ms'),
  'subscription_state_rank',
  ms('payment_failed_at', 'payment_failed_ms'),
  ms('payment_state_at', 'payment_state_at_ms'),
].join(', ');

const msOf = (text: string | null): number | null => (text === null ? null : Number(text));

function accountOf(row: AccountRow): BillingAccount {
  return {
    userId: row.id,
    email: row.email,
    deleted: row.deleted,
    plan: row.plan,
    stripeCustomerId: row.stripe_customer_id,
    subscription: {
      id: row.stripe_subscription_id,
      status: row.subscription_status,
      priceId: row.stripe_price_id,
      currentPeriodEndMs: msOf(row.current_period_end_ms),
      atMs: msOf(row.subscription_state_at_ms),
      rank: row.subscription_state_rank,
    },
    paymentFailedAtMs: msOf(row.payment_failed_ms),
    paymentStateAtMs: msOf(row.payment_state_at_ms),
  };
}

/** The account's billing state; null when there is no row. `forUpdate` locks it inside a transaction. */
export async function getBillingAccount(
  db: Queryable,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<BillingAccount | null> {
  const { rows } = await db.query<AccountRow>(
    `SELECT ${ACCOUNT_COLUMNS} FROM users WHERE id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [userId],
  );
  const row = rows[0];
  return row ? accountOf(row) : null;
}

/** Whose Stripe customer this is; null for a customer this deployment never linked. */
export async function findUserIdByCustomer(db: Queryable, customerId: string): Promise<string | null> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM users WHERE stripe_customer_id = $1', [
    customerId,
  ]);
  return rows[0]?.id ?? null;
}

/**
 * Links a Stripe customer to the account unless one is linked already (compare-and-swap: two upgrades
 * racing both try, one wins). Answers the customer that is linked now, the winner's; null only when the
 * user has no live row.
 */
export async function linkCustomerIfUnset(
  pool: Pool,
  userId: string,
  customerId: string,
): Promise<string | null> {
  const { rows } = await pool.query<{ stripe_customer_id: string }>(
    `UPDATE users SET stripe_customer_id = $2, updated_at = now()
     WHERE id = $1 AND stripe_customer_id IS NULL AND deleted_at IS NULL
     RETURNING stripe_customer_id`,
    [userId, customerId],
  );
  if (rows[0]) return rows[0].stripe_customer_id;
  const existing = await pool.query<{ stripe_customer_id: string | null }>(
    'SELECT stripe_customer_id FROM users WHERE id = $1 AND deleted_at IS NULL',
    [userId],
  );
  return existing.rows[0]?.stripe_customer_id ?? null;
}

/**
 * Claims a webhook event for processing inside the caller's transaction: true the first time; false for
 * an event already processed (a redelivery). A concurrent delivery of the same event waits on the key
 * until the first commits, then gets false; if the first rolls back, it gets true and does the work.
 */
export async function claimWebhookEvent(
  client: pg.PoolClient,
  event: { provider: 'stripe' | 'clerk'; id: string; type: string },
): Promise<boolean> {
  const { rowCount } = await client.query(
    `INSERT INTO processed_webhook_events (provider, event_id, event_type) VALUES ($1, $2, $3)
     ON CONFLICT (provider, event_id) DO NOTHING`,
    [event.provider, event.id, event.type],
  );
  return (rowCount ?? 0) > 0;
}

const toTimestamp = (value: number | null): Date | null => (value === null ? null : new Date(value));

/** Stores the account's plan, subscription and payment state as billing computed them. */
export async function writeBillingState(client: Queryable, account: BillingAccount): Promise<void> {
  const s = account.subscription;
  await client.query(
    `UPDATE users SET
       plan = $2, stripe_customer_id = COALESCE(stripe_customer_id, $11), stripe_subscription_id = $3, subscription_status = $4, stripe_price_id = $5,
       current_period_end = $6, subscription_state_at = $7, subscription_state_rank = $8,
       payment_failed_at = $9, payment_state_at = $10, updated_at = now()
     WHERE id = $1`,
    [
      account.userId,
      account.plan,
      s.id,
      s.status,
      s.priceId,
      toTimestamp(s.currentPeriodEndMs),
      toTimestamp(s.atMs),
      s.rank,
      toTimestamp(account.paymentFailedAtMs),
      toTimestamp(account.paymentStateAtMs),
      account.stripeCustomerId,
    ],
  );
}

/** Runs fn in one transaction on one client: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(pool: Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool.
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
