import { realpath, rm, stat } from 'node:fs/promises';
import { branchCandidate } from './branch-name.js';
import { WorkspaceError } from './errors.js';
import type { GitRunner } from './git.js';
import { GitCommandError } from './git.js';
import type { RepositoryCache } from './repositories.js';

export interface WorktreeRequest {
  repoDir: string;
  worktreePath: string;
  mode: 'NEW' | 'EXISTING';
  /** NEW: the wanted name (suffixed on collision); EXISTING: the branch to check out. */
  branchName: string;
  /** NEW: the branch the new one starts from (on origin). */
  baseBranch: string;
  /** Branch names other live workspaces of this repository hold. */
  reserved: ReadonlySet<string>;
}

const MAX_NAME_ATTEMPTS = 50;

/**
 * Makes sure `worktreePath` is a worktree of `repoDir` on the right branch and returns the branch name.
 * Idempotent: after a crash mid-provisioning, an existing registered worktree is reused as it is.
 */
export async function ensureWorktree(
  git: GitRunner,
  repos: RepositoryCache,
  req: WorktreeRequest,
): Promise<string> {
  const existing = await registeredWorktreeBranch(git, req.repoDir, req.worktreePath);
  if (existing !== undefined) {
    if (existing === null)
      throw new WorkspaceError('conflict', `${req.worktreePath} is a worktree without a branch`);
    return existing;
  }
  // A directory that git does not know as a worktree is debris of an interrupted attempt.
  await rm(req.worktreePath, { recursive: true, force: true });
  await git.run(['-C', req.repoDir, 'worktree', 'prune']);

  if (req.mode === 'EXISTING') {
    const branch = req.branchName;
    await repos.fetchBranch(req.repoDir, branch).catch(() => undefined);
    const local = await repos.hasRef(req.repoDir, `refs/heads/${branch}`);
    const remote = await repos.hasRef(req.repoDir, `refs/remotes/origin/${branch}`);
    if (!local && !remote)
      throw new WorkspaceError(
        'branch_not_found',
        `Branch "${branch}" does not exist on origin; push it before opening or sending the workspace`,
      );
    const args = local
      ? ['-C', req.repoDir, 'worktree', 'add', req.worktreePath, branch]
      : ['-C', req.repoDir, 'worktree', 'add', '--track', '-b', branch, req.worktreePath, `origin/${branch}`];
    try {
      await git.run(args);
    } catch (err) {
      if (err instanceof GitCommandError && /already (checked out|used by worktree)/.test(err.stderr)) {
        throw new WorkspaceError(
          'branch_in_use',
          `Branch "${branch}" is already checked out by another workspace`,
        );
      }
      throw err;
    }
    return branch;
  }

  const start = `refs/remotes/origin/${req.baseBranch}`;
  if (!(await repos.hasRef(req.repoDir, start))) {
    throw new WorkspaceError('branch_not_found', `Base branch "${req.baseBranch}" does not exist on origin`);
  }
  for (let n = 1; n <= MAX_NAME_ATTEMPTS; n++) {
    const candidate = branchCandidate(req.branchName, n);
    if (req.reserved.has(candidate)) continue;
    if (await repos.hasRef(req.repoDir, `refs/heads/${candidate}`)) continue;
    if (await repos.hasRef(req.repoDir, `refs/remotes/origin/${candidate}`)) continue;
    try {
      await git.run([
        '-C',
        req.repoDir,
        'worktree',
        'add',
        '--no-track',
        '-b',
        candidate,
        req.worktreePath,
        start,
      ]);
      return candidate;
    } catch (err) {
      // Another workspace created the same name between the check and here: try the next one.
      if (err instanceof GitCommandError && /already exists/.test(err.stderr)) continue;
      throw err;
    }
  }
  throw new WorkspaceError(
    'conflict',
    `No free branch name for "${req.branchName}" after ${MAX_NAME_ATTEMPTS} tries`,
  );
}

/**
 * The branch checked out at `path` if git knows it as a worktree of `repoDir` (null when detached),
 * undefined when it is not a registered worktree.
 */
async function registeredWorktreeBranch(
  git: GitRunner,
  repoDir: string,
  path: string,
): Promise<string | null | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  const real = await realpath(path);
  const { stdout } = await git.run(['-C', repoDir, 'worktree', 'list', '--porcelain']);
  for (const block of stdout.split('\n\n')) {
    const lines = block.split('\n');
    const wt = lines.find((l) => l.startsWith('worktree '))?.slice('worktree '.length);
    if (wt === undefined) continue;
    const wtReal = await realpath(wt).catch(() => wt);
    if (wtReal !== real) continue;
    const branch = lines.find((l) => l.startsWith('branch '))?.slice('branch '.length);
    return branch === undefined ? null : branch.replace(/^refs\/heads\//, '');
  }
  return undefined;
}

/** Removes a worktree (uncommitted changes included) but keeps its branch, so pushed and local commits survive. */
export async function removeWorktree(git: GitRunner, repoDir: string, worktreePath: string): Promise<void> {
  await git.run(['-C', repoDir, 'worktree', 'remove', '--force', worktreePath]).catch(() => undefined);
  await rm(worktreePath, { recursive: true, force: true });
  await git.run(['-C', repoDir, 'worktree', 'prune']).catch(() => undefined);
}
