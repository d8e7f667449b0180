/**
 * Helpers for tests (and benchmarks) that drive VM actors: polling for a condition, and removing everything
 * a user's VM left behind however the test ended.
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { LABEL_OWNER, LABEL_RUN_DIR, LABEL_VOLUME } from '../../activities/vm/labels.js';
import { createVmContainerActivities, vmVolumeName } from '../../activities/vm/lifecycle.js';
import { userVmContainerName, workflowIds } from '../../workflows/ids.js';
import { testConfig } from './services.js';

/** Polls `probe` until it returns a value; fails naming `what` after the timeout. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Ends the user's actor (if any) and removes the container, home volume and run dir it may have left. */
export async function removeUserVm(client: Client, docker: Docker, userId: string): Promise<void> {
  await client.workflow
    .getHandle(workflowIds.vm(userId))
    .terminate('test over')
    .catch(() => {});
  const containerName = userVmContainerName(userId);
  await createVmContainerActivities({ docker, vm: testConfig.vm }).removeVmContainer({
    containerName,
    containerId: containerName,
    volumeName: vmVolumeName(containerName),
    runDir: join(testConfig.vm.runDirRoot, containerName),
  });
}

/** Removes every VM container (with volume and run dir) owned by a workflow, e.g. a test's warm pool. */
export async function removeVmsOwnedBy(docker: Docker, owner: string): Promise<void> {
  const remove = createVmContainerActivities({ docker, vm: testConfig.vm }).removeVmContainer;
  for (const c of await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_OWNER}=${owner}`] },
  })) {
    const volumeName = c.Labels[LABEL_VOLUME];
    const runDir = c.Labels[LABEL_RUN_DIR];
    if (volumeName && runDir) {
      await remove({ containerName: c.Names[0]?.slice(1) ?? c.Id, containerId: c.Id, volumeName, runDir });
    }
  }
}
