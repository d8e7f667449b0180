import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './support/env.js';

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

  it('succeeds against the running services and is idempotent', () => {
    const first = runSetup({});
    assert.equal(first.status, 0, first.stderr);
    const second = runSetup({});
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /schema is current/);
    assert.match(second.stdout, /search attributes are registered/);
  });
});
