import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './support/env.js';
import { connectTestTemporal, TEST_NAMESPACE, testConfig } from './support/services.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function runSetup(env: Record<string, string>): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'scripts/setup.ts'], {
    cwd: root,
    env: childEnv(env),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

describe('scripts/setup.ts (run by dev.sh up and test)', () => {
  it('names each unreachable service and how to fix it, without a stack trace', () => {
    const result = runSetup({
      DATABASE_URL: 'postgres://ffc:secret-pw@127.0.0.1:9/ffc',
      TEMPORAL_ADDRESS: '127.0.0.1:9',
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /postgres is not reachable .*set DATABASE_URL/);
    assert.match(result.stderr, /temporal is not reachable .*set TEMPORAL_ADDRESS/);
    assert.match(result.stderr, /docker is not reachable .*set DOCKER_HOST/);
    assert.doesNotMatch(result.stderr, /secret-pw/, 'passwords are masked in messages');
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  it('succeeds against the running services, prepares the VM directory roots, and is idempotent', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ffc-setup-'));
    try {
      mkdirSync(join(dataDir, 'vm-run'), { mode: 0o777 }); // a root left with the wrong mode is corrected
      chmodSync(join(dataDir, 'vm-run'), 0o777);
      const first = runSetup({ FFC_DATA_DIR: dataDir });
      assert.equal(first.status, 0, first.stderr);
      const second = runSetup({ FFC_DATA_DIR: dataDir });
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /schema is current/);
      assert.match(second.stdout, /search attributes are registered/);
      assert.equal(statSync(join(dataDir, 'vm-run')).mode & 0o7777, 0o711, 'run dir root 0711');
      assert.equal(statSync(join(dataDir, 'vm-secrets')).mode & 0o7777, 0o700, 'secrets root 0700');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the Temporal namespace of tests', () => {
  it('is ffc-test for the tests and every process they spawn, with the search attributes registered', async () => {
    assert.equal(testConfig.temporal.namespace, TEST_NAMESPACE);
    assert.notEqual(TEST_NAMESPACE, 'default');
    const devSh = readFileSync(resolve(root, 'scripts/dev.sh'), 'utf8');
    assert.match(
      devSh,
      new RegExp(`^TEST_NAMESPACE=${TEST_NAMESPACE}$`, 'm'),
      'dev.sh test uses the same one',
    );
    const child = spawnSync(
      process.execPath,
      [
        '--conditions=source',
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        "const { loadConfig } = await import('./platform/config.ts'); process.stdout.write(loadConfig().temporal.namespace);",
      ],
      { cwd: root, env: childEnv(), encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, TEST_NAMESPACE, 'a spawned process reads the same namespace');
    const client = await connectTestTemporal();
    try {
      const attributes = await client.connection.operatorService.listSearchAttributes({
        namespace: TEST_NAMESPACE,
      });
      assert.ok(attributes.customAttributes?.FfcUserId, 'FfcUserId is registered in the test namespace');
    } finally {
      await client.connection.close();
    }
  });
});

/** Runs a bash script that sources scripts/dev.sh (for its functions) with a data dir of its own. */
function withDevSh(script: string, env: Record<string, string>, timeoutMs = 120_000) {
  const result = spawnSync('bash', ['-c', `source scripts/dev.sh\n${script}`], {
    cwd: root,
    env: childEnv(env),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

describe('scripts/dev.sh', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'ffc-devsh-'));
  });
  afterEach(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('starts Postgres for a clone in a directory the postgres user cannot enter', async () => {
    // Like a clone under /root (mode 700): the data dir, and the logs in it, are out of postgres's reach.
    const locked = join(scratch, 'locked');
    mkdirSync(locked, { mode: 0o700 });
    const relocated = join(scratch, 'relocated');
    chmodSync(scratch, 0o755);
    const result = withDevSh(
      [
        `PG_PORT=${await freePort()}`,
        `PG_RELOCATED_ROOT=${relocated}`,
        'start_postgres',
        'echo "data=$PGDATA_DIR log=$PG_LOG"',
        'stop_postgres "$PGDATA_DIR"',
      ].join('\n'),
      { FFC_DATA_DIR: join(locked, 'data') },
    );
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const logs = join(locked, 'data', 'logs');
    if (process.getuid?.() === 0) {
      assert.match(
        result.stdout,
        new RegExp(`data=${relocated}/postgres-\\w+ log=${relocated}/postgres-\\w+\\.log`),
      );
      assert.ok(
        lstatSync(join(logs, 'postgres.log')).isSymbolicLink(),
        'the log is linked from the logs dir',
      );
      assert.match(readlinkSync(join(logs, 'postgres.log')), new RegExp(`^${relocated}/`));
    }
    assert.match(readFileSync(join(logs, 'postgres.log'), 'utf8'), /database system is ready/);
  });

  it('up restarts an app process that exits, with a doubling backoff that starts over after it stayed up', () => {
    // Exits twice at once (code 3), then after 6 s (code 4; longer than the reset), then stays up until stopped.
    const app = join(scratch, 'flaky-app.mjs');
    writeFileSync(
      app,
      `import { existsSync, readFileSync, writeFileSync } from 'node:fs';
const file = ${JSON.stringify(join(scratch, 'runs'))};
const run = existsSync(file) ? Number(readFileSync(file, 'utf8')) + 1 : 1;
writeFileSync(file, String(run));
if (run <= 2) process.exit(3);
if (run === 3) setTimeout(() => process.exit(4), 6000);
else setInterval(() => {}, 1000);
`,
    );
    const result = withDevSh(
      [
        'APP_BACKOFF_RESET_S=5',
        `start_app flaky ${app}`,
        `until [ "$(cat ${join(scratch, 'runs')} 2>/dev/null)" = 4 ]; do supervise_apps; sleep 0.2; done`,
        'last=$(cat "$RUN/flaky.pid")',
        'stop_started',
        // A killed child stays a zombie until this shell reaps it; a zombie is stopped, not running.
        'is_running "$last" && echo "still running" || echo "stopped the current one"',
      ].join('\n'),
      { FFC_DATA_DIR: join(scratch, 'data') },
    );
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const exits = result.stderr.split('\n').filter((line) => / flaky exited /.test(line));
    assert.deepEqual(
      exits.map((line) => line.match(/exited (with code \d+) after \d+s; restarting it in (\d+)s/)?.slice(1)),
      [
        ['with code 3', '1'],
        ['with code 3', '2'],
        ['with code 4', '1'],
      ],
      result.stderr,
    );
    assert.match(result.stderr, / flaky restarted \(pid \d+\)/);
    assert.match(result.stdout, /stopped the current one/, `${result.stdout}\n${result.stderr}`);
  });

  it('stops a test run that outlives its limit, with everything it started, and says so', () => {
    const marker = `ffc-hung-${Date.now()}`;
    const started = Date.now();
    const result = withDevSh(
      // A "test run" whose child outlives it, as a leaked worker keeps mocha alive.
      `bounded_mocha 2s bash -c 'exec -a ${marker} sleep 300 & wait'`,
      { FFC_DATA_DIR: join(scratch, 'data') },
      30_000,
    );
    assert.equal(result.status, 1, `${result.stdout}\n${result.stderr}`);
    assert.ok(Date.now() - started < 20_000, 'the limit stopped it');
    assert.match(result.stderr, /the tests were still running after 2s and were stopped/);
    const left = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
    assert.equal(left.stdout.trim(), '', 'nothing the run started is left');
  });

  it("passes a test run's own exit status through", () => {
    const result = withDevSh(
      `bounded_mocha 30s bash -c 'exit 3'`,
      { FFC_DATA_DIR: join(scratch, 'data') },
      30_000,
    );
    assert.equal(result.status, 3, `${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(result.stderr, /still running/);
  });
});
