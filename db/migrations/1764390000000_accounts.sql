-- Up Migration

-- Accounts (issue 11). A deleted user keeps a row (a tombstone: deleted_at set, email and name scrubbed)
-- so that a late or replayed user.created webhook, or a session token still in flight, cannot bring the
-- account back. purged_at is when the deletion finished tearing down everything the user had (VM, actors,
-- workspaces, keys): a deletion interrupted half-way is redone until it is set, and a no-op after.
ALTER TABLE users ADD COLUMN purged_at timestamptz;
-- Clerk's own updated_at of the profile last applied from a webhook: an older user.updated never
-- overwrites a newer one when deliveries arrive out of order.
ALTER TABLE users ADD COLUMN profile_updated_at timestamptz;
-- The first time this user signed in with a session (audited once as session.first_sign_in).
ALTER TABLE users ADD COLUMN first_session_at timestamptz;

-- The first time a key was used (audited once as key.first_use); last_used_at is kept, throttled, beside it.
ALTER TABLE api_keys ADD COLUMN first_used_at timestamptz;
-- The key's recognizable prefix (ffc_live_<id>) is what a secret scanner reports: finding the key by it.
CREATE UNIQUE INDEX api_keys_prefix_idx ON api_keys (prefix);

-- GET /api/audit pages a user's records newest first by id (keyset pagination).
CREATE INDEX audit_log_user_id_idx ON audit_log (user_id, id DESC);

-- Down Migration

DROP INDEX audit_log_user_id_idx;
DROP INDEX api_keys_prefix_idx;
ALTER TABLE api_keys DROP COLUMN first_used_at;
ALTER TABLE users DROP COLUMN first_session_at;
ALTER TABLE users DROP COLUMN profile_updated_at;
ALTER TABLE users DROP COLUMN purged_at;
