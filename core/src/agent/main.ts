/**
 * Entry point of the agent inside a user's VM (compiled to dist/agent/main.js). Runs as the VM's
 * non-root user on a read-only root filesystem: it writes only to FF_AGENT_DATA_DIR (on the HOME
 * volume), the socket's run directory and /tmp.
 */
import { pino } from 'pino';
import { readAgentSecret, startAgent } from './agent.js';
import { loadAgentConfig } from './config.js';

async function main(): Promise<void> {
  const config = loadAgentConfig();
  const logger = pino({ level: config.logLevel, base: { service: 'ff-agent' } });
  const agent = await startAgent({ config, secret: readAgentSecret(config.secretFile), logger });

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
