/**
 * The Express application: request context, JSON bodies capped at 1 MB, routes, JSON errors.
 * Routes are thin; the work happens in services they are given. Every /api route comes from one table
 * (api/routes/table.ts), which mounts it, validates its input and describes it at /api/openapi.json.
 */

import { MAX_MESSAGE_BYTES } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../platform/logger.js';
import { requireAuth } from './auth/middleware.js';
import type { Authenticator } from './auth/principal.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { OPENAPI_PATH, openApiDocument } from './openapi.js';
import { requestContext } from './request-context.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { type HealthDependencies, healthRoutes } from './routes/health.js';
import { type ApiRoute, defineRoute, mountRoutes } from './routes/table.js';
import { vmRouteTable } from './routes/vms.js';
import { workspaceRouteTable } from './routes/workspaces.js';
import type { VmService } from './services/vm-service.js';
import type { WorkspaceService } from './services/workspace-service.js';

export type AppDependencies = {
  log: Logger;
  pool: Pool;
  temporal: Client;
  /** The api reaches VMs through these directories, never through the Docker engine. */
  vmDirs: HealthDependencies['vmDirs'];
  where: HealthDependencies['where'];
  authenticator: Authenticator;
  vms: VmService;
  workspaces: WorkspaceService;
  dashboardDir?: string;
};

/** Every /api route, the API description's own included. */
export function apiRouteTable(deps: Pick<AppDependencies, 'vms' | 'workspaces'>): ApiRoute[] {
  const routes = [...vmRouteTable(deps), ...workspaceRouteTable(deps)];
  let document: unknown = null;
  const describe = defineRoute({
    method: 'get',
    path: OPENAPI_PATH,
    tag: 'meta',
    summary: 'This description of the API (OpenAPI 3.1), generated from the routes themselves',
    auth: false,
    responses: { 200: { description: 'the OpenAPI document' } },
    handle: async () => ({ status: 200, body: document }),
  });
  const all = [describe, ...routes];
  document = openApiDocument(all);
  return all;
}

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestContext(deps.log));
  app.use(express.json({ limit: MAX_MESSAGE_BYTES }));
  app.use(healthRoutes(deps));
  const routes = apiRouteTable(deps);
  app.use('/api', mountRoutes(routes, { auth: false }));
  app.use('/api', requireAuth(deps), mountRoutes(routes, { auth: true }));
  app.use('/api', notFoundHandler);
  app.use(dashboardRoutes(deps.dashboardDir));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
