import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { safeParseJson } from '@factory-factory/core/protocol';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { WorkspaceListSchema } from '../../api/contract/workspaces.js';
import { sessionRelayRoute } from '../../api/ws/session-relay.js';
import { CredentialsSchema } from '../../cli/src/config.js';
import { createLogger } from '../../platform/logger.js';
import { startTestApi, type TestApi, type TestUsers } from '../support/api.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';
import { freshConfigDir, isReadableErrorLine, runFfc } from './run-ffc.js';

describe('ffc against the real api (login, vm status, ls, errors)', function () {
  this.timeout(5 * 60_000);
  const suffix = uniqueSuffix();
  const carol = { key: `carol-key-${suffix}`, userId: `carol-${suffix}` };
  let db: TestDatabase;
  let api: TestApi;
  // Nothing from the machine's own environment may stand in for what a test sets up.
  const clean = { FFC_API_URL: '', FFC_API_KEY: '' };

  before(async () => {
    db = await createMigratedDatabase();
    const users: TestUsers = { [carol.key]: carol.userId };
    api = await startTestApi({
      databaseUrl: db.url,
      users,
      // The production relay, so `ffc attach` meets the real upgrade, auth and refusals.
      wsRoutes: ({ vms, agents, workspaces, pool }) => [
        sessionRelayRoute({
          authenticator: createDevKeyAuthenticator({ key: carol.key, userId: carol.userId }),
          pool,
          vms,
          workspaces,
          agents,
          log: createLogger('ffc-relay-test', 'silent'),
        }),
      ],
    });
  });

  after(async () => {
    await api?.stop();
    await db?.drop();
  });

  const loggedIn = () => ({
    ...clean,
    FFC_CONFIG_DIR: freshConfigDir(),
    FFC_API_URL: api.api.url,
    FFC_API_KEY: carol.key,
  });

  it('login checks the key, then stores it 0600 in a 0700 directory', async () => {
    const dir = freshConfigDir();
    const result = await runFfc(['login', '--api-url', api.api.url, '--key', carol.key], {
      env: { ...clean, FFC_CONFIG_DIR: dir },
    });
    assert.equal(result.code, 0, result.stderr);
    const file = join(dir, 'credentials.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const stored = safeParseJson(CredentialsSchema, readFileSync(file, 'utf8'));
    assert.ok(stored.ok);
    assert.deepEqual(stored.value, { apiUrl: api.api.url, apiKey: carol.key });

    // The stored credentials are what later commands use (no FFC_API_* in the environment).
    const status = await runFfc(['vm', 'status'], { env: { ...clean, FFC_CONFIG_DIR: dir } });
    assert.equal(status.code, 3, status.stderr);
  });

  it('login reads the key from stdin, and tightens an existing loose directory', async () => {
    const dir = freshConfigDir();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const result = await runFfc(['login', '--api-url', api.api.url, '--json'], {
      env: { ...clean, FFC_CONFIG_DIR: dir },
      input: `${carol.key}\n`,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'credentials.json')).mode & 0o777, 0o600);
    const printed = safeParseJson(CredentialsSchema.pick({ apiUrl: true }), result.stdout);
    assert.ok(printed.ok, result.stdout);
    assert.ok(!result.stdout.includes(carol.key), 'the key is never printed');
  });

  it('login refuses a bad key with exit 2 and saves nothing', async () => {
    const dir = freshConfigDir();
    const result = await runFfc(['login', '--api-url', api.api.url, '--key', 'not-a-key'], {
      env: { ...clean, FFC_CONFIG_DIR: dir },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.ok(isReadableErrorLine(result.stderr), result.stderr);
    assert.match(result.stderr, /refused this key: invalid or expired credentials/);
    assert.throws(() => statSync(join(dir, 'credentials.json')), /ENOENT/);
  });

  it('vm status for a user without a VM exits 3 with the api’s message', async () => {
    const result = await runFfc(['vm', 'status'], { env: loggedIn() });
    assert.equal(result.code, 3, result.stderr);
    assert.ok(isReadableErrorLine(result.stderr), result.stderr);
    assert.match(result.stderr, /you have no VM yet/);
    assert.equal(result.stdout, '');
  });

  it('ls --json prints every page as {workspaces} that the contract parses', async () => {
    const result = await runFfc(['ls', '--json'], { env: loggedIn() });
    assert.equal(result.code, 0, result.stderr);
    const parsed = safeParseJson(WorkspaceListSchema.pick({ workspaces: true }), result.stdout);
    assert.ok(parsed.ok, result.stdout);
    assert.deepEqual(parsed.value.workspaces, []);
  });

  it('without credentials every command says how to log in (exit 2)', async () => {
    for (const args of [['ls'], ['vm', 'status'], ['pull', 'ws-1'], ['attach', 'ws-1']]) {
      const result = await runFfc(args, { env: { ...clean, FFC_CONFIG_DIR: freshConfigDir() } });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(isReadableErrorLine(result.stderr), result.stderr);
      assert.match(result.stderr, /not logged in: run `ffc login`/);
    }
  });

  it('a damaged credentials file is reported, not thrown', async () => {
    const dir = freshConfigDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'credentials.json'), '{"apiUrl": 3', { mode: 0o600 });
    const result = await runFfc(['ls'], { env: { ...clean, FFC_CONFIG_DIR: dir } });
    assert.equal(result.code, 2, result.stderr);
    assert.ok(isReadableErrorLine(result.stderr), result.stderr);
    assert.match(result.stderr, /is damaged .* run `ffc login` again/);
  });

  it('a refused key on a command exits 2; an unknown workspace exits 3; an unreachable api exits 5', async () => {
    const refused = await runFfc(['vm', 'status'], { env: { ...loggedIn(), FFC_API_KEY: 'wrong' } });
    assert.equal(refused.code, 2, refused.stderr);
    assert.ok(isReadableErrorLine(refused.stderr), refused.stderr);
    assert.match(refused.stderr, /invalid or expired credentials/);

    const missing = await runFfc(['pull', 'ws-does-not-exist'], { env: loggedIn() });
    assert.equal(missing.code, 3, missing.stderr);
    assert.ok(isReadableErrorLine(missing.stderr), missing.stderr);

    const unreachable = await runFfc(['ls'], { env: { ...loggedIn(), FFC_API_URL: 'http://127.0.0.1:1' } });
    assert.equal(unreachable.code, 5, unreachable.stderr);
    assert.ok(isReadableErrorLine(unreachable.stderr), unreachable.stderr);
    assert.match(unreachable.stderr, /cannot reach the api at http:\/\/127\.0\.0\.1:1/);
  });

  it('attach: an unknown workspace or session exits 3, a refused key on the socket exits 2', async () => {
    const noWorkspace = await runFfc(['attach', 'ws-nope', '--prompt', 'hi', '--exit-when-idle'], {
      env: loggedIn(),
    });
    assert.equal(noWorkspace.code, 3, noWorkspace.stderr);
    assert.ok(isReadableErrorLine(noWorkspace.stderr), noWorkspace.stderr);

    // Straight to the relay with a session id: the socket opens, then the relay says there is no such session.
    const noSession = await runFfc(
      ['attach', 'ws-nope', '--session', 's1', '--prompt', 'hi', '--exit-when-idle'],
      {
        env: loggedIn(),
      },
    );
    assert.equal(noSession.code, 3, noSession.stderr);
    assert.ok(isReadableErrorLine(noSession.stderr), noSession.stderr);
    assert.match(noSession.stderr, /no such session/);

    const refused = await runFfc(['attach', 'ws-nope', '--session', 's1'], {
      env: { ...loggedIn(), FFC_API_KEY: 'wrong' },
    });
    assert.equal(refused.code, 2, refused.stderr);
    assert.ok(isReadableErrorLine(refused.stderr), refused.stderr);
    assert.match(refused.stderr, /invalid or expired credentials/);
  });

  it('usage errors exit 1; --help documents the exit codes', async () => {
    const unknown = await runFfc(['frobnicate'], { env: loggedIn() });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);

    const badChoice = await runFfc(['ls', '--location', 'moon'], { env: loggedIn() });
    assert.equal(badChoice.code, 1);

    const noPrompt = await runFfc(['attach', 'ws-1', '--exit-when-idle'], { env: loggedIn() });
    assert.equal(noPrompt.code, 1, noPrompt.stderr);
    assert.ok(isReadableErrorLine(noPrompt.stderr), noPrompt.stderr);

    const help = await runFfc(['--help'], { env: loggedIn() });
    assert.equal(help.code, 0);
    for (const line of [
      /0\s+ok/,
      /1\s+usage/,
      /2\s+not logged in/,
      /3\s+not found/,
      /4\s+conflict/,
      /5\s+the service/,
      /130\s+interrupted/,
    ]) {
      assert.match(help.stdout, line);
    }
  });
});
