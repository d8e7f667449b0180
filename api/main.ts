/**
 * The api process: loads config, connects to Postgres and Temporal, serves until SIGINT/SIGTERM, then
 * drains and exits. A dependency that is down does not stop start-up: /readyz reports it. The api does not
 * use the Docker engine: VMs are reached through the run and secret dirs under FFC_DATA_DIR.
 */
import { Client, Connection } from '@temporalio/client';
import { createPool } from '../db/pool.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import { redactUrl } from '../platform/dependencies.js';
import { createLogger } from '../platform/logger.js';
import { createStripeClient } from '../platform/stripe.js';
import { connectVmAgent, vmAgentEndpoint } from '../platform/vm-agent.js';
import { vmSettingsFrom } from '../platform/vm-ready.js';
import { AgentConnections } from './agents/connections.js';
import { createAuthenticator } from './auth/authenticator.js';
import { QuotaService } from './limits/quota-service.js';
import { RateLimits } from './limits/rate-limits.js';
import { authConfigOf } from './routes/auth-config.js';
import { startApi } from './server.js';
import { AccountService } from './services/account-service.js';
import { BillingService, usageActorNotifier } from './services/billing-service.js';
import { SessionHistoryService } from './services/session-history.js';
import { VmService } from './services/vm-service.js';
import { WorkspaceService } from './services/workspace-service.js';
import { clerkWebhookRoute } from './webhooks/clerk.js';
import { stripeWebhookRoute } from './webhooks/stripe.js';
import { sessionRelayRoute } from './ws/session-relay.js';
import { terminalRoute } from './ws/terminal.js';
import { UserSockets } from './ws/user-sockets.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('api', config.logLevel);
  const pool = createPool(config.database.url, { max: config.database.poolMax, log });
  // lazy: the connection is made on first use, so the api starts (and /readyz explains) even if Temporal is down
  const connection = Connection.lazy({ address: config.temporal.address });
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  // Session JWTs (Clerk's, or local sign-in's) and API keys; the development key too where configured.
  const { authenticator, localSessions } = createAuthenticator({
    auth: config.auth,
    pool,
    log,
    devKeys: config.api.devApiKey ? [{ key: config.api.devApiKey, userId: config.api.devUserId }] : [],
  });
  // Plans' quotas and per-user rate limits, counted in Postgres so every api process shares them.
  const quotas = new QuotaService({
    pool,
    gracePeriodMs: config.billing.gracePeriodMs,
    upgradeUrl: new URL('/billing', config.api.publicUrl).toString(),
    billingEnabled: Boolean(config.billing.stripeSecretKey),
  });
  const rateLimits = new RateLimits({ pool, limits: config.rateLimits });
  const vms = new VmService({
    quotas,
    temporal,
    pool,
    taskQueue: config.temporal.taskQueue,
    settings: vmSettingsFrom(config.vm),
  });
  // One agent connection per VM for this process, shared by REST session calls and both relays.
  const agents = new AgentConnections({
    endpoint: (userId) => vms.agentEndpoint(userId),
    connect: (ref) => connectVmAgent(vmAgentEndpoint(ref, config.vm.secretRoot), { clientName: 'api' }),
    log,
  });
  const workspaces = new WorkspaceService({
    temporal,
    pool,
    taskQueue: config.temporal.taskQueue,
    agents,
    vms,
    repoUrlSchemes: config.vm.repoUrlSchemes,
    quotas,
  });
  // This process's live sockets by user: deleting an account closes its sockets here at once.
  const sockets = new UserSockets();
  const accounts = new AccountService({ pool, temporal, vms, sockets, log });
  const { clerkWebhookSecret } = config.auth;
  // Without STRIPE_SECRET_KEY there is no client: billing routes answer 503, every account has Free limits.
  const billing = new BillingService({
    pool,
    stripe: createStripeClient(config.billing),
    settings: {
      prices: config.billing.prices,
      publicUrl: config.api.publicUrl,
      webhookSecret: config.billing.stripeWebhookSecret,
      gracePeriodMs: config.billing.gracePeriodMs,
    },
    notifyPlanChanged: usageActorNotifier({
      temporal,
      taskQueue: config.temporal.taskQueue,
      gracePeriodMs: config.billing.gracePeriodMs,
    }),
    log,
  });
  if (config.auth.mode === 'clerk' && !clerkWebhookSecret) {
    log.warn('CLERK_WEBHOOK_SECRET is not set: Clerk user events (deletions) are not received');
  }

  const api = await startApi(
    {
      log,
      pool,
      temporal,
      vmDirs: { runDirRoot: config.vm.runDirRoot, secretRoot: config.vm.secretRoot },
      where: { postgres: redactUrl(config.database.url), temporal: config.temporal.address },
      authenticator,
      vms,
      workspaces,
      accounts: {
        pool,
        accounts,
        localSessions,
        limitKeyCreation: (userId) => rateLimits.consume('keyCreate', userId),
        operators: {
          userIds: config.operators.userIds,
          temporalUiUrl: config.temporal.uiUrl,
          temporalNamespace: config.temporal.namespace,
        },
      },
      authConfig: authConfigOf(config.auth),
      sessionHistory: new SessionHistoryService({ workspaces, agents }),
      billing,
      rateLimits,
      quotas,
      webhooks: [
        ...(clerkWebhookSecret
          ? [clerkWebhookRoute({ secret: clerkWebhookSecret, pool, accounts, log })]
          : []),
        stripeWebhookRoute({ billing }),
      ],
    },
    {
      host: config.api.host,
      port: config.api.port,
      wsRoutes: sockets.track([
        terminalRoute({
          authenticator,
          pool,
          vms,
          log,
          agents,
          pingIntervalMs: config.api.wsPingIntervalMs,
        }),
        sessionRelayRoute({
          authenticator,
          pool,
          vms,
          workspaces,
          agents,
          log,
          pingIntervalMs: config.api.wsPingIntervalMs,
        }),
      ]),
    },
  );
  log.info({ url: api.url }, 'api listening');

  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      api
        .stop()
        .then(() => {
          agents.closeAll();
          return Promise.all([pool.end(), connection.close()]);
        })
        .then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err }, 'unclean shutdown');
            process.exit(1);
          },
        );
    });
  }
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.stack : String(err);
  process.stderr.write(`api: ${message}\n`);
  process.exit(1);
});
