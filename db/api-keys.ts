/**
 * API keys, scoped by user: a key of another user is indistinguishable from one that does not exist.
 * Only a hash of each key is stored (api/auth/api-keys.ts makes and checks them); the key itself is shown
 * once, when it is created, and never again.
 */
import type pg from 'pg';
import type { Pool } from './pool.js';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export type ApiKeyRow = {
  id: string;
  name: string;
  /** `ffc_live_<id>`: enough to recognize the key in a list or a scanner's report, useless to sign in. */
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
};

type Row = {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

const COLUMNS = 'id, name, prefix, created_at, last_used_at, revoked_at';

const keyOf = (row: Row): ApiKeyRow => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at,
});

export async function insertApiKey(
  db: Queryable,
  key: { id: string; userId: string; name: string; prefix: string; secretHash: Buffer },
): Promise<ApiKeyRow> {
  const { rows } = await db.query<Row>(
    `INSERT INTO api_keys (id, user_id, name, prefix, secret_hash) VALUES ($1, $2, $3, $4, $5)
     RETURNING ${COLUMNS}`,
    [key.id, key.userId, key.name, key.prefix, key.secretHash],
  );
  const row = rows[0];
  if (!row) throw new Error('could not store the API key');
  return keyOf(row);
}

/** The user's keys, newest first, revoked ones included (with revokedAt). */
export async function listApiKeys(pool: Pool, userId: string): Promise<ApiKeyRow[]> {
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC`,
    [userId],
  );
  return rows.map(keyOf);
}

/**
 * Revokes one of the user's keys. Null when the user has no key with this id; `revokedNow` is false when
 * it was revoked before (revoking again changes nothing).
 */
export async function revokeApiKey(
  db: Queryable,
  userId: string,
  id: string,
): Promise<{ key: ApiKeyRow; revokedNow: boolean } | null> {
  const revoked = await db.query<Row>(
    `UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL
     RETURNING ${COLUMNS}`,
    [userId, id],
  );
  const now = revoked.rows[0];
  if (now) return { key: keyOf(now), revokedNow: true };
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM api_keys WHERE user_id = $1 AND id = $2`, [
    userId,
    id,
  ]);
  const before = rows[0];
  return before ? { key: keyOf(before), revokedNow: false } : null;
}

/** What authenticating a key needs. Read on every request: a revoked key is refused at once. */
export type StoredKey = { id: string; userId: string; secretHash: Buffer; revoked: boolean };

/** The key with this id, if its account is live. */
export async function findKeyForAuth(pool: Pool, id: string): Promise<StoredKey | null> {
  const { rows } = await pool.query<{ id: string; user_id: string; secret_hash: Buffer; revoked: boolean }>(
    `SELECT k.id, k.user_id, k.secret_hash, k.revoked_at IS NOT NULL AS revoked
     FROM api_keys k JOIN users u ON u.id = k.user_id
     WHERE k.id = $1 AND u.deleted_at IS NULL`,
    [id],
  );
  const row = rows[0];
  return row ? { id: row.id, userId: row.user_id, secretHash: row.secret_hash, revoked: row.revoked } : null;
}

/**
 * Records a use of the key, at most once per `throttleSeconds` (across api processes: the condition is in
 * the statement). `firstUse` is true for exactly one use ever: the row lock makes concurrent first uses
 * wait, and the later one then finds last_used_at recent and writes nothing.
 */
export async function recordKeyUse(
  pool: Pool,
  id: string,
  throttleSeconds: number,
): Promise<{ written: boolean; firstUse: boolean }> {
  const { rows } = await pool.query<{ first_use: boolean }>(
    `UPDATE api_keys SET last_used_at = now(), first_used_at = COALESCE(first_used_at, now())
     WHERE id = $1 AND revoked_at IS NULL
       AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))
     RETURNING first_used_at = last_used_at AS first_use`,
    [id, throttleSeconds],
  );
  const row = rows[0];
  return { written: row !== undefined, firstUse: row?.first_use ?? false };
}

/** Every key of the user (account deletion). */
export async function deleteUserKeys(db: Queryable, userId: string): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM api_keys WHERE user_id = $1', [userId]);
  return rowCount ?? 0;
}
