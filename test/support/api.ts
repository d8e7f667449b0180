/**
 * The api as tests run it: the production app and server on an ephemeral port, wired to the real test
 * services. By default callers authenticate with development keys only (`users`); with `auth`, the
 * production chain (createAuthenticator: session JWTs and API keys) and the account routes are mounted.
 */
import type { AgentClient } from '@factory-factory/core/agent-client';
import { Client, Connection } from '@temporalio/client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { AgentConnections } from '../../api/agents/connections.js';
import { type AuthSettings, createAuthenticator } from '../../api/auth/authenticator.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import type { LocalSessionIssuer } from '../../api/auth/local-sessions.js';
import { type Authenticator, firstOf } from '../../api/auth/principal.js';
import { QuotaService } from '../../api/limits/quota-service.js';
import { RateLimits } from '../../api/limits/rate-limits.js';
import { type RunningApi, startApi } from '../../api/server.js';
import { AccountService } from '../../api/services/account-service.js';
import {
  BillingService,
  type PlanChangeNotifier,
  usageActorNotifier,
} from '../../api/services/billing-service.js';
import { VmService } from '../../api/services/vm-service.js';
import { WorkspaceService } from '../../api/services/workspace-service.js';
import { clerkWebhookRoute } from '../../api/webhooks/clerk.js';
import type { WebhookRoute } from '../../api/webhooks/raw-body.js';
import { stripeWebhookRoute } from '../../api/webhooks/stripe.js';
import type { WsRoute } from '../../api/ws/upgrade.js';
import { UserSockets } from '../../api/ws/user-sockets.js';
import { createPool, type Pool } from '../../db/pool.js';
import type { Config } from '../../platform/config.js';
import { createLogger, type Logger } from '../../platform/logger.js';
import { createStripeClient } from '../../platform/stripe.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { defaultVmSettings, type VmSettings } from '../../workflows/vm/messages.js';
import { testConfig } from './services.js';

export type TestApi = {
  api: RunningApi;
  pool: Pool;
  temporal: Client;
  vms: VmService;
  agents: AgentConnections;
  workspaces: WorkspaceService;
  accounts: AccountService;
  /** The live sockets of this api, by user. */
  sockets: UserSockets;
  /** Local sign-in's issuer, with `auth: { mode: 'local' }`. */
  localSessions: LocalSessionIssuer | null;
  /** Billing as configured by `billing` (off: every route 503, like a deployment without Stripe). */
  billing: BillingService;
  /** With `quotas: true`: the plans' quotas this api checks (and GET /api/usage). */
  quotas: QuotaService | undefined;
  /** With `rateLimits`: the per-user rate limits this api counts (in the database's rate_limits). */
  rateLimits: RateLimits | undefined;
  stop: () => Promise<void>;
};

/** The production authenticator chain's settings (config.auth's shape; the test config's by default). */
export type TestAuth = Partial<AuthSettings> & {
  /** Mounts POST /api/webhooks/clerk verified with this secret. */
  clerkWebhookSecret?: string;
  lastUsedThrottleSeconds?: number;
};

/** Development keys the test api accepts: key → user id. */
export type TestUsers = Record<string, string>;

/** What a test's ws routes are built from: the same services the REST routes use. */
export type TestApiServices = {
  vms: VmService;
  agents: AgentConnections;
  workspaces: WorkspaceService;
  pool: Pool;
  accounts: AccountService;
  /** What the REST routes authenticate with (the production chain with `auth`). */
  authenticator: Authenticator;
};

