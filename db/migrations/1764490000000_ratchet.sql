-- Up Migration

-- The read model of the ratchet:<workspaceId> actors: the whole RatchetView the actor last wrote (state,
-- last decision, active fixer, stalled, daily cap, problem), so the api shows a workspace's ratchet from
-- Postgres without asking Temporal. version is bumped by every accepted write; a write never goes over a
-- newer one (updated_at is the actor's own clock) or over another user's row.
CREATE TABLE workspace_ratchets (
  workspace_id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  view jsonb NOT NULL,
  version integer NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL
);
CREATE INDEX workspace_ratchets_user_idx ON workspace_ratchets (user_id);

-- Down Migration

DROP TABLE workspace_ratchets;
