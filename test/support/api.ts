/**
 * The api as tests run it: the production app and server on an ephemeral port, wired to the real test
 * services. Only the authenticator is chosen by the test (accounts are not built yet: a development key).
 */
import type { AgentClient } from '@factory-factory/core/agent-client';
import { Client, Connection } from '@temporalio/client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { AgentConnections } from '../../api/agents/connections.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { firstOf } from '../../api/auth/principal.js';
import { type RunningApi, startApi } from '../../api/server.js';
import { VmService } from '../../api/services/vm-service.js';
import { WorkspaceService } from '../../api/services/workspace-service.js';
import type { WsRoute } from '../../api/ws/upgrade.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createLogger } from '../../platform/logger.js';
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
  stop: () => Promise<void>;
};

/** Development keys the test api accepts: key → user id. */
export type TestUsers = Record<string, string>;

/** What a test's ws routes are built from: the same services the REST routes use. */
export type TestApiServices = {
  vms: VmService;
  agents: AgentConnections;
  workspaces: WorkspaceService;
  pool: Pool;
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
}): Promise<TestApi> {
  const pool = createPool(options.databaseUrl ?? testConfig.database.url, { max: 4 });
  const connection = Connection.lazy({ address: testConfig.temporal.address });
  const temporal = new Client({ connection, namespace: testConfig.temporal.namespace });
  const log = createLogger('api-test', 'silent');
  const authenticator = firstOf(
    ...Object.entries(options.users ?? {}).map(([key, userId]) => createDevKeyAuthenticator({ key, userId })),
  );
  const taskQueue = options.taskQueue ?? 'no-worker-for-this-api';
  const vms = new VmService({
    temporal,
    pool,
    taskQueue,
    settings: { ...defaultVmSettings, ...options.vmSettings },
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
    },
    {
      host: '127.0.0.1',
      port: 0,
      wsRoutes: options.wsRoutes?.({ vms, agents, workspaces, pool }) ?? [],
    },
  );
  return {
    api,
    pool,
    temporal,
    vms,
    agents,
    workspaces,
    stop: async () => {
      await api.stop();
      agents.closeAll();
      await pool.end();
      await connection.close();
    },
  };
}
