import assert from 'node:assert/strict';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { createEmptyDatabase } from '../support/services.js';

const expectedTables = [
  'api_keys',
  'audit_log',
  'pgmigrations',
  'processed_webhook_events',
  'rate_limits',
  'usage_records',
  'users',
  'vms',
  'workspace_ratchets',
  'workspaces',
];

async function tablesOf(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    return rows.map((r) => r.table_name);
  } finally {
    await client.end();
  }
}

describe('database migrations (real Postgres)', () => {
  let db: Awaited<ReturnType<typeof createEmptyDatabase>>;
  before(async () => {
    db = await createEmptyDatabase('ffc_migrations');
  });
  after(async () => {
    await db?.drop();
  });

  it('bring an empty database to the current schema', async () => {
    assert.deepEqual(await tablesOf(db.url), []);
    const ran = await migrate(db.url);
    assert.ok(ran.length >= 1, 'at least the initial migration ran');
    assert.deepEqual(await tablesOf(db.url), expectedTables);
  });

  it('do nothing on a database that is already current', async () => {
    const ran = await migrate(db.url);
    assert.deepEqual(ran, []);
    assert.deepEqual(await tablesOf(db.url), expectedTables);
  });

  it('run down and up again without loss of structure', async () => {
    const all = await migrate(db.url, { direction: 'down', count: Number.POSITIVE_INFINITY });
    assert.ok(all.length >= 1);
    assert.deepEqual(await tablesOf(db.url), ['pgmigrations']);
    await migrate(db.url);
    assert.deepEqual(await tablesOf(db.url), expectedTables);
  });

  it('enforce the handoff and tenancy invariants in the schema', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("INSERT INTO users (id, email) VALUES ('u1', 'a@example.test')");
      await assert.rejects(
        client.query("INSERT INTO workspaces (id, user_id, name, location) VALUES ('w1', 'u1', 'x', 'MOON')"),
        /workspaces_location_check/,
      );
      await client.query("INSERT INTO vms (id, user_id, status) VALUES ('vm1', 'u1', 'READY')");
      await assert.rejects(
        client.query("INSERT INTO vms (id, user_id, status) VALUES ('vm2', 'u1', 'PROVISIONING')"),
        /vms_one_live_per_user/,
        'a user has at most one live VM',
      );
      await client.query("UPDATE vms SET status = 'TERMINATED' WHERE id = 'vm1'");
      await client.query("INSERT INTO vms (id, user_id, status) VALUES ('vm2', 'u1', 'PROVISIONING')");
      await client.query(
        "INSERT INTO processed_webhook_events (provider, event_id, event_type) VALUES ('stripe', 'evt_1', 'x')",
      );
      await assert.rejects(
        client.query(
          "INSERT INTO processed_webhook_events (provider, event_id, event_type) VALUES ('stripe', 'evt_1', 'x')",
        ),
        /duplicate key/,
        'a webhook event id is recorded once',
      );
    } finally {
      await client.end();
    }
  });
});
