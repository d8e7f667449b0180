/**
 * The contract between the workspace:<workspaceId> workflow and its side effects: the user's VM (through
 * the vm:<userId> actor), the workspace inside it (through the VM's agent) and the read model. Workflows
 * import these types only; activities/workspace/*.ts implement them, all idempotent.
 */
import type { PortableWorkspaceState, RatchetStateName } from '@factory-factory/core/protocol';
import type { z } from 'zod';
import type { RatchetMemorySchema } from '../../workflows/ratchet/messages.js';
import type {
  SessionSummarySchema,
  WorkspaceDetailsSchema,
  WorkspaceSource,
  WorkspaceView,
} from '../../workflows/workspace/messages.js';

export type WorkspaceDetails = z.output<typeof WorkspaceDetailsSchema>;
export type RatchetMemoryPayload = z.output<typeof RatchetMemorySchema>;
export type SessionSummary = z.output<typeof SessionSummarySchema>;

/** ApplicationFailure types the activities raise beside WorkspaceErrorType's. */
export const WorkspaceActivityFailure = {
  /** The user's VM could not be started (the VM actor's failure, in its words). */
  vmFailed: 'WorkspaceVmFailed',
} as const;

export type RestoreRequest = {
  workspaceId: string;
  userId: string;
  source: WorkspaceSource;
  /** `send` hands the (new) state to the agent; `retry` asks the agent to provision a failed one again. */
  mode: 'send' | 'retry';
};

export type RestoreOutcome =
  | { status: 'READY'; details: WorkspaceDetails }
  /** The agent's provisioning failed; `reason` is its initError. */
  | { status: 'FAILED'; reason: string };

export type PulledWorkspace = { state: PortableWorkspaceState; sessions: SessionSummary[] };

/** What a handoff of the ratchet:<id> actor gave back; `found: false` when it never ran. */
export type RatchetHandOffResult =
  | { found: false }
  | {
      found: true;
      /** Null when the actor had already ended without leaving its memory (the last known one stays). */
      memory: RatchetMemoryPayload | null;
      ratchetState: RatchetStateName | null;
    };

/** What the read model answered: the stored version and creation time, or that the row is someone else's. */
export type RecordedView =
  | { written: true; version: number; createdAt: string }
  | { written: false; reason: 'stale' | 'notOwner' };

export interface WorkspaceActivities {
  /** ensureReady on vm:<userId>, starting that actor if needed (update-with-start); its status. */
  ensureWorkspaceVm(input: { userId: string }): Promise<{ status: string }>;
  /**
   * Hands the workspace to the VM's agent (import, create or retry, idempotent on the workspace id) and
   * polls it until READY or FAILED, heartbeating. Errors the user caused fail with invalidSource.
   */
  restoreWorkspaceInVm(request: RestoreRequest): Promise<RestoreOutcome>;
  /** The portable state with the handoff to DESKTOP, and its sessions. Refused (fixerActive) while a fixer works. */
  pullWorkspaceFromVm(input: { userId: string; workspaceId: string }): Promise<PulledWorkspace>;
  /** Stops its sessions and removes its worktree in the VM. Refused (fixerActive) while a fixer works. */
  archiveWorkspaceInVm(input: { userId: string; workspaceId: string }): Promise<void>;
  /**
   * Makes ratchet:<workspaceId> run with `enabled`: told through its setEnabled update when it runs,
   * started from `memory` (enabled) when it does not and `enabled` is true; nothing when it does not run
   * and `enabled` is false. Idempotent: the workflow id allows one running ratchet per workspace.
   */
  syncWorkspaceRatchet(input: {
    workspaceId: string;
    userId: string;
    enabled: boolean;
    memory: RatchetMemoryPayload;
  }): Promise<{ running: boolean }>;
  /** Its handOff update: the memory, and the actor ends. Refused (fixerActive) while a fixer works. */
  handOffWorkspaceRatchet(input: { workspaceId: string }): Promise<RatchetHandOffResult>;
  /** Its end update ('archived'); one that does not run is fine. */
  endWorkspaceRatchet(input: { workspaceId: string; reason: 'archived' }): Promise<{ ended: boolean }>;
  /** Upserts the view into `workspaces`, never over a newer write or another user's row. */
  recordWorkspaceView(view: WorkspaceView): Promise<RecordedView>;
}
