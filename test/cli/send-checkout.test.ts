/**
 * `ffc send` reading a real local checkout: git for origin and branch, the real gh (against the project's
 * fake GitHub) for the PR, and gh missing altogether. `--dry-run --json` prints the state it would send.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortableWorkspaceStateSchema, safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { type FakeGitHub, startFakeGitHub } from '../../core/test/support/fake-github.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import { freshConfigDir, isReadableErrorLine, runFfc } from './run-ffc.js';

const DryRunSchema = z.object({ state: PortableWorkspaceStateSchema });

describe('ffc send: reading the local checkout', function () {
  this.timeout(2 * 60_000);
  let sandbox: GitSandbox;
  let gh: FakeGitHub;
  let remoteUrl: string;
  let checkout: string;

  before(async () => {
    sandbox = createGitSandbox();
    gh = await startFakeGitHub({
      fixtures: {
        repos: { 'octo/widgets': { pulls: [{ number: 7, headRefName: 'feature/widgets' }] } },
      },
    });
    remoteUrl = await sandbox.createRemote(
      'octo/widgets',
      { 'README.md': 'widgets\n' },
      {
        'feature/widgets': { 'widget.txt': 'one\n' },
        'other-branch': { 'other.txt': 'two\n' },
      },
    );
    checkout = join(sandbox.dir, 'checkout');
    await sandbox.git(['clone', '--quiet', remoteUrl, checkout]);
    await sandbox.git(['checkout', '--quiet', 'feature/widgets'], checkout);
  });

  after(async () => {
    await gh?.close();
    sandbox?.cleanup();
  });

  /** ffc with the sandbox's git identity and gh routed to the fake; no api is contacted by --dry-run. */
  const env = (extra: Record<string, string> = {}) => ({
    ...gh.ghEnv(),
    ...sandbox.env,
    PATH: gh.ghEnv().PATH ?? '/usr/bin:/bin',
    GH_CONFIG_DIR: gh.configDir,
    FFC_CONFIG_DIR: freshConfigDir(),
    FFC_API_URL: 'http://127.0.0.1:1',
    FFC_API_KEY: 'unused-by-dry-run',
    ...extra,
  });

  async function dryRun(args: string[], extra: Record<string, string> = {}) {
    const result = await runFfc(['send', ...args, '--dry-run', '--json'], { env: env(extra) });
    assert.equal(result.code, 0, result.stderr);
    const parsed = safeParseJson(DryRunSchema, result.stdout);
    assert.ok(parsed.ok, `${parsed.ok ? '' : parsed.error.message}\n${result.stdout}`);
    return parsed.value.state;
  }

  it('sends the origin URL and current branch, location CLOUD, ratchet fields at their defaults', async () => {
    const state = await dryRun([checkout, '--no-pr']);
    assert.equal(state.version, 1);
    assert.equal(state.repoUrl, remoteUrl);
    assert.equal(state.branchName, 'feature/widgets');
    assert.equal(state.name, 'widgets/feature/widgets');
    assert.equal(state.location, 'CLOUD');
    assert.equal(state.prUrl, null);
    assert.equal(state.prNumber, null);
    assert.equal(state.ratchetEnabled, false);
    assert.equal(state.ratchetState, 'IDLE');
    assert.equal(state.ratchetLastCiRunId, null);
    assert.deepEqual(state.ratchetDispatchKeys, []);
    assert.ok(Math.abs(Date.parse(state.exportedAt) - Date.now()) < 10 * 60_000, state.exportedAt);
  });

  it('derives the same workspace id for the same repo and branch, another for another branch', async () => {
    const first = await dryRun([checkout, '--no-pr']);
    const again = await dryRun([join(checkout, '.'), '--no-pr']);
    assert.equal(again.workspaceId, first.workspaceId);
    const other = join(sandbox.dir, 'other-checkout');
    await sandbox.git(['clone', '--quiet', '--branch', 'other-branch', remoteUrl, other]);
    const otherState = await dryRun([other, '--no-pr']);
    assert.notEqual(otherState.workspaceId, first.workspaceId);
    assert.equal(otherState.branchName, 'other-branch');
  });

  it('reads the branch’s PR with the real gh, and --repo-url replaces the origin URL', async () => {
    const github = join(sandbox.dir, 'github-checkout');
    await sandbox.git(['clone', '--quiet', '--branch', 'feature/widgets', remoteUrl, github]);
    await sandbox.git(['remote', 'set-url', 'origin', 'https://github.com/octo/widgets.git'], github);
    const state = await dryRun([github, '--repo-url', remoteUrl, '--name', 'My widgets']);
    assert.equal(state.prNumber, 7);
    assert.equal(state.prUrl, 'https://github.com/octo/widgets/pull/7');
    assert.equal(state.repoUrl, remoteUrl);
    assert.equal(state.name, 'My widgets');
  });

  it('carries on without a PR when gh is not installed, or answers with an error', async () => {
    // A PATH holding only node and git: no gh anywhere.
    const bin = mkdtempSync(join(tmpdir(), 'ffc-nogh-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync('/usr/bin/git', join(bin, 'git'));
    const withoutGh = await dryRun([checkout], { PATH: bin });
    assert.equal(withoutGh.prUrl, null);
    assert.equal(withoutGh.branchName, 'feature/widgets');

    // gh present but without a token: it fails, and the state goes without a PR.
    const noToken = await runFfc(['send', checkout, '--dry-run', '--json'], { env: env({ GH_TOKEN: '' }) });
    assert.equal(noToken.code, 0, noToken.stderr);
    const parsed = safeParseJson(DryRunSchema, noToken.stdout);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.state.prUrl, null);
  });

  it('refuses what it cannot send with exit 1 and a line saying why', async () => {
    const notGit = mkdtempSync(join(tmpdir(), 'ffc-not-git-'));
    const outside = await runFfc(['send', notGit, '--dry-run'], { env: env() });
    assert.equal(outside.code, 1, outside.stderr);
    assert.ok(isReadableErrorLine(outside.stderr), outside.stderr);
    assert.match(outside.stderr, /is not a git checkout/);

    const detached = join(sandbox.dir, 'detached');
    await sandbox.git(['clone', '--quiet', remoteUrl, detached]);
    await sandbox.git(['checkout', '--quiet', '--detach', 'HEAD'], detached);
    const noBranch = await runFfc(['send', detached, '--dry-run', '--no-pr'], { env: env() });
    assert.equal(noBranch.code, 1, noBranch.stderr);
    assert.match(noBranch.stderr, /detached HEAD/);

    const noOrigin = join(sandbox.dir, 'no-origin');
    await sandbox.git(['clone', '--quiet', remoteUrl, noOrigin]);
    await sandbox.git(['remote', 'remove', 'origin'], noOrigin);
    const missing = await runFfc(['send', noOrigin, '--dry-run', '--no-pr'], { env: env() });
    assert.equal(missing.code, 1, missing.stderr);
    assert.ok(isReadableErrorLine(missing.stderr), missing.stderr);
    assert.match(missing.stderr, /has no remote "origin".*--repo-url/);

    const badName = await runFfc(['send', checkout, '--dry-run', '--no-pr', '--id', 'not a valid id!'], {
      env: env(),
    });
    assert.equal(badName.code, 1, badName.stderr);
    assert.match(badName.stderr, /workspaceId/);
  });
});
