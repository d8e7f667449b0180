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
  /**
   * Home volume to mount instead of a new `ffc-home-<name>` one: recreating a lost container of a VM
   * that was claimed from the warm pool must keep that pool container's volume (the user's data).
   */
  volumeName?: string;
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

/** What the VM actor asks of the Docker side. activities/vm/lifecycle.ts implements it; all are idempotent. */
export interface VmContainerActivities {
  /** Creates (or adopts, if the name exists) the container, its volume and run dir with the per-VM secret. */
  createVmContainer(input: CreateVmContainerInput): Promise<VmContainerRef>;
  /** Starting a running container succeeds. */
  startVmContainer(ref: VmContainerRef): Promise<void>;
  /** Suspend: docker stop, container and volume kept. Stopped already succeeds; missing fails (VmContainerMissing). */
  stopVmContainer(ref: VmContainerRef): Promise<void>;
  /** Container, volume and run dir; whatever is already gone is skipped. */
  removeVmContainer(ref: VmContainerRef): Promise<void>;
  inspectVmContainer(ref: VmContainerRef): Promise<VmContainerStatus>;
  /** Renames a warm-pool container for the user who claimed it; already renamed succeeds. */
  renameVmContainer(ref: VmContainerRef, containerName: string): Promise<VmContainerRef>;
  /** Polls the agent over its socket until it answers (heartbeating); VmAgentUnreachable after the timeout. */
  waitForVmAgent(ref: VmContainerRef, options: { timeoutMs: number }): Promise<AgentHealth>;
  /** One short attempt; null when the agent does not answer. */
  pingVmAgent(ref: VmContainerRef): Promise<AgentHealth | null>;
}
