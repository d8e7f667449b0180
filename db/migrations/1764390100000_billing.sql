-- Up Migration

-- Billing state of an account, written only by verified Stripe webhooks (db/billing.ts). Webhooks arrive
-- late, twice and out of order, so each part of the state remembers the Stripe timestamp (the event's
-- `created`) it was taken from, and an older event never overwrites a newer one.
--
-- subscription_state_at/_rank: when the subscription state (plan, status, price, period) was last set;
-- the rank orders events of the same second (checkout 0 < subscription created 1 < updated 2 < deleted 3).
ALTER TABLE users ADD COLUMN stripe_price_id text;
ALTER TABLE users ADD COLUMN current_period_end timestamptz;
ALTER TABLE users ADD COLUMN subscription_state_at timestamptz;
ALTER TABLE users ADD COLUMN subscription_state_rank smallint NOT NULL DEFAULT 0;
-- When the latest unpaid invoice failed (null once one is paid): paid limits last a grace period after it.
ALTER TABLE users ADD COLUMN payment_failed_at timestamptz;
-- The Stripe timestamp of the last invoice or subscription event that set or cleared payment_failed_at.
ALTER TABLE users ADD COLUMN payment_state_at timestamptz;

-- Down Migration

ALTER TABLE users DROP COLUMN payment_state_at;
ALTER TABLE users DROP COLUMN payment_failed_at;
ALTER TABLE users DROP COLUMN subscription_state_rank;
ALTER TABLE users DROP COLUMN subscription_state_at;
ALTER TABLE users DROP COLUMN current_period_end;
ALTER TABLE users DROP COLUMN stripe_price_id;
