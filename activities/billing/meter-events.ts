/**
 * Reports compute minutes to Stripe Billing's meter (meter events), for the usage:<userId> actor. Each
 * call carries the identifier of one reported slice; Stripe keeps identifiers (at least 24 hours) and
 * refuses a repeated one with a 400, which here means "delivered before": a report retried after a worker
 * crash between Stripe's answer and our own write bills nothing twice, and reporting moves on instead of
 * stalling on an error that can never succeed. Any other failure throws, and Temporal retries it.
 */
import { ApplicationFailure } from '@temporalio/common';
import type Stripe from 'stripe';
import { z } from 'zod';
import { getAccountPlan } from '../../db/billing.js';
import type { Pool } from '../../db/pool.js';

export type ReportComputeMinutesInput = {
  userId: string;
  /** Stripe's meter-event identifier: the same slice always has the same one. */
  identifier: string;
  minutes: number;
  /** When the minutes were used (seconds since the epoch); Stripe files them in that period. */
  timestampSec: number;
};

export type ReportComputeMinutesResult = {
  /** Stripe has the minutes (now, or from an earlier attempt). */
  delivered: boolean;
  /** Stripe had this identifier already. */
  duplicate: boolean;
  /** Nothing to report to: billing is off on this deployment, or the account has no Stripe customer. */
  skipped?: 'no_customer' | 'billing_off';
};

/** The contract the usage workflow proxies (import type only). */
export type MeterEventActivities = {
  reportComputeMinutes(input: ReportComputeMinutesInput): Promise<ReportComputeMinutesResult>;
};

const InputSchema = z.object({
  userId: z.string().min(1).max(128),
  // Stripe's limit for identifiers
  identifier: z.string().min(1).max(100),
  minutes: z.number().int().min(0),
  timestampSec: z.number().int().positive(),
});

/** Stripe's answer to an identifier it has already seen: "An event already exists with identifier …". */
export function isDuplicateMeterEvent(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { statusCode, rawType, message } = err as {
    statusCode?: unknown;
    rawType?: unknown;
    message?: unknown;
  };
  return (
    statusCode === 400 &&
    rawType === 'invalid_request_error' &&
    typeof message === 'string' &&
    /already exists with identifier/i.test(message)
  );
}

export function createMeterEventActivities(deps: {
  /** null: billing is off (no STRIPE_SECRET_KEY); every report is skipped. */
  stripe: Stripe | null;
  meterEventName: string;
  pool: Pool;
}) {
  return {
    async reportComputeMinutes(raw: ReportComputeMinutesInput): Promise<ReportComputeMinutesResult> {
      const parsed = InputSchema.safeParse(raw);
      // A malformed report can never succeed: failing it for good lets the workflow see it, not retry forever.
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(
          `invalid meter report: ${parsed.error.issues[0]?.message ?? 'unreadable'}`,
          'MeterReportInvalid',
        );
      }
      const input = parsed.data;
      if (!deps.stripe) return { delivered: false, duplicate: false, skipped: 'billing_off' };
      const { stripeCustomerId } = await getAccountPlan(deps.pool, input.userId);
      if (!stripeCustomerId) return { delivered: false, duplicate: false, skipped: 'no_customer' };
      try {
        await deps.stripe.billing.meterEvents.create({
          event_name: deps.meterEventName,
          payload: { stripe_customer_id: stripeCustomerId, value: String(input.minutes) },
          identifier: input.identifier,
          timestamp: input.timestampSec,
        });
        return { delivered: true, duplicate: false };
      } catch (err) {
        if (isDuplicateMeterEvent(err)) return { delivered: true, duplicate: true };
        throw err;
      }
    },
  } satisfies MeterEventActivities;
}
