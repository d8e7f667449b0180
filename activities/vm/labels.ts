/**
 * Docker labels and names of every container and volume we create. The owner of a container is the
 * workflow responsible for it: the reconciler removes containers whose owner is no longer running, so a
 * crash between "create container" and "record it" cannot leak one forever.
 *
 * A user's VM is named `ffc-vm-<userId>` and owned by `vm:<userId>` whatever its labels say: a warm-pool
 * container is created with the pool as owner and renamed when a user claims it (labels cannot change).
 */
import { USER_VM_CONTAINER_PREFIX } from '../../workflows/ids.js';

export const LABEL_MANAGED = 'ffc.managed';
export const LABEL_OWNER = 'ffc.owner';
export const LABEL_USER = 'ffc.user-id';
export const LABEL_VM = 'ffc.vm-id';
export const LABEL_ROLE = 'ffc.role';
/** On a VM container: its home volume and host run dir, so whoever removes it can remove those too. */
export const LABEL_VOLUME = 'ffc.volume';
export const LABEL_RUN_DIR = 'ffc.run-dir';
/** On a VM's volume: the container name it was created for. */
export const LABEL_CONTAINER_NAME = 'ffc.container-name';

export type ManagedRole = 'vm' | 'pool' | 'test';

export function managedLabels(input: {
  owner: string;
  role: ManagedRole;
  userId?: string;
  vmId?: string;
}): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_OWNER]: input.owner,
    [LABEL_ROLE]: input.role,
    ...(input.userId ? { [LABEL_USER]: input.userId } : {}),
    ...(input.vmId ? { [LABEL_VM]: input.vmId } : {}),
  };
}

export const POOL_VM_PREFIX = 'ffc-pool-';

/** The workflow that owns a container: from its name for user VMs, else from its owner label. */
export function ownerOf(containerName: string, labels: Record<string, string>): string {
  if (containerName.startsWith(USER_VM_CONTAINER_PREFIX)) {
    return `vm:${containerName.slice(USER_VM_CONTAINER_PREFIX.length)}`;
  }
  return labels[LABEL_OWNER] ?? '';
}
