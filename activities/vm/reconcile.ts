/**
 * The reconciler's hands: settle one stray container, re-checking right before acting that it still is
 * one. Between the reconciler's listing and this call a user may have come back and their actor started
 * the container, so the owner is asked again and the grace period counts from the container's latest
 * sign of life (created, started or stopped), never from its creation alone.
 *
 * A user's VM is only stopped, never removed: its volume holds the user's files and the container is what
 * ties that volume to the user (the next ensureReady adopts it by name). Data is deleted only by terminate.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Config } from '../../platform/config.js';
import type { StrayOutcome } from '../../workflows/reconciler/messages.js';
import { type Stray, strayAction } from '../../workflows/reconciler/plan.js';
import { dockerStatusCode } from './containers.js';
import { createVmContainerActivities } from './lifecycle.js';

function dockerTimeMs(value: string | undefined): number {
  if (!value || value.startsWith('0001-01-01')) return 0;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : 0;
}

export function createReconcileActivities(deps: { docker: Docker; temporal: Client; vm: Config['vm'] }) {
  const vmDocker = createVmContainerActivities({ docker: deps.docker, vm: deps.vm });

  async function ownerRunning(owner: string): Promise<boolean> {
    if (!owner) return false;
    try {
      return (await deps.temporal.workflow.getHandle(owner).describe()).status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  return {
    async settleStray(input: { stray: Stray; graceMs: number }): Promise<StrayOutcome> {
      const { stray } = input;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await deps.docker.getContainer(stray.id).inspect();
      } catch (err) {
        if (dockerStatusCode(err) === 404) return 'spared'; // gone already: nothing to do
        throw err;
      }
      const lastSignOfLife = Math.max(
        dockerTimeMs(info.Created),
        dockerTimeMs(info.State.StartedAt),
        dockerTimeMs(info.State.FinishedAt),
      );
      if (Date.now() - lastSignOfLife < input.graceMs) return 'spared';
      if (await ownerRunning(stray.owner)) return 'spared';

      switch (strayAction(stray)) {
        case 'stop-user-vm':
          if (info.State.Running) await deps.docker.getContainer(stray.id).stop({ t: 10 }).catch(ignore304);
          return 'stopped';
        case 'remove-vm':
          if (stray.vmRef) await vmDocker.removeVmContainer(stray.vmRef);
          return 'removed';
        case 'remove-container':
          await deps.docker
            .getContainer(stray.id)
            .remove({ force: true, v: true })
            .catch((err: unknown) => {
              if (dockerStatusCode(err) !== 404) throw err;
            });
          return 'removed';
      }
    },
  };
}

function ignore304(err: unknown): void {
  const status = dockerStatusCode(err);
  if (status !== 304 && status !== 404) throw err;
}
