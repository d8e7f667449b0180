/**
 * /healthz: the process is up (for restarts). /readyz: Postgres and Temporal answer and the VM directories
 * are reachable (for load balancers, compose's healthcheck and `dev.sh up`); 503 names every dependency
 * that is not. The api never talks to the Docker engine: it reaches VMs through their agents' unix sockets
 * under the VM run dir and reads per-VM secrets from the secrets dir, so Docker is not part of readiness.
 */
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Pool } from '../../db/pool.js';
import { checkVmDirectories, type DependencyStatus, probeDependency } from '../../platform/dependencies.js';

export type HealthDependencies = {
  pool: Pool;
  temporal: Client;
  /** Roots of the per-VM run dirs (agent sockets) and secret dirs, under FFC_DATA_DIR. */
  vmDirs: { runDirRoot: string; secretRoot: string };
  where: { postgres: string; temporal: string };
};

export function healthRoutes(deps: HealthDependencies): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true, uptimeSeconds: Math.round(process.uptime()) });
  });
  router.get('/readyz', async (_req, res) => {
    const checks: DependencyStatus[] = await Promise.all([
      probeDependency('postgres', deps.where.postgres, () => deps.pool.query('SELECT 1')),
      probeDependency('temporal', deps.where.temporal, () =>
        deps.temporal.connection.workflowService.getSystemInfo({}),
      ),
      ...checkVmDirectories(deps.vmDirs),
    ]);
    const down = checks.filter((c) => !c.ok);
    const body = { ok: down.length === 0, checks };
    if (down.length === 0) {
      res.json(body);
      return;
    }
    res.status(503).json({
      ...body,
      error: { code: 'not_ready', message: `not reachable: ${down.map((c) => c.name).join(', ')}` },
    });
  });
  return router;
}
