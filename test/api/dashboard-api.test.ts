/**
 * What the web dashboard needs from the api beyond the rest of it:
 *
 * - GET /api/auth/config (public): local or Clerk, Clerk's hosted sign-in URL and publishable key only in
 *   clerk mode, never the Temporal UI; production api processes configured by environment variables only.
 * - GET /api/me's operator fields: the Temporal UI and namespace for OPERATOR_USER_IDS, nothing for others.
 * - GET /api/usage's `daily`: every day of the period through today, the minutes of each, adding up to the
 *   period's total (usage_records as the usage actor writes them).
 * - GET …/sessions/:sid/messages: a long session (real api and worker processes, a real VM, the real claude
 *   against the fake Anthropic API) read newest page first, back to its first message, each message once,
 *   and the relay opened with the page's `seq` continues right after it.
 */
import assert from 'node:assert/strict';
import { z } from 'zod';
import { LocalSignInAnswerSchema, MeAnswerSchema } from '../../api/contract/accounts.js';
import {
  AuthConfigAnswerSchema,
  type SessionMessagesPage,
  SessionMessagesPageSchema,
} from '../../api/contract/dashboard.js';
import { UsageAnswerSchema } from '../../api/contract/usage.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { type ApiProcess, freePort, startApiProcess } from '../support/api-process.js';
import { fakeClerkInstance } from '../support/clerk-tokens.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import { errorCode, request } from '../support/http.js';
import { makeLongSession } from '../support/long-session.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';
import { SessionRelayClient } from './session-relay-client.js';

