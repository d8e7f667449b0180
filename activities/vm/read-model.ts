/**
 * The vms table is the read model of the vm:<userId> actors: the dashboard and quotas read it without
 * asking Temporal (`view` holds the whole VmView that GET /api/vms/me answers with). Writes are idempotent upserts guarded by updated_at, so a retried or late activity never
 * overwrites newer state.
 */
import type { Pool } from '../../db/pool.js';
import type { VmView } from '../../workflows/vm/messages.js';

export function createVmReadModelActivities(deps: { pool: Pool }) {
  return {
    async recordVmState(view: VmView): Promise<void> {
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        // The actor is the only writer for its user: any other live row is left over from an actor that was
        // killed outside our control, and would block this VM's row (one live VM per user).
        await client.query(
          "UPDATE vms SET status = 'TERMINATED', updated_at = now() WHERE user_id = $1 AND id <> $2 AND status <> 'TERMINATED'",
          [view.userId, view.vmId],
        );
        await client.query(
          `INSERT INTO vms (id, user_id, status, container_id, failure_reason, created_at, updated_at,
                            last_active_at, last_health_check_at, view)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (id) DO UPDATE SET
             status = EXCLUDED.status, container_id = EXCLUDED.container_id, view = EXCLUDED.view,
             failure_reason = EXCLUDED.failure_reason, updated_at = EXCLUDED.updated_at,
             last_active_at = EXCLUDED.last_active_at, last_health_check_at = EXCLUDED.last_health_check_at
           WHERE vms.updated_at <= EXCLUDED.updated_at`,
          [
            view.vmId,
            view.userId,
            view.status,
            view.containerId,
            view.failureReason,
            view.createdAt,
            view.updatedAt,
            view.lastActiveAt,
            view.lastHealthAt,
            JSON.stringify(view),
          ],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
