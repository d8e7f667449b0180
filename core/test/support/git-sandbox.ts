// A throwaway git world for tests: its own HOME and config (nothing from the machine's git setup leaks in),
// and "remote" repositories as local bare repos reached through file:// URLs.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface GitSandbox {
  readonly dir: string;
  /** Environment for git (and for the product's git runner) inside the sandbox. */
  readonly env: Record<string, string>;
  git(args: string[], cwd?: string): Promise<string>;
  /**
   * Creates a bare "remote" `owner/name` whose default branch `main` holds `files`, plus extra branches
   * (each one commit on top of main). Returns its file:// URL.
   */
  createRemote(
    ownerAndName: string,
    files: Record<string, string>,
    branches?: Record<string, Record<string, string>>,
  ): Promise<string>;
  /** Path of a remote's bare repository. */
  remotePath(ownerAndName: string): string;
  cleanup(): void;
}

export function createGitSandbox(): GitSandbox {
  const dir = mkdtempSync(join(tmpdir(), 'ff-git-'));
  const home = join(dir, 'home');
  mkdirSync(home, { recursive: true });
  writeFileSync(
    join(home, '.gitconfig'),
    [
      '[user]',
      '\tname = FF Test',
      '\temail = ff-test@example.invalid',
      '[init]',
      '\tdefaultBranch = main',
      '[advice]',
      '\tdetachedHead = false',
      '',
    ].join('\n'),
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    LANG: 'C',
    LC_ALL: 'C',
  };
  const git = async (args: string[], cwd?: string) => (await exec('git', args, { cwd, env })).stdout;
  const remotePath = (ownerAndName: string) => join(dir, 'remotes', `${ownerAndName}.git`);
  let seeds = 0;

  return {
    dir,
    env,
    git,
    remotePath,
    async createRemote(ownerAndName, files, branches = {}) {
      const bare = remotePath(ownerAndName);
      mkdirSync(dirname(bare), { recursive: true });
      await git(['init', '--quiet', '--bare', bare]);
      const seed = join(dir, `seed-${seeds++}`);
      await git(['clone', '--quiet', bare, seed]);
      const writeAll = (entries: Record<string, string>) => {
        for (const [path, content] of Object.entries(entries)) {
          mkdirSync(dirname(join(seed, path)), { recursive: true });
          writeFileSync(join(seed, path), content);
        }
      };
      writeAll(files);
      await git(['add', '-A'], seed);
      await git(['commit', '--quiet', '-m', 'initial'], seed);
      await git(['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], seed);
      for (const [branch, branchFiles] of Object.entries(branches)) {
        await git(['checkout', '--quiet', '-B', branch, 'main'], seed);
        writeAll(branchFiles);
        await git(['add', '-A'], seed);
        await git(['commit', '--quiet', '-m', `work on ${branch}`], seed);
        await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], seed);
      }
      rmSync(seed, { recursive: true, force: true });
      return `file://${bare}`;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
