/**
 * The workspaces read model against real Postgres: the actor's upsert (never over a newer write or another
 * user's row, version bumped per write) and the tenant-scoped reads the api uses (get, filtered keyset pages).
 */
import assert from 'node:assert/strict';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { getWorkspaceView, InvalidCursorError, listWorkspaceViews } from '../../db/workspaces.js';
import type { WorkspaceView } from '../../workflows/workspace/messages.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';

describe('workspaces read model (real Postgres)', () => {
  let db: TestDatabase;
  const suffix = uniqueSuffix();
  const alice = `alice-${suffix}`;
  const bob = `bob-${suffix}`;

  before(async () => {
    db = await createMigratedDatabase();
    for (const user of [alice, bob])
      await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING', [user]);
  });
  after(async () => {
    await db?.drop();
  });

  function view(
    id: string,
    userId: string,
    at: number,
    overrides: Partial<WorkspaceView> = {},
  ): WorkspaceView {
    return {
      id,
      userId,
      name: `workspace ${id}`,
      status: 'PROVISIONING',
      location: 'CLOUD',
      repoUrl: 'https://github.com/acme/app.git',
      branchName: 'feature-x',
      baseBranch: 'main',
      prUrl: null,
      prNumber: null,
      githubIssueUrl: null,
      githubIssueNumber: null,
      ratchetEnabled: false,
      ratchetState: 'IDLE',
      failureReason: null,
      step: 'vm',
      problem: null,
      createdAt: new Date(at).toISOString(),
      updatedAt: new Date(at).toISOString(),
      version: 0,
      ...overrides,
    };
  }

  it('upserts every transition, bumping the version, never over a newer write or another user', async () => {
    const { recordWorkspaceView } = createWorkspaceReadModelActivities({ pool: db.pool });
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    const id = `rm-${suffix}`;
    assert.deepEqual(await recordWorkspaceView(view(id, alice, t0)), {
      written: true,
      version: 1,
      createdAt: new Date(t0).toISOString(),
    });
    const ready = await recordWorkspaceView(view(id, alice, t0 + 2000, { status: 'READY', step: 'done' }));
    assert.equal(ready.written && ready.version, 2);
    // A retried, late write of an older transition must not bring the row back.
    assert.deepEqual(await recordWorkspaceView(view(id, alice, t0 + 1000)), {
      written: false,
      reason: 'stale',
    });
    // A later run of the actor (created anew) keeps the first creation time and the version counter.
    const rerun = await recordWorkspaceView(
      view(id, alice, t0 + 3000, { createdAt: new Date(t0 + 3000).toISOString() }),
    );
    assert.deepEqual(rerun, { written: true, version: 3, createdAt: new Date(t0).toISOString() });
    assert.deepEqual(await recordWorkspaceView(view(id, bob, t0 + 4000)), {
      written: false,
      reason: 'notOwner',
    });

    const stored = await getWorkspaceView(db.pool, alice, id);
    assert.equal(stored?.status, 'PROVISIONING');
    assert.equal(stored?.version, 3);
    assert.equal(stored?.createdAt, new Date(t0).toISOString());
    assert.equal(
      await getWorkspaceView(db.pool, bob, id),
      null,
      "another user's workspace does not exist for bob",
    );
    const row = await db.pool.query(
      'SELECT user_id, status, step, base_branch FROM workspaces WHERE id = $1',
      [id],
    );
    assert.deepEqual(row.rows[0], {
      user_id: alice,
      status: 'PROVISIONING',
      step: 'vm',
      base_branch: 'main',
    });
  });

  it("lists only the caller's workspaces, newest first, filtered, in keyset pages with an opaque cursor", async () => {
    const { recordWorkspaceView } = createWorkspaceReadModelActivities({ pool: db.pool });
    const t0 = Date.parse('2026-02-01T00:00:00.000Z');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = `page-${i}-${suffix}`;
      ids.push(id);
      // Two pairs share a creation time: the id breaks the tie, so no row is skipped or repeated.
      const at = t0 + Math.floor(i / 2) * 1000;
      await recordWorkspaceView(
        view(id, alice, at, { location: i % 3 === 0 ? 'DESKTOP' : 'CLOUD', status: 'READY' }),
      );
    }
    await recordWorkspaceView(view(`bobs-${suffix}`, bob, t0 + 99_000, { status: 'READY' }));

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const result = await listWorkspaceViews(db.pool, alice, {
        status: 'READY',
        limit: 3,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...result.workspaces.map((w) => w.id));
      if (!result.nextCursor) break;
      cursor = result.nextCursor;
    }
    const expected = [...ids].sort((a, b) => {
      const ta = Math.floor(ids.indexOf(a) / 2);
      const tb = Math.floor(ids.indexOf(b) / 2);
      return tb - ta || (a < b ? 1 : -1);
    });
    assert.deepEqual(seen, expected, 'every READY workspace of alice exactly once, newest first');

    const desktop = await listWorkspaceViews(db.pool, alice, { location: 'DESKTOP', limit: 100 });
    assert.deepEqual(desktop.workspaces.map((w) => w.id).sort(), [ids[0], ids[3], ids[6]].sort());
    assert.equal(desktop.nextCursor, null);
    const bobs = await listWorkspaceViews(db.pool, bob, { limit: 100 });
    assert.deepEqual(
      bobs.workspaces.map((w) => w.id),
      [`bobs-${suffix}`],
    );

    await assert.rejects(
      listWorkspaceViews(db.pool, alice, { limit: 3, cursor: 'not-a-cursor' }),
      InvalidCursorError,
    );
    await assert.rejects(
      listWorkspaceViews(db.pool, alice, { limit: 3, cursor: "x' OR 1=1 --" }),
      InvalidCursorError,
    );
  });
});
