/**
 * The audit log: security-relevant actions on an account, kept in Postgres and readable by the account's
 * owner (GET /api/audit). Records outlive the account (no foreign key): a deleted user's 'user.deleted'
 * stays. Every read is scoped by the user id.
 */
import { safeParseJson } from '@factory-factory/core/protocol';
import type pg from 'pg';
import { z } from 'zod';
import { InvalidCursorError } from './workspaces.js';

export { InvalidCursorError };

/** Anything that runs a query: the pool, or one client inside a transaction (record with the change). */
type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export const AUDIT_ACTIONS = [
  'key.created',
  'key.revoked',
  'key.first_use',
  'session.first_sign_in',
  'vm.terminated',
  'user.deleted',
  'plan.changed',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditEntry = {
  /** Whose account the action concerns. */
  userId: string;
  /** Who did it: `user:<id>`, `api-key:<id>`, `clerk` (a webhook), `stripe`, `system`. */
  actor: string;
  action: AuditAction;
  targetType?: string;
  targetId?: string;
  /** Never a secret: key ids and names, not keys. */
  detail?: Record<string, unknown>;
  requestId?: string;
};

export type AuditRecord = {
  id: string;
  actor: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
  detail: Record<string, unknown>;
  requestId: string | null;
  createdAt: string;
};

export async function recordAudit(db: Queryable, entry: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (user_id, actor, action, target_type, target_id, detail, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      entry.userId,
      entry.actor,
      entry.action,
      entry.targetType ?? null,
      entry.targetId ?? null,
      JSON.stringify(entry.detail ?? {}),
      entry.requestId ?? null,
    ],
  );
}

const CursorSchema = z.object({ i: z.string().regex(/^\d{1,19}$/) });

const encodeCursor = (id: string): string => Buffer.from(JSON.stringify({ i: id })).toString('base64url');

function decodeCursor(cursor: string): string {
  if (!/^[A-Za-z0-9_-]{1,500}$/.test(cursor)) throw new InvalidCursorError();
  const parsed = safeParseJson(CursorSchema, Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!parsed.ok) throw new InvalidCursorError();
  return parsed.value.i;
}

type Row = {
  id: string;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  detail: Record<string, unknown> | null;
  request_id: string | null;
  created_at: Date;
};

/** The user's records, newest first, a page at a time (keyset pagination on the id). */
export async function listAudit(
  db: Queryable,
  userId: string,
  options: { limit: number; cursor?: string },
): Promise<{ records: AuditRecord[]; nextCursor: string | null }> {
  const limit = Math.trunc(options.limit);
  if (!(limit >= 1 && limit <= 100)) throw new RangeError('limit must be 1-100');
  const params: unknown[] = [userId];
  let after = '';
  if (options.cursor !== undefined) {
    params.push(decodeCursor(options.cursor));
    after = `AND audit_log.id < $${params.length}::bigint`;
  }
  params.push(limit + 1);
  const { rows } = await db.query<Row>(
    `SELECT id::text AS id, actor, action, target_type, target_id, detail, request_id, created_at
     FROM audit_log WHERE user_id = $1 ${after} ORDER BY audit_log.id DESC LIMIT $${params.length}`,
    params,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    records: page.map((row) => ({
      id: row.id,
      actor: row.actor,
      action: row.action,
      targetType: row.target_type,
      targetId: row.target_id,
      detail: row.detail ?? {},
      requestId: row.request_id,
      createdAt: row.created_at.toISOString(),
    })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null,
  };
}
