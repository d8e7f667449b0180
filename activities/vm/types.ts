/**
 * The contract between the vm:<userId> workflow (and the warm pool) and the Docker side of a VM.
 * Workflows import these types only; activities/vm/lifecycle.ts implements them with dockerode.
 */
import type { AgentHealth } from '@factory-factory/core/protocol';

/**
 * Where a VM lives on its Docker host. Kept in workflow state; holds no secret (the per-VM secret stays
 * in `runDir` on the host, readable only by root and the VM's user).
 */
export type VmContainerRef = {
  /** `ffc-vm-<userId>` for a user's VM, `ffc-pool-<slotId>` for an unassigned warm-pool VM. */
  containerName: string;
  containerId: string;
  /** Docker volume mounted as the VM user's home: credentials, clones and the agent's SQLite live here. */
  volumeName: string;
  /** Host directory bind-mounted at /run/ff-agent: holds agent.sock and the secret file. */
  runDir: string;
};

export type CreateVmContainerInput = {
  /** Container name; creating a name that exists adopts that container (retry after a crash). */
  containerName: string;
  role: 'vm' | 'pool';
  /** Workflow id that owns the container (`vm:<userId>` or the pool's id), for the reconciler. */
  owner: string;
  userId?: string;
};

export type VmContainerStatus = {
  exists: boolean;
  running: boolean;
  /** Docker's state: created, running, exited, … ('missing' when it does not exist). */
  status: string;
  exitCode: number | null;
  oomKilled: boolean;
  startedAt: string | null;
  finishedAt: string | null;
};

export type { AgentHealth };
