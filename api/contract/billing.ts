/**
 * The REST contract of billing: upgrading through Stripe Checkout, managing the subscription in Stripe's
 * customer portal, and Stripe's webhook. Pure zod (see api/contract/workspaces.ts).
 */
import { z } from 'zod';

/** The plans one can buy; Free is what an account has without a subscription. */
export const PaidPlanSchema = z.enum(['PRO', 'TEAM']);
export type PaidPlan = z.output<typeof PaidPlanSchema>;

/** POST /api/billing/checkout */
export const CheckoutRequestSchema = z.object({ plan: PaidPlanSchema }).strict();

/** Where to send the user's browser: a Stripe Checkout or customer-portal page. */
export const BillingRedirectSchema = z.object({ url: z.url() });
export type BillingRedirect = z.output<typeof BillingRedirectSchema>;

/**
 * POST /api/webhooks/stripe: what Stripe sends (an Event), as far as the description needs it. The
 * handler verifies the signature over the raw bytes before it reads any of this.
 */
export const StripeWebhookEventSchema = z.object({
  id: z.string(),
  object: z.literal('event'),
  type: z.string(),
  /** Seconds since the epoch: orders deliveries that arrive late. */
  created: z.number().int(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});

/** The webhook's answer; Stripe only looks at the status. */
export const StripeWebhookAnswerSchema = z.object({
  received: z.literal(true),
  /** This event id was processed before: nothing was done again. */
  duplicate: z.boolean().optional(),
  /** Why nothing changed: an event type billing does not handle, an unknown customer, an older event. */
  ignored: z.enum(['unhandled_type', 'unknown_customer', 'stale']).optional(),
});
export type StripeWebhookAnswer = z.output<typeof StripeWebhookAnswerSchema>;
