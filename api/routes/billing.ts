/**
 * Billing routes: POST /api/billing/checkout (upgrade through Stripe Checkout) and POST /api/billing/portal
 * (Stripe's customer portal). Both answer a URL to send the browser to; the plan itself changes only when
 * Stripe's webhook says so (api/webhooks/stripe.ts).
 */
import { BillingRedirectSchema, CheckoutRequestSchema } from '../contract/billing.js';
import { ApiError } from '../errors.js';
import type { BillingService } from '../services/billing-service.js';
import { type ApiRoute, callerOf, defineRoute, errors } from './table.js';

/** `billing` absent: a deployment built without it answers like one without Stripe configured. */
export function billingRouteTable(deps: { billing?: BillingService | undefined }): ApiRoute[] {
  const service = (): BillingService => {
    if (!deps.billing?.enabled) {
      throw new ApiError(
        503,
        'billing_unavailable',
        'billing is not configured on this deployment; every account has Free limits',
      );
    }
    return deps.billing;
  };
  return [
    defineRoute({
      method: 'post',
      path: '/billing/checkout',
      tag: 'billing',
      summary: 'Upgrade: a Stripe Checkout page that subscribes me to PRO or TEAM',
      auth: true,
      body: CheckoutRequestSchema,
      responses: {
        200: { description: 'the Checkout page to send the browser to', schema: BillingRedirectSchema },
        ...errors({
          400: 'invalid body',
          409: 'already subscribed: change plans in the billing portal',
          502: 'Stripe did not answer; try again',
          503: 'billing is not configured on this deployment',
        }),
      },
      handle: async (input) => ({
        status: 200,
        body: await service().checkout(callerOf(input).userId, input.body.plan),
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/billing/portal',
      tag: 'billing',
      summary: "Manage my subscription: Stripe's customer portal (plan, payment method, invoices, cancel)",
      auth: true,
      responses: {
        200: { description: 'the portal page to send the browser to', schema: BillingRedirectSchema },
        ...errors({
          404: 'no billing account yet: subscribe first',
          502: 'Stripe did not answer; try again',
          503: 'billing is not configured on this deployment',
        }),
      },
      handle: async (input) => ({ status: 200, body: await service().portal(callerOf(input).userId) }),
    }),
  ];
}
