/**
 * Quotas of the caller's plan, checked before the api starts anything that costs: before a VM is
 * provisioned or resumed (compute minutes of the billing period) and before a workspace is sent to the
 * cloud (concurrent cloud workspaces). Use is read from Postgres (usage_records, the workspaces and vms
 * read models), the plan from the account (db/billing.ts) with the grace period of a failed payment.
 *
 * Exactly at the limit is exceeded: the limit is what may be used, and it has been. Every refusal is a 402
 * with its own code and `limit: {name, used, max, upgradeUrl}`.
 *
 * The usage:<userId> actor enforces the same minutes on a running VM (it suspends it); this is the door
 * that keeps a spent account from starting one.
 */
import { type AccountPlan, getAccountPlan } from '../../db/billing.js';
import type { Pool } from '../../db/pool.js';
import { usedMinutesIn } from '../../db/usage.js';
import { billingPeriodOf, effectivePlan, PLANS, type PlanName } from '../../workflows/usage/plans.js';
import { VmViewSchema } from '../../workflows/vm/messages.js';
import { ApiError } from '../errors.js';

export type QuotaLimitName = 'compute_minutes' | 'cloud_workspaces';

/** Everything GET /api/usage answers, and what the checks compare. */
export type AccountUsage = {
  account: AccountPlan;
  /** The plan whose limits apply now (a failed payment falls to Free after the grace period). */
  effectivePlan: PlanName;
  period: { startMs: number; endMs: number };
  minutes: { used: number; limit: number };
  workspaces: { active: number; limit: number };
};

const planTitle = (plan: PlanName): string => plan.charAt(0) + plan.slice(1).toLowerCase();
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export class QuotaService {
  constructor(
    private readonly deps: {
      pool: Pool;
      /** config.billing.gracePeriodMs */
      gracePeriodMs: number;
      /** Where a user upgrades (the dashboard's billing page). */
      upgradeUrl: string;
      /** Stripe is configured (config.billing.stripeSecretKey): accounts may have invoices. */
      billingEnabled?: boolean;
      now?: () => number;
    },
  ) {}

  get upgradeUrl(): string {
    return this.deps.upgradeUrl;
  }

  get billingEnabled(): boolean {
    return this.deps.billingEnabled ?? false;
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Non-archived workspaces of the user that are in the cloud (FAILED ones hold their place too). */
  async activeCloudWorkspaces(userId: string): Promise<number> {
    const { rows } = await this.deps.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM workspaces WHERE user_id = $1 AND location = 'CLOUD' AND status <> 'ARCHIVED'`,
      [userId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async usage(userId: string): Promise<AccountUsage> {
    const nowMs = this.now();
    const account = await getAccountPlan(this.deps.pool, userId);
    const plan = effectivePlan(account, this.deps.gracePeriodMs, nowMs);
    const period = billingPeriodOf(nowMs);
    const [used, active] = await Promise.all([
      usedMinutesIn(this.deps.pool, userId, period),
      this.activeCloudWorkspaces(userId),
    ]);
    return {
      account,
      effectivePlan: plan,
      period,
      minutes: { used, limit: PLANS[plan].computeMinutesPerPeriod },
      workspaces: { active, limit: PLANS[plan].concurrentCloudWorkspaces },
    };
  }

  /** The 402 of spent compute minutes (also what the VM actor's own refusal is turned into). */
  computeMinutesExceeded(used: number, max: number, plan: PlanName | null, periodEndMs: number): ApiError {
    const whose = plan ? `the ${planTitle(plan)} plan's` : "your plan's";
    return new ApiError(
      402,
      'quota_compute_minutes',
      `Compute quota exceeded: ${used} of ${whose} ${max} compute minutes this period are used ` +
        `(it renews on ${day(periodEndMs)}); upgrade for more minutes: ${this.deps.upgradeUrl}`,
      { limit: { name: 'compute_minutes', used, max, upgradeUrl: this.deps.upgradeUrl } },
    );
  }

  private cloudWorkspacesExceeded(used: number, max: number, plan: PlanName): ApiError {
    return new ApiError(
      402,
      'quota_cloud_workspaces',
      `Cloud workspace limit reached: ${used} of the ${planTitle(plan)} plan's ${max} cloud workspaces are in use; ` +
        `archive or pull one, or upgrade for more: ${this.deps.upgradeUrl}`,
      { limit: { name: 'cloud_workspaces', used, max, upgradeUrl: this.deps.upgradeUrl } },
    );
  }

  /** Refuses with 402 when the period's compute minutes are spent. */
  async checkComputeMinutes(userId: string): Promise<void> {
    const usage = await this.usage(userId);
    if (usage.minutes.used >= usage.minutes.limit)
      throw this.computeMinutesExceeded(
        usage.minutes.used,
        usage.minutes.limit,
        usage.effectivePlan,
        usage.period.endMs,
      );
  }

  /** Refuses with 402 when another cloud workspace would exceed the plan's concurrent ones. */
  async checkCloudWorkspaces(userId: string): Promise<void> {
    const usage = await this.usage(userId);
    if (usage.workspaces.active >= usage.workspaces.limit)
      throw this.cloudWorkspacesExceeded(
        usage.workspaces.active,
        usage.workspaces.limit,
        usage.effectivePlan,
      );
  }

  /** Whether the user's VM runs now (its read model): ensuring a running VM provisions nothing. */
  async vmIsRunning(userId: string): Promise<boolean> {
    const { rows } = await this.deps.pool.query<{ view: unknown }>(
      `SELECT view FROM vms WHERE user_id = $1 AND status <> 'TERMINATED' AND view IS NOT NULL
       ORDER BY updated_at DESC LIMIT 1`,
      [userId],
    );
    const view = VmViewSchema.safeParse(rows[0]?.view);
    return (
      view.success &&
      (view.data.status === 'READY' || view.data.status === 'ONBOARDING') &&
      view.data.operation === null &&
      !view.data.suspendReason
    );
  }

  /** Before VmService.ensureReady starts or resumes a VM: its minutes must not be spent. */
  async checkBeforeProvisioning(userId: string): Promise<void> {
    if (await this.vmIsRunning(userId)) return;
    await this.checkComputeMinutes(userId);
  }

  /**
   * Before a workspace send: a workspace not yet in the cloud needs room among the plan's cloud
   * workspaces (sending one that is there again is the same workspace), and the VM it needs must be
   * allowed to run.
   */
  async checkWorkspaceSend(userId: string, workspaceId: string): Promise<void> {
    await this.checkBeforeProvisioning(userId);
    const { rows } = await this.deps.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM workspaces
        WHERE user_id = $1 AND id = $2 AND location = 'CLOUD' AND status <> 'ARCHIVED'`,
      [userId, workspaceId],
    );
    if (Number(rows[0]?.n ?? 0) > 0) return;
    await this.checkCloudWorkspaces(userId);
  }
}
