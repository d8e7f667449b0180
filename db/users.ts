/**
 * The users table, scoped by id. Accounts come from the identity provider; this keeps our row in step.
 *
 * A deleted account keeps its row as a tombstone (deleted_at set, email and name scrubbed): nothing here
 * brings it back, so a late webhook or a session token still in flight cannot resurrect it.
 */
import type pg from 'pg';
import type { Pool } from './pool.js';

/** Anything that runs a query: the pool, or one client inside a transaction. */
type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export type UserRow = {
  id: string;
  email: string | null;
  name: string | null;
  plan: 'FREE' | 'PRO' | 'TEAM';
  createdAt: Date;
};

/** The account was deleted: it never signs in again and is never re-created. */
export class UserDeletedError extends Error {
  constructor(readonly userId: string) {
    super(`the account ${userId} has been deleted`);
    this.name = 'UserDeletedError';
  }
}

type Row = {
  id: string;
  email: string | null;
  name: string | null;
  plan: UserRow['plan'];
  created_at: Date;
  deleted_at: Date | null;
};

const COLUMNS = 'id, email, name, plan, created_at, deleted_at';

const userOf = (row: Row): UserRow => ({
  id: row.id,
  email: row.email,
  name: row.name,
  plan: row.plan,
  createdAt: row.created_at,
});

/**
 * Creates the user's row on first sight; later calls only fill in what was missing. Throws
 * UserDeletedError for a deleted account (and leaves its tombstone as it is).
 *
 * Runs on every authenticated request, so the common case (the row exists, nothing to fill in) is one
 * read-only statement: no row version is written per request.
 */
export async function ensureUser(
  pool: Pool,
  user: { id: string; email?: string | null; name?: string | null },
): Promise<UserRow> {
  const email = user.email ?? null;
  const name = user.name ?? null;
  const { rows } = await pool.query<Row>(
    `WITH inserted AS (
       INSERT INTO users (id, email, name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING
       RETURNING ${COLUMNS}
     )
     SELECT ${COLUMNS} FROM inserted
     UNION ALL
     SELECT ${COLUMNS} FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)`,
    [user.id, email, name],
  );
  // Empty only when a concurrent first request inserted the row after this statement's snapshot.
  const row =
    rows[0] ?? (await pool.query<Row>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [user.id])).rows[0];
  if (!row) throw new Error(`could not record user ${user.id}`);
  if (row.deleted_at) throw new UserDeletedError(user.id);
  if ((email !== null && row.email === null) || (name !== null && row.name === null)) {
    const filled = await pool.query<Row>(
      `UPDATE users SET email = COALESCE(email, $2), name = COALESCE(name, $3), updated_at = now()
       WHERE id = $1 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
      [user.id, email, name],
    );
    const updated = filled.rows[0];
    if (!updated) throw new UserDeletedError(user.id);
    return userOf(updated);
  }
  return userOf(row);
}

/** The live account, or null when there is none (never was, or deleted). */
export async function getUser(pool: Queryable, id: string): Promise<UserRow | null> {
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL`,
    [id],
  );
  const row = rows[0];
  return row ? userOf(row) : null;
}

/** Whether the account exists and is not deleted. */
export async function isLiveUser(pool: Queryable, id: string): Promise<boolean> {
  return (await getUser(pool, id)) !== null;
}

export type ProfileOutcome = 'applied' | 'stale' | 'deleted';

/**
 * The identity provider's profile of a user (Clerk's user.created / user.updated): creates the row or
 * overwrites email and name, unless the account is deleted, or what is stored came from a newer profile
 * (`updatedAt`, the provider's own timestamp: deliveries arrive out of order).
 */
export async function applyProfile(
  db: Queryable,
  profile: { id: string; email: string | null; name: string | null; updatedAt: Date },
): Promise<ProfileOutcome> {
  const { rows } = await db.query<{ deleted: boolean }>(
    `INSERT INTO users (id, email, name, profile_updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET
       email = EXCLUDED.email, name = EXCLUDED.name,
       profile_updated_at = EXCLUDED.profile_updated_at, updated_at = now()
     WHERE users.deleted_at IS NULL
       AND (users.profile_updated_at IS NULL OR users.profile_updated_at < EXCLUDED.profile_updated_at)
     RETURNING false AS deleted`,
    [profile.id, profile.email, profile.name, profile.updatedAt],
  );
  if (rows.length > 0) return 'applied';
  const existing = await db.query<{ deleted: boolean }>(
    'SELECT deleted_at IS NOT NULL AS deleted FROM users WHERE id = $1',
    [profile.id],
  );
  return existing.rows[0]?.deleted ? 'deleted' : 'stale';
}

/**
 * The first step of deleting an account: from now on it does not authenticate. Scrubs email and name and
 * leaves a tombstone (made if the user was never seen, so a late user.created cannot create it).
 * Answers whether an earlier deletion already finished (purged).
 */
export async function markUserDeleted(db: Queryable, id: string): Promise<{ purged: boolean }> {
  const { rows } = await db.query<{ purged: boolean }>(
    `INSERT INTO users (id, deleted_at) VALUES ($1, now())
     ON CONFLICT (id) DO UPDATE SET
       deleted_at = COALESCE(users.deleted_at, now()), email = NULL, name = NULL, updated_at = now()
     RETURNING purged_at IS NOT NULL AS purged`,
    [id],
  );
  return { purged: rows[0]?.purged ?? false };
}

/** The last step of deleting an account; true for the one caller that finished it. */
export async function markUserPurged(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE users SET purged_at = now() WHERE id = $1 AND deleted_at IS NOT NULL AND purged_at IS NULL',
    [id],
  );
  return (rowCount ?? 0) > 0;
}

/** Records the account's first session sign-in; true only the first time (for the audit record). */
export async function markFirstSession(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE users SET first_session_at = now()
     WHERE id = $1 AND first_session_at IS NULL AND deleted_at IS NULL`,
    [id],
  );
  return (rowCount ?? 0) > 0;
}

/** Whether this Clerk delivery (its svix-id) was processed before. */
export async function isClerkEventProcessed(db: Queryable, eventId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM processed_webhook_events WHERE provider = 'clerk' AND event_id = $1`,
    [eventId],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Marks a Clerk delivery processed; false when it already was. Inside the transaction that applies the
 * event, it is what makes the event apply once: a concurrent duplicate waits on the key, then gets false.
 */
export async function claimClerkEvent(db: Queryable, eventId: string, eventType: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO processed_webhook_events (provider, event_id, event_type) VALUES ('clerk', $1, $2)
     ON CONFLICT (provider, event_id) DO NOTHING`,
    [eventId, eventType],
  );
  return (rowCount ?? 0) > 0;
}
