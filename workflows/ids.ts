/**
 * Workflow ids and the task queue. One id per entity means one live actor per entity cluster-wide:
 * Temporal refuses a second running workflow with the same id, which is what makes "no two fixers for
 * one workspace" and "one VM per user" hold without any locking of our own.
 */

/** The task queue every workflow and activity of a single-host deployment runs on. */
export const DEFAULT_TASK_QUEUE = 'ffc-main';

/** Docker activities of a multi-host deployment run on the queue of the host that owns the container. */
export const hostTaskQueue = (hostId: string): string => `vm-host-${checkedPart('hostId', hostId)}`;

function checkedPart(what: string, value: string): string {
  if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(value)) {
    throw new TypeError(`${what} must be 1-128 characters of letters, digits, '_', '.', '@' or '-'`);
  }
  return value;
}

export const workflowIds = {
  vm: (userId: string): string => `vm:${checkedPart('userId', userId)}`,
  workspace: (workspaceId: string): string => `workspace:${checkedPart('workspaceId', workspaceId)}`,
  ratchet: (workspaceId: string): string => `ratchet:${checkedPart('workspaceId', workspaceId)}`,
  usage: (userId: string): string => `usage:${checkedPart('userId', userId)}`,
} as const;

/** A user's VM container is named after the user, so its owner (vm:<userId>) can be read off the name. */
export const USER_VM_CONTAINER_PREFIX = 'ffc-vm-';
export const userVmContainerName = (userId: string): string =>
  `${USER_VM_CONTAINER_PREFIX}${checkedPart('userId', userId)}`;
