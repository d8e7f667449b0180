import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PathEscapeError } from './errors.js';

function isInside(root: string, candidate: string, allowEqual: boolean): boolean {
  if (candidate === root) return allowEqual;
  const rel = relative(root, candidate);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The real location of `path`: symlinks resolved on its nearest existing ancestor, with the not-yet-existing
 * rest appended. A path whose existing part leads through a symlink out of the root is caught this way even
 * before the rest of it is created.
 */
async function realLocation(path: string): Promise<string> {
  const missing: string[] = [];
  let current = resolve(path);
  while (!(await exists(current))) {
    const parent = dirname(current);
    if (parent === current) break;
    missing.unshift(basename(current));
    current = parent;
  }
  let real: string;
  try {
    real = await realpath(current);
  } catch {
    // lstat saw it but it cannot be resolved: a dangling symlink, whose target could appear anywhere later.
    throw new PathEscapeError(path, `Path goes through a dangling symlink: ${current}`);
  }
  return missing.length === 0 ? real : join(real, ...missing);
}

/**
 * Resolves a caller-supplied relative path inside `root`. Rejects absolute paths, any `..` segment, NUL
 * bytes, and paths that leave the root through a symlink. Returns the absolute (real) path.
 */
export async function resolveInside(root: string, relativePath: string): Promise<string> {
  if (relativePath.includes('\0')) throw new PathEscapeError(relativePath, 'Path contains a NUL byte');
  if (isAbsolute(relativePath)) {
    throw new PathEscapeError(relativePath, `Absolute paths are not allowed here: ${relativePath}`);
  }
  if (relativePath.split(/[\\/]+/).includes('..')) {
    throw new PathEscapeError(relativePath, `Paths may not contain "..": ${relativePath}`);
  }
  return assertInside(root, join(root, relativePath), true);
}

/** Checks that an absolute path stays inside `root` once symlinks are resolved; returns its real location. */
export async function assertInside(root: string, absolutePath: string, allowRoot = false): Promise<string> {
  if (absolutePath.includes('\0')) throw new PathEscapeError(absolutePath, 'Path contains a NUL byte');
  const realRoot = await realpath(root);
  const real = await realLocation(absolutePath);
  if (!isInside(realRoot, real, allowRoot)) {
    throw new PathEscapeError(absolutePath, `Path escapes ${root}: ${absolutePath}`);
  }
  return real;
}

/**
 * A worktree directory must sit strictly inside the worktrees root, must not itself be a symlink (which
 * could be swapped to point anywhere later), and its real path must be inside the root.
 */
export async function assertWorktreePathSafe(worktreesRoot: string, worktreePath: string): Promise<string> {
  if (!isInside(resolve(worktreesRoot), resolve(worktreePath), false)) {
    throw new PathEscapeError(worktreePath, `Worktree is not inside ${worktreesRoot}: ${worktreePath}`);
  }
  try {
    if ((await lstat(worktreePath)).isSymbolicLink()) {
      throw new PathEscapeError(worktreePath, `Worktree path is a symlink: ${worktreePath}`);
    }
  } catch (err) {
    if (err instanceof PathEscapeError) throw err;
  }
  return assertInside(worktreesRoot, worktreePath, false);
}
