/**
 * /healthz: the process is up (for restarts). /readyz: Postgres, Temporal and Docker each answer
 * (for load balancers and `dev.sh up`); 503 names every dependency that does not.
 */
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { Router } from 'express';
import type { Pool } from '../../db/pool.js';
import { type DependencyStatus, probeDependency } from '../../platform/dependencies.js';

export function healthRoutes(deps: {
  pool: Pool;
  temporal: Client;
  docker: Docker;
  where: { postgres: string; temporal: string; docker: string };
}): Router {
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
      probeDependency('docker', deps.where.docker, () => deps.docker.ping()),
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
