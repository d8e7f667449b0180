-- Up Migration

-- Accounts. id is the identity provider's user id (Clerk "user_…", or the local auth subject in dev).
CREATE TABLE users (
  id text PRIMARY KEY,
  email text,
  name text,
  plan text NOT NULL DEFAULT 'FREE' CHECK (plan IN ('FREE', 'PRO', 'TEAM')),
  stripe_customer_id text UNIQUE,
  stripe_subscription_id text,
  subscription_status text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);

-- API keys for the desktop app and CLI: shown once, stored as a SHA-256 hash, revocable.
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL,
  prefix text NOT NULL,
  secret_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Read model of each user's VM; the vm:<userId> workflow is the source of truth and writes here.
CREATE TABLE vms (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('PROVISIONING', 'ONBOARDING', 'READY', 'SUSPENDED', 'TERMINATED', 'FAILED')),
  container_id text,
  host_id text,
  failure_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_active_at timestamptz,
  last_health_check_at timestamptz
);
-- One live VM per user; terminated ones stay as history.
CREATE UNIQUE INDEX vms_one_live_per_user ON vms (user_id) WHERE status <> 'TERMINATED';

-- Workspaces known to the cloud. location is the handoff: the desktop's ratchet polls only DESKTOP,
-- the cloud's only CLOUD. version is bumped on every write for compare-and-swap updates.
CREATE TABLE workspaces (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  vm_id text REFERENCES vms (id),
  name text NOT NULL,
  status text NOT NULL DEFAULT 'NEW' CHECK (status IN ('NEW', 'PROVISIONING', 'READY', 'FAILED', 'ARCHIVED')),
  location text NOT NULL DEFAULT 'DESKTOP' CHECK (location IN ('DESKTOP', 'CLOUD')),
  repo_url text,
  branch_name text,
  github_issue_number integer,
  github_issue_url text,
  pr_url text,
  pr_number integer,
  pr_state text,
  pr_ci_status text,
  ratchet_enabled boolean NOT NULL DEFAULT false,
  ratchet_state text NOT NULL DEFAULT 'IDLE',
  ratchet_last_ci_run_id text,
  pr_review_last_checked_at timestamptz,
  ratchet_active_session_id text,
  failure_reason text,
  version integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_user_location_idx ON workspaces (user_id, location);

-- Compute time per user, one row per metered interval; idempotency_key makes re-reporting a no-op
-- and is also the identifier sent to Stripe's meter events.
CREATE TABLE usage_records (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  vm_id text,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL CHECK (period_end >= period_start),
  compute_seconds integer NOT NULL CHECK (compute_seconds >= 0),
  idempotency_key text NOT NULL UNIQUE,
  reported_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_user_period_idx ON usage_records (user_id, period_start);

-- Webhook deliveries already processed (Stripe, Clerk): a duplicate delivery is acknowledged, not redone.
CREATE TABLE processed_webhook_events (
  provider text NOT NULL CHECK (provider IN ('stripe', 'clerk')),
  event_id text NOT NULL,
  event_type text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, event_id)
);

-- Who did what. No foreign key on user_id: the trail outlives a deleted account.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  user_id text,
  actor text NOT NULL,
  action text NOT NULL,
  target_type text,
  target_id text,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_user_time_idx ON audit_log (user_id, created_at DESC);

-- Down Migration

DROP TABLE audit_log;
DROP TABLE processed_webhook_events;
DROP TABLE usage_records;
DROP TABLE workspaces;
DROP TABLE vms;
DROP TABLE api_keys;
DROP TABLE users;
