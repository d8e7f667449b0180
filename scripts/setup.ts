/**
 * One-time-per-version setup, safe to run on every start: checks that Postgres, Temporal and Docker answer,
 * applies database migrations and registers Temporal search attributes. Prints a sentence naming the
 * service and the fix when something is unreachable, never a stack trace.
 */
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
