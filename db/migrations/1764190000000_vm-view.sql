-- Up Migration

-- The whole view the vm:<userId> actor last wrote, so GET /api/vms/me answers from Postgres in
-- milliseconds, also while no worker runs. The typed columns stay for queries (quotas, ops).
ALTER TABLE vms ADD COLUMN view jsonb;

-- Down Migration

ALTER TABLE vms DROP COLUMN view;
