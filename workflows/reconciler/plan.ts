/**
 * Which managed containers are strays: their owner workflow is not running and they are older than a grace
 * period (a provisioning actor may have created its container a moment before we listed actors).
 * Pure, so the reconcile workflow stays deterministic and the rule is tested without Docker.
 */
import type { VmContainerRef } from '../../activities/vm/types.js';
import { USER_VM_CONTAINER_PREFIX } from '../ids.js';

export type ContainerFacts = {
  id: string;
  name: string;
  owner: string;
  createdAtMs: number;
  vmRef?: VmContainerRef | null;
};
export type StrayReason = 'no_owner_label' | 'owner_not_running';
export type Stray = ContainerFacts & { reason: StrayReason };

/**
 * What may be done to a stray. A user's VM holds the user's files (its volume) and is the only record of
 * which volume is theirs, so it is only ever stopped: the user's next ensureReady adopts it by name with
 * its volume. Only terminate and deleting the user remove a user's data. An unclaimed warm-pool VM holds
 * nobody's data and goes whole; anything else of ours is just a container.
 */
export type StrayAction = 'stop-user-vm' | 'remove-vm' | 'remove-container';

export function strayAction(stray: Pick<ContainerFacts, 'name' | 'vmRef'>): StrayAction {
  if (stray.name.startsWith(USER_VM_CONTAINER_PREFIX)) return 'stop-user-vm';
  return stray.vmRef ? 'remove-vm' : 'remove-container';
}

export function findStrays(input: {
  containers: ContainerFacts[];
  runningOwners: string[];
  nowMs: number;
  graceMs: number;
}): { strays: Stray[]; kept: ContainerFacts[] } {
  const running = new Set(input.runningOwners);
  const strays: Stray[] = [];
  const kept: ContainerFacts[] = [];
  for (const container of input.containers) {
    const oldEnough = input.nowMs - container.createdAtMs >= input.graceMs;
    const reason: StrayReason | null = !container.owner
      ? 'no_owner_label'
      : running.has(container.owner)
        ? null
        : 'owner_not_running';
    if (reason && oldEnough) strays.push({ ...container, reason });
    else kept.push(container);
  }
  return { strays, kept };
}
