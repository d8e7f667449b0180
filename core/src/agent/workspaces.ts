import type {
  CreateWorkspaceInput,
  PortableWorkspaceState,
  PortableWorkspaceStateInput,
  Workspace,
  WorkspaceLocation,
} from '../protocol/index.js';

/**
 * What the agent's handlers need from the workspace domain. CoreWorkspaces (core-workspaces.ts) implements
 * it over core/workspace's WorkspaceService; failures are WorkspaceErrors, mapped to the wire by
 * toAgentError.
 */
export interface AgentWorkspaceBridge {
  /**
   * Checks the input (and reads the issue) and answers with the workspace PROVISIONING; the clone, worktree
   * and setup script run in the background. Idempotent on `input.id`.
   */
  create(input: CreateWorkspaceInput): Promise<Workspace>;
  list(options: { includeArchived: boolean }): Promise<Workspace[]>;
  get(id: string): Promise<Workspace | null>;
  /** READY or FAILED → ARCHIVED; the worktree goes, the branch stays. */
  archive(id: string): Promise<Workspace>;
  /** FAILED → PROVISIONING again (capped), in the background like create. */
  retry(id: string): Promise<Workspace>;
  exportState(id: string, options: { handoffTo?: WorkspaceLocation }): Promise<PortableWorkspaceState>;
  /** Takes ownership of a workspace handed to this side; a new one provisions in the background. */
  importState(state: PortableWorkspaceStateInput): Promise<Workspace>;
  /** The checked worktree of a READY workspace: where its sessions and terminals run. */
  worktreePath(id: string): Promise<string>;
  /** The prompt waiting for the workspace's first session (an issue to work on), handed out once. */
  takeQueuedPrompt(id: string): Promise<string | null>;
}
