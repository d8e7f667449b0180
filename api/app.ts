/**
 * The Express application: request context, JSON bodies capped at 1 MB, routes, JSON errors.
 * Routes are thin; the work happens in services they are given.
 */

import { MAX_MESSAGE_BYTES } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../platform/logger.js';
import { requireAuth } from './auth/middleware.js';
import type { Authenticator } from './auth/principal.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { requestContext } from './request-context.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { type HealthDependencies, healthRoutes } from './routes/health.js';
import { vmRoutes } from './routes/vms.js';
import type { VmService } from './services/vm-service.js';

export type AppDependencies = {
  log: Logger;
  pool: Pool;
  temporal: Client;
  /** The api reaches VMs through these directories, never through the Docker engine. */
  vmDirs: HealthDependencies['vmDirs'];
  where: HealthDependencies['where'];
  authenticator: Authenticator;
  vms: VmService;
  dashboardDir?: string;
};

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestContext(deps.log));
  app.use(express.json({ limit: MAX_MESSAGE_BYTES }));
  app.use(healthRoutes(deps));
  app.use('/api', requireAuth(deps), vmRoutes(deps));
  app.use('/api', notFoundHandler);
  app.use(dashboardRoutes(deps.dashboardDir));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
