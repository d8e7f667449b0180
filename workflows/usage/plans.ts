/**
 * The plans, in one place: what each allows. Pure data and pure functions, so the api (quotas), the
 * usage:<userId> actor (minutes) and billing (Stripe prices, by plan name in platform/config.ts) all read
 * the same numbers.
 */
import { z } from 'zod';

export const PlanNameSchema = z.enum(['FREE', 'PRO', 'TEAM']);
export type PlanName = z.output<typeof PlanNameSchema>;

export type PlanLimits = {
  /** Compute minutes (VM running time) per billing period. */
  computeMinutesPerPeriod: number;
  /** Workspaces in the cloud at once (not archived, location CLOUD). */
  concurrentCloudWorkspaces: number;
  /** The size of the user's VM. */
  vm: { memoryMb: number; cpus: number };
};

export const PLANS: Readonly<Record<PlanName, PlanLimits>> = {
  FREE: { computeMinutesPerPeriod: 600, concurrentCloudWorkspaces: 1, vm: { memoryMb: 2048, cpus: 1 } },
  PRO: { computeMinutesPerPeriod: 6_000, concurrentCloudWorkspaces: 5, vm: { memoryMb: 4096, cpus: 2 } },
  TEAM: { computeMinutesPerPeriod: 30_000, concurrentCloudWorkspaces: 20, vm: { memoryMb: 8192, cpus: 4 } },
};

/**
 * The plan whose limits apply now. A failed payment keeps the paid plan's limits for the grace period,
 * then Free's, until a payment succeeds (which clears paymentFailedAtMs).
 */
export function effectivePlan(
  account: { plan: PlanName; paymentFailedAtMs: number | null },
  gracePeriodMs: number,
  nowMs: number,
): PlanName {
  if (account.plan === 'FREE' || account.paymentFailedAtMs === null) return account.plan;
  return nowMs - account.paymentFailedAtMs < gracePeriodMs ? account.plan : 'FREE';
}

/** The billing period containing nowMs: the calendar month in UTC. */
export function billingPeriodOf(nowMs: number): { startMs: number; endMs: number } {
  const now = new Date(nowMs);
  const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const endMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return { startMs, endMs };
}
