/**
 * Billing: upgrades through Stripe Checkout, the customer portal, and Stripe's webhooks, which are the only
 * thing that changes an account's plan. Webhooks come late, twice and out of order: each event id is
 * processed once (recorded in the transaction that applies it), and each part of the account's state
 * keeps the Stripe timestamp it came from, so an older event never overwrites a newer one.
 *
 * A plan change is audited ('plan.changed') and told to the usage:<userId> actor (planChanged, signal-with-
 * start) inside the same transaction, before it commits: if Temporal cannot be told, the webhook fails and
 * Stripe delivers it again, so the actor hears of every change at least once (it orders them by changedAtMs).
 */
import type { Client } from '@temporalio/client';
import type Stripe from 'stripe';
import { z } from 'zod';
import { recordAudit } from '../../db/audit.js';
import {
  type BillingAccount,
  claimWebhookEvent,
  findUserIdByCustomer,
  getAccountPlan,
  getBillingAccount,
  inTransaction,
  linkCustomerIfUnset,
  writeBillingState,
} from '../../db/billing.js';
import type { Pool } from '../../db/pool.js';
import { ensureUser, UserDeletedError } from '../../db/users.js';
import type { Logger } from '../../platform/logger.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultUsageSettings,
  type PlanChanged,
  planChangedSignal,
  type UsageWorkflowInput,
} from '../../workflows/usage/messages.js';
import { effectivePlan, type PlanName } from '../../workflows/usage/plans.js';
import type { usageWorkflow } from '../../workflows/usage/workflow.js';
import type { BillingRedirect, PaidPlan, StripeWebhookAnswer } from '../contract/billing.js';
import { ApiError } from '../errors.js';

export type BillingSettings = {
  /** Stripe price id of each paid plan (STRIPE_PRICE_PRO/TEAM). */
  prices: Partial<Record<PaidPlan, string>>;
  /** The dashboard's origin: where Checkout and the portal send the user back. */
  publicUrl: string;
  /** Signing secret of the webhook endpoint; without it Stripe webhooks are refused. */
  webhookSecret: string | undefined;
  /** How long a failed payment keeps the paid plan's limits. */
  gracePeriodMs: number;
};

/** How long telling the usage actor may take before the webhook fails (and Stripe delivers it again). */
const NOTIFY_TIMEOUT_MS = 5_000;

/** Tells the usage:<userId> actor about a plan change. */
export type PlanChangeNotifier = (userId: string, change: PlanChanged) => Promise<void>;

/** The production notifier: signal-with-start on usage:<userId>, so a finished actor is started again. */
export function usageActorNotifier(deps: {
  temporal: Client;
  taskQueue: string;
  gracePeriodMs: number;
}): PlanChangeNotifier {
  return async (userId, change) => {
    const input: UsageWorkflowInput = {
      userId,
      settings: { ...defaultUsageSettings, gracePeriodMs: deps.gracePeriodMs },
    };
    // Bounded: the webhook holds the account's row lock meanwhile, and Stripe gives up on slow answers.
    await deps.temporal.connection.withDeadline(Date.now() + NOTIFY_TIMEOUT_MS, () =>
      deps.temporal.workflow.signalWithStart<typeof usageWorkflow, [PlanChanged]>('usageWorkflow', {
        workflowId: workflowIds.usage(userId),
        taskQueue: deps.taskQueue,
        args: [input],
        signal: planChangedSignal,
        signalArgs: [change],
      }),
    );
  };
}

// ------------------------------------------------------------------------------ Stripe objects we read

/** An expandable reference: Stripe sends an id, or the object when it was expanded. */
const Ref = z
  .union([z.string(), z.object({ id: z.string() })])
  .transform((ref) => (typeof ref === 'string' ? ref : ref.id));
const Metadata = z.record(z.string(), z.string()).nullish();

const SubscriptionObject = z.object({
  id: z.string(),
  customer: Ref,
  status: z.string(),
  items: z.object({
    data: z.array(
      z.object({
        price: z.object({ id: z.string() }),
        // since API version 2025-03-31 the period is per item
        current_period_end: z.number().optional(),
      }),
    ),
  }),
  // before 2025-03-31
  current_period_end: z.number().optional(),
  metadata: Metadata,
});

