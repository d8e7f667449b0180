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
import { connectVmAgent, vmAgentEndpoint } from '../platform/vm-agent.js';
import { vmSettingsFrom } from '../platform/vm-ready.js';
import { AgentConnections } from './agents/connections.js';
import { createDevKeyAuthenticator } from './auth/dev-key.js';
import type { Authenticator } from './auth/principal.js';
import { startApi } from './server.js';
import { VmService } from './services/vm-service.js';
import { WorkspaceService } from './services/workspace-service.js';
import { sessionRelayRoute } from './ws/session-relay.js';
import { terminalRoute } from './ws/terminal.js';

/** Until accounts exist, the development key is the only way in; without it every call is refused. */
const nobody: Authenticator = { authenticate: async () => null };

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('api', config.logLevel);
  const pool = createPool(config.database.url, { max: config.database.poolMax, log });
  // lazy: the connection is made on first use, so the api starts (and /readyz explains) even if Temporal is down
  const connection = Connection.lazy({ address: config.temporal.address });
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  const authenticator = config.api.devApiKey
    ? createDevKeyAuthenticator({ key: config.api.devApiKey, userId: config.api.devUserId })
    : nobody;
  const vms = new VmService({
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
  });

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
    },
    {
      host: config.api.host,
      port: config.api.port,
      wsRoutes: [
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
      ],
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
