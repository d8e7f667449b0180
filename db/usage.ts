/**
 * usage_records as the api reads it (quotas, GET /api/usage): one user's billed minutes of a period. The
 * usage:<userId> actor writes the rows (activities/usage/records.ts); a slice never crosses a period, so
 * the slices that start in a period are that period's.
 */
import type { Pool } from './pool.js';

/** Billed minutes of a user's slices that start in [startMs, endMs). */
export async function usedMinutesIn(
  pool: Pool,
  userId: string,
  period: { startMs: number; endMs: number },
): Promise<number> {
  const { rows } = await pool.query<{ used: string }>(
    `SELECT COALESCE(SUM(minutes), 0)::text AS used FROM usage_records
      WHERE user_id = $1 AND period_start >= to_timestamp($2 / 1000.0) AND period_start < to_timestamp($3 / 1000.0)`,
    [userId, period.startMs, period.endMs],
  );
  return Number(rows[0]?.used ?? 0);
}

/**
 * Billed minutes per UTC day of a user's slices that start in [startMs, endMs), oldest first; a day with
 * nothing billed is absent (the caller fills the gaps it wants to show).
 */
export async function dailyMinutesIn(
  pool: Pool,
  userId: string,
  period: { startMs: number; endMs: number },
): Promise<{ date: string; minutes: number }[]> {
  const { rows } = await pool.query<{ date: string; minutes: string }>(
    `SELECT to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date, SUM(minutes)::text AS minutes
       FROM usage_records
      WHERE user_id = $1 AND period_start >= to_timestamp($2 / 1000.0) AND period_start < to_timestamp($3 / 1000.0)
      GROUP BY 1 ORDER BY 1`,
    [userId, period.startMs, period.endMs],
  );
  return rows.map((row) => ({ date: row.date, minutes: Number(row.minutes) }));
}
