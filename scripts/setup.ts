/**
 * One-time-per-version setup, safe to run on every start: checks that Postgres, Temporal and Docker answer,
 * prepares the VM directory roots, applies database migrations and registers Temporal search attributes
 * in TEMPORAL_NAMESPACE. Prints a sentence naming the service and the fix when something is unreachable,
 * never a stack trace.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import Docker from 'dockerode';
import { migrate } from '../db/migrate.js';
import { ensureReconcilerSchedule, ensureWarmPool } from '../platform/actors.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import {
  checkDocker,
  checkPostgres,
  checkTemporal,
  dockerWhere,
  fixHints,
} from '../platform/dependencies.js';
import { ensureSearchAttributes } from '../platform/temporal.js';
import { allSearchAttributes } from '../workflows/search-attributes.js';
import { defaultVmSettings } from '../workflows/vm/messages.js';

/**
 * The roots the worker creates per-VM directories in, with the modes the api and worker rely on: the run
 * dir root 0711 (VM containers bind-mount their own subdirectory; nobody lists the others), the secrets
 * root 0700 (only the host's user reads secrets). Both belong to the user running setup, which is the
 * worker's (in compose, the data-dir job has created them for that user). Returns a problem, or null.
 */
async function prepareVmDirectories(vm: { runDirRoot: string; secretRoot: string }): Promise<string | null> {
  for (const [dir, mode] of [
    [vm.runDirRoot, 0o711],
    [vm.secretRoot, 0o700],
  ] as const) {
    try {
      await mkdir(dir, { recursive: true, mode });
      await chmod(dir, mode); // mkdir leaves an existing directory's mode (and applies the umask)
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return `cannot prepare ${dir} (${reason}); it must be a directory owned by the worker's user, under FFC_DATA_DIR`;
    }
  }
  console.log(`    VM directories ready: ${vm.runDirRoot}, ${vm.secretRoot}`);
  return null;
}

async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`setup: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const statuses = await Promise.all([
    checkPostgres(config.database.url),
    checkTemporal(config.temporal.address),
    checkDocker(new Docker(config.docker), dockerWhere(config.docker)),
  ]);
  const down = statuses.filter((s) => !s.ok);
  if (down.length > 0) {
    for (const s of down)
      console.error(`setup: ${s.name} is not reachable (${s.detail}); ${fixHints[s.name]}`);
    return 1;
  }
  const unprepared = await prepareVmDirectories(config.vm);
  if (unprepared) {
    console.error(`setup: ${unprepared}`);
    return 1;
  }
  const ran = await migrate(config.database.url);
  console.log(
    ran.length > 0 ? `    migrations applied: ${ran.join(', ')}` : '    database schema is current',
  );
  const connection = await Connection.connect({ address: config.temporal.address });
  try {
    const added = await ensureSearchAttributes(connection, config.temporal.namespace, allSearchAttributes);
    console.log(
      added.length > 0
        ? `    search attributes added: ${added.join(', ')}`
        : '    search attributes are registered',
    );
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const schedule = await ensureReconcilerSchedule(client, config.temporal.taskQueue);
    console.log(
      `    stray-container reconciler schedule ${schedule === 'created' ? 'created' : 'is in place'}`,
    );
    const pool = await ensureWarmPool(client, {
      taskQueue: config.temporal.taskQueue,
      size: config.vm.warmPoolSize,
      agentTimeoutMs: defaultVmSettings.agentTimeoutMs,
    });
    if (pool !== 'disabled') console.log(`    warm pool ${pool} (size ${config.vm.warmPoolSize})`);
  } finally {
    await connection.close();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`setup: failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