const CheckoutSessionObject = z.object({
  id: z.string(),
  mode: z.string(),
  customer: Ref.nullish(),
  subscription: Ref.nullish(),
  client_reference_id: z.string().nullish(),
  payment_status: z.string(),
  metadata: Metadata,
});

const InvoiceObject = z.object({
  id: z.string(),
  customer: Ref.nullish(),
  // before 2025-03-31
  subscription: Ref.nullish(),
  parent: z.object({ subscription_details: z.object({ subscription: Ref }).nullish() }).nullish(),
});

// ------------------------------------------------------------------------------------ the state machine

/** Statuses in which the subscription's plan applies (past_due: the grace period decides). */
const LIVE_STATUSES = new Set(['active', 'trialing', 'past_due']);
const isLive = (status: string | null): boolean => status !== null && LIVE_STATUSES.has(status);

/**
 * Events of the same second, in the order Stripe makes them: a subscription is created, then its checkout
 * completes, then it is updated, then deleted. An event of a lower rank in the same second is older.
 */
const RANK = { created: 0, checkout: 1, updated: 2, deleted: 3 } as const;

/** What one webhook event says about an account. */
export type BillingChange =
  | {
      kind: 'subscription';
      eventId: string;
      eventType: string;
      atMs: number;
      rank: number;
      customerId: string | null;
      /** Our user id as we gave it to Stripe (checkout's client_reference_id, metadata). */
      userIdHint: string | null;
      subscription: { id: string; status: string; priceId: string | null; currentPeriodEndMs: number | null };
    }
  | {
      kind: 'payment';
      eventId: string;
      eventType: string;
      atMs: number;
      customerId: string | null;
      subscriptionId: string | null;
      failed: boolean;
    };

export type ChangeOutcome =
  | { applied: false }
  | {
      applied: true;
      next: BillingAccount;
      planChanged: boolean;
      paymentChanged: boolean;
      unknownPrice: boolean;
    };

/**
 * Applies one change to an account, or not when it is older than what the account already holds, or about
 * a subscription that is not the account's. Pure: the caller holds the row lock and writes the result.
 */
export function applyBillingChange(
  account: BillingAccount,
  change: BillingChange,
  planOfPrice: (priceId: string) => PaidPlan | null,
): ChangeOutcome {
  const current = account.subscription;
  if (change.kind === 'payment') {
    if (account.paymentStateAtMs !== null && change.atMs < account.paymentStateAtMs)
      return { applied: false };
    if (change.subscriptionId !== null && current.id !== null && change.subscriptionId !== current.id) {
      return { applied: false };
    }
    const paymentFailedAtMs = change.failed ? (account.paymentFailedAtMs ?? change.atMs) : null;
    const next = { ...account, paymentFailedAtMs, paymentStateAtMs: change.atMs };
    return {
      applied: true,
      next,
      planChanged: false,
      paymentChanged: paymentFailedAtMs !== account.paymentFailedAtMs,
      unknownPrice: false,
    };
  }

  const incoming = change.subscription;
  const newer =
    current.atMs === null ||
    change.atMs > current.atMs ||
    (change.atMs === current.atMs && change.rank >= current.rank);
  if (!newer) return { applied: false };
  // Another subscription than the account's: only a live one replaces it (a new checkout); an old one
  // ending says nothing about the current one.
  if (current.id !== null && incoming.id !== current.id && !isLive(incoming.status))
    return { applied: false };

  const paidPlan = incoming.priceId === null ? null : planOfPrice(incoming.priceId);
  const unknownPrice = isLive(incoming.status) && paidPlan === null;
  // A price this deployment does not know keeps the plan the account had: never grant or revoke by guess.
  const plan: PlanName = isLive(incoming.status) ? (paidPlan ?? account.plan) : 'FREE';
  let { paymentFailedAtMs, paymentStateAtMs } = account;
  const clearsFailure =
    incoming.status === 'active' || incoming.status === 'trialing' || !isLive(incoming.status);
  if (
    clearsFailure &&
    paymentFailedAtMs !== null &&
    (paymentStateAtMs === null || change.atMs > paymentStateAtMs)
  ) {
    paymentFailedAtMs = null;
    paymentStateAtMs = change.atMs;
  }
  const next: BillingAccount = {
    ...account,
    plan,
    stripeCustomerId: account.stripeCustomerId ?? change.customerId,
    subscription: {
      id: incoming.id,
      status: incoming.status,
      priceId: incoming.priceId ?? current.priceId,
      currentPeriodEndMs: incoming.currentPeriodEndMs ?? current.currentPeriodEndMs,
      atMs: change.atMs,
      rank: change.rank,
    },
    paymentFailedAtMs,
    paymentStateAtMs,
  };
  return {
    applied: true,
    next,
    planChanged: plan !== account.plan,
    paymentChanged: paymentFailedAtMs !== account.paymentFailedAtMs,
    unknownPrice,
  };
}

