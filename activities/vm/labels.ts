/**
 * Docker labels on every container and volume we create. `ffc.owner` names the workflow that owns the
 * resource (e.g. `vm:<userId>`, or the warm pool's id): the reconciler removes resources whose owner is
 * no longer running, so a crash between "create container" and "record it" cannot leak one forever.
 */
export const LABEL_MANAGED = 'ffc.managed';
export const LABEL_OWNER = 'ffc.owner';
export const LABEL_USER = 'ffc.user-id';
export const LABEL_VM = 'ffc.vm-id';
export const LABEL_ROLE = 'ffc.role';

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
