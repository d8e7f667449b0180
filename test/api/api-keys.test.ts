/**
 * API keys and the audit log against the real api over HTTP with real Postgres, through the production
 * authenticator chain (local sign-in mode): created and shown once, stored hashed, working at once,
 * refused on the very next request after revocation (also by another api process: no cache), scoped to
 * their owner (another user's key is a 404), first use audited once; the audit log paged and scoped.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_KEY_PATTERN } from '../../api/auth/api-keys.js';
import {
  ApiKeyAnswerSchema,
  ApiKeyListSchema,
  AuditPageSchema,
  CreatedApiKeySchema,
  LocalSignInAnswerSchema,
  MeAnswerSchema,
} from '../../api/contract/accounts.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { TEST_AUTHORIZED_PARTY } from '../support/clerk-tokens.js';
import { errorCode, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';

describe('API keys and the audit log (real api over HTTP, Postgres, production authenticator chain)', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const alice = { userId: `alice-keys-${suffix}`, token: '' };
  const bob = { userId: `bob-keys-${suffix}`, token: '' };
  let db: TestDatabase;
  let api: TestApi;
  let other: TestApi;
  let keyDir: string;

  const call = (
    target: TestApi,
    credential: string,
    path: string,
    init: { method?: string; body?: unknown } = {},
  ) =>
    request(`${target.api.url}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  async function createKey(credential: string, name: string) {
    const res = await call(api, credential, '/api/keys', { method: 'POST', body: { name } });
    assert.equal(res.status, 201, res.text);
    return CreatedApiKeySchema.parse(res.json);
  }

  const actionsOf = async (userId: string) =>
    (
      await db.pool.query<{ action: string; target_id: string | null }>(
        'SELECT action, target_id FROM audit_log WHERE user_id = $1 ORDER BY id',
        [userId],
      )
    ).rows;

  before(async () => {
    db = await createMigratedDatabase();
    keyDir = mkdtempSync(join(tmpdir(), 'ffc-keys-'));
    const auth = { mode: 'local' as const, localKeyDir: keyDir, authorizedParties: [TEST_AUTHORIZED_PARTY] };
    api = await startTestApi({ databaseUrl: db.url, auth });
    // A second api process on the same database: what one revokes, the other refuses at once.
    other = await startTestApi({ databaseUrl: db.url, auth });
    for (const who of [alice, bob]) {
      const res = await request(`${api.api.url}/api/auth/local/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: who.userId }),
      });
      assert.equal(res.status, 200, res.text);
      who.token = LocalSignInAnswerSchema.parse(res.json).token;
    }
  });

  after(async () => {
    await other?.stop();
    await api?.stop();
    await db?.drop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it('creates a key shown once, in a scanner-findable format, stored only as a hash', async () => {
    const created = await createKey(alice.token, 'laptop ffc');
    assert.match(created.secret, API_KEY_PATTERN);
    assert.match(created.secret, /^ffc_live_[0-9A-Za-z]{16}_[0-9A-Za-z]{40}$/);
    assert.equal(created.key.prefix, `ffc_live_${created.key.id}`);
    assert.ok(created.secret.startsWith(`${created.key.prefix}_`));
    assert.equal(created.key.name, 'laptop ffc');
    assert.equal(created.key.lastUsedAt, null);
    assert.equal(created.key.revokedAt, null);

    const { rows } = await db.pool.query<{ secret_hash: Buffer; user_id: string }>(
      'SELECT secret_hash, user_id FROM api_keys WHERE id = $1',
      [created.key.id],
    );
    assert.equal(rows[0]?.user_id, alice.userId);
    assert.deepEqual(rows[0]?.secret_hash, createHash('sha256').update(created.secret).digest());
    const stored = await db.pool.query<{ row: string }>('SELECT row_to_json(k)::text AS row FROM api_keys k');
    assert.ok(
      !stored.rows.some((r) => r.row.includes(created.secret.slice(-40))),
      'the secret is not stored',
    );

    // Never shown again.
    const listed = await call(api, alice.token, '/api/keys');
    assert.equal(listed.status, 200);
    assert.ok(!listed.text.includes(created.secret.slice(-40)), 'the list never carries the secret');
    assert.deepEqual(
      ApiKeyListSchema.parse(listed.json).keys.map((k) => k.id),
      [created.key.id],
    );
  });

  it('authenticates with a key at once, records last use (throttled) and audits the first use once', async () => {
    const created = await createKey(alice.token, 'ci');
    const first = await call(api, created.secret, '/api/me');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(MeAnswerSchema.parse(first.json).auth, { via: 'api-key', keyId: created.key.id });
    const lastUsed = async () =>
      ApiKeyListSchema.parse((await call(api, alice.token, '/api/keys')).json).keys.find(
        (k) => k.id === created.key.id,
      )?.lastUsedAt;
    const firstUse = await lastUsed();
    assert.ok(firstUse, 'last use is recorded');
    for (let i = 0; i < 3; i += 1) assert.equal((await call(other, created.secret, '/api/me')).status, 200);
    assert.equal(await lastUsed(), firstUse, 'later uses within the throttle window write nothing');

    const audit = (await actionsOf(alice.userId)).filter((r) => r.target_id === created.key.id);
    assert.deepEqual(
      audit.map((r) => r.action),
      ['key.created', 'key.first_use'],
    );
  });

  it('refuses a revoked key on the very next request, on this api and another', async () => {
    const created = await createKey(alice.token, 'to revoke');
    assert.equal((await call(other, created.secret, '/api/me')).status, 200, 'warm on the other api');
    const revoked = await call(api, alice.token, `/api/keys/${created.key.id}`, { method: 'DELETE' });
    assert.equal(revoked.status, 200, revoked.text);
    assert.ok(ApiKeyAnswerSchema.parse(revoked.json).key.revokedAt);
    for (const target of [api, other]) {
      const refused = await call(target, created.secret, '/api/me');
      assert.equal(refused.status, 401);
      assert.equal(errorCode(refused), 'api_key_revoked');
    }
    // Revoking again changes nothing and audits nothing more.
    assert.equal(
      (await call(api, alice.token, `/api/keys/${created.key.id}`, { method: 'DELETE' })).status,
      200,
    );
    assert.deepEqual(
      (await actionsOf(alice.userId)).filter((r) => r.target_id === created.key.id).map((r) => r.action),
      ['key.created', 'key.first_use', 'key.revoked'],
    );
  });

  it('refuses altered and unknown keys', async () => {
    const created = await createKey(alice.token, 'to alter');
    const last = created.secret.at(-1) === 'a' ? 'b' : 'a';
    const altered = `${created.secret.slice(0, -1)}${last}`;
    const unknown = `ffc_live_${'Z'.repeat(16)}_${created.secret.slice(-40)}`;
    for (const credential of [altered, unknown, 'ffc_live_short']) {
      const res = await call(api, credential, '/api/me');
      assert.equal(res.status, 401, credential);
      assert.equal(errorCode(res), 'invalid_api_key');
    }
    assert.equal((await call(api, created.secret, '/api/me')).status, 200, 'the real key still works');
  });

  it("keeps keys to their owner: bob cannot list or revoke alice's key (404), and it keeps working", async () => {
    const created = await createKey(alice.token, 'alice only');
    const bobKeys = ApiKeyListSchema.parse((await call(api, bob.token, '/api/keys')).json).keys;
    assert.ok(!bobKeys.some((k) => k.id === created.key.id));
    const revoke = await call(api, bob.token, `/api/keys/${created.key.id}`, { method: 'DELETE' });
    assert.equal(revoke.status, 404);
    assert.equal(errorCode(revoke), 'key_not_found');
    // With a key of his own, too.
    const bobKey = await createKey(bob.token, 'bob');
    const viaKey = await call(api, bobKey.secret, `/api/keys/${created.key.id}`, { method: 'DELETE' });
    assert.equal(viaKey.status, 404);
    assert.equal((await call(api, created.secret, '/api/me')).status, 200);
    const malformed = await call(api, bob.token, '/api/keys/not-a-key-id', { method: 'DELETE' });
    assert.equal(malformed.status, 400);
  });

  it('validates the key name', async () => {
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(101) }, { name: 'ok', extra: 1 }]) {
      const res = await call(api, alice.token, '/api/keys', { method: 'POST', body });
      assert.equal(res.status, 400, JSON.stringify(body));
    }
  });

  it('rate-limits key creation per user (429 with Retry-After), counted in Postgres', async () => {
    const limited = await startTestApi({
      databaseUrl: db.url,
      auth: { mode: 'local', localKeyDir: keyDir, authorizedParties: [TEST_AUTHORIZED_PARTY] },
      rateLimits: { provisionPerMinute: 100, sessionsPerMinute: 100, keysPerHour: 2 },
    });
    try {
      const post = (token: string) =>
        call(limited, token, '/api/keys', { method: 'POST', body: { name: 'burst' } });
      assert.equal((await post(bob.token)).status, 201);
      assert.equal((await post(bob.token)).status, 201);
      const third = await post(bob.token);
      assert.equal(third.status, 429, third.text);
      assert.equal(errorCode(third), 'rate_limited');
      assert.match(third.headers.get('retry-after') ?? '', /^\d+$/);
      // Per user: alice still may.
      assert.equal((await post(alice.token)).status, 201);
    } finally {
      await limited.stop();
    }
  });

  it("pages the caller's own audit log, newest first, and nothing of anyone else's", async () => {
    const all = await call(api, alice.token, '/api/audit?limit=100');
    assert.equal(all.status, 200, all.text);
    const records = AuditPageSchema.parse(all.json).records;
    assert.ok(records.length >= 8, `alice has her records: ${records.length}`);
    assert.equal(records.at(-1)?.action, 'session.first_sign_in', 'oldest last');
    const ids = records.map((r) => Number(r.id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
    );

    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(api, alice.token, `/api/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(page.status, 200, page.text);
      const parsed = AuditPageSchema.parse(page.json);
      paged.push(...parsed.records.map((r) => r.id));
      cursor = parsed.nextCursor;
    } while (cursor);
    assert.deepEqual(
      paged,
      records.map((r) => r.id),
    );

    const bobs = AuditPageSchema.parse((await call(api, bob.token, '/api/audit')).json).records;
    assert.ok(bobs.length > 0);
    const aliceIds = new Set(records.map((r) => r.id));
    assert.ok(!bobs.some((r) => aliceIds.has(r.id)), "none of alice's records in bob's log");
    assert.ok(bobs.every((r) => r.actor.endsWith(bob.userId) || r.actor.startsWith('api-key:')));

    for (const query of [
      'cursor=not*base64',
      `cursor=${Buffer.from('{"i":"x"}').toString('base64url')}`,
      'limit=0',
    ]) {
      assert.equal((await call(api, alice.token, `/api/audit?${query}`)).status, 400, query);
    }
  });
});