/** The webhook's payload is not what Stripe sends for its type (answered 400, and logged). */
class UnreadableEventError extends Error {}

function parsed<T extends z.ZodType>(schema: T, event: Stripe.Event): z.output<T> {
  const result = schema.safeParse(event.data.object);
  if (!result.success) {
    throw new UnreadableEventError(
      `${event.type} ${event.id}: ${result.error.issues[0]?.message ?? 'unreadable'}`,
    );
  }
  return result.data;
}

/** The billing change an event describes; null for the types billing does not handle. */
export function billingChangeOf(
  event: Stripe.Event,
  priceOfPlan: (plan: PaidPlan) => string | null,
): BillingChange | null {
  const base = { eventId: event.id, eventType: event.type, atMs: event.created * 1000 };
  switch (event.type) {
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const sub = parsed(SubscriptionObject, event);
      const item = sub.items.data[0];
      const periodEnd = item?.current_period_end ?? sub.current_period_end;
      const action = event.type.slice('customer.subscription.'.length) as 'created' | 'updated' | 'deleted';
      return {
        ...base,
        kind: 'subscription',
        rank: RANK[action],
        customerId: sub.customer,
        userIdHint: sub.metadata?.userId ?? null,
        subscription: {
          id: sub.id,
          // a deleted subscription is canceled whatever else the object says
          status: action === 'deleted' ? 'canceled' : sub.status,
          priceId: item?.price.id ?? null,
          currentPeriodEndMs: periodEnd === undefined ? null : periodEnd * 1000,
        },
      };
    }
    case 'checkout.session.completed': {
      const session = parsed(CheckoutSessionObject, event);
      // Not ours (a payment link, a one-off payment), or not paid yet (an async payment method): the
      // subscription's own events say what happens.
      if (session.mode !== 'subscription' || !session.subscription) return null;
      if (session.payment_status !== 'paid' && session.payment_status !== 'no_payment_required') return null;
      const plan = paidPlanOf(session.metadata?.plan);
      return {
        ...base,
        kind: 'subscription',
        rank: RANK.checkout,
        customerId: session.customer ?? null,
        userIdHint: session.client_reference_id ?? session.metadata?.userId ?? null,
        subscription: {
          id: session.subscription,
          status: 'active',
          priceId: plan === null ? null : priceOfPlan(plan),
          currentPeriodEndMs: null,
        },
      };
    }
    case 'invoice.payment_failed':
    case 'invoice.paid':
    case 'invoice.payment_succeeded': {
      const invoice = parsed(InvoiceObject, event);
      return {
        ...base,
        kind: 'payment',
        customerId: invoice.customer ?? null,
        subscriptionId: invoice.parent?.subscription_details?.subscription ?? invoice.subscription ?? null,
        failed: event.type === 'invoice.payment_failed',
      };
    }
    default:
      return null;
  }
}

function paidPlanOf(value: string | undefined): PaidPlan | null {
  return value === 'PRO' || value === 'TEAM' ? value : null;
}

// ---------------------------------------------------------------------------------------------- service

const billingOff = () =>
  new ApiError(
    503,
    'billing_unavailable',
    'billing is not configured on this deployment; every account has Free limits',
  );

/** The event types this service acts on (everything else is acknowledged and ignored). */
export const HANDLED_STRIPE_EVENTS = [
  'checkout.session.completed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'invoice.payment_failed',
  'invoice.paid',
  'invoice.payment_succeeded',
] as const;

export class BillingService {
  constructor(
    private readonly deps: {
      pool: Pool;
      /** null: billing is off (no STRIPE_SECRET_KEY). */
      stripe: Stripe | null;
      settings: BillingSettings;
      notifyPlanChanged: PlanChangeNotifier;
      log: Logger;
    },
  ) {}

  /** The dashboard's origin without a trailing slash, for the pages Stripe sends the user back to. */
  private get publicUrl(): string {
    return this.deps.settings.publicUrl.replace(/\/+$/, '');
  }

