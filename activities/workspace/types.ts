/**
 * The contract between the workspace:<workspaceId> workflow and its side effects: the user's VM (through
 * the vm:<userId> actor), the workspace inside it (through the VM's agent) and the read model. Workflows
 * import these types only; activities/workspace/*.ts implement them, all idempotent.
 */
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import type { z } from 'zod';
import type {
  SessionSummarySchema,
  WorkspaceDetailsSchema,
  WorkspaceSource,
  WorkspaceView,
} from '../../workflows/workspace/messages.js';

export type WorkspaceDetails = z.output<typeof WorkspaceDetailsSchema>;
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
  /** Upserts the view into `workspaces`, never over a newer write or another user's row. */
  recordWorkspaceView(view: WorkspaceView): Promise<RecordedView>;
}
