/**
 * The workspaces REST routes without a worker or a VM: validation, tenancy (another user's workspace is a
 * 404, never a 403, and its id cannot be taken over), list filters and pagination over the read model, and
 * the OpenAPI description generated from the same route table that mounts the routes. Real Postgres (a fresh
 * database), real Temporal client; nothing here may reach an actor or an agent, which is itself checked:
 * the api's task queue has no worker, so anything that asked one would hang until the test timed out.
 */
import assert from 'node:assert/strict';
import type { PortableWorkspaceStateInput } from '@factory-factory/core/protocol';
import type { Express } from 'express';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { createApp } from '../../api/app.js';
import { WorkspaceListSchema } from '../../api/contract/workspaces.js';
import { recordRatchetView } from '../../db/ratchet.js';
import { createLogger } from '../../platform/logger.js';
import type { RatchetView } from '../../workflows/ratchet/messages.js';
import type { WorkspaceView } from '../../workflows/workspace/messages.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import { portableWorkspaceState } from '../support/portable-state.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';

describe('workspaces REST: validation, tenancy, pagination, OpenAPI (Postgres, no worker)', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-rest-${suffix}-0123456789`, userId: `alice-${suffix}` };
  const bob = { key: `bob-rest-${suffix}-0123456789`, userId: `bob-${suffix}` };
  let db: TestDatabase;
  let api: TestApi;
  const auth = (who: { key: string }) => ({ authorization: `Bearer ${who.key}` });
  const json = (who: { key: string }) => ({ ...auth(who), 'content-type': 'application/json' });
  const url = (path: string) => `${api.api.url}${path}`;

  const view = (
    userId: string,
    id: string,
    overrides: Partial<WorkspaceView> & { createdAt: string },
  ): WorkspaceView => ({
    id,
    userId,
    name: `ws ${id}`,
    status: 'READY',
    location: 'CLOUD',
    repoUrl: 'https://github.com/o/r.git',
    branchName: `b-${id}`,
    baseBranch: 'main',
    prUrl: null,
    prNumber: null,
    githubIssueUrl: null,
    githubIssueNumber: null,
    ratchetEnabled: false,
    ratchetState: 'IDLE',
    failureReason: null,
    step: 'done',
    updatedAt: overrides.createdAt,
    version: 0,
    ...overrides,
  });

  const state = (workspaceId: string, repoUrl: string): PortableWorkspaceStateInput =>
    portableWorkspaceState(workspaceId, {
      name: 'from the desktop',
      repoUrl,
      branchName: 'feature',
      exportedAt: '2026-12-01T10:00:00.000Z',
    });

  const aliceIds = ['a1', 'a2', 'a3', 'a4', 'a5'].map((n) => `${n}-${suffix}`);
  const bobId = `b1-${suffix}`;
  const provisioningId = aliceIds[3] ?? '';
  const desktopId = aliceIds[4] ?? '';

  before(async () => {
    db = await createMigratedDatabase();
    for (const userId of [alice.userId, bob.userId])
      await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    const { recordWorkspaceView } = createWorkspaceReadModelActivities({ pool: db.pool });
    // Created a minute apart, so "newest first" is a4, a3, a2, a1 (and a5 the newest of all).
    for (const [i, id] of aliceIds.entries()) {
      const createdAt = new Date(Date.UTC(2026, 11, 1, 10, i)).toISOString();
      await recordWorkspaceView(
        view(alice.userId, id, {
          createdAt,
          ...(id === provisioningId ? { status: 'PROVISIONING', step: 'vm' } : {}),
          ...(id === desktopId ? { location: 'DESKTOP' } : {}),
        }),
      );
    }
    await recordWorkspaceView(view(bob.userId, bobId, { createdAt: '2026-12-01T11:00:00.000Z' }));
    api = await startTestApi({
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId, [bob.key]: bob.userId },
      repoUrlSchemes: ['https', 'ssh'],
    });
  });

  after(async () => {
    await api?.stop();
    await db?.drop();
  });

  it("answers another user's workspace exactly like a missing one (404), on every route", async () => {
    const own = await request(url(`/api/workspaces/${bobId}`), { headers: auth(bob) });
    assert.equal(own.status, 200, own.text);
    const missing = await request(url(`/api/workspaces/nope-${suffix}`), { headers: auth(alice) });
    assert.equal(missing.status, 404);
    const routes: [string, string][] = [
      ['GET', `/api/workspaces/${bobId}`],
      ['POST', `/api/workspaces/${bobId}/pull`],
      ['POST', `/api/workspaces/${bobId}/archive`],
      ['POST', `/api/workspaces/${bobId}/retry`],
      ['POST', `/api/workspaces/${bobId}/ratchet`],
      ['POST', `/api/workspaces/${bobId}/ratchet/stop-fixer`],
      ['POST', `/api/workspaces/${bobId}/ratchet/wake`],
      ['GET', `/api/workspaces/${bobId}/sessions`],
      ['POST', `/api/workspaces/${bobId}/sessions`],
      ['GET', `/api/workspaces/${bobId}/sessions/s1`],
      ['POST', `/api/workspaces/${bobId}/sessions/s1/stop`],
    ];
    for (const [method, path] of routes) {
      const res = await request(url(path), {
        method,
        headers: json(alice),
        body: method === 'POST' ? (path.endsWith('/ratchet') ? '{"enabled":true}' : '{}') : undefined,
      });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(errorCode(res), 'workspace_not_found');
      assert.deepEqual(res.json, missing.json, `${method} ${path} says nothing more than for a missing one`);
      assert.ok(!res.text.includes(bob.userId), 'the owner is never named');
    }
  });

  it("refuses to send a workspace under another user's id, without revealing it", async () => {
    const res = await request(url('/api/workspaces'), {
      method: 'POST',
      headers: json(alice),
      body: JSON.stringify({ state: state(bobId, 'https://github.com/o/r.git') }),
    });
    assert.equal(res.status, 404, res.text);
    assert.equal(errorCode(res), 'workspace_not_found');
    const issue = await request(url('/api/workspaces'), {
      method: 'POST',
      headers: json(alice),
      body: JSON.stringify({ issueUrl: 'https://github.com/o/r/issues/1', workspaceId: bobId }),
    });
    assert.equal(issue.status, 404, issue.text);
    const still = await request(url(`/api/workspaces/${bobId}`), { headers: auth(bob) });
    assert.equal((still.json as { workspace: WorkspaceView }).workspace.userId, bob.userId);
  });

  it('rejects a repo URL that is not a git clone URL, malformed JSON and bad bodies with 400', async () => {
    for (const repoUrl of [
      'not a url',
      'ext::sh -c touch% /tmp/x',
      '-uhelp',
      'file:///srv/r.git',
      'https://tok:x@github.com/o/r.git',
    ]) {
      const res = await request(url('/api/workspaces'), {
        method: 'POST',
        headers: json(alice),
        body: JSON.stringify({ state: state(`new-${suffix}`, repoUrl) }),
      });
      assert.equal(res.status, 400, `${repoUrl}: ${res.text}`);
      assert.equal(errorCode(res), 'invalid_repo_url', repoUrl);
    }
    const viaIssue = await request(url('/api/workspaces'), {
      method: 'POST',
      headers: json(alice),
      body: JSON.stringify({ issueUrl: 'https://github.com/o/r/issues/1', repoUrl: 'ftp://example.com/r' }),
    });
    assert.equal(viaIssue.status, 400, viaIssue.text);
    assert.equal(errorCode(viaIssue), 'invalid_repo_url');

    const malformed = await request(url('/api/workspaces'), {
      method: 'POST',
      headers: json(alice),
      body: '{"state":',
    });
    assert.equal(malformed.status, 400);
    assert.equal(errorCode(malformed), 'malformed_json');
    for (const body of ['{}', '{"state":{}}', '{"issueUrl":"x","extra":1}', '[]']) {
      const res = await request(url('/api/workspaces'), { method: 'POST', headers: json(alice), body });
      assert.equal(res.status, 400, `${body}: ${res.text}`);
      assert.equal(errorCode(res), 'bad_request');
    }
    const badId = await request(url('/api/workspaces/has%20space'), { headers: auth(alice) });
    assert.equal(badId.status, 400, badId.text);
    const badSession = await request(url(`/api/workspaces/${aliceIds[0]}/sessions`), {
      method: 'POST',
      headers: json(alice),
      body: JSON.stringify({ permissionMode: 'yolo' }),
    });
    assert.equal(badSession.status, 400, badSession.text);
    assert.equal(errorCode(badSession), 'bad_request');
  });

  it('refuses session routes on a workspace that is not READY in the cloud, before reaching any VM', async () => {
    for (const [id, code] of [
      [provisioningId, 'workspace_not_ready'],
      [desktopId, 'workspace_not_in_cloud'],
    ] as const) {
      const res = await request(url(`/api/workspaces/${id}/sessions`), { headers: auth(alice) });
      assert.equal(res.status, 409, res.text);
      assert.equal(errorCode(res), code);
    }
  });

  it('lists only my workspaces, newest first, filtered, a page at a time', async () => {
    const list = async (query: string) => {
      const res = await request(url(`/api/workspaces${query}`), { headers: auth(alice) });
      assert.equal(res.status, 200, res.text);
      return WorkspaceListSchema.parse(res.json);
    };
    const all = await list('');
    assert.deepEqual(
      all.workspaces.map((w) => w.id),
      [...aliceIds].reverse(),
    );
    assert.equal(all.nextCursor, null);
    assert.deepEqual(
      (await list('?location=DESKTOP')).workspaces.map((w) => w.id),
      [desktopId],
    );
    assert.deepEqual(
      (await list('?status=PROVISIONING&location=CLOUD')).workspaces.map((w) => w.id),
      [provisioningId],
    );

    const paged: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const answer = await list(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.ok(answer.workspaces.length <= 2);
      paged.push(...answer.workspaces.map((w) => w.id));
      cursor = answer.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(paged, [...aliceIds].reverse(), 'every workspace once, in order');

    for (const query of [
      '?limit=0',
      '?limit=101',
      '?status=SLEEPING',
      '?location=MOON',
      '?cursor=%%%',
      '?cursor=bm9wZQ',
      '?sort=name',
    ]) {
      const res = await request(url(`/api/workspaces${query}`), { headers: auth(alice) });
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      assert.equal(errorCode(res), 'bad_request');
    }
    const bobs = await request(url('/api/workspaces'), { headers: auth(bob) });
    assert.deepEqual(
      WorkspaceListSchema.parse(bobs.json).workspaces.map((w) => w.id),
      [bobId],
    );
  });

  describe('the cloud ratchet', () => {
    const ratchetView = (
      userId: string,
      workspaceId: string,
      overrides: Partial<RatchetView> = {},
    ): RatchetView => ({
      workspaceId,
      userId,
      enabled: true,
      state: 'CI_FAILED',
      phase: 'fixer_running',
      lastDecision: {
        action: 'TRIGGER_FIXER',
        reason: 'ci_failed',
        key: 'pr:7|head:abc',
        atMs: Date.UTC(2026, 11, 1),
      },
      lastDispatchKey: 'pr:7|head:abc',
      reviewLastCheckedAt: null,
      activeFixer: {
        sessionId: 'fixer-1',
        dispatchId: 'd-1',
        key: 'pr:7|head:abc',
        startedAtMs: Date.UTC(2026, 11, 1),
        attempt: 1,
      },
      stalled: false,
      retryCount: 0,
      dispatchesToday: 1,
      maxDispatchesPerDay: 10,
      nextPollAtMs: null,
      problem: null,
      endedReason: null,
      updatedAt: '2026-12-01T12:00:00.000Z',
      version: 0,
      ...overrides,
    });

    it("shows each workspace's ratchet view in GET and the list (null when none ran), never another user's", async () => {
      const withRatchet = aliceIds[0] ?? '';
      await recordRatchetView(db.pool, ratchetView(alice.userId, withRatchet));
      // A row of alice's under bob's workspace id (as a forged write would leave it) is not bob's ratchet.
      await recordRatchetView(db.pool, ratchetView(alice.userId, bobId));
      const one = await request(url(`/api/workspaces/${withRatchet}`), { headers: auth(alice) });
      assert.equal(one.status, 200, one.text);
      const shown = (one.json as { workspace: WorkspaceView }).workspace.ratchet;
      assert.equal(shown?.state, 'CI_FAILED');
      assert.equal(shown?.activeFixer?.sessionId, 'fixer-1');
      assert.equal(shown?.dispatchesToday, 1);
      const list = WorkspaceListSchema.parse(
        (await request(url('/api/workspaces'), { headers: auth(alice) })).json,
      );
      for (const w of list.workspaces)
        assert.equal(w.ratchet?.state ?? null, w.id === withRatchet ? 'CI_FAILED' : null, w.id);
      const bobs = await request(url(`/api/workspaces/${bobId}`), { headers: auth(bob) });
      assert.equal(
        (bobs.json as { workspace: WorkspaceView }).workspace.ratchet,
        null,
        "alice's row is not bob's",
      );
    });

    it('refuses a send while the desktop fixer works (409 fixer_active), before anything reaches an actor', async () => {
      const res = await request(url('/api/workspaces'), {
        method: 'POST',
        headers: json(alice),
        body: JSON.stringify({
          state: {
            ...state(`busy-${suffix}`, 'https://github.com/o/r.git'),
            ratchetActiveSessionId: 'desk-fixer-1',
          },
        }),
      });
      assert.equal(res.status, 409, res.text);
      assert.equal(errorCode(res), 'fixer_active');
      assert.match(res.text, /Fixer session active — wait or stop it first/);
      const none = await request(url(`/api/workspaces/busy-${suffix}`), { headers: auth(alice) });
      assert.equal(none.status, 404, 'no workspace was made');
    });

    it('validates the setting, and refuses ratchet routes of a workspace on the desktop or without a loop', async () => {
      for (const body of ['{}', '{"enabled":"yes"}', '{"enabled":true,"extra":1}', '[]']) {
        const res = await request(url(`/api/workspaces/${aliceIds[0]}/ratchet`), {
          method: 'POST',
          headers: json(alice),
          body,
        });
        assert.equal(res.status, 400, `${body}: ${res.text}`);
        assert.equal(errorCode(res), 'bad_request');
      }
      for (const [path, body] of [
        ['ratchet', '{"enabled":true}'],
        ['ratchet/wake', '{}'],
        ['ratchet/stop-fixer', '{}'],
      ] as const) {
        const res = await request(url(`/api/workspaces/${desktopId}/${path}`), {
          method: 'POST',
          headers: json(alice),
          body,
        });
        assert.equal(res.status, 409, `${path}: ${res.text}`);
        assert.equal(errorCode(res), 'workspace_not_in_cloud', path);
      }
      // READY in the cloud, but no ratchet:<id> runs (none is started in this test): nothing to wake.
      const wake = await request(url(`/api/workspaces/${aliceIds[1]}/ratchet/wake`), {
        method: 'POST',
        headers: json(alice),
        body: '{}',
      });
      assert.equal(wake.status, 409, wake.text);
      assert.equal(errorCode(wake), 'ratchet_not_running');
    });
  });

  it('asks for credentials on every workspace route', async () => {
    for (const path of [
      '/api/workspaces',
      `/api/workspaces/${aliceIds[0]}`,
      `/api/workspaces/${aliceIds[0]}/sessions`,
    ]) {
      const res = await request(url(path));
      assert.equal(res.status, 401, path);
    }
  });

  describe('GET /api/openapi.json', () => {
    type Described = { method: string; path: string };

    /** Every route the express app mounts under /api, from express's own router (router.listRoutes). */
    function mountedApiRoutes(app: Express): Described[] {
      type Listed = { path: unknown; methods: string[] | undefined; router: unknown };
      const lister = (candidate: unknown): (() => Listed[]) | null => {
        // A router is a function with properties.
        if (typeof candidate !== 'function' || !('listRoutes' in candidate)) return null;
        const listRoutes = candidate.listRoutes;
        return typeof listRoutes === 'function' ? () => listRoutes.call(candidate) as Listed[] : null;
      };
      const found: Described[] = [];
      const walk = (router: unknown, prefix: string) => {
        const list = lister(router);
        assert.ok(list, 'express 5 routers list their routes');
        for (const entry of list()) {
          if (entry.path instanceof RegExp) {
            // Only the dashboard's SPA fallback (served when web/ is built) is a pattern; it must never
            // answer for /api, or an undescribed route could hide behind it.
            assert.ok(!entry.path.test(`${prefix}/api/workspaces`), `${entry.path} must not match /api`);
            continue;
          }
          assert.equal(typeof entry.path, 'string', 'routes have string paths');
          const path = `${prefix}${entry.path === '/' && entry.router ? '' : String(entry.path)}`;
          if (entry.router) walk(entry.router, path);
          for (const method of entry.methods ?? []) {
            if (method === 'HEAD' || !path.startsWith('/api/')) continue;
            found.push({ method: method.toLowerCase(), path });
          }
        }
      };
      walk(app.router, '');
      return found;
    }

    it('describes every mounted /api route, and only those, with no credentials needed', async () => {
      const res = await request(url('/api/openapi.json'));
      assert.equal(res.status, 200, res.text);
      const doc = res.json as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.equal(doc.openapi, '3.1.0');
      const described = Object.entries(doc.paths)
        .flatMap(([path, item]) =>
          Object.keys(item)
            .filter((m) => ['get', 'post', 'delete', 'put', 'patch'].includes(m))
            .map((method) => ({ method, path: path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1') })),
        )
        .map((r) => `${r.method} ${r.path}`)
        .sort();

      // The app as production builds it (createApp), with this test api's services.
      const app = createApp({
        log: createLogger('openapi-test', 'silent'),
        pool: api.pool,
        temporal: api.temporal,
        vmDirs: { runDirRoot: testConfig.vm.runDirRoot, secretRoot: testConfig.vm.secretRoot },
        where: { postgres: 'pg', temporal: 'temporal' },
        authenticator: { authenticate: async () => null },
        vms: api.vms,
        workspaces: api.workspaces,
      });
      const mounted = mountedApiRoutes(app)
        .map((r) => `${r.method} ${r.path}`)
        .sort();
      assert.deepEqual(described, mounted);
      for (const expected of [
        'get /api/openapi.json',
        'post /api/vms',
        'get /api/vms/me',
        'post /api/vms/me/suspend',
        'delete /api/vms/me',
        'post /api/workspaces',
        'get /api/workspaces',
        'get /api/workspaces/:id',
        'post /api/workspaces/:id/pull',
        'post /api/workspaces/:id/archive',
        'post /api/workspaces/:id/ratchet',
        'post /api/workspaces/:id/ratchet/stop-fixer',
        'post /api/workspaces/:id/ratchet/wake',
        'post /api/workspaces/:id/sessions',
        'get /api/workspaces/:id/sessions',
        'get /api/workspaces/:id/sessions/:sid',
        'post /api/workspaces/:id/sessions/:sid/stop',
      ])
        assert.ok(mounted.includes(expected), `${expected} is mounted`);
    });

    it('carries the schemas the routes validate with', async () => {
      const res = await request(url('/api/openapi.json'));
      const doc = res.json as {
        paths: Record<
          string,
          Record<string, { requestBody?: unknown; parameters?: { name: string; in: string }[] }>
        >;
      };
      const send = doc.paths['/api/workspaces']?.post;
      assert.ok(send?.requestBody, 'POST /api/workspaces describes its body');
      assert.match(JSON.stringify(send.requestBody), /issueUrl/);
      assert.match(JSON.stringify(send.requestBody), /repoUrl/);
      const list = doc.paths['/api/workspaces']?.get;
      assert.deepEqual(list?.parameters?.map((p) => `${p.in}:${p.name}`).sort(), [
        'query:cursor',
        'query:limit',
        'query:location',
        'query:status',
      ]);
      const session = doc.paths['/api/workspaces/{id}/sessions/{sid}']?.get;
      assert.deepEqual(session?.parameters?.map((p) => `${p.in}:${p.name}`).sort(), ['path:id', 'path:sid']);
    });
  });
});
