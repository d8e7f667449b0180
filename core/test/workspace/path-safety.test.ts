import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertInside,
  assertWorktreePathSafe,
  PathEscapeError,
  resolveInside,
} from '../../src/workspace/index.js';

async function escapes(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PathEscapeError, `expected PathEscapeError, got ${String(err)}`);
    assert.equal(err.code, 'path_escape');
    return true;
  });
}

describe('workspace / path safety', () => {
  let dir: string;
  let root: string;
  let outside: string;

  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'ff-paths-')));
    root = join(dir, 'worktrees', 'workspace-1');
    outside = join(dir, 'outside');
    mkdirSync(join(root, 'src'), { recursive: true });
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    writeFileSync(join(root, 'src', 'a.ts'), 'a');
    symlinkSync(outside, join(root, 'escape-dir'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'escape-file'));
    symlinkSync(join(root, 'src'), join(root, 'inner-link'));
    symlinkSync('../../outside', join(root, 'relative-escape'));
    symlinkSync(join(outside, 'not-yet'), join(root, 'dangling'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves ordinary relative paths, existing or not', async () => {
    assert.equal(await resolveInside(root, 'src/a.ts'), join(root, 'src', 'a.ts'));
    assert.equal(await resolveInside(root, 'src/new/file.ts'), join(root, 'src', 'new', 'file.ts'));
    assert.equal(await resolveInside(root, '.'), root);
    assert.equal(
      await resolveInside(root, 'inner-link/a.ts'),
      join(root, 'src', 'a.ts'),
      'a symlink that stays inside is fine',
    );
  });

  it('rejects .. segments, even ones that would land inside', async () => {
    await escapes(resolveInside(root, '../workspace-2/x'));
    await escapes(resolveInside(root, 'src/../../../etc/passwd'));
    await escapes(resolveInside(root, 'src/../a.ts'));
    await escapes(resolveInside(root, 'src\\..\\..\\x'));
  });

  it('rejects absolute paths and NUL bytes', async () => {
    await escapes(resolveInside(root, '/etc/passwd'));
    await escapes(resolveInside(root, join(root, 'src')));
    await escapes(resolveInside(root, 'src/a.ts\0.png'));
  });

  it('rejects symlinks that lead out, including paths that do not exist yet beneath them', async () => {
    await escapes(resolveInside(root, 'escape-dir/secret.txt'));
    await escapes(resolveInside(root, 'escape-file'));
    await escapes(resolveInside(root, 'escape-dir/new/file.txt'));
    await escapes(resolveInside(root, 'relative-escape/secret.txt'));
    await escapes(assertInside(root, join(root, 'escape-dir')));
    await escapes(resolveInside(root, 'dangling'));
    await escapes(resolveInside(root, 'dangling/child'));
  });

  it('requires a worktree strictly inside the worktrees root and not a symlink', async () => {
    const worktrees = join(dir, 'worktrees');
    assert.equal(await assertWorktreePathSafe(worktrees, root), root);
    await escapes(assertWorktreePathSafe(worktrees, worktrees));
    await escapes(assertWorktreePathSafe(worktrees, join(worktrees, '..', 'outside')));
    symlinkSync(outside, join(worktrees, 'workspace-evil'));
    await escapes(assertWorktreePathSafe(worktrees, join(worktrees, 'workspace-evil')));
    symlinkSync(root, join(worktrees, 'workspace-alias'));
    await escapes(assertWorktreePathSafe(worktrees, join(worktrees, 'workspace-alias')));
  });
});
