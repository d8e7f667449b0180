import type { Database } from 'better-sqlite3';
import { z } from 'zod';
import { safeParseJson } from '../protocol/json.js';
import { type Workspace, WorkspaceSchema, type WorkspaceStatus } from '../protocol/workspace.js';
import { WorkspaceError } from './errors.js';
import { applyPatch, assertTransitionAllowed, type WorkspacePatch, type WorkspaceStore } from './store.js';

const RowSchema = z.object({ record: z.string() });

/**
 * WorkspaceStore over better-sqlite3, for the VM agent's database (the agent owns the connection and passes
 * it in). One table of its own; each record is stored as validated JSON next to the columns the CAS
 * conditions need. Writes run in IMMEDIATE transactions, so compare-and-swap also holds across processes.
 */
export class SqliteWorkspaceStore implements WorkspaceStore {
  static readonly TABLE = 'ff_workspaces';

  constructor(
    private readonly db: Database,
    private readonly now: () => Date = () => new Date(),
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS ${SqliteWorkspaceStore.TABLE} (
      id TEXT PRIMARY KEY,
      status TEXT NOT NULL,
      version INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      record TEXT NOT NULL
    )`);
  }

  async insert(workspace: Workspace, options: { replaceArchived?: boolean } = {}): Promise<void> {
    const valid = WorkspaceSchema.parse(workspace);
    const write = this.db.transaction(() => {
      const existing = this.read(valid.id);
      if (existing && !(options.replaceArchived && existing.status === 'ARCHIVED')) {
        throw new WorkspaceError('conflict', `Workspace ${valid.id} already exists`);
      }
      this.db
        .prepare(
          `INSERT OR REPLACE INTO ${SqliteWorkspaceStore.TABLE} (id, status, version, created_at, record) VALUES (?, ?, ?, ?, ?)`,
        )
        .run(valid.id, valid.status, valid.version, valid.createdAt, JSON.stringify(valid));
    });
    write.immediate();
  }

  async get(id: string): Promise<Workspace | null> {
    return this.read(id);
  }

  async list(): Promise<Workspace[]> {
    const rows = this.db
      .prepare(`SELECT record FROM ${SqliteWorkspaceStore.TABLE} ORDER BY created_at, id`)
      .all();
    return rows.map((row) => this.decode(row));
  }

  async transition(
    id: string,
    from: WorkspaceStatus,
    to: WorkspaceStatus,
    patch: WorkspacePatch,
  ): Promise<Workspace | null> {
    const write = this.db.transaction((): Workspace | null => {
      const current = this.read(id);
      if (!current || current.status !== from) return null;
      assertTransitionAllowed(current, to);
      return this.write(current, applyPatch(current, patch, to, this.now().toISOString()));
    });
    return write.immediate();
  }

  async update(id: string, expectedVersion: number, patch: WorkspacePatch): Promise<Workspace | null> {
    const write = this.db.transaction((): Workspace | null => {
      const current = this.read(id);
      if (!current || current.version !== expectedVersion) return null;
      return this.write(current, applyPatch(current, patch, current.status, this.now().toISOString()));
    });
    return write.immediate();
  }

  private write(current: Workspace, next: Workspace): Workspace | null {
    const valid = WorkspaceSchema.parse(next);
    const result = this.db
      .prepare(
        `UPDATE ${SqliteWorkspaceStore.TABLE} SET status = ?, version = ?, record = ? WHERE id = ? AND version = ?`,
      )
      .run(valid.status, valid.version, JSON.stringify(valid), valid.id, current.version);
    return result.changes === 1 ? valid : null;
  }

  private read(id: string): Workspace | null {
    const row = this.db.prepare(`SELECT record FROM ${SqliteWorkspaceStore.TABLE} WHERE id = ?`).get(id);
    return row === undefined ? null : this.decode(row);
  }

  private decode(row: unknown): Workspace {
    const { record } = RowSchema.parse(row);
    const parsed = safeParseJson(WorkspaceSchema, record);
    if (!parsed.ok)
      throw new WorkspaceError('conflict', `Stored workspace is unreadable: ${parsed.error.message}`);
    return parsed.value;
  }
}
