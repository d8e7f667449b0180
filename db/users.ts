/** The users table, scoped by id. Accounts come from the identity provider; this keeps our row in step. */
import type { Pool } from './pool.js';

export type UserRow = {
  id: string;
  email: string | null;
  name: string | null;
  plan: 'FREE' | 'PRO' | 'TEAM';
};

/** Creates the user's row on first sight; later calls only fill in what was missing. */
export async function ensureUser(
  pool: Pool,
  user: { id: string; email?: string | null; name?: string | null },
): Promise<UserRow> {
  const { rows } = await pool.query<UserRow>(
    `INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET
       email = COALESCE(users.email, EXCLUDED.email),
       name = COALESCE(users.name, EXCLUDED.name),
       updated_at = CASE WHEN users.email IS NULL OR users.name IS NULL THEN now() ELSE users.updated_at END
     RETURNING id, email, name, plan`,
    [user.id, user.email ?? null, user.name ?? null],
  );
  const row = rows[0];
  if (!row) throw new Error(`could not record user ${user.id}`);
  return row;
}
