/**
 * Clerk's webhooks against the real api over HTTP with real Postgres: deliveries signed by svix exactly as
 * Clerk sends them (with the endpoint's whsec_ secret), verified over the raw body. Created and updated
 * users, a duplicate delivery applied once, out-of-order updates, forged, altered and stale signatures
 * (400, nothing changed), and user.deleted (the account goes, its session token stops working, a replayed
 * user.created does not bring it back).
 */
import assert from 'node:assert/strict';
import { ClerkWebhookAnswerSchema } from '../../api/contract/accounts.js';
import { startTestApi, type TestApi } from '../support/api.js';
import {
  clerkEvent,
  clerkUser,
  type FakeClerkInstance,
  fakeClerkInstance,
  newWebhookSecret,
  type SignedDelivery,
  signedDelivery,
  TEST_AUTHORIZED_PARTY,
} from '../support/clerk-tokens.js';
import { errorCode, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';

describe('Clerk webhooks: svix-verified user events (real api over HTTP, Postgres)', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  const secret = newWebhookSecret();
  let db: TestDatabase;
  let clerk: FakeClerkInstance;
  let api: TestApi;

  const deliver = (delivery: SignedDelivery) =>
    request(`${api.api.url}/api/webhooks/clerk`, {
      method: 'POST',
      headers: delivery.headers,
      body: delivery.body,
    });
  const userRow = async (id: string) =>
    (
      await db.pool.query<{ email: string | null; name: string | null; deleted_at: Date | null }>(
        'SELECT email, name, deleted_at FROM users WHERE id = $1',
        [id],
      )
    ).rows[0];
  const processed = async (eventId: string) =>
    Number(
      (
        await db.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM processed_webhook_events WHERE provider = 'clerk' AND event_id = $1`,
          [eventId],
        )
      ).rows[0]?.n,
    );

  before(async () => {
    db = await createMigratedDatabase();
    clerk = fakeClerkInstance();
    api = await startTestApi({
      databaseUrl: db.url,
      auth: {
        mode: 'clerk',
        clerkJwtKey: clerk.publicKeyPem,
        authorizedParties: [TEST_AUTHORIZED_PARTY],
        clerkWebhookSecret: secret,
      },
    });
  });

  after(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('creates and updates users from signed deliveries, verified over the exact bytes sent', async () => {
    const id = `user_made${suffix}`;
    const t0 = Date.now();
    const created = clerkEvent(
      'user.created',
      clerkUser(id, { email: 'made@example.test', firstName: 'Ada', lastName: 'L', updatedAt: t0 }),
    );
    // Pretty-printed on purpose: re-serializing the parsed JSON would change the bytes and the signature.
    const res = await deliver(signedDelivery(secret, created, { body: JSON.stringify(created, null, 2) }));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(ClerkWebhookAnswerSchema.parse(res.json), {
      received: true,
      duplicate: false,
      outcome: 'applied',
    });
    assert.deepEqual(await userRow(id), { email: 'made@example.test', name: 'Ada L', deleted_at: null });

    const updated = clerkEvent(
      'user.updated',
      clerkUser(id, { email: 'new@example.test', updatedAt: t0 + 1000 }),
    );
    assert.equal((await deliver(signedDelivery(secret, updated))).status, 200);
    assert.deepEqual(await userRow(id), { email: 'new@example.test', name: null, deleted_at: null });

    // The user signs in afterwards: the row is the same account.
    const me = await request(`${api.api.url}/api/me`, {
      headers: { authorization: `Bearer ${clerk.sessionToken(id)}` },
    });
    assert.equal(me.status, 200, me.text);
  });

  it('applies a delivery once: a repeat of its svix-id is acknowledged as a duplicate and changes nothing', async () => {
    const id = `user_dup${suffix}`;
    const t0 = Date.now();
    const first = signedDelivery(
      secret,
      clerkEvent('user.created', clerkUser(id, { email: 'first@example.test', updatedAt: t0 })),
    );
    assert.equal(ClerkWebhookAnswerSchema.parse((await deliver(first)).json).outcome, 'applied');
    // Clerk retrying the same delivery.
    const retry = await deliver(first);
    assert.equal(retry.status, 200);
    assert.deepEqual(ClerkWebhookAnswerSchema.parse(retry.json), {
      received: true,
      duplicate: true,
      outcome: 'duplicate',
    });
    // The same svix-id with a newer profile (validly signed): still the one delivery, not applied.
    const sameId = signedDelivery(
      secret,
      clerkEvent('user.updated', clerkUser(id, { email: 'second@example.test', updatedAt: t0 + 5000 })),
      { id: first.headers['svix-id'] },
    );
    assert.equal(ClerkWebhookAnswerSchema.parse((await deliver(sameId)).json).duplicate, true);
    assert.equal((await userRow(id))?.email, 'first@example.test');
    assert.equal(await processed(first.headers['svix-id'] ?? ''), 1);
  });

  it('keeps the newest profile when updates arrive out of order', async () => {
    const id = `user_order${suffix}`;
    const t0 = Date.now();
    const newer = clerkEvent(
      'user.updated',
      clerkUser(id, { email: 'newer@example.test', updatedAt: t0 + 2000 }),
    );
    const older = clerkEvent(
      'user.updated',
      clerkUser(id, { email: 'older@example.test', updatedAt: t0 + 1000 }),
    );
    assert.equal(
      ClerkWebhookAnswerSchema.parse((await deliver(signedDelivery(secret, newer))).json).outcome,
      'applied',
    );
    const late = await deliver(signedDelivery(secret, older));
    assert.equal(ClerkWebhookAnswerSchema.parse(late.json).outcome, 'stale');
    assert.equal((await userRow(id))?.email, 'newer@example.test');
  });

  it('refuses forged, altered, stale and unsigned deliveries with 400, and nothing changes', async () => {
    const id = `user_forged${suffix}`;
    const event = clerkEvent(
      'user.created',
      clerkUser(id, { email: 'forged@example.test', updatedAt: Date.now() }),
    );
    const genuine = signedDelivery(secret, event);
    const otherSecret = signedDelivery(newWebhookSecret(), event);
    const altered = { ...genuine, body: genuine.body.replace('forged@example.test', 'evil!@example.test') };
    // Signed correctly, but ten minutes ago: svix's replay window is five.
    const stale = signedDelivery(secret, event, { timestamp: new Date(Date.now() - 10 * 60_000) });
    const withoutSignature = {
      ...genuine,
      headers: { 'content-type': 'application/json', 'svix-id': genuine.headers['svix-id'] ?? '' },
    };
    const badSignature = { ...genuine, headers: { ...genuine.headers, 'svix-signature': 'v1,AAAA' } };
    for (const [what, delivery] of Object.entries({
      otherSecret,
      altered,
      stale,
      withoutSignature,
      badSignature,
    })) {
      const res = await deliver(delivery);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(errorCode(res), 'invalid_signature', what);
    }
    assert.equal(await userRow(id), undefined, 'no user was made');
    for (const delivery of [genuine, otherSecret, stale]) {
      assert.equal(await processed(delivery.headers['svix-id'] ?? ''), 0, 'no delivery was recorded');
    }
    // The genuine one, afterwards, is applied (the refusals did not consume its id).
    assert.equal(ClerkWebhookAnswerSchema.parse((await deliver(genuine)).json).outcome, 'applied');
  });

  it('deletes the account on user.deleted: its session stops working and no later event brings it back', async () => {
    const id = `user_del${suffix}`;
    const t0 = Date.now();
    await deliver(
      signedDelivery(
        secret,
        clerkEvent('user.created', clerkUser(id, { email: 'del@example.test', updatedAt: t0 })),
      ),
    );
    const token = clerk.sessionToken(id);
    assert.equal(
      (await request(`${api.api.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status,
      200,
    );

    const deletion = signedDelivery(
      secret,
      clerkEvent('user.deleted', { id, object: 'user', deleted: true }),
    );
    const res = await deliver(deletion);
    assert.equal(res.status, 200, res.text);
    assert.equal(ClerkWebhookAnswerSchema.parse(res.json).outcome, 'deleted');
    const row = await userRow(id);
    assert.ok(row?.deleted_at);
    assert.equal(row?.email, null);
    const refused = await request(`${api.api.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(refused.status, 401);
    assert.equal(errorCode(refused), 'account_deleted');

    // Another delivery of a deletion is a no-op; a replayed (re-sent) creation does not resurrect.
    const again = signedDelivery(secret, clerkEvent('user.deleted', { id, object: 'user', deleted: true }));
    assert.equal((await deliver(again)).status, 200);
    const replay = signedDelivery(
      secret,
      clerkEvent('user.created', clerkUser(id, { email: 'del@example.test', updatedAt: t0 + 60_000 })),
    );
    assert.equal(ClerkWebhookAnswerSchema.parse((await deliver(replay)).json).outcome, 'account_deleted');
    assert.equal((await userRow(id))?.email, null);
    const audit = await db.pool.query<{ action: string; actor: string }>(
      `SELECT action, actor FROM audit_log WHERE user_id = $1 AND action = 'user.deleted'`,
      [id],
    );
    assert.deepEqual(audit.rows, [{ action: 'user.deleted', actor: 'clerk' }]);

    // A deletion of a user never seen leaves a tombstone, so a late user.created cannot create it.
    const unseen = `user_unseen${suffix}`;
    await deliver(
      signedDelivery(secret, clerkEvent('user.deleted', { id: unseen, object: 'user', deleted: true })),
    );
    const late = signedDelivery(
      secret,
      clerkEvent('user.created', clerkUser(unseen, { updatedAt: Date.now() })),
    );
    assert.equal(ClerkWebhookAnswerSchema.parse((await deliver(late)).json).outcome, 'account_deleted');
  });

  it('acknowledges other event types without acting, and refuses malformed user events', async () => {
    const other = await deliver(signedDelivery(secret, clerkEvent('session.created', { id: 'sess_1' })));
    assert.equal(ClerkWebhookAnswerSchema.parse(other.json).outcome, 'ignored');
    const malformed = await deliver(signedDelivery(secret, clerkEvent('user.created', { id: 'has spaces' })));
    assert.equal(malformed.status, 400);
    assert.equal(errorCode(malformed), 'bad_request');
  });

  it('is described in the API description as public', async () => {
    const doc = (await request(`${api.api.url}/api/openapi.json`)).json as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    assert.deepEqual(doc.paths['/api/webhooks/clerk']?.post?.security, []);
  });
});
