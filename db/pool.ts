import pg from 'pg';
import type { Logger } from '../platform/logger.js';

export type Pool = pg.Pool;

/** One pool per process. Connections time out quickly so a dead database fails requests, not hangs them. */
export function createPool(url: string, options: { max?: number; log?: Logger } = {}): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection emits 'error' on the pool; without a listener it would crash
  // the process. The next query gets a fresh connection, so logging is all there is to do.
  pool.on('error', (err) => options.log?.warn({ err: err.message }, 'idle Postgres connection lost'));
  return pool;
}
