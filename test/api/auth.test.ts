/**
 * Authentication through the production chain (createAuthenticator), against the real api over HTTP and
 * WebSocket with real Postgres: Clerk session tokens signed by a test Clerk instance (valid, expired, not
 * yet valid, wrong key, wrong party, tampered), local sign-in and its key pair, deleted accounts, and
 * credentials in URLs (never accepted, never logged).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import WebSocket from 'ws';
import { LOCAL_PRIVATE_KEY_FILE, LOCAL_PUBLIC_KEY_FILE } from '../../api/auth/local-sessions.js';
import { authenticateRequest } from '../../api/auth/middleware.js';
import { LocalSignInAnswerSchema, MeAnswerSchema } from '../../api/contract/accounts.js';
import { ApiError } from '../../api/errors.js';
import { rejectUpgrade, type WsRoute } from '../../api/ws/upgrade.js';
import { startTestApi, type TestApi, type TestApiServices } from '../support/api.js';
import {
  type FakeClerkInstance,
  fakeClerkInstance,
  nowSeconds,
  signJwt,
  TEST_AUTHORIZED_PARTY,
} from '../support/clerk-tokens.js';
import { ErrorBodySchema, errorCode, type HttpResult, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';

/** A ws route that answers the caller's principal, authenticated as every production route is. */
function whoAmIRoute(deps: TestApiServices): WsRoute {
  return {
    path: '/ws/test/whoami',
    authorize: async (req, socket) => {
      try {
        return { principal: await authenticateRequest(req, deps) };
      } catch (err) {
        if (err instanceof ApiError) rejectUpgrade(socket, err.status, err.code, err.message);
        else throw err;
        return false;
      }
    },
    onConnection: (ws, _req, context) => ws.send(JSON.stringify(context.principal)),
  };
}

