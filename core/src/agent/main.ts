/**
 * Entry point of the agent inside a user's VM (compiled to dist/agent/main.js). Runs as the VM's
 * non-root user on a read-only root filesystem: it writes only to FF_AGENT_DATA_DIR (on the HOME
 * volume), the socket's run directory and /tmp.
 *
 * The start-up is tuned for how soon a starting VM answers its first health.ping (bench/vm-containers.ts
 * prints the split):
 *   - the modules are loaded with require(), which since Node 20.19 loads ES modules synchronously: for
 *     the agent's couple of hundred files that takes about a quarter less CPU than import(), whose every
 *     file is a chain of asynchronous reads and resolutions (where require() cannot load one, it is
 *     imported);
 *   - the credential check is started as soon as the configuration is read: its `gh auth status` is a
 *     process of its own taking tens of milliseconds, which then runs while the rest of the agent loads
 *     instead of after the first ping arrives; the ping reads its real, just-taken result.
 */
import type * as Pino from 'pino';
import type * as AgentModule from './agent.js';
import type * as ConfigModule from './config.js';
import type * as CredentialsModule from './credentials.js';
import { loadModule } from './load-module.js';

async function main(): Promise<void> {
  const { loadAgentConfig } = await loadModule<typeof ConfigModule>('./config.js');
  const { createCredentialProbe } = await loadModule<typeof CredentialsModule>('./credentials.js');
  const config = loadAgentConfig();
  const credentials = createCredentialProbe({
    home: config.homeDir,
    ghBin: config.ghBin,
    childEnv: config.childEnv,
  });
  void credentials();
  const { pino } = await loadModule<typeof Pino>('pino');
  const { readAgentSecret, startAgent } = await loadModule<typeof AgentModule>('./agent.js');
  const logger = pino({ level: config.logLevel, base: { service: 'ff-agent' } });
  const agent = await startAgent({
    config,
    secret: readAgentSecret(config.secretFile),
    logger,
    credentials,
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Docker sends SIGKILL after its stop timeout; finish well before that.
    setTimeout(() => process.exit(1), 20_000).unref();
    agent.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ error: String(error) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad config); stderr is what the container runtime keeps.
  process.stderr.write(
    `ff-agent failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
