/**
 * usage_records, as the usage:<userId> actor writes and reads it. Every write is idempotent on the slice's
 * key (INSERT … ON CONFLICT DO NOTHING; reported_at set once), so an activity retried after a worker
 * crash, or a whole run replayed, records each slice once.
 */
import { ApplicationFailure } from '@temporalio/common';
import { getAccountPlan } from '../../db/billing.js';
import type { Pool } from '../../db/pool.js';
import { usedMinutesIn } from '../../db/usage.js';
import type { RecordedSlice, UsageRecordActivities } from './types.js';

/** The failure type when the user has no row (never created, or its data purged): nothing can be recorded. */
export const USAGE_UNKNOWN_USER = 'UsageUnknownUser';

type SliceRow = {
  idempotency_key: string;
  vm_id: string | null;
  start_ms: string;
  end_ms: string;
  compute_seconds: number;
  minutes: number;
};

const sliceOf = (row: SliceRow): RecordedSlice => ({
  key: row.idempotency_key,
  vmId: row.vm_id ?? 'unknown',
  startMs: Number(row.start_ms),
  endMs: Number(row.end_ms),
  seconds: row.compute_seconds,
  minutes: row.minutes,
});

export function createUsageRecordActivities(deps: { pool: Pool }) {
  const { pool } = deps;
  return {
    async loadUsage(input) {
      const account = await getAccountPlan(pool, input.userId);
      const usedMinutes = await usedMinutesIn(pool, input.userId, {
        startMs: input.periodStartMs,
        endMs: input.periodEndMs,
      });
      const { rows } = await pool.query<SliceRow>(
        `SELECT idempotency_key, vm_id, compute_seconds, minutes,
                (extract(epoch FROM period_start) * 1000)::bigint::text AS start_ms,
                (extract(epoch FROM period_end) * 1000)::bigint::text AS end_ms
           FROM usage_records WHERE user_id = $1 AND reported_at IS NULL
          ORDER BY period_start, id LIMIT $2`,
        [input.userId, input.limit + 1],
      );
      return {
        account: { plan: account.plan, paymentFailedAtMs: account.paymentFailedAtMs },
        usedMinutes,
        unreported: rows.slice(0, input.limit).map(sliceOf),
        moreUnreported: rows.length > input.limit,
      };
    },

    async recordUsageSlices(input) {
      if (input.slices.length === 0) return { recordedKeys: [] };
      try {
        await pool.query(
          `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes, idempotency_key)
           SELECT $1, s.vm_id, to_timestamp(s.start_ms / 1000.0), to_timestamp(s.end_ms / 1000.0), s.seconds, s.minutes, s.key
             FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], $7::text[])
                  AS s(vm_id, start_ms, end_ms, seconds, minutes, key)
           ON CONFLICT (idempotency_key) DO NOTHING`,
          [
            input.userId,
            input.slices.map((x) => x.vmId),
            input.slices.map((x) => x.startMs),
            input.slices.map((x) => x.endMs),
            input.slices.map((x) => x.seconds),
            input.slices.map((x) => x.minutes),
            input.slices.map((x) => x.key),
          ],
        );
      } catch (err) {
        // 23503: the users row is gone (a purged account): retrying cannot bring it back.
        if (typeof err === 'object' && err !== null && 'code' in err && err.code === '23503') {
          throw ApplicationFailure.nonRetryable(
            `no user ${input.userId} to record usage for`,
            USAGE_UNKNOWN_USER,
          );
        }
        throw err;
      }
      const { rows } = await pool.query<{ idempotency_key: string }>(
        'SELECT idempotency_key FROM usage_records WHERE user_id = $1 AND idempotency_key = ANY($2::text[])',
        [input.userId, input.slices.map((x) => x.key)],
      );
      return { recordedKeys: rows.map((r) => r.idempotency_key) };
    },

    async markUsageReported(input) {
      await pool.query(
        'UPDATE usage_records SET reported_at = now() WHERE idempotency_key = $1 AND reported_at IS NULL',
        [input.key],
      );
    },
  } satisfies UsageRecordActivities;
}