/** Opens a ws and resolves with the first message, or rejects with the refused upgrade's status. */
function wsFirstMessage(
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} });
    ws.once('message', (data) => {
      resolve(String(data));
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade refused: ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

const messageOf = (res: HttpResult) => ErrorBodySchema.parse(res.json).error.message;

describe('authentication: Clerk session tokens, local sign-in, URLs (real api over HTTP and ws, Postgres)', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const dev = { key: `dev-auth-${suffix}-0123456789`, userId: `dev-auth-${suffix}` };
  let db: TestDatabase;
  let clerk: FakeClerkInstance;
  let clerkApi: TestApi;
  let localApi: TestApi;
  let localKeyDir: string;
  const logLines: string[] = [];
  const extra: TestApi[] = [];

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const me = (api: TestApi, token: string) => request(`${api.api.url}/api/me`, { headers: bearer(token) });
  const userRow = async (id: string) =>
    (
      await db.pool.query<{ email: string | null; name: string | null; deleted_at: Date | null }>(
        'SELECT email, name, deleted_at FROM users WHERE id = $1',
        [id],
      )
    ).rows[0];
  const auditActions = async (userId: string) =>
    (
      await db.pool.query<{ action: string }>('SELECT action FROM audit_log WHERE user_id = $1 ORDER BY id', [
        userId,
      ])
    ).rows.map((r) => r.action);

  async function signInLocally(api: TestApi, body: Record<string, unknown>) {
    const res = await request(`${api.api.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, res.text);
    return LocalSignInAnswerSchema.parse(res.json);
  }

  before(async () => {
    db = await createMigratedDatabase();
    clerk = fakeClerkInstance();
    // Every request line this api logs, exactly as written.
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _encoding, done) {
          logLines.push(String(chunk));
          done();
        },
      }),
    );
    clerkApi = await startTestApi({
      databaseUrl: db.url,
      users: { [dev.key]: dev.userId },
      auth: {
        mode: 'clerk',
        clerkJwtKey: clerk.publicKeyPem,
        authorizedParties: [TEST_AUTHORIZED_PARTY],
        clockSkewMs: 10_000,
      },
      log,
      wsRoutes: (deps) => [whoAmIRoute(deps)],
    });
    localKeyDir = join(mkdtempSync(join(tmpdir(), 'ffc-auth-')), 'auth');
    localApi = await startTestApi({
      databaseUrl: db.url,
      auth: { mode: 'local', localKeyDir, authorizedParties: [TEST_AUTHORIZED_PARTY] },
    });
  });

  after(async () => {
    for (const api of extra) await api.stop();
    await clerkApi?.stop();
    await localApi?.stop();
    await db?.drop();
    if (localKeyDir) rmSync(join(localKeyDir, '..'), { recursive: true, force: true });
  });

  it('accepts a Clerk session token as its user, records the user, and audits the first sign-in once', async () => {
    const userId = `user_ok${suffix}`;
    const first = await me(clerkApi, clerk.sessionToken(userId));
    assert.equal(first.status, 200, first.text);
    const answer = MeAnswerSchema.parse(first.json);
    assert.equal(answer.user.id, userId);
    assert.deepEqual(answer.auth, { via: 'session', keyId: null });
    assert.ok(await userRow(userId), 'the user is recorded on first sight');
    // Another session of the same user: still one first sign-in.
    const second = await me(clerkApi, clerk.sessionToken(userId));
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(await auditActions(userId), ['session.first_sign_in']);
  });

  it('refuses expired, not-yet-valid, wrong-key, wrong-party and tampered tokens with 401 saying which', async () => {
    const now = nowSeconds();
    const cases: { what: string; token: string; code: string; message: RegExp }[] = [
      {
        what: 'expired',
        token: clerk.sessionToken(`user_exp${suffix}`, { iat: now - 120, nbf: now - 130, exp: now - 60 }),
        code: 'token_expired',
        message: /expired/,
      },
      {
        what: 'not yet valid',
        token: clerk.sessionToken(`user_nbf${suffix}`, { nbf: now + 120, exp: now + 300 }),
        code: 'token_not_yet_valid',
        message: /not valid yet/,
      },
      {
        what: 'issued in the future',
        token: clerk.sessionToken(`user_iat${suffix}`, { iat: now + 120, nbf: undefined, exp: now + 300 }),
        code: 'token_not_yet_valid',
        message: /issued in the future/,
      },
      {
        what: 'signed by another key',
        token: fakeClerkInstance().sessionToken(`user_key${suffix}`),
        code: 'invalid_token',
        message: /not signed by this deployment/,
      },
      {
        what: 'for another party',
        token: clerk.sessionToken(`user_azp${suffix}`, { azp: 'https://evil.example.test' }),
        code: 'invalid_token',
        message: /azp/,
      },
      {
        what: 'without a party',
        token: clerk.sessionToken(`user_noazp${suffix}`, { azp: undefined }),
        code: 'invalid_token',
        message: /azp/,
      },
      {
        what: 'with HS256 instead of RS256',
        token: `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(
          JSON.stringify({ sub: `user_hs${suffix}`, exp: now + 60 }),
        ).toString('base64url')}.c2ln`,
        code: 'invalid_token',
        message: /not valid/,
      },
    ];
    // A valid token whose payload is swapped for another user's: the signature no longer matches.
    const [head, , signature] = clerk.sessionToken(`user_real${suffix}`).split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ sub: `user_swap${suffix}`, azp: TEST_AUTHORIZED_PARTY, exp: now + 60, iat: now }),
    ).toString('base64url');
    cases.push({
      what: 'with a swapped payload',
      token: `${head}.${forgedPayload}.${signature}`,
      code: 'invalid_token',
      message: /not signed by this deployment/,
    });

    for (const c of cases) {
      const res = await me(clerkApi, c.token);
      assert.equal(res.status, 401, `${c.what}: ${res.text}`);
      assert.equal(errorCode(res), c.code, `${c.what}: ${res.text}`);
      assert.match(messageOf(res), c.message, c.what);
    }
    for (const who of ['exp', 'nbf', 'iat', 'key', 'azp', 'noazp', 'hs', 'swap', 'real']) {
      assert.equal(await userRow(`user_${who}${suffix}`), undefined, `no user recorded for ${who}`);
    }

    // Within the configured clock skew (10 s), a token that expired a moment ago still works.
    const justExpired = clerk.sessionToken(`user_skew${suffix}`, {
      iat: now - 60,
      nbf: now - 70,
      exp: now - 2,
    });
    assert.equal((await me(clerkApi, justExpired)).status, 200);
    const garbage = await me(clerkApi, 'not-a-credential-of-any-kind');
    assert.equal(garbage.status, 401);
    assert.equal(errorCode(garbage), 'unauthorized');
  });

  it('keeps the development key working beside sessions (development only)', async () => {
    const res = await me(clerkApi, dev.key);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(MeAnswerSchema.parse(res.json).auth, { via: 'dev-key', keyId: null });
  });

  it('has local sign-in only in local mode: a page and a route that do not exist with Clerk', async () => {
    // Outside /api, a path the api does not serve falls to the dashboard (when built): no sign-in form.
    const noPage = await request(`${clerkApi.api.url}/auth/local`);
    assert.doesNotMatch(noPage.text, /sign-in|local sign-in/i);
    for (const [method, path] of [
      ['POST', '/api/auth/local/sign-in'],
      ['DELETE', '/api/me'],
    ] as const) {
      const res = await request(`${clerkApi.api.url}${path}`, {
        method,
        headers: { ...bearer(clerk.sessionToken(`user_ok${suffix}`)), 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ userId: 'someone' }) : undefined,
      });
      assert.equal(res.status, 404, `${method} ${path} in clerk mode: ${res.text}`);
    }
    const page = await request(`${localApi.api.url}/auth/local`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.text, /<form id="sign-in">/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-/);
  });

  it('signs in locally with a token that the very same Clerk verification accepts', async () => {
    const userId = `local-${suffix}`;
    const session = await signInLocally(localApi, {
      userId,
      email: `${userId}@example.test`,
      name: 'Lo Cal',
    });
    assert.equal(session.userId, userId);
    const res = await me(localApi, session.token);
    assert.equal(res.status, 200, res.text);
    const answer = MeAnswerSchema.parse(res.json);
    assert.equal(answer.user.email, `${userId}@example.test`);
    assert.equal(answer.user.name, 'Lo Cal');
    assert.equal(answer.auth.via, 'session');

    // An api in Clerk mode whose Clerk key is the local public key accepts the local token as it is:
    // local tokens are Clerk session tokens in every respect the verifier checks.
    const asClerk = await startTestApi({
      databaseUrl: db.url,
      auth: {
        mode: 'clerk',
        clerkJwtKey: readFileSync(join(localKeyDir, LOCAL_PUBLIC_KEY_FILE), 'utf8'),
        authorizedParties: [TEST_AUTHORIZED_PARTY],
      },
    });
    extra.push(asClerk);
    assert.equal((await me(asClerk, session.token)).status, 200);
    // And the local api refuses the test Clerk instance's token, and an expired token made with its own
    // key, with the same answers as for Clerk's.
    const foreign = await me(localApi, clerk.sessionToken(userId));
    assert.equal(errorCode(foreign), 'invalid_token');
    const { createPrivateKey } = await import('node:crypto');
    const localKey = createPrivateKey(readFileSync(join(localKeyDir, LOCAL_PRIVATE_KEY_FILE)));
    const now = nowSeconds();
    const expired = signJwt(
      {
        sub: userId,
        sid: 'sess_x',
        azp: TEST_AUTHORIZED_PARTY,
        iat: now - 7200,
        nbf: now - 7200,
        exp: now - 3600,
      },
      localKey,
      { kid: 'local' },
    );
    const refused = await me(localApi, expired);
    assert.equal(refused.status, 401);
    assert.equal(errorCode(refused), 'token_expired');

    const bad = await request(`${localApi.api.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'has spaces in it' }),
    });
    assert.equal(bad.status, 400, bad.text);
  });

  it('keeps one local key pair (dir 0700, files 0600), never overwritten: tokens outlive a restart', async () => {
    assert.equal(statSync(localKeyDir).mode & 0o777, 0o700);
    for (const file of [LOCAL_PRIVATE_KEY_FILE, LOCAL_PUBLIC_KEY_FILE]) {
      assert.equal(statSync(join(localKeyDir, file)).mode & 0o777, 0o600, file);
    }
    const before = readFileSync(join(localKeyDir, LOCAL_PRIVATE_KEY_FILE), 'utf8');
    const session = await signInLocally(localApi, { userId: `restart-${suffix}` });
    const restarted = await startTestApi({
      databaseUrl: db.url,
      auth: { mode: 'local', localKeyDir, authorizedParties: [TEST_AUTHORIZED_PARTY] },
    });
    extra.push(restarted);
    assert.equal(readFileSync(join(localKeyDir, LOCAL_PRIVATE_KEY_FILE), 'utf8'), before);
    assert.equal((await me(restarted, session.token)).status, 200);
  });

  it('never authenticates a deleted account, and signing in again does not bring it back', async () => {
    const userId = `gone-${suffix}`;
    const session = await signInLocally(localApi, { userId, email: `${userId}@example.test` });
    const deleted = await request(`${localApi.api.url}/api/me`, {
      method: 'DELETE',
      headers: bearer(session.token),
    });
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(deleted.json, { deleted: true, alreadyDeleted: false });

    const after = await me(localApi, session.token);
    assert.equal(after.status, 401);
    assert.equal(errorCode(after), 'account_deleted');
    const again = await request(`${localApi.api.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId, email: `${userId}@example.test` }),
    });
    assert.equal(again.status, 401);
    assert.equal(errorCode(again), 'account_deleted');
    const row = await userRow(userId);
    assert.ok(row?.deleted_at, 'a tombstone stays');
    assert.equal(row?.email, null, 'email scrubbed');

    // A repeated deletion is a no-op success: one audit record.
    const repeat = await localApi.accounts.deleteAccount(userId, { actor: 'system' });
    assert.equal(repeat.alreadyDeleted, true);
    assert.deepEqual(
      (await auditActions(userId)).filter((a) => a === 'user.deleted'),
      ['user.deleted'],
    );

    // The development key's user too.
    await clerkApi.accounts.deleteAccount(dev.userId, { actor: 'system' });
    const devAfter = await me(clerkApi, dev.key);
    assert.equal(devAfter.status, 401);
    assert.equal(errorCode(devAfter), 'account_deleted');
  });

  it('never takes a credential from the URL, and never logs one', async () => {
    const userId = `user_url${suffix}`;
    const token = clerk.sessionToken(userId);
    const base = clerkApi.api.url;
    for (const query of [`token=${token}`, `access_token=${token}`, `authorization=Bearer%20${token}`]) {
      const res = await request(`${base}/api/me?${query}`);
      assert.equal(res.status, 401, query);
      assert.equal(errorCode(res), 'unauthorized');
    }
    // A token or key pasted into a path.
    await request(`${base}/api/workspaces/${token}`, { headers: bearer(token) });
    const keyLike = `ffc_live_${'A'.repeat(16)}_${'s3cr3t'.repeat(6)}abcd`;
    await request(`${base}/api/keys/${keyLike}`, { method: 'DELETE', headers: bearer(token) });

    const wsUrl = `${base.replace('http', 'ws')}/ws/test/whoami`;
    await assert.rejects(wsFirstMessage(`${wsUrl}?token=${token}`), /upgrade refused: 401/);
    await assert.rejects(wsFirstMessage(`${wsUrl}?access_token=${token}`), /upgrade refused: 401/);
    const viaProtocol = await wsFirstMessage(wsUrl, { protocols: ['ffc.test.v1', `bearer.${token}`] });
    assert.equal(JSON.parse(viaProtocol).userId, userId);
    const viaHeader = await wsFirstMessage(wsUrl, { headers: bearer(token) });
    assert.equal(JSON.parse(viaHeader).userId, userId);

    const logged = logLines.join('');
    assert.match(logged, /"path":"\/api\/me"/, 'requests are logged');
    assert.match(logged, /\[redacted-jwt\]/, 'the path with a token is logged redacted');
    const [, payload, signature] = token.split('.');
    assert.ok(payload && signature);
    assert.ok(!logged.includes(signature), 'no token signature in any log line');
    assert.ok(!logged.includes(payload), 'no token payload in any log line');
    assert.ok(!logged.includes('s3cr3t'), 'no key secret in any log line');
  });
});
