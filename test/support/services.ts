/**
 * The real services a cloud test talks to. `scripts/dev.sh test` starts them (Postgres, Temporal dev server,
 * Docker) before mocha runs; a test that cannot reach one fails loudly with the reason, it never skips.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import Docker from 'dockerode';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { type Config, loadConfig } from '../../platform/config.js';

/**
 * Tests run in their own Temporal namespace, so the product's namespace (`default`, what `up` and its UI
 * use) shows only the product's workflows. `scripts/dev.sh test` exports it and `dev.sh test`/`services`
 * create it with the search attributes; a run by hand (`npx mocha …`) gets it here. It is set in
 * process.env so that every process a test spawns (through childEnv) uses the same namespace.
 */
export const TEST_NAMESPACE = 'ffc-test';
if (!process.env.TEMPORAL_NAMESPACE) process.env.TEMPORAL_NAMESPACE = TEST_NAMESPACE;

/** The configuration tests run with: the same defaults as a local `up`, overridable by the environment. */
export const testConfig: Config = loadConfig({
  ...process.env,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
});

export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** A URL for another database on the configured server. */
export function databaseUrl(name: string): string {
  const url = new URL(testConfig.database.url);
  url.pathname = `/${name}`;
  return url.toString();
}

export type TestDatabase = { name: string; url: string; pool: Pool; drop: () => Promise<void> };

/** A fresh, empty database (no migrations), dropped by `drop()`. */
export async function createEmptyDatabase(prefix = 'ffc_test'): Promise<Omit<TestDatabase, 'pool'>> {
  const name = `${prefix}_${uniqueSuffix()}`;
  const admin = new pg.Client({ connectionString: testConfig.database.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: databaseUrl(name),
    drop: async () => {
      const c = new pg.Client({ connectionString: testConfig.database.url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A fresh database with every migration applied, and a pool on it. */
export async function createMigratedDatabase(): Promise<TestDatabase> {
  const db = await createEmptyDatabase();
  await migrate(db.url);
  const pool = createPool(db.url, { max: 5 });
  return {
    ...db,
    pool,
    drop: async () => {
      await pool.end();
      await db.drop();
    },
  };
}

export async function connectTestTemporal(): Promise<Client> {
  const connection = await Connection.connect({ address: testConfig.temporal.address, connectTimeout: '5s' });
  return new Client({ connection, namespace: testConfig.temporal.namespace });
}

export function testDocker(): Docker {
  return new Docker(testConfig.docker);
}
