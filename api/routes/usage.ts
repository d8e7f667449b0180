/**
 * GET /api/usage: what the caller's plan allows and how much of it is used. Always the caller's own: there
 * is no way to name another user.
 */
import type { Pool } from '../../db/pool.js';
import { dailyMinutesIn } from '../../db/usage.js';
import { UsageAnswerSchema } from '../contract/usage.js';
import { ErrorBodySchema } from '../contract/workspaces.js';
import type { QuotaService } from '../limits/quota-service.js';
import { type ApiRoute, callerOf, defineRoute } from './table.js';

/** The billing portal route (api/routes/billing.ts), where invoices are. */
const BILLING_PORTAL_ROUTE = '/api/billing/portal';

const DAY_MS = 24 * 3600 * 1000;
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Every UTC day from the period's start through today (or its last day), with its minutes or 0. */
export function dailySeries(
  period: { startMs: number; endMs: number },
  nowMs: number,
  billed: readonly { date: string; minutes: number }[],
): { date: string; minutes: number }[] {
  const byDay = new Map(billed.map((day) => [day.date, day.minutes]));
  const lastMs = Math.min(nowMs, period.endMs - 1);
  const days: { date: string; minutes: number }[] = [];
  for (let ms = period.startMs; ms <= lastMs; ms += DAY_MS) {
    const date = dayOf(ms);
    days.push({ date, minutes: byDay.get(date) ?? 0 });
  }
  return days;
}

export function usageRouteTable(deps: { quotas?: QuotaService | undefined; pool: Pool }): ApiRoute[] {
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
        const { userId } = callerOf(input);
        const usage = await quotas.usage(userId);
        const billed = await dailyMinutesIn(deps.pool, userId, usage.period);
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
            daily: dailySeries(usage.period, Date.now(), billed),
          },
        };
      },
    }),
  ];
}
