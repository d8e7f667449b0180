import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WorkspaceError } from './errors.js';
import type { GitRunner } from './git.js';
import { assertInside } from './path-safety.js';
import { parseRepoUrl, type RepoUrlScheme } from './repo-url.js';

/**
 * One clone per repository under the repos root (the VM's volume), shared by all of its workspaces' worktrees.
 * The clone is bare with origin's branches under refs/remotes/origin/*, so it has no checked-out branch of
 * its own that could block a worktree, and no stale local copies of remote branches.
 */
export class RepositoryCache {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly git: GitRunner,
    private readonly reposRoot: string,
    private readonly allowedSchemes: readonly RepoUrlScheme[],
  ) {}

  /** Directory of the repository's clone (not created). */
  async directoryFor(repoUrl: string): Promise<string> {
    const { cacheKey } = parseRepoUrl(repoUrl, this.allowedSchemes);
    const last = cacheKey.length - 1;
    const dir = join(this.reposRoot, ...cacheKey.map((s, i) => (i === last ? `${s}.git` : s)));
    await assertInside(this.reposRoot, dir);
    return dir;
  }

  /**
   * Runs `task` while no other git work of this service touches the clone. git's fetch, worktree add and
   * worktree prune are not safe against each other in one repository (a fetch's connectivity check trips
   * over a half-created worktree, prune races add), so every mutation of a clone goes through here.
   */
  exclusive<T>(repoDir: string, task: () => Promise<T>): Promise<T> {
    return this.withLock(repoDir, task);
  }

  /** Clones on first use and fetches every later time; concurrent calls for one repository queue up. */
  async ensure(repoUrl: string): Promise<string> {
    const dir = await this.directoryFor(repoUrl);
    return this.withLock(dir, async () => {
      if (await isDirectory(dir)) {
        const { stdout } = await this.git.run(['-C', dir, 'config', '--get', 'remote.origin.url']);
        if (stdout.trim() !== repoUrl) {
          throw new WorkspaceError(
            'conflict',
            `${dir} already holds a clone of ${stdout.trim()}, not ${repoUrl}`,
          );
        }
        await this.git.run(['-C', dir, 'fetch', '--prune', 'origin']);
        return dir;
      }
      // Built beside its final name and renamed, so a crash never leaves a half-made clone under that name.
      await mkdir(dirname(dir), { recursive: true });
      const tmp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await this.git.run(['init', '--quiet', '--bare', tmp]);
        await this.git.run(['-C', tmp, 'remote', 'add', 'origin', '--', repoUrl]);
        // `git push` from a worktree creates the same-named branch on origin without -u.
        await this.git.run(['-C', tmp, 'config', 'push.autoSetupRemote', 'true']);
        await this.git.run(['-C', tmp, 'fetch', '--prune', 'origin']);
        await this.git.run(['-C', tmp, 'remote', 'set-head', 'origin', '--auto']).catch(() => undefined);
        await rename(tmp, dir);
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
      return dir;
    });
  }

  /** origin's default branch (from origin/HEAD), or "main" when origin did not say. */
  async defaultBranch(repoDir: string): Promise<string> {
    try {
      const { stdout } = await this.git.run([
        '-C',
        repoDir,
        'symbolic-ref',
        '--short',
        'refs/remotes/origin/HEAD',
      ]);
      const name = stdout.trim().replace(/^origin\//, '');
      return name === '' ? 'main' : name;
    } catch {
      return 'main';
    }
  }

  async hasRef(repoDir: string, ref: string): Promise<boolean> {
    try {
      await this.git.run(['-C', repoDir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }

  async fetchBranch(repoDir: string, branch: string): Promise<void> {
    await this.git.run([
      '-C',
      repoDir,
      'fetch',
      'origin',
      `+refs/heads/${branch}:refs/remotes/origin/${branch}`,
    ]);
  }

  private async withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
