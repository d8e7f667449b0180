/**
 * The workspace_ratchets read model: the view each ratchet:<workspaceId> actor last wrote. The actor writes
 * it through activities/ratchet (recordRatchetView here, compare-and-swap on the actor's own clock); the api
 * reads it scoped to the caller's user id, so another user's ratchet is indistinguishable from none.
 */
import { type RatchetView, RatchetViewSchema } from '../workflows/ratchet/messages.js';
import type { Pool } from './pool.js';

/** What a write answered: the stored version, or why nothing was written. */
export type RecordedRatchetView =
  | { written: true; version: number }
  | { written: false; reason: 'stale' | 'notOwner' };

/**
 * Upserts the view, never over a newer write of the same workspace (a retried activity that lost a race)
 * or over another user's row. The stored `view.version` is the row's version after the write.
 */
export async function recordRatchetView(pool: Pool, view: RatchetView): Promise<RecordedRatchetView> {
  const parsed = RatchetViewSchema.parse(view);
  const { rows } = await pool.query<{ version: number }>(
    `INSERT INTO workspace_ratchets AS r (workspace_id, user_id, view, version, updated_at)
     VALUES ($1, $2, $3::jsonb || jsonb_build_object('version', 1), 1, $4)
     ON CONFLICT (workspace_id) DO UPDATE SET
       view = EXCLUDED.view || jsonb_build_object('version', r.version + 1),
       version = r.version + 1,
       updated_at = EXCLUDED.updated_at
     WHERE r.user_id = EXCLUDED.user_id AND r.updated_at <= EXCLUDED.updated_at
     RETURNING r.version`,
    [parsed.workspaceId, parsed.userId, JSON.stringify(parsed), parsed.updatedAt],
  );
  const row = rows[0];
  if (row) return { written: true, version: row.version };
  const owner = await pool.query<{ user_id: string }>(
    'SELECT user_id FROM workspace_ratchets WHERE workspace_id = $1',
    [parsed.workspaceId],
  );
  return owner.rows[0]?.user_id === parsed.userId
    ? { written: false, reason: 'stale' }
    : { written: false, reason: 'notOwner' };
}

/** A stored view this code cannot read is shown as no ratchet rather than failing the whole answer. */
function viewOf(raw: unknown): RatchetView | null {
  const parsed = RatchetViewSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** The caller's workspace's ratchet view, or null (none yet, or not theirs). */
export async function getRatchetView(
  pool: Pool,
  userId: string,
  workspaceId: string,
): Promise<RatchetView | null> {
  const { rows } = await pool.query<{ view: unknown }>(
    'SELECT view FROM workspace_ratchets WHERE user_id = $1 AND workspace_id = $2',
    [userId, workspaceId],
  );
  const row = rows[0];
  return row ? viewOf(row.view) : null;
}

/** The ratchet views of several of the caller's workspaces (a list page), by workspace id. */
export async function getRatchetViews(
  pool: Pool,
  userId: string,
  workspaceIds: readonly string[],
): Promise<Map<string, RatchetView>> {
  const views = new Map<string, RatchetView>();
  if (workspaceIds.length === 0) return views;
  const { rows } = await pool.query<{ workspace_id: string; view: unknown }>(
    'SELECT workspace_id, view FROM workspace_ratchets WHERE user_id = $1 AND workspace_id = ANY($2::text[])',
    [userId, [...workspaceIds]],
  );
  for (const row of rows) {
    const view = viewOf(row.view);
    if (view) views.set(row.workspace_id, view);
  }
  return views;
}
