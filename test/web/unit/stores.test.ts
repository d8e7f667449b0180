/**
 * The dashboard's stores under Node against the real test api (production auth chain in local mode, real
 * Postgres): sign-in, /api/me, API keys, the audit log, workspaces, usage and the VM panel's "no VM yet",
 * with Node's fetch in place of the browser's. What a store shows on failure is the api's own message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../../web/src/lib/api-client.js';
import { type AppDeps, memoryStorage, type StorageLike, setAppDeps } from '../../../web/src/lib/deps.js';
import { useAudit, useKeys, useUsage, useVm } from '../../../web/src/stores/account.js';
import { TOKEN_KEY, useAuth, userIdFromEmail } from '../../../web/src/stores/auth.js';
import { createPinia, setActivePinia } from '../../../web/src/stores/pinia.js';
import { useWorkspaces } from '../../../web/src/stores/workspaces.js';
import { startTestApi, type TestApi } from '../../support/api.js';
import { TEST_AUTHORIZED_PARTY } from '../../support/clerk-tokens.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../../support/services.js';

describe('web stores against the real api', function () {
  this.timeout(60_000);
  const suffix = uniqueSuffix();
  let db: TestDatabase;
  let api: TestApi;
  let keyDir: string;
  let storage: StorageLike;
  let navigatedTo: string[];

  function freshApp(): void {
    storage = memoryStorage();
    navigatedTo = [];
    const deps: AppDeps = {
      baseUrl: api.api.url,
      pageOrigin: 'http://dashboard.test',
      fetch: (url, init) => fetch(url, init),
      openSocket: () => {
        throw new Error('no sockets in this test');
      },
      storage,
      navigateAway: (url) => void navigatedTo.push(url),
      clerkSessionToken: () => null,
    };
    setAppDeps(deps);
    setActivePinia(createPinia());
  }

  async function signIn(email: string): Promise<void> {
    const auth = useAuth();
    await auth.loadConfig();
    await auth.signInLocal({ email });
  }

  before(async () => {
    db = await createMigratedDatabase();
    keyDir = mkdtempSync(join(tmpdir(), 'ffc-web-stores-'));
    api = await startTestApi({
      databaseUrl: db.url,
      auth: { mode: 'local', localKeyDir: keyDir, authorizedParties: [TEST_AUTHORIZED_PARTY] },
      quotas: true,
    });
  });

  after(async () => {
    await api?.stop();
    await db?.drop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  beforeEach(freshApp);

  it('signs in locally by email, keeps the token in storage, and signs out', async () => {
    const auth = useAuth();
    const config = await auth.loadConfig();
    assert.equal(config.mode, 'local');
    assert.equal(auth.signedIn, false);
    const email = `Alice+web-${suffix}@example.com`;
    await auth.signInLocal({ email, name: 'Alice' });
    assert.equal(auth.signedIn, true);
    assert.equal(storage.getItem(TOKEN_KEY), auth.token);
    const me = await auth.loadMe();
    assert.equal(me.user.id, userIdFromEmail(email));
    assert.match(me.user.id, /^[A-Za-z0-9_.@-]{1,128}$/);
    assert.equal(me.user.email, email);
    auth.signOut();
    assert.equal(auth.signedIn, false);
    assert.equal(storage.getItem(TOKEN_KEY), null);
  });

  it('shows the api message for a refused sign-in, and signs out with a notice when the token is refused', async () => {
    const auth = useAuth();
    await auth.loadConfig();
    await assert.rejects(auth.signInLocal({ email: 'not an email' }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 400);
      assert.ok(err.message.length > 0 && !err.message.trimStart().startsWith('{'), err.message);
      return true;
    });
    storage.setItem(TOKEN_KEY, 'not-a-token');
    setActivePinia(createPinia());
    const stale = useAuth();
    assert.equal(stale.signedIn, true);
    await assert.rejects(stale.loadMe(), (err: unknown) => err instanceof ApiError && err.status === 401);
    assert.equal(stale.signedIn, false);
    assert.equal(storage.getItem(TOKEN_KEY), null);
    assert.match(stale.notice ?? '', /Sign in again/);
  });

  it('creates an API key shown once, lists it, revokes it, and the audit log records both', async () => {
    await signIn(`keys-${suffix}@example.com`);
    const keys = useKeys();
    await keys.load();
    assert.equal(keys.keys.length, 0);
    await keys.create('  laptop ffc ');
    assert.ok(keys.newSecret);
    assert.equal(keys.newSecret.name, 'laptop ffc');
    assert.match(keys.newSecret.secret, /^ffc_live_/);
    const [key] = keys.keys;
    assert.ok(key);
    assert.ok(keys.newSecret.secret.startsWith(key.prefix));
    keys.dismissSecret();
    assert.equal(keys.newSecret, null);

    // A fresh load never shows the secret again, and the key is there.
    setActivePinia(createPinia());
    const reloaded = useKeys();
    await reloaded.load();
    assert.deepEqual(
      reloaded.keys.map((k) => k.id),
      [key.id],
    );
    assert.equal(reloaded.newSecret, null);
    await reloaded.revoke(key.id);
    assert.ok(reloaded.keys[0]?.revokedAt);

    const audit = useAudit();
    await audit.load();
    const actions = audit.records.map((r) => r.action);
    assert.ok(actions.includes('key.created'), actions.join());
    assert.ok(actions.includes('key.revoked'), actions.join());
  });

  it('lists no workspaces for a new user, and an empty issue URL is refused with a readable message', async () => {
    await signIn(`ws-${suffix}@example.com`);
    const store = useWorkspaces();
    await store.refresh();
    assert.equal(store.loaded, true);
    assert.equal(store.workspaces.length, 0);
    assert.deepEqual(store.board, { working: [], waiting: [], done: [] });
    await assert.rejects(store.create({ issueUrl: '   ' }), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 400);
      assert.ok(!err.message.includes('{"'), err.message);
      return true;
    });
    assert.equal(store.workspaces.length, 0);
    await assert.rejects(store.load('no-such-workspace'), (err: unknown) => {
      return err instanceof ApiError && err.status === 404;
    });
  });

  it('reads usage on the free plan, says a new user has no VM, and reports billing being off', async () => {
    await signIn(`usage-${suffix}@example.com`);
    const usage = useUsage();
    await usage.load();
    assert.ok(usage.usage);
    assert.equal(usage.usage.plan, 'FREE');
    assert.equal(usage.usage.minutes.used, 0);
    assert.ok(usage.usage.minutes.limit > 0);
    // Billing is not configured in this api: the store throws the api's words, and nothing navigates.
    await assert.rejects(
      usage.upgrade('PRO'),
      (err: unknown) => err instanceof ApiError && err.message.length > 0,
    );
    assert.deepEqual(navigatedTo, []);

    const vm = useVm();
    await vm.load();
    assert.equal(vm.missing, true);
    assert.equal(vm.vm, null);
  });
});
