-- Up Migration

-- One row of usage_records is one slice of a VM's running time (period_start/period_end are the slice's
-- own bounds, inside one billing period), written by the usage:<userId> actor. `minutes` is what the
-- slice is billed (a started minute counts as one): quotas and GET /api/usage sum it, and it is the value
-- reported to Stripe's meter under idempotency_key.
ALTER TABLE usage_records ADD COLUMN minutes integer NOT NULL DEFAULT 0 CHECK (minutes >= 0);
-- The usage actor reads back what it recorded but has not reported yet (after a restart), oldest first.
CREATE INDEX usage_records_unreported_idx ON usage_records (user_id, period_start) WHERE reported_at IS NULL;

-- Per-user rate limits (api/limits/rate-limits.ts): rate-limiter-flexible's RateLimiterPostgres counters,
-- in the shape that library uses (it is told tableCreated: true and never creates it), so every api
-- process counts against the same rows. `expire` is epoch ms.
CREATE TABLE rate_limits (
  key varchar(255) PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);

-- Down Migration

DROP TABLE rate_limits;
DROP INDEX usage_records_unreported_idx;
ALTER TABLE usage_records DROP COLUMN minutes;
