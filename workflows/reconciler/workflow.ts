/**
 * Removes containers that carry our labels but whose owning actor is gone, and reports them. Runs on a
 * Temporal schedule; each activity is idempotent, so a crash mid-run is finished by the next run.
 */
import { log, proxyActivities } from '@temporalio/workflow';
import type { createActorActivities } from '../../activities/temporal/actors.js';
import type { createContainerInventoryActivities } from '../../activities/vm/containers.js';
import type { VmContainerActivities } from '../../activities/vm/types.js';
import { workflowNow } from '../clock.js';
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

const DEFAULT_GRACE_MS = 5 * 60 * 1000;

export async function reconcileStrayContainers(input: ReconcileInput = {}): Promise<ReconcileReport> {
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