export async function startTestApi(options: {
  users?: TestUsers;
  databaseUrl?: string;
  /** Roots the api's /readyz checks; the test services' by default. */
  vmDirs?: { runDirRoot: string; secretRoot: string };
  taskQueue?: string;
  vmSettings?: Partial<VmSettings>;
  /** Clone URL schemes POST /api/workspaces accepts (the deployment's VM_REPO_URL_SCHEMES). */
  repoUrlSchemes?: ('https' | 'ssh' | 'file')[];
  /** How long an unused agent connection stays open (AgentConnections' idleCloseMs). */
  agentIdleCloseMs?: number;
  /** How the shared connections reach an agent; the production door (connectVmAgent) by default. */
  connectAgent?: (ref: VmContainerRef) => Promise<AgentClient>;
  wsRoutes?: (deps: TestApiServices) => WsRoute[];
  /** Provider webhook routes (api/webhooks/raw-body.ts), built from the same services. */
  webhooks?: (deps: TestApiServices) => WebhookRoute[];
  /**
   * The production authenticator chain (session JWTs, API keys; `users` stay accepted as development
   * keys beside them) and the account routes (/api/me, /api/keys, /api/audit, local sign-in).
   */
  auth?: TestAuth;
  /** The api's logger (silent by default). */
  log?: Logger;
  /**
   * Billing's settings (config.billing's shape; the test config's, billing off, by default): with a
   * secret key and STRIPE_API_URL at test/support/fake-stripe.ts, the real Stripe client against the fake.
   */
  billing?: Config['billing'];
  /** How plan changes reach usage:<userId>; signal-with-start on this api's task queue by default. */
  notifyPlanChanged?: PlanChangeNotifier;
  /** Check the plans' quotas before provisioning and sends, and mount GET /api/usage (off by default). */
  quotas?: boolean;
  /** Per-user rate limits (config.rateLimits' shape); off by default. */
  rateLimits?: Config['rateLimits'];
}): Promise<TestApi> {
  const pool = createPool(options.databaseUrl ?? testConfig.database.url, { max: 4 });
  const connection = Connection.lazy({ address: testConfig.temporal.address });
  const temporal = new Client({ connection, namespace: testConfig.temporal.namespace });
  const log = options.log ?? createLogger('api-test', 'silent');
  const devKeys = Object.entries(options.users ?? {}).map(([key, userId]) => ({ key, userId }));
  const production = options.auth
    ? createAuthenticator({
        auth: { ...testConfig.auth, ...options.auth },
        pool,
        log,
        devKeys,
        ...(options.auth.lastUsedThrottleSeconds !== undefined
          ? { lastUsedThrottleSeconds: options.auth.lastUsedThrottleSeconds }
          : {}),
      })
    : null;
  const authenticator =
    production?.authenticator ?? firstOf(...devKeys.map((dev) => createDevKeyAuthenticator(dev)));
  const localSessions = production?.localSessions ?? null;
  const taskQueue = options.taskQueue ?? 'no-worker-for-this-api';
  const quotas = options.quotas
    ? new QuotaService({
        pool,
        gracePeriodMs: (options.billing ?? testConfig.billing).gracePeriodMs,
        upgradeUrl: new URL('/billing', testConfig.api.publicUrl).toString(),
        billingEnabled: Boolean((options.billing ?? testConfig.billing).stripeSecretKey),
      })
    : undefined;
  const rateLimits = options.rateLimits ? new RateLimits({ pool, limits: options.rateLimits }) : undefined;
  const vms = new VmService({
    temporal,
    pool,
    taskQueue,
    settings: { ...defaultVmSettings, ...options.vmSettings },
    ...(quotas ? { quotas } : {}),
  });
  const agents = new AgentConnections({
    endpoint: (userId) => vms.agentEndpoint(userId),
    connect:
      options.connectAgent ??
      ((ref) => connectVmAgent(vmAgentEndpoint(ref, testConfig.vm.secretRoot), { clientName: 'api-test' })),
    ...(options.agentIdleCloseMs !== undefined ? { idleCloseMs: options.agentIdleCloseMs } : {}),
    log,
  });
  const workspaces = new WorkspaceService({
    temporal,
    pool,
    taskQueue,
    agents,
    vms,
    repoUrlSchemes: options.repoUrlSchemes ?? testConfig.vm.repoUrlSchemes,
    ...(quotas ? { quotas } : {}),
  });
  const sockets = new UserSockets();
  const accounts = new AccountService({ pool, temporal, vms, sockets, log });
  const services: TestApiServices = { vms, agents, workspaces, pool, accounts, authenticator };
  const clerkSecret = options.auth?.clerkWebhookSecret;
  const billingConfig = options.billing ?? testConfig.billing;
  const billing = new BillingService({
    pool,
    stripe: createStripeClient(billingConfig),
    settings: {
      prices: billingConfig.prices,
      publicUrl: testConfig.api.publicUrl,
      webhookSecret: billingConfig.stripeWebhookSecret,
      gracePeriodMs: billingConfig.gracePeriodMs,
    },
    notifyPlanChanged:
      options.notifyPlanChanged ??
      usageActorNotifier({ temporal, taskQueue, gracePeriodMs: billingConfig.gracePeriodMs }),
    log,
  });
  const api = await startApi(
    {
      log,
      pool,
      temporal,
      vmDirs: options.vmDirs ?? {
        runDirRoot: testConfig.vm.runDirRoot,
        secretRoot: testConfig.vm.secretRoot,
      },
      where: { postgres: 'pg', temporal: 'temporal' },
      authenticator,
      vms,
      workspaces,
      webhooks: [
        ...(clerkSecret ? [clerkWebhookRoute({ secret: clerkSecret, pool, accounts, log })] : []),
        ...(options.webhooks?.(services) ?? []),
        ...(options.billing ? [stripeWebhookRoute({ billing })] : []),
      ],
      billing,
      ...(quotas ? { quotas } : {}),
      ...(rateLimits ? { rateLimits } : {}),
      ...(production
        ? {
            accounts: {
              pool,
              accounts,
              localSessions,
              ...(rateLimits
                ? { limitKeyCreation: (userId: string) => rateLimits.consume('keyCreate', userId) }
                : {}),
            },
          }
        : {}),
    },
    {
      host: '127.0.0.1',
      port: 0,
      wsRoutes: sockets.track(options.wsRoutes?.(services) ?? []),
    },
  );
  return {
    api,
    pool,
    temporal,
    vms,
    agents,
    workspaces,
    accounts,
    sockets,
    localSessions,
    billing,
    quotas,
    rateLimits,
    stop: async () => {
      await api.stop();
      agents.closeAll();
      await pool.end();
      await connection.close();
    },
  };
}
