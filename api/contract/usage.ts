/**
 * The REST contract of GET /api/usage: the caller's plan, billing period, compute minutes and cloud
 * workspaces against the plan's limits. Pure zod (see api/contract/workspaces.ts).
 */
import { z } from 'zod';
import { PlanNameSchema } from '../../workflows/usage/plans.js';

export const UsageAnswerSchema = z.object({
  /** The plan subscribed to. */
  plan: PlanNameSchema,
  /** The plan whose limits apply now: Free once a failed payment's grace period is over. */
  effectivePlan: PlanNameSchema,
  /** When the latest unpaid payment failed; null when payments are in order. */
  paymentFailedAt: z.string().nullable(),
  /** The billing period (a calendar month, UTC): start inclusive, end exclusive, ISO 8601. */
  period: z.object({ start: z.string(), end: z.string() }),
  /** Compute minutes (VM running time) used this period, and the most allowed; exactly at it is spent. */
  minutes: z.object({ used: z.number().int(), limit: z.number().int() }),
  /** Workspaces in the cloud now (not archived), and the most allowed at once. */
  workspaces: z.object({ active: z.number().int(), limit: z.number().int() }),
  /** Where a user upgrades. */
  upgradeUrl: z.string(),
  /**
   * POST this route for a link to Stripe's customer portal, where the invoices are; null while the
   * account has no Stripe customer (never subscribed) or billing is not configured.
   */
  invoicesUrl: z.string().nullable(),
  /**
   * Minutes billed per UTC day of the period, from its first day through today (days with none are 0), for
   * the dashboard's chart; they add up to `minutes.used`.
   */
  daily: z.array(z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), minutes: z.number().int() })),
});
export type UsageAnswer = z.output<typeof UsageAnswerSchema>;
