/**
 * The Temporal worker process: connects, wires activities to real clients, runs until SIGINT/SIGTERM, then
 * shuts down gracefully (stops polling, lets running activities finish within the grace time).
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import Docker from 'dockerode';
import { createActivities } from '../activities/index.js';
import { createPool } from '../db/pool.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { createStripeClient } from '../platform/stripe.js';
import { defaultUsageSettings } from '../workflows/usage/messages.js';
import { workflowBundlerOptions, workflowsPath } from './bundle.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('worker', config.logLevel);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const temporal = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const docker = new Docker(config.docker);
  const pool = createPool(config.database.url, { max: config.database.poolMax, log });

  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath,
    bundlerOptions: { webpackConfigHook: workflowBundlerOptions },
    activities: createActivities({
      docker,
      temporal,
      pool,
      vm: config.vm,
      usageSettings: { ...defaultUsageSettings, gracePeriodMs: config.billing.gracePeriodMs },
      stripe: createStripeClient(config.billing),
      meterEventName: config.billing.meterEventName,
      ratchetSettings: config.ratchet,
    }),
    maxConcurrentActivityTaskExecutions: config.temporal.maxConcurrentActivities,
    shutdownGraceTime: '30s',
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down: draining activities');
      worker.shutdown();
    });
  }
  log.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address }, 'worker running');
  await worker.run();
  await clientConnection.close();
  await connection.close();
  await pool.end();
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.stack : String(err);
  process.stderr.write(`worker: ${message}\n`);
  process.exit(1);
});
