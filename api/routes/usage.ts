/**
 * GET /api/usage: what the caller's plan allows and how much of it is used. Always the caller's own: there
 * is no way to name another user.
 */
import { UsageAnswerSchema } from '../contract/usage.js';
import { ErrorBodySchema } from '../contract/workspaces.js';
import type { QuotaService } from '../limits/quota-service.js';
import { type ApiRoute, callerOf, defineRoute } from './table.js';

/** The billing portal route (api/routes/billing.ts), where invoices are. */
const BILLING_PORTAL_ROUTE = '/api/billing/portal';

export function usageRouteTable(deps: { quotas?: QuotaService | undefined }): ApiRoute[] {
  const { quotas } = deps;
  if (!quotas) return [];
  return [
    defineRoute({
      method: 'get',
      path: '/usage',
      tag: 'usage',
      summary: 'My plan, billing period, compute minutes and cloud workspaces against their limits',
      auth: true,
      responses: {
        200: { description: 'the usage of my account', schema: UsageAnswerSchema },
        401: { description: 'not signed in', schema: ErrorBodySchema },
      },
      handle: async (input) => {
        const usage = await quotas.usage(callerOf(input).userId);
        const iso = (ms: number) => new Date(ms).toISOString();
        return {
          status: 200,
          body: {
            plan: usage.account.plan,
            effectivePlan: usage.effectivePlan,
            paymentFailedAt:
              usage.account.paymentFailedAtMs === null ? null : iso(usage.account.paymentFailedAtMs),
            period: { start: iso(usage.period.startMs), end: iso(usage.period.endMs) },
            minutes: usage.minutes,
            workspaces: usage.workspaces,
            upgradeUrl: quotas.upgradeUrl,
            invoicesUrl:
              quotas.billingEnabled && usage.account.stripeCustomerId !== null ? BILLING_PORTAL_ROUTE : null,
          },
        };
      },
    }),
  ];
}
