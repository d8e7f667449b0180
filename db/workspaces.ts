/**
 * The workspaces read model, scoped to one user: every function takes the caller's user id and sees only
 * that user's rows, so another user's workspace is indistinguishable from one that does not exist. The
 * workspace:<id> actors write it (activities/workspace/read-model.ts); the api reads it here, each view
 * with its cloud ratchet's (db/ratchet.ts, written by the ratchet:<id> actors), or null when none ran.
 */
import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import {
  type CloudWorkspaceStatus,
  type WorkspaceView,
  WorkspaceViewSchema,
} from '../workflows/workspace/messages.js';
import type { Pool } from './pool.js';
import { getRatchetView, getRatchetViews } from './ratchet.js';

/** A cursor that is not one of ours (tampered with, or from another listing): the api answers 400. */
export class InvalidCursorError extends Error {
  constructor() {
    super('the cursor is not valid; start again without one');
    this.name = 'InvalidCursorError';
  }
}

/** A stored view this code cannot read (written by a newer version, or damaged): the api answers 500. */
export class UnreadableWorkspaceError extends Error {
  constructor(readonly workspaceId: string) {
    super(`the stored state of workspace ${workspaceId} is unreadable`);
    this.name = 'UnreadableWorkspaceError';
  }
}

export type ListWorkspaceOptions = {
  location?: 'DESKTOP' | 'CLOUD';
  status?: CloudWorkspaceStatus;
  /** 1-100. */
  limit: number;
  /** From the previous page's nextCursor. */
  cursor?: string;
};

export type WorkspacePage = { workspaces: WorkspaceView[]; nextCursor: string | null };

/** Where a page ends: created_at in microseconds since the epoch (exact for timestamptz) and the id. */
const CursorSchema = z.object({
  c: z.string().regex(/^-?\d{1,20}$/),
  i: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
});

function encodeCursor(createdAtMicros: string, id: string): string {
  return Buffer.from(JSON.stringify({ c: createdAtMicros, i: id })).toString('base64url');
}

function decodeCursor(cursor: string): { createdAtMicros: string; id: string } {
  if (!/^[A-Za-z0-9_-]{1,500}$/.test(cursor)) throw new InvalidCursorError();
  const parsed = safeParseJson(CursorSchema, Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!parsed.ok) throw new InvalidCursorError();
  return { createdAtMicros: parsed.value.c, id: parsed.value.i };
}

type ViewRow = { id: string; view: unknown; created_us: string };

function viewOf(row: ViewRow): WorkspaceView {
  const view = WorkspaceViewSchema.safeParse(row.view);
  if (!view.success) throw new UnreadableWorkspaceError(row.id);
  return view.data;
}

/** The caller's workspace, or null when there is none with this id that is theirs. */
export async function getWorkspaceView(
  pool: Pool,
  userId: string,
  id: string,
): Promise<WorkspaceView | null> {
  const { rows } = await pool.query<ViewRow>(
    `SELECT id, view, '0' AS created_us FROM workspaces WHERE user_id = $1 AND id = $2 AND view IS NOT NULL`,
    [userId, id],
  );
  const row = rows[0];
  if (!row) return null;
  return { ...viewOf(row), ratchet: await getRatchetView(pool, userId, id) };
}

/** The caller's workspaces, newest first, a page at a time (keyset pagination on created_at, id). */
export async function listWorkspaceViews(
  pool: Pool,
  userId: string,
  options: ListWorkspaceOptions,
): Promise<WorkspacePage> {
  const limit = Math.trunc(options.limit);
  if (!(limit >= 1 && limit <= 100)) throw new RangeError('limit must be 1-100');
  const conditions = ['user_id = $1', 'view IS NOT NULL'];
  const params: unknown[] = [userId];
  if (options.location) {
    params.push(options.location);
    conditions.push(`location = $${params.length}`);
  }
  if (options.status) {
    params.push(options.status);
    conditions.push(`status = $${params.length}`);
  }
  if (options.cursor !== undefined) {
    const after = decodeCursor(options.cursor);
    params.push(after.createdAtMicros, after.id);
    conditions.push(
      `(created_at, id) < (timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length})`,
    );
  }
  params.push(limit + 1);
  const { rows } = await pool.query<ViewRow>(
    `SELECT id, view, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
     FROM workspaces WHERE ${conditions.join(' AND ')}
     ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const views = page.map(viewOf);
  const ratchets = await getRatchetViews(
    pool,
    userId,
    views.map((view) => view.id),
  );
  return {
    workspaces: views.map((view) => ({ ...view, ratchet: ratchets.get(view.id) ?? null })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.created_us, last.id) : null,
  };
}
