import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProjectConfig, runSetupScript } from '../../src/workspace/index.js';

describe('workspace / factory-factory.json setup script', () => {
  let dir: string;
  let n = 0;
  const env = { PATH: '/usr/bin:/bin' };
  const worktree = (config: unknown | null): string => {
    const wt = join(dir, `wt-${n++}`);
    mkdirSync(wt, { recursive: true });
    if (config !== null)
      writeFileSync(
        join(wt, 'factory-factory.json'),
        typeof config === 'string' ? config : JSON.stringify(config),
      );
    return wt;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ff-setup-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the setup script with bash -c in the worktree and keeps its output', async () => {
    const wt = worktree({ scripts: { setup: 'echo "setting up in $(pwd)"; echo warn >&2; touch .ready' } });
    const result = await runSetupScript(wt, { timeoutMs: 60_000, env });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(result.exitCode, 0);
    assert.match(result.output, new RegExp(`setting up in ${wt}`));
    assert.match(result.output, /warn/);
    assert.equal(readFileSync(join(wt, '.ready'), 'utf8'), '');
  });

  it('reports a failing script with its exit code and output', async () => {
    const result = await runSetupScript(worktree({ scripts: { setup: 'echo boom; exit 3' } }), {
      timeoutMs: 60_000,
      env,
    });
    assert.deepEqual(result, { status: 'FAILED', exitCode: 3, output: 'boom\n' });
  });

  it('kills a script that runs past its timeout, children included', async () => {
    const wt = worktree({ scripts: { setup: 'echo started; (sleep 60; touch late) & sleep 60' } });
    const result = await runSetupScript(wt, { timeoutMs: 300, env });
    assert.equal(result.status, 'TIMED_OUT');
    assert.match(result.output, /started/);
    assert.match(result.output, /timed out/);
  });

  it('keeps only the tail of long output', async () => {
    const result = await runSetupScript(worktree({ scripts: { setup: 'seq 1 100000' } }), {
      timeoutMs: 60_000,
      env,
      maxOutputBytes: 1000,
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.ok(result.output.length <= 1000);
    assert.ok(result.output.endsWith('100000\n'));
  });

  it('is a no-op without a config or without a setup script', async () => {
    assert.equal((await runSetupScript(worktree(null), { timeoutMs: 1000, env })).status, 'NOT_CONFIGURED');
    assert.equal(
      (await runSetupScript(worktree({ scripts: { run: 'npm start' } }), { timeoutMs: 1000, env })).status,
      'NOT_CONFIGURED',
    );
  });

  it('refuses malformed configs and configs that are symlinks out of the worktree', async () => {
    const malformed = await runSetupScript(worktree('{"scripts": {"setup": 42}}'), { timeoutMs: 1000, env });
    assert.equal(malformed.status, 'INVALID_CONFIG');
    assert.equal(
      (await runSetupScript(worktree('not json'), { timeoutMs: 1000, env })).status,
      'INVALID_CONFIG',
    );
    const outside = join(dir, 'evil.json');
    writeFileSync(outside, JSON.stringify({ scripts: { setup: 'touch pwned' } }));
    const wt = worktree(null);
    symlinkSync(outside, join(wt, 'factory-factory.json'));
    assert.equal((await readProjectConfig(wt)).kind, 'invalid');
    assert.equal((await runSetupScript(wt, { timeoutMs: 1000, env })).status, 'INVALID_CONFIG');
  });
});
