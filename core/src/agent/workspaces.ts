import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentWorkspace } from '../protocol/index.js';
import { AgentRequestError } from './errors.js';
import type { AgentStore } from './store.js';

export interface CreateWorkspaceInput {
  id?: string | undefined;
  name?: string | undefined;
  repoUrl: string;
  branch: string;
}

/**
 * What the agent needs from the workspace domain. core/workspace (git clone, worktrees, its state
 * machine) implements this once it lands; the agent never imports it directly.
 */
export interface AgentWorkspaceBridge {
  /** Idempotent on `id`: creating an existing workspace returns it. */
  create(input: CreateWorkspaceInput): Promise<AgentWorkspace>;
  list(options: { includeArchived: boolean }): Promise<AgentWorkspace[]>;
  get(id: string): Promise<AgentWorkspace | null>;
  archive(id: string): Promise<AgentWorkspace>;
  /** The directory sessions and terminals of this workspace run in. */
  worktreePath(id: string): Promise<string>;
}

const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/**
 * Stand-in until core/workspace is wired in: a plain directory per workspace under the data dir,
 * no git clone. It is here so the agent's protocol and sessions work end to end today; it will be
 * replaced by core/workspace behind AgentWorkspaceBridge.
 */
export class DirectoryWorkspaces implements AgentWorkspaceBridge {
  constructor(
    private readonly store: AgentStore,
    private readonly rootDir: string,
  ) {}

  async create(input: CreateWorkspaceInput): Promise<AgentWorkspace> {
    const id = input.id ?? randomUUID();
    // The id becomes a directory name: no separators, no dot-dot.
    if (!WORKSPACE_ID.test(id)) {
      throw new AgentRequestError('bad_request', 'workspace id may only use letters, digits, - and _');
    }
    const existing = this.store.getWorkspace(id);
    if (existing) return existing;
    const worktreePath = join(this.rootDir, id);
    await mkdir(worktreePath, { recursive: true });
    const workspace: AgentWorkspace = {
      id,
      name: input.name ?? input.branch,
      repoUrl: input.repoUrl,
      branch: input.branch,
      status: 'READY',
      worktreePath,
      createdAt: new Date().toISOString(),
      archivedAt: null,
    };
    this.store.insertWorkspace(workspace);
    return workspace;
  }

  async list(options: { includeArchived: boolean }): Promise<AgentWorkspace[]> {
    const all = this.store.listWorkspaces();
    return options.includeArchived ? all : all.filter((w) => w.status !== 'ARCHIVED');
  }

  async get(id: string): Promise<AgentWorkspace | null> {
    return this.store.getWorkspace(id);
  }

  async archive(id: string): Promise<AgentWorkspace> {
    const workspace = this.store.getWorkspace(id);
    if (!workspace) throw new AgentRequestError('not_found', `no workspace ${id}`);
    if (workspace.status === 'ARCHIVED') return workspace;
    const archivedAt = new Date().toISOString();
    this.store.updateWorkspaceStatus(id, 'ARCHIVED', archivedAt);
    return { ...workspace, status: 'ARCHIVED', archivedAt };
  }

  async worktreePath(id: string): Promise<string> {
    const workspace = this.store.getWorkspace(id);
    if (!workspace) throw new AgentRequestError('not_found', `no workspace ${id}`);
    return workspace.worktreePath;
  }
}
