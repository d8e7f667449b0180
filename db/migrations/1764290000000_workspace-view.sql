-- Up Migration

-- The read model of the workspace:<id> actors: the whole view the actor last wrote, so the api answers
-- GET /api/workspaces[/:id] from Postgres in milliseconds, also while no worker runs. The typed columns stay
-- for queries (filters, ops); step says how far a PROVISIONING restore got.
ALTER TABLE workspaces ADD COLUMN view jsonb;
ALTER TABLE workspaces ADD COLUMN step text CHECK (step IN ('vm', 'restore', 'done'));
ALTER TABLE workspaces ADD COLUMN base_branch text;

-- Listing one user's workspaces newest first, paginated on (created_at, id).
CREATE INDEX workspaces_user_created_idx ON workspaces (user_id, created_at DESC, id DESC);

-- Down Migration

DROP INDEX workspaces_user_created_idx;
ALTER TABLE workspaces DROP COLUMN base_branch;
ALTER TABLE workspaces DROP COLUMN step;
ALTER TABLE workspaces DROP COLUMN view;