  get enabled(): boolean {
    return this.deps.stripe !== null;
  }

  private requireStripe(): Stripe {
    if (!this.deps.stripe) throw billingOff();
    return this.deps.stripe;
  }

  /** Runs a Stripe call; Stripe's own failures become a 502 the user can retry (details in the log). */
  private async stripeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const stripeErr = err as Partial<Stripe.errors.StripeError>;
      this.deps.log.error(
        {
          what,
          type: stripeErr.type,
          code: stripeErr.code,
          statusCode: stripeErr.statusCode,
          requestId: stripeErr.requestId,
          message: stripeErr.message,
        },
        'Stripe call failed',
      );
      throw new ApiError(
        502,
        'billing_provider_error',
        `Stripe did not complete the ${what}; try again in a moment`,
      );
    }
  }

  private planOfPrice = (priceId: string): PaidPlan | null => {
    const { prices } = this.deps.settings;
    if (prices.PRO === priceId) return 'PRO';
    if (prices.TEAM === priceId) return 'TEAM';
    return null;
  };

  /** The plan whose limits apply to the account now (a failed payment's grace period counted). */
  async effectivePlanOf(userId: string, nowMs: number): Promise<PlanName> {
    return effectivePlan(
      await getAccountPlan(this.deps.pool, userId),
      this.deps.settings.gracePeriodMs,
      nowMs,
    );
  }

  /** A Stripe Checkout page that subscribes the caller to a paid plan. */
  async checkout(userId: string, plan: PaidPlan): Promise<BillingRedirect> {
    const stripe = this.requireStripe();
    const price = this.deps.settings.prices[plan];
    if (!price) {
      throw new ApiError(
        503,
        'billing_unavailable',
        `the ${plan} plan cannot be bought on this deployment yet`,
      );
    }
    const account = await this.liveAccount(userId);
    if (account.plan !== 'FREE' && isLive(account.subscription.status)) {
      throw new ApiError(
        409,
        'already_subscribed',
        `you are subscribed to ${account.plan} already; change or cancel it in the billing portal (POST /api/billing/portal)`,
      );
    }
    const customer = account.stripeCustomerId ?? (await this.createCustomer(stripe, account));
    const { publicUrl } = this;
    const session = await this.stripeCall('checkout', () =>
      stripe.checkout.sessions.create({
        mode: 'subscription',
        customer,
        client_reference_id: userId,
        line_items: [{ price, quantity: 1 }],
        success_url: `${publicUrl}/billing?checkout=success`,
        cancel_url: `${publicUrl}/billing?checkout=canceled`,
        metadata: { userId, plan },
        subscription_data: { metadata: { userId, plan } },
      }),
    );
    if (!session.url)
      throw new ApiError(502, 'billing_provider_error', 'Stripe gave no checkout page; try again');
    return { url: session.url };
  }

  /** Stripe's customer portal for the caller: change plan, payment method, cancel, invoices. */
  async portal(userId: string): Promise<BillingRedirect> {
    const stripe = this.requireStripe();
    const account = await getBillingAccount(this.deps.pool, userId);
    if (!account?.stripeCustomerId || account.deleted) {
      throw new ApiError(
        404,
        'no_billing_account',
        'you have no billing account yet: subscribe to a plan first (POST /api/billing/checkout)',
      );
    }
    const customer = account.stripeCustomerId;
    const session = await this.stripeCall('billing portal', () =>
      stripe.billingPortal.sessions.create({ customer, return_url: `${this.publicUrl}/billing` }),
    );
    return { url: session.url };
  }

  private async liveAccount(userId: string): Promise<BillingAccount> {
    try {
      await ensureUser(this.deps.pool, { id: userId });
    } catch (err) {
      if (err instanceof UserDeletedError)
        throw new ApiError(404, 'not_found', 'this account has been deleted');
      throw err;
    }
    const account = await getBillingAccount(this.deps.pool, userId);
    if (!account || account.deleted) throw new ApiError(404, 'not_found', 'this account has been deleted');
    return account;
  }

  /**
   * One Stripe customer per account, even when two upgrades race: both ask Stripe with the same
   * idempotency key (so Stripe makes one customer and answers both with it), and the link is a
   * compare-and-swap, so whichever answer is stored first is the account's customer for good.
   */
  private async createCustomer(stripe: Stripe, account: BillingAccount): Promise<string> {
    const created = await this.stripeCall('customer creation', () =>
      stripe.customers.create(
        { metadata: { userId: account.userId }, ...(account.email ? { email: account.email } : {}) },
        { idempotencyKey: `ffc-customer-${account.userId}` },
      ),
    );
    const linked = await linkCustomerIfUnset(this.deps.pool, account.userId, created.id);
    if (linked === null) throw new ApiError(404, 'not_found', 'this account has been deleted');
    if (linked !== created.id) {
      this.deps.log.warn(
        { userId: account.userId, linked, unused: created.id },
        'a second Stripe customer was made for an account (outside the idempotency window); the first stays',
      );
    }
    return linked;
  }

  /**
   * POST /api/webhooks/stripe. Verifies the signature over the raw bytes with the endpoint secret, then
   * applies the event once. Throws ApiError 400 for a forged or stale signature (nothing is changed).
   */
  async handleStripeWebhook(input: {
    rawBody: Buffer;
    signature: string | undefined;
    requestId: string;
  }): Promise<StripeWebhookAnswer> {
    const stripe = this.requireStripe();
    const secret = this.deps.settings.webhookSecret;
    if (!secret) throw billingOff();
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(input.rawBody, input.signature ?? '', secret);
    } catch {
      throw new ApiError(
        400,
        'invalid_signature',
        'the Stripe-Signature header does not verify with the endpoint secret',
      );
    }
    let change: BillingChange | null;
    try {
      change = billingChangeOf(event, (plan) => this.deps.settings.prices[plan] ?? null);
    } catch (err) {
      if (!(err instanceof UnreadableEventError)) throw err;
      this.deps.log.error(
        { eventId: event.id, type: event.type, problem: err.message },
        'unreadable Stripe event',
      );
      throw new ApiError(400, 'unreadable_event', `the ${event.type} payload is not one billing can read`);
    }
    if (change === null) return { received: true, ignored: 'unhandled_type' };
    const handled = change;
    return inTransaction(this.deps.pool, async (client) => {
      if (!(await claimWebhookEvent(client, { provider: 'stripe', id: event.id, type: event.type }))) {
        return { received: true, duplicate: true };
      }
      const userId =
        (handled.customerId ? await findUserIdByCustomer(client, handled.customerId) : null) ??
        (handled.kind === 'subscription' ? handled.userIdHint : null);
      const account = userId ? await getBillingAccount(client, userId, { forUpdate: true }) : null;
      // A customer linked to another account than the hint names is never taken over by the hint.
      if (
        !account ||
        account.deleted ||
        (handled.customerId && account.stripeCustomerId && account.stripeCustomerId !== handled.customerId)
      ) {
        this.deps.log.warn({ eventId: event.id, type: event.type }, 'Stripe event for no account of ours');
        return { received: true, ignored: 'unknown_customer' };
      }
      const outcome = applyBillingChange(account, handled, this.planOfPrice);
      if (!outcome.applied) return { received: true, ignored: 'stale' };
      if (outcome.unknownPrice) {
        this.deps.log.error(
          { eventId: event.id, userId: account.userId, priceId: outcome.next.subscription.priceId },
          'subscription to a price no plan is configured with (STRIPE_PRICE_PRO/TEAM): plan left as it was',
        );
      }
      const { next } = outcome;
      await writeBillingState(client, next);
      if (outcome.planChanged || outcome.paymentChanged) {
        await recordAudit(client, {
          userId: next.userId,
          actor: 'stripe',
          action: 'plan.changed',
          targetType: 'subscription',
          ...(next.subscription.id ? { targetId: next.subscription.id } : {}),
          detail: {
            from: account.plan,
            to: next.plan,
            subscriptionStatus: next.subscription.status,
            paymentFailedAt:
              next.paymentFailedAtMs === null ? null : new Date(next.paymentFailedAtMs).toISOString(),
            eventId: event.id,
            eventType: event.type,
          },
          requestId: input.requestId,
        });
        await this.deps.notifyPlanChanged(next.userId, {
          plan: next.plan,
          paymentFailedAtMs: next.paymentFailedAtMs,
          changedAtMs: Math.max(next.subscription.atMs ?? 0, next.paymentStateAtMs ?? 0),
        });
      }
      return { received: true };
    });
  }
}
