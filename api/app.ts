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
import type { AuthConfigAnswer } from './contract/dashboard.js';
import { errorHandler, notFoundHandler } from './errors.js';
import type { QuotaService } from './limits/quota-service.js';
import type { RateLimits } from './limits/rate-limits.js';
import { OPENAPI_PATH, openApiDocument } from './openapi.js';
import { requestContext } from './request-context.js';
import { type AccountRouteDependencies, accountRouteTable } from './routes/accounts.js';
import { authConfigRouteTable } from './routes/auth-config.js';
import { LOCAL_SIGN_IN_PAGE_PATH, localSignInPage } from './routes/auth-local.js';
import { billingRouteTable } from './routes/billing.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { type HealthDependencies, healthRoutes } from './routes/health.js';
import { sessionHistoryRouteTable } from './routes/session-history.js';
import { type ApiRoute, defineRoute, mountRoutes } from './routes/table.js';
import { usageRouteTable } from './routes/usage.js';
import { vmRouteTable } from './routes/vms.js';
import { workspaceRouteTable } from './routes/workspaces.js';
import type { BillingService } from './services/billing-service.js';
import type { SessionHistoryService } from './services/session-history.js';
import type { VmService } from './services/vm-service.js';
import type { WorkspaceService } from './services/workspace-service.js';
import { describeWebhookRoutes, mountWebhookRoutes, type WebhookRoute } from './webhooks/raw-body.js';

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
  /** Per-user rate limits of provisioning and session creation (api/limits); none: unlimited. */
  rateLimits?: RateLimits;
  /** The plans' quotas; GET /api/usage is mounted with it. */
  quotas?: QuotaService;
  /** Provider callbacks (Clerk, Stripe) verified by signature over the raw body: api/webhooks/raw-body.ts. */
  webhooks?: WebhookRoute[];
  /** /api/me, /api/keys, /api/audit and, in AUTH_MODE=local, local sign-in. */
  accounts?: AccountRouteDependencies;
  /** /api/billing/*; without it (or without Stripe configured) those routes answer 503. */
  billing?: BillingService;
  /** GET /api/auth/config's answer; without it, local mode when local sign-in is mounted, else clerk. */
  authConfig?: AuthConfigAnswer;
  /** GET /api/workspaces/:id/sessions/:sid/messages (the dashboard's paged history); unmounted without it. */
  sessionHistory?: SessionHistoryService;
};

/** Every /api route, the API description's own included. */
export function apiRouteTable(
  deps: Pick<
    AppDependencies,
    | 'vms'
    | 'workspaces'
    | 'webhooks'
    | 'accounts'
    | 'billing'
    | 'rateLimits'
    | 'quotas'
    | 'pool'
    | 'authConfig'
    | 'sessionHistory'
  >,
): ApiRoute[] {
  const routes = [
    ...vmRouteTable(deps),
    ...workspaceRouteTable(deps),
    ...(deps.accounts ? accountRouteTable(deps.accounts) : []),
    ...billingRouteTable(deps),
    ...usageRouteTable(deps),
    ...(deps.sessionHistory ? sessionHistoryRouteTable(deps.sessionHistory) : []),
    ...authConfigRouteTable(
      deps.authConfig ?? {
        mode: deps.accounts?.localSessions ? 'local' : 'clerk',
        signInUrl: null,
        publishableKey: null,
        temporalUiUrl: null,
      },
    ),
  ];
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
  // Webhooks are described here but mounted apart (createApp: raw body, before express.json).
  document = openApiDocument([...all, ...describeWebhookRoutes(deps.webhooks ?? [])]);
  return all;
}

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(requestContext(deps.log));
  // before express.json: signatures are checked over the bytes exactly as sent
  mountWebhookRoutes(app, deps.webhooks ?? []);
  app.use(express.json({ limit: MAX_MESSAGE_BYTES }));
  app.use(healthRoutes(deps));
  if (deps.accounts?.localSessions) app.get(LOCAL_SIGN_IN_PAGE_PATH, localSignInPage);
  const routes = apiRouteTable(deps);
  app.use('/api', mountRoutes(routes, { auth: false }));
  app.use('/api', requireAuth(deps), mountRoutes(routes, { auth: true }));
  app.use('/api', notFoundHandler);
  app.use(dashboardRoutes(deps.dashboardDir));
  app.use(notFoundHandler);
  app.use(errorHandler(deps.log));
  return app;
}
