/**
 * Which managed containers are strays: their owner workflow is not running and they are older than a grace
 * period (a provisioning actor may have created its container a moment before we listed actors).
 * Pure, so the reconcile workflow stays deterministic and the rule is tested without Docker.
 */
import type { VmContainerRef } from '../../activities/vm/types.js';

export type ContainerFacts = {
  id: string;
  name: string;
  owner: string;
  createdAtMs: number;
  vmRef?: VmContainerRef | null;
};
export type StrayReason = 'no_owner_label' | 'owner_not_running';
export type Stray = ContainerFacts & { reason: StrayReason };

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