const DAY_MS = 24 * 3600 * 1000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe('dashboard api: sign-in settings and operators (production api processes)', function () {
  this.timeout(120_000);
  const suffix = uniqueSuffix();
  const operatorId = `op-${suffix}`;
  const userId = `user-${suffix}`;
  const temporalUiUrl = 'http://temporal-ui.ffc.example.test:8233';
  let db: TestDatabase;
  let local: ApiProcess;
  let clerk: ApiProcess;

  const common = async () => ({
    DATABASE_URL: db.url,
    FFC_DATA_DIR: testConfig.dataDir,
    NODE_ENV: 'test',
    API_HOST: '127.0.0.1',
    API_PORT: String(await freePort()),
    TEMPORAL_UI_URL: temporalUiUrl,
    OPERATOR_USER_IDS: ` ${operatorId} , someone-else `,
    // Set on both: the local deployment must not hand them out.
    CLERK_SIGN_IN_URL: 'https://accounts.ffc.example.test/sign-in',
    CLERK_PUBLISHABLE_KEY: 'pk_test_ZmZjLmV4YW1wbGUudGVzdCQ',
  });

  before(async () => {
    db = await createMigratedDatabase();
    local = await startApiProcess({ ...(await common()), AUTH_MODE: 'local' });
    clerk = await startApiProcess({
      ...(await common()),
      AUTH_MODE: 'clerk',
      CLERK_JWT_KEY: fakeClerkInstance().publicKeyPem,
    });
  });
  after(async () => {
    await local?.kill('SIGTERM');
    await clerk?.kill('SIGTERM');
    await db?.drop();
  });

  async function signIn(id: string): Promise<string> {
    const res = await request(`${local.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: id }),
    });
    assert.equal(res.status, 200, res.text);
    return LocalSignInAnswerSchema.parse(res.json).token;
  }

  it('GET /api/auth/config answers without credentials: local mode with no Clerk values', async () => {
    const res = await request(`${local.url}/api/auth/config`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(AuthConfigAnswerSchema.parse(res.json), {
      mode: 'local',
      signInUrl: null,
      publishableKey: null,
      temporalUiUrl: null,
    });
  });

  it("GET /api/auth/config in clerk mode: Clerk's hosted sign-in URL and publishable key, no local sign-in", async () => {
    const res = await request(`${clerk.url}/api/auth/config`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(AuthConfigAnswerSchema.parse(res.json), {
      mode: 'clerk',
      signInUrl: 'https://accounts.ffc.example.test/sign-in',
      publishableKey: 'pk_test_ZmZjLmV4YW1wbGUudGVzdCQ',
      temporalUiUrl: null,
    });
    const localSignIn = await request(`${clerk.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    // Not mounted: like any other unknown /api path, it asks for credentials first.
    assert.equal(localSignIn.status, 401, localSignIn.text);
    // Described as public in the API description.
    const doc = z
      .object({ paths: z.record(z.string(), z.record(z.string(), z.looseObject({}))) })
      .parse((await request(`${clerk.url}/api/openapi.json`)).json);
    const operation = doc.paths['/api/auth/config']?.get;
    assert.ok(operation, 'GET /api/auth/config is described');
    assert.deepEqual(operation.security ?? [], []);
  });

  it('GET /api/me: operators get the Temporal UI and namespace, everyone else operator false and nulls', async () => {
    const asOperator = await request(`${local.url}/api/me`, {
      headers: { authorization: `Bearer ${await signIn(operatorId)}` },
    });
    assert.equal(asOperator.status, 200, asOperator.text);
    const operator = MeAnswerSchema.parse(asOperator.json);
    assert.equal(operator.user.id, operatorId);
    assert.deepEqual(
      [operator.operator, operator.temporalUiUrl, operator.temporalNamespace],
      [true, temporalUiUrl, testConfig.temporal.namespace],
    );

    const asUser = await request(`${local.url}/api/me`, {
      headers: { authorization: `Bearer ${await signIn(userId)}` },
    });
    assert.equal(asUser.status, 200, asUser.text);
    const user = MeAnswerSchema.parse(asUser.json);
    assert.deepEqual([user.operator, user.temporalUiUrl, user.temporalNamespace], [false, null, null]);
    assert.ok(!asUser.text.includes('temporal-ui'), 'nothing of the Temporal UI reaches a non-operator');
  });
});

describe("dashboard api: GET /api/usage's daily series (Postgres, no worker)", function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-daily-${suffix}-0123456789`, userId: `alice-${suffix}` };
  const bob = { key: `bob-daily-${suffix}-0123456789`, userId: `bob-${suffix}` };
  let db: TestDatabase;
  let api: TestApi;

  async function slice(who: string, key: string, startMs: number, minutes: number): Promise<void> {
    await db.pool.query(
      `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes, idempotency_key)
       VALUES ($1, 'vm', to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0 + 60), 60, $3, $4)`,
      [who, startMs, minutes, key],
    );
  }

  before(async () => {
    db = await createMigratedDatabase();
    api = await startTestApi({
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId, [bob.key]: bob.userId },
      quotas: true,
    });
    for (const who of [alice, bob]) await db.pool.query('INSERT INTO users (id) VALUES ($1)', [who.userId]);
  });
  after(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('every day from the period start through today, each with its minutes, adding up to minutes.used', async () => {
    const nowMs = Date.now();
    const period = billingPeriodOf(nowMs);
    const todayStartMs = Date.UTC(
      new Date(nowMs).getUTCFullYear(),
      new Date(nowMs).getUTCMonth(),
      new Date(nowMs).getUTCDate(),
    );
    // Two slices on the first day (one just before midnight), one today, one in the previous period,
    // and bob's, which are not alice's.
    await slice(alice.userId, `a1-${suffix}`, period.startMs + 60_000, 5);
    await slice(alice.userId, `a2-${suffix}`, period.startMs + DAY_MS - 120_000, 7);
    await slice(alice.userId, `a3-${suffix}`, Math.max(todayStartMs, nowMs - 60 * 60_000), 11);
    await slice(alice.userId, `a-old-${suffix}`, period.startMs - 3600_000, 500);
    await slice(bob.userId, `b1-${suffix}`, period.startMs + 60_000, 13);

    const res = await request(`${api.api.url}/api/usage`, {
      headers: { authorization: `Bearer ${alice.key}` },
    });
    assert.equal(res.status, 200, res.text);
    const usage = UsageAnswerSchema.parse(res.json);
    const days = Math.floor((todayStartMs - period.startMs) / DAY_MS) + 1;
    const expected = Array.from({ length: days }, (_, i) => ({
      date: dayOf(period.startMs + i * DAY_MS),
      minutes: 0,
    }));
    const first = expected[0];
    const today = expected.at(-1);
    assert.ok(first && today);
    first.minutes += 12;
    today.minutes += 11;
    assert.deepEqual(usage.daily, expected);
    assert.equal(
      usage.daily.reduce((sum, day) => sum + day.minutes, 0),
      usage.minutes.used,
      'the days add up to the period',
    );
    assert.equal(usage.minutes.used, 23);
  });
});

describe('dashboard api: a long session read one page at a time (real api, worker, VM, claude)', function () {
  this.timeout(10 * 60_000);
  let rig: CloudRig;
  let workspaceId: string;
  let sessionId: string;

  before(async () => {
    rig = await startCloudRig('history');
    workspaceId = `ws-history-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
    ({ sessionId } = await makeLongSession(rig, workspaceId, { minEvents: 1000 }));
  });
  after(async () => {
    await rig?.stop();
  });

  const page = async (query: string): Promise<SessionMessagesPage> => {
    const res = await rig.http(`/api/workspaces/${workspaceId}/sessions/${sessionId}/messages${query}`);
    assert.equal(res.status, 200, res.text);
    return SessionMessagesPageSchema.parse(res.json);
  };

  it('opens on the newest page and walks back to the first message, each message exactly once', async () => {
    const newest = await page('?limit=50');
    assert.ok(newest.seq >= 1000, `a session of 1,000+ events (${newest.seq})`);
    assert.ok(newest.total > 60, `more messages than one page holds (${newest.total})`);
    assert.equal(newest.messages.length, 50);
    assert.equal(newest.start, newest.total - 50);

    const pages = [newest];
    let before = newest.start;
    while (before > 0) {
      const older = await page(`?before=${before}&limit=50`);
      assert.equal(older.start + older.messages.length, before, 'each page ends where the next one starts');
      pages.unshift(older);
      before = older.start;
    }
    const walked = pages.flatMap((p) => p.messages);
    assert.equal(walked.length, newest.total);
    assert.equal(new Set(walked.map((m) => m.id)).size, walked.length, 'no message twice');

    // The same conversation as the relay's own snapshot, in the same order.
    const relay = await SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId), rig.user.key);
    const snapshot = await relay.waitFor('session_snapshot');
    await relay.close();
    assert.deepEqual(
      walked.map((m) => m.id),
      snapshot.messages.slice(0, walked.length).map((m) => m.id),
    );
  });

  it("the relay opened with the page's seq continues right after it: nothing fetched twice, nothing missed", async () => {
    const newest = await page('');
    assert.equal(newest.messages.length, Math.min(50, newest.total), 'limit defaults to 50');
    const relay = await SessionRelayClient.open(
      rig.relayUrl(workspaceId, sessionId, newest.seq),
      rig.user.key,
    );
    try {
      const caughtUp = await relay.waitFor('caught_up');
      assert.equal(caughtUp.seq, newest.seq);
      assert.ok(!relay.frames.some((f) => f.type === 'session_snapshot'), 'no snapshot: the page was it');
      rig.fake.script({ kind: 'text', text: 'after the page' });
      relay.send({ type: 'queue_message', text: 'one more' });
      await relay.waitUntil('the new turn', () =>
        relay.events().some((e) => e.payload.type === 'claude_message'),
      );
      assert.equal(relay.events()[0]?.seq, newest.seq + 1, 'the first event is the one after the page');
    } finally {
      await relay.close();
    }
  });

  it('refuses a bad page and answers an unknown session or workspace as not found', async () => {
    const base = `/api/workspaces/${workspaceId}/sessions/${sessionId}/messages`;
    for (const query of ['?limit=201', '?limit=0', '?before=-1', '?before=x', '?other=1']) {
      const res = await rig.http(`${base}${query}`);
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      assert.equal(errorCode(res), 'bad_request');
    }
    const beyond = await page(`?before=${10 ** 9}&limit=3`);
    assert.equal(beyond.start, beyond.total - 3, 'before past the end is the newest page');
    const noSession = await rig.http(`/api/workspaces/${workspaceId}/sessions/no-such-session/messages`);
    assert.equal(noSession.status, 404, noSession.text);
    assert.equal(errorCode(noSession), 'session_not_found');
    const noWorkspace = await rig.http(
      `/api/workspaces/ws-nobody-${rig.suffix}/sessions/${sessionId}/messages`,
    );
    assert.equal(noWorkspace.status, 404, noWorkspace.text);
    // Another user with this very workspace's ids: exactly what an id nobody has gets.
    const signIn = await request(`${rig.api.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: `mallory-${rig.suffix}` }),
    });
    const token = LocalSignInAnswerSchema.parse(signIn.json).token;
    const foreign = await request(
      `${rig.api.url}/api/workspaces/${workspaceId}/sessions/${sessionId}/messages`,
      {
        headers: { authorization: `Bearer ${token}` },
      },
    );
    assert.equal(foreign.status, 404);
    assert.equal(foreign.text, noWorkspace.text);
  });
});
