/**
 * The reconciler's hands: settle one stray container, re-checking right before acting that it still is
 * one. Between the reconciler's listing and this call a user may have come back and their actor started
 * the container, so the owner is asked again and the grace period counts from the container's latest
 * sign of life (created, started or stopped), never from its creation alone.
 *
 * A user's VM is only stopped, never removed: its volume holds the user's files and the container is what
 * ties that volume to the user (the next ensureReady adopts it by name). Data is deleted only by terminate.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { Config } from '../../platform/config.js';
import type { StrayOutcome } from '../../workflows/reconciler/messages.js';
import { type Stray, strayAction } from '../../workflows/reconciler/plan.js';
import { createActorActivities } from '../temporal/actors.js';
import { createContainerInventoryActivities, dockerStatusCode } from './containers.js';
import { createVmContainerActivities } from './lifecycle.js';

const timeMs = (value: string | undefined): number => (value ? Date.parse(value) || 0 : 0);

export function createReconcileActivities(deps: { docker: Docker; temporal: Client; vm: Config['vm'] }) {
  const vmDocker = createVmContainerActivities({ docker: deps.docker, vm: deps.vm });
  const inventory = createContainerInventoryActivities({ docker: deps.docker });
  const actors = createActorActivities({ client: deps.temporal });

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
      // Docker reports "0001-01-01…" for never; Date.parse gives a large negative number for it.
      const lastSignOfLife = Math.max(
        timeMs(info.Created),
        timeMs(info.State.StartedAt),
        timeMs(info.State.FinishedAt),
      );
      if (Date.now() - lastSignOfLife < input.graceMs) return 'spared';
      if (stray.owner && (await actors.runningWorkflows([stray.owner])).length > 0) return 'spared';

      switch (strayAction(stray)) {
        case 'stop-user-vm':
          if (info.State.Running) {
            await deps.docker
              .getContainer(stray.id)
              .stop({ t: 10 })
              .catch((err: unknown) => {
                // 304: stopped meanwhile; 404: gone meanwhile. Either way, not running.
                if (![304, 404].includes(dockerStatusCode(err) ?? 0)) throw err;
              });
          }
          return 'stopped';
        case 'remove-vm':
          if (stray.vmRef) await vmDocker.removeVmContainer(stray.vmRef);
          return 'removed';
        case 'remove-container':
          await inventory.removeContainer(stray.id);
          return 'removed';
      }
    },
  };
}
