/**
 * The api as tests run it: the production app and server on an ephemeral port, wired to the real test
 * services. Only the authenticator is chosen by the test (accounts are not built yet: a development key).
 */
import { Client, Connection } from '@temporalio/client';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { firstOf } from '../../api/auth/principal.js';
import { type RunningApi, startApi } from '../../api/server.js';
import { VmService } from '../../api/services/vm-service.js';
import type { WsRoute } from '../../api/ws/upgrade.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createLogger } from '../../platform/logger.js';
import { defaultVmSettings, type VmSettings } from '../../workflows/vm/messages.js';
import { testConfig } from './services.js';

export type TestApi = {
  api: RunningApi;
  pool: Pool;
  temporal: Client;
  vms: VmService;
  stop: () => Promise<void>;
};

/** Development keys the test api accepts: key → user id. */
export type TestUsers = Record<string, string>;

export async function startTestApi(options: {
  users?: TestUsers;
  databaseUrl?: string;
  /** Roots the api's /readyz checks; the test services' by default. */
  vmDirs?: { runDirRoot: string; secretRoot: string };
  taskQueue?: string;
  vmSettings?: Partial<VmSettings>;
  wsRoutes?: (deps: { vms: VmService }) => WsRoute[];
}): Promise<TestApi> {
  const pool = createPool(options.databaseUrl ?? testConfig.database.url, { max: 4 });
  const connection = Connection.lazy({ address: testConfig.temporal.address });
  const temporal = new Client({ connection, namespace: testConfig.temporal.namespace });
  const authenticator = firstOf(
    ...Object.entries(options.users ?? {}).map(([key, userId]) => createDevKeyAuthenticator({ key, userId })),
  );
  const vms = new VmService({
    temporal,
    pool,
    taskQueue: options.taskQueue ?? 'no-worker-for-this-api',
    settings: { ...defaultVmSettings, ...options.vmSettings },
  });
  const api = await startApi(
    {
      log: createLogger('api-test', 'silent'),
      pool,
      temporal,
      vmDirs: options.vmDirs ?? {
        runDirRoot: testConfig.vm.runDirRoot,
        secretRoot: testConfig.vm.secretRoot,
      },
      where: { postgres: 'pg', temporal: 'temporal' },
      authenticator,
      vms,
    },
    { host: '127.0.0.1', port: 0, wsRoutes: options.wsRoutes?.({ vms }) ?? [] },
  );
  return {
    api,
    pool,
    temporal,
    vms,
    stop: async () => {
      await api.stop();
      await pool.end();
      await connection.close();
    },
  };
}
