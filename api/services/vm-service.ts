/**
 * What the api does with a user's VM, in terms of the vm:<userId> actor. Routes and sockets call this; it
 * turns Temporal's answers into ApiErrors with codes a client can branch on.
 */
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { recordAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import {
  QuotaFailureDetailsSchema,
  suspendUpdate,
  terminateUpdate,
  touchSignal,
  VmErrorType,
  type VmSettings,
  type VmView,
  VmViewSchema,
  vmContainerQuery,
} from '../../workflows/vm/messages.js';
import type { vmWorkflow } from '../../workflows/vm/workflow.js';
import { ApiError } from '../errors.js';
import type { QuotaService } from '../limits/quota-service.js';

const noVm = () => new ApiError(404, 'vm_not_found', 'you have no VM yet: POST /api/vms creates it');

/** Translates the actor's failures (ApplicationFailure types) and Temporal's "no such workflow". */
function toApiError(err: unknown): unknown {
  if (err instanceof WorkflowNotFoundError) return noVm();
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const { type, message } = err.cause;
    switch (type) {
      case VmErrorType.terminating:
        return new ApiError(409, 'vm_terminating', message);
      case VmErrorType.terminated:
        return noVm();
      case VmErrorType.busy:
        return new ApiError(409, 'vm_busy', message);
      case VmErrorType.failed:
        return new ApiError(503, 'vm_failed', `${message}; try again, or contact support if it persists`);
      default:
        return new ApiError(500, 'vm_error', message);
    }
  }
  // An update sent to an actor that has finished (terminated VM).
  if (err instanceof Error && /workflow execution already completed/i.test(err.message)) return noVm();
  return err;
}

export class VmService {
  constructor(
    private readonly deps: {
      temporal: Client;
      pool: Pool;
      taskQueue: string;
      settings: VmSettings;
      /** Quotas checked before a VM is started (api/limits); none: no limits (tests of other things). */
      quotas?: QuotaService;
    },
  ) {}

  /** Runs a call on the actor, translating its failures for HTTP callers. */
  private async mapped<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.quotaError(err) ?? toApiError(err);
    }
  }

  /** The actor holds the VM because the period's minutes are spent (usage:<userId>): the quota's 402. */
  private quotaError(err: unknown): ApiError | null {
    if (!(err instanceof WorkflowUpdateFailedError) || !(err.cause instanceof ApplicationFailure))
      return null;
    if (err.cause.type !== VmErrorType.quotaExhausted) return null;
    const details = QuotaFailureDetailsSchema.safeParse(err.cause.details?.[0]);
    const used = details.success ? details.data.usedMinutes : 0;
    const max = details.success ? details.data.limitMinutes : 0;
    if (!this.deps.quotas)
      return new ApiError(402, 'quota_compute_minutes', err.cause.message, {
        limit: { name: 'compute_minutes', used, max, upgradeUrl: '' },
      });
    return this.deps.quotas.computeMinutesExceeded(used, max, null, billingPeriodOf(Date.now()).endMs);
  }

  private handle(userId: string) {
    return this.deps.temporal.workflow.getHandle<typeof vmWorkflow>(workflowIds.vm(userId));
  }

  /**
   * Provisions or resumes the user's VM, starting its actor if it does not exist; resolves when the agent
   * answers. A VM that is not running is started only within the plan's compute minutes (402 otherwise).
   */
  async ensureReady(userId: string): Promise<VmView> {
    await this.deps.quotas?.checkBeforeProvisioning(userId);
    return this.mapped(() =>
      ensureVmReady(this.deps.temporal, {
        userId,
        taskQueue: this.deps.taskQueue,
        settings: this.deps.settings,
      }),
    );
  }

  /**
   * From the read model the actor writes on every transition: answers in milliseconds, also while no
   * worker runs (a query to the actor would wait for one). The actor writes before it answers an update,
   * so a caller sees at least the state its own request produced.
   */
  async get(userId: string): Promise<VmView> {
    const { rows } = await this.deps.pool.query<{ view: unknown }>(
      `SELECT view FROM vms WHERE user_id = $1 AND status <> 'TERMINATED' AND view IS NOT NULL
       ORDER BY updated_at DESC LIMIT 1`,
      [userId],
    );
    const row = rows[0];
    if (!row) throw noVm();
    const view = VmViewSchema.safeParse(row.view);
    if (!view.success) throw new ApiError(500, 'vm_error', 'the stored state of your VM is unreadable');
    return view.data;
  }

  /** Where the VM's agent listens, ensuring the VM is up first. */
  async agentEndpoint(userId: string): Promise<VmContainerRef> {
    await this.ensureReady(userId);
    const ref = await this.handle(userId).query(vmContainerQuery);
    if (!ref) throw new ApiError(503, 'vm_unavailable', 'the VM is not running right now; try again');
    return ref;
  }

  async suspend(userId: string): Promise<VmView> {
    return this.mapped(() => this.handle(userId).executeUpdate(suspendUpdate));
  }

  async terminate(userId: string): Promise<VmView> {
    return this.mapped(() => this.handle(userId).executeUpdate(terminateUpdate));
  }

  /** The user's own terminate (DELETE /api/vms/me): the VM goes, and the account's audit log says who did it. */
  async terminateAudited(userId: string, by: { actor: string; requestId?: string }): Promise<VmView> {
    const view = await this.terminate(userId);
    await recordAudit(this.deps.pool, {
      userId,
      actor: by.actor,
      action: 'vm.terminated',
      targetType: 'vm',
      targetId: view.vmId,
      ...(by.requestId ? { requestId: by.requestId } : {}),
    });
    return view;
  }

  /** Any user traffic keeps the VM from being suspended as idle. Best effort: no VM, nothing to touch. */
  async touch(userId: string): Promise<void> {
    await this.handle(userId)
      .signal(touchSignal)
      .catch(() => {});
  }
}
