/**
 * Reachability of what the cloud processes need: Postgres and Temporal (all of them), the Docker engine
 * (worker and setup) and the VM directories under FFC_DATA_DIR (the api reaches VMs through them). Used by
 * /readyz, by scripts/setup.ts (so `dev.sh up` fails with a sentence, not a stack trace) and by the worker
 * at start-up.
 */

import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { Connection } from '@temporalio/client';
import type Docker from 'dockerode';
import pg from 'pg';
import type { Config } from './config.js';

export type DependencyName = 'postgres' | 'temporal' | 'docker' | 'vm-run-dir' | 'vm-secrets-dir';
export type DependencyStatus = { name: DependencyName; ok: boolean; detail: string };

/** postgres://user:secret@host/db → postgres://user:***@host/db, so URLs can appear in messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describe(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

async function withTimeout<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one reachability check with a deadline and turns any failure into a status with a readable detail. */
export async function probeDependency(
  name: DependencyName,
  where: string,
  work: () => Promise<unknown>,
  timeoutMs = 3000,
): Promise<DependencyStatus> {
  try {
    await withTimeout(timeoutMs, work());
    return { name, ok: true, detail: where };
  } catch (err) {
    return { name, ok: false, detail: `${where}: ${describe(err)}` };
  }
}

export const fixHints: Record<DependencyName, string> = {
  postgres: 'start it with `scripts/dev.sh services`, or set DATABASE_URL to a reachable Postgres',
  temporal:
    'start it with `scripts/dev.sh services`, or set TEMPORAL_ADDRESS to a reachable Temporal frontend',
  docker: 'start dockerd (`scripts/dev.sh services` does), or set DOCKER_HOST to a reachable Docker engine',
  'vm-run-dir':
    'run scripts/setup.ts (dev.sh does; compose runs the data-dir job) and mount FFC_DATA_DIR at the same path in api and worker',
  'vm-secrets-dir':
    'run scripts/setup.ts (dev.sh does; compose runs the data-dir job) and run the api as the same user as the worker',
};

export function checkPostgres(url: string, timeoutMs = 3000): Promise<DependencyStatus> {
  return probeDependency(
    'postgres',
    redactUrl(url),
    async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => {});
      }
    },
    timeoutMs,
  );
}

export function checkTemporal(address: string, timeoutMs = 3000): Promise<DependencyStatus> {
  return probeDependency(
    'temporal',
    address,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
      try {
        await connection.workflowService.getSystemInfo({});
      } finally {
        await connection.close().catch(() => {});
      }
    },
    timeoutMs,
  );
}

export function checkDocker(docker: Docker, where: string, timeoutMs = 3000): Promise<DependencyStatus> {
  return probeDependency('docker', where, () => docker.ping(), timeoutMs);
}

export function dockerWhere(config: Config['docker']): string {
  return 'socketPath' in config ? `unix://${config.socketPath}` : `tcp://${config.host}:${config.port}`;
}

/**
 * A directory this process must be able to use: it exists, is a directory, and `access` grants `mode`
 * (X_OK to reach the per-VM entries under it, R_OK to list or read them).
 */
export function checkDirectory(
  name: DependencyName,
  path: string,
  mode: number = constants.X_OK,
  timeoutMs = 3000,
): Promise<DependencyStatus> {
  return probeDependency(
    name,
    path,
    async () => {
      if (!(await stat(path)).isDirectory()) throw new Error('not a directory');
      await access(path, mode);
    },
    timeoutMs,
  );
}

/** The checks /readyz of the api runs on the two VM directory roots. */
export function checkVmDirectories(dirs: {
  runDirRoot: string;
  secretRoot: string;
}): Promise<DependencyStatus>[] {
  return [
    checkDirectory('vm-run-dir', dirs.runDirRoot, constants.X_OK),
    checkDirectory('vm-secrets-dir', dirs.secretRoot, constants.R_OK | constants.X_OK),
  ];
}
