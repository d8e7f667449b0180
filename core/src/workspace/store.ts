import type { Workspace, WorkspaceStatus } from '../protocol/workspace.js';
import { WorkspaceError } from './errors.js';
import { checkTransition } from './state-machine.js';

/** Fields a write may change; id, status (only through transition), version and createdAt are the store's. */
export type WorkspacePatch = Partial<Omit<Workspace, 'id' | 'status' | 'version' | 'createdAt'>>;

/**
 * Where workspaces live. Every write is a compare-and-swap, so two racing callers (an HTTP request and a
 * Temporal activity retry, say) can never both win: the loser gets null and re-reads.
 */
export interface WorkspaceStore {
  /** Adds a workspace; an existing id is a `conflict`, unless `replaceArchived` and that one is ARCHIVED. */
  insert(workspace: Workspace, options?: { replaceArchived?: boolean }): Promise<void>;
  get(id: string): Promise<Workspace | null>;
  /** Oldest first. */
  list(): Promise<Workspace[]>;
  /**
   * Moves `id` from `from` to `to` and applies `patch` only if its status is still `from`; returns the new
   * record, or null if the status had changed (or the id is unknown). Disallowed moves throw.
   */
  transition(
    id: string,
    from: WorkspaceStatus,
    to: WorkspaceStatus,
    patch: WorkspacePatch,
  ): Promise<Workspace | null>;
  /** Applies `patch` only if the record is still at `expectedVersion`; null otherwise. */
  update(id: string, expectedVersion: number, patch: WorkspacePatch): Promise<Workspace | null>;
}

/** Shared by implementations: the record after a successful CAS write. */
export function applyPatch(
  current: Workspace,
  patch: WorkspacePatch,
  status: WorkspaceStatus,
  now: string,
): Workspace {
  return { ...current, ...patch, status, updatedAt: now, version: current.version + 1 };
}

/** Shared by implementations: refuses a transition the state machine does not allow (retries counted before this one). */
export function assertTransitionAllowed(current: Workspace, to: WorkspaceStatus): void {
  const check = checkTransition(current.status, to, current.initRetryCount);
  if (!check.ok) throw new WorkspaceError(check.code, check.message);
}

/** For tests and single-process use. */
export class InMemoryWorkspaceStore implements WorkspaceStore {
  private readonly rows = new Map<string, Workspace>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  async insert(workspace: Workspace, options: { replaceArchived?: boolean } = {}): Promise<void> {
    const existing = this.rows.get(workspace.id);
    if (existing && !(options.replaceArchived && existing.status === 'ARCHIVED')) {
      throw new WorkspaceError('conflict', `Workspace ${workspace.id} already exists`);
    }
    this.rows.set(workspace.id, structuredClone(workspace));
  }

  async get(id: string): Promise<Workspace | null> {
    const row = this.rows.get(id);
    return row ? structuredClone(row) : null;
  }

  async list(): Promise<Workspace[]> {
    return [...this.rows.values()]
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
      .map((w) => structuredClone(w));
  }

  async transition(
    id: string,
    from: WorkspaceStatus,
    to: WorkspaceStatus,
    patch: WorkspacePatch,
  ): Promise<Workspace | null> {
    const current = this.rows.get(id);
    if (!current || current.status !== from) return null;
    assertTransitionAllowed(current, to);
    const next = applyPatch(current, patch, to, this.now().toISOString());
    this.rows.set(id, next);
    return structuredClone(next);
  }

  async update(id: string, expectedVersion: number, patch: WorkspacePatch): Promise<Workspace | null> {
    const current = this.rows.get(id);
    if (!current || current.version !== expectedVersion) return null;
    const next = applyPatch(current, patch, current.status, this.now().toISOString());
    this.rows.set(id, next);
    return structuredClone(next);
  }
}
