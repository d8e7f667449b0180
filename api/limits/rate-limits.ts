/**
 * Per-user rate limits on what is expensive or abusable: provisioning (POST /api/vms, workspace sends),
 * session creation and API key creation. rate-limiter-flexible's RateLimiterPostgres keeps the counters in
 * the api's own Postgres (table rate_limits, made by the migration), so every api process counts against
 * the same rows and a user cannot get more by reaching another instance.
 *
 * A refusal is a 429 with Retry-After and the code 'rate_limited', worded so it never reads like a VM or
 * workspace failure: nothing is wrong, the caller only has to wait.
 */
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Pool } from '../../db/pool.js';
import type { Config } from '../../platform/config.js';
import { ApiError } from '../errors.js';

export type RateLimitName = 'provision' | 'sessionCreate' | 'keyCreate';

const RATE_LIMIT_TABLE = 'rate_limits';

type LimitSpec = { points: number; durationSec: number; what: string; per: string };

function specs(limits: Config['rateLimits']): Record<RateLimitName, LimitSpec> {
  return {
    provision: {
      points: limits.provisionPerMinute,
      durationSec: 60,
      what: 'VM starts and workspace sends',
      per: 'minute',
    },
    sessionCreate: {
      points: limits.sessionsPerMinute,
      durationSec: 60,
      what: 'new sessions',
      per: 'minute',
    },
    keyCreate: { points: limits.keysPerHour, durationSec: 3600, what: 'new API keys', per: 'hour' },
  };
}

export class RateLimits {
  private readonly limiters: Record<RateLimitName, RateLimiterPostgres>;
  private readonly specs: Record<RateLimitName, LimitSpec>;

  constructor(deps: { pool: Pool; limits: Config['rateLimits'] }) {
    this.specs = specs(deps.limits);
    const limiter = (name: RateLimitName) =>
      new RateLimiterPostgres({
        storeClient: deps.pool,
        storeType: 'pool',
        tableName: RATE_LIMIT_TABLE,
        // The migration made the table: the library must not try (nor race another process doing it).
        tableCreated: true,
        keyPrefix: name,
        points: this.specs[name].points,
        duration: this.specs[name].durationSec,
      });
    this.limiters = {
      provision: limiter('provision'),
      sessionCreate: limiter('sessionCreate'),
      keyCreate: limiter('keyCreate'),
    };
  }

  /** Counts one `name` action of the user; throws a 429 ApiError once the user's allowance is spent. */
  async consume(name: RateLimitName, userId: string): Promise<void> {
    const spec = this.specs[name];
    try {
      await this.limiters[name].consume(userId, 1);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        throw new ApiError(503, 'rate_limit_unavailable', 'the service is busy right now; try again shortly');
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw new ApiError(
        429,
        'rate_limited',
        `Too many requests: at most ${spec.points} ${spec.what} per ${spec.per} for one account. ` +
          `Try again in ${retryAfterSeconds} s; nothing is wrong with your VM or workspaces.`,
        { retryAfterSeconds },
      );
    }
  }
}
