/**
 * Removes containers that carry our labels but whose owning actor is gone, and reports them. Runs on a
 * Temporal schedule; each activity is idempotent, so a crash mid-run is finished by the next run.
 */
import { log, patched, proxyActivities } from '@temporalio/workflow';
import { z } from 'zod';
import type { createActorActivities } from '../../activities/temporal/actors.js';
import type { createContainerInventoryActivities } from '../../activities/vm/containers.js';
import type { createReconcileActivities } from '../../activities/vm/reconcile.js';
import type { VmContainerActivities } from '../../activities/vm/types.js';
import { workflowNow } from '../clock.js';
import { parseOrFail } from '../validation.js';
import type { ReconcileInput, ReconcileReport } from './messages.js';
import { findStrays } from './plan.js';

const inventory = proxyActivities<ReturnType<typeof createContainerInventoryActivities>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});
const vmDocker = proxyActivities<Pick<VmContainerActivities, 'removeVmContainer'>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});
const actors = proxyActivities<ReturnType<typeof createActorActivities>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

const settle = proxyActivities<ReturnType<typeof createReconcileActivities>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

const DEFAULT_GRACE_MS = 5 * 60 * 1000;

const ReconcileInputSchema = z
  .object({
    graceMs: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600 * 1000)
      .optional(),
    dryRun: z.boolean().optional(),
  })
  .strict();

/** Runs before this marker used the first rule, which removed a user's VM with its volume. */
export const RECONCILER_KEEPS_USER_DATA_PATCH = 'reconciler-never-removes-user-data';

export async function reconcileStrayContainers(rawInput: unknown = {}): Promise<ReconcileReport> {
  const input: ReconcileInput = parseOrFail(
    ReconcileInputSchema,
    rawInput ?? {},
    'input of the reconciler',
    'ReconcilerInvalidInput',
  );
  if (patched(RECONCILER_KEEPS_USER_DATA_PATCH)) return reconcile(input);
  return reconcileV1(input);
}

/** Strays are settled one by one, each re-checked right before it is touched (activities/vm/reconcile.ts). */
async function reconcile(input: ReconcileInput): Promise<ReconcileReport> {
  const containers = await inventory.listManagedContainers();
  const owners = [...new Set(containers.map((c) => c.owner).filter((owner) => owner !== ''))];
  const runningOwners = owners.length > 0 ? await actors.runningWorkflows(owners) : [];
  const graceMs = input.graceMs ?? DEFAULT_GRACE_MS;
  const { strays } = findStrays({ containers, runningOwners, nowMs: workflowNow(), graceMs });
  const report = {
    checked: containers.length,
    strays,
    removed: [] as string[],
    stopped: [] as string[],
    spared: [] as string[],
  };
  for (const stray of strays) {
    log.warn('stray container', {
      containerId: stray.id,
      name: stray.name,
      owner: stray.owner,
      reason: stray.reason,
    });
    if (input.dryRun) continue;
    const outcome = await settle.settleStray({ stray, graceMs });
    report[outcome].push(stray.id);
  }
  return report;
}

/** FROZEN: the first rule, kept only so runs recorded before the patch replay. */
async function reconcileV1(input: ReconcileInput): Promise<ReconcileReport> {
  const containers = await inventory.listManagedContainers();
  const owners = [...new Set(containers.map((c) => c.owner).filter((owner) => owner !== ''))];
  const runningOwners = owners.length > 0 ? await actors.runningWorkflows(owners) : [];
  const { strays } = findStrays({
    containers,
    runningOwners,
    nowMs: workflowNow(),
    graceMs: input.graceMs ?? DEFAULT_GRACE_MS,
  });
  const removed: string[] = [];
  for (const stray of strays) {
    log.warn('stray container', {
      containerId: stray.id,
      name: stray.name,
      owner: stray.owner,
      reason: stray.reason,
    });
    if (!input.dryRun) {
      // A VM takes its home volume and run dir (with its secret) along; anything else is just a container.
      if (stray.vmRef) await vmDocker.removeVmContainer(stray.vmRef);
      else await inventory.removeContainer(stray.id);
      removed.push(stray.id);
    }
  }
  return { checked: containers.length, strays, removed };
}
