import type Database from 'better-sqlite3';
import { z } from 'zod';

export interface RatchetDispatchRecord {
  dispatchId: string;
  workspaceId: string;
  sessionId: string;
  createdAt: string;
}

const DispatchRow = z.object({
  dispatch_id: z.string(),
  workspace_id: z.string(),
  session_id: z.string(),
  created_at: z.string(),
});

/**
 * The agent's record of ratchet dispatches (table ratchet_dispatches, created by store.ts's migrations):
 * which session each dispatch id went to. It is written right after the prompt is queued, in the same
 * synchronous step, so a caller retrying after a crash finds it and nothing is sent twice.
 */
export class RatchetDispatchLedger {
  private readonly select: Database.Statement<[string]>;
  private readonly insert: Database.Statement<[string, string, string, string]>;

  constructor(db: Database.Database) {
    this.select = db.prepare('SELECT * FROM ratchet_dispatches WHERE dispatch_id = ?');
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO ratchet_dispatches (dispatch_id, workspace_id, session_id, created_at)
       VALUES (?, ?, ?, ?)`,
    );
  }

  get(dispatchId: string): RatchetDispatchRecord | null {
    const row = this.select.get(dispatchId);
    if (row === undefined) return null;
    const parsed = DispatchRow.parse(row);
    return {
      dispatchId: parsed.dispatch_id,
      workspaceId: parsed.workspace_id,
      sessionId: parsed.session_id,
      createdAt: parsed.created_at,
    };
  }

  /** Records a dispatch; the first record of an id wins. */
  record(dispatchId: string, workspaceId: string, sessionId: string): void {
    this.insert.run(dispatchId, workspaceId, sessionId, new Date().toISOString());
  }
}
