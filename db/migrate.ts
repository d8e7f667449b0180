/**
 * Schema migrations with node-pg-migrate. SQL files in db/migrations run in order, each in a transaction,
 * under node-pg-migrate's advisory lock, so two processes migrating at once cannot interleave.
 * Run from the command line as `npm run migrate [-- down]`; dev.sh runs it on every `up` and `test`.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../platform/logger.js';

export const migrationsDir = resolve(dirname(fileURLToPath(import.meta.url)), 'migrations');

export type MigrationDirection = 'up' | 'down';

/** Applies pending migrations (up) or undoes `count` of them (down). Returns the names it ran. */
export async function migrate(
  databaseUrl: string,
  options: { direction?: MigrationDirection; count?: number; log?: Logger } = {},
): Promise<string[]> {
  const direction = options.direction ?? 'up';
  const ran = await runner({
    databaseUrl,
    dir: migrationsDir,
    direction,
    count: options.count ?? (direction === 'up' ? Number.POSITIVE_INFINITY : 1),
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    singleTransaction: true,
    verbose: false,
    log: (msg: string) => options.log?.debug({ msg }, 'migration'),
  });
  return ran.map((m) => m.name);
}
