/**
 * POST /api/webhooks/stripe: Stripe's events about subscriptions and invoices. Public (Stripe has no
 * credentials of ours); trusted only once the Stripe-Signature header verifies over the raw body with the
 * endpoint secret (STRIPE_WEBHOOK_SECRET). Any non-2xx answer makes Stripe deliver the event again later.
 */
import { StripeWebhookAnswerSchema, StripeWebhookEventSchema } from '../contract/billing.js';
import { ErrorBodySchema } from '../contract/workspaces.js';
import type { BillingService } from '../services/billing-service.js';
import type { WebhookRoute } from './raw-body.js';

export function stripeWebhookRoute(deps: { billing: BillingService }): WebhookRoute {
  return {
    path: '/webhooks/stripe',
    tag: 'billing',
    summary: "Stripe's webhook: checkout, subscription and invoice events (signature-verified)",
    description:
      'Handles checkout.session.completed, customer.subscription.created/updated/deleted, invoice.payment_failed ' +
      'and invoice.paid. Each event id is applied once; an event older than the state it would change is ignored.',
    bodyDescription: StripeWebhookEventSchema,
    responses: {
      200: {
        description: 'received (applied, or a duplicate, or nothing to do)',
        schema: StripeWebhookAnswerSchema,
      },
      400: {
        description: 'the signature does not verify, or the payload is unreadable',
        schema: ErrorBodySchema,
      },
      503: { description: 'billing is not configured on this deployment', schema: ErrorBodySchema },
    },
    handle: async (input) => {
      const signature = input.headers['stripe-signature'];
      const answer = await deps.billing.handleStripeWebhook({
        rawBody: input.rawBody,
        signature: Array.isArray(signature) ? signature[0] : signature,
        requestId: input.requestId,
      });
      return { status: 200, body: answer };
    },
  };
}
