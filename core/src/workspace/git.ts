import { execFile } from 'node:child_process';
import { WorkspaceError } from './errors.js';

export interface GitResult {
  stdout: string;
  stderr: string;
}

/** Runs git; throws GitCommandError on a non-zero exit. Injected so tests and the agent choose binary and env. */
export interface GitRunner {
  run(args: readonly string[], options?: { cwd?: string; timeoutMs?: number }): Promise<GitResult>;
}

export class GitCommandError extends WorkspaceError {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    // git's reason is on its fatal:/error: lines; the advice after them ("Please make sure you have the
    // correct access rights…") says nothing about which of several causes it was.
    const lines = stderr
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const reasons = lines.filter((line) => /^(fatal|error):/.test(line));
    const said = (reasons.length > 0 ? reasons : lines).slice(-3).join(' ').slice(0, 500);
    super(
      'git_failed',
      `git ${subcommand(args)} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${said || 'no output'}`,
    );
    this.name = 'GitCommandError';
  }
}

/** The git subcommand of an argument list, past global options like `-C <dir>` and `-c <key=value>`. */
function subcommand(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-C' || arg === '-c') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return '';
}

export interface GitRunnerOptions {
  gitPath?: string;
  /** Complete environment (HOME with the VM user's git credential helper, PATH for helpers like gh). */
  env: Record<string, string | undefined>;
  /** Default per-command timeout; clones of big repositories need minutes. */
  timeoutMs?: number;
}

export function createGitRunner(options: GitRunnerOptions): GitRunner {
  const gitPath = options.gitPath ?? 'git';
  // Never wait for a password prompt: a missing credential must fail, not hang the agent.
  const env = { ...options.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '' };
  const defaultTimeout = options.timeoutMs ?? 10 * 60_000;
  return {
    run(args, runOptions = {}) {
      return new Promise((resolve, reject) => {
        execFile(
          gitPath,
          [...args],
          {
            cwd: runOptions.cwd,
            env,
            timeout: runOptions.timeoutMs ?? defaultTimeout,
            killSignal: 'SIGKILL',
            maxBuffer: 64 * 1024 * 1024,
            encoding: 'utf8',
          },
          (error, stdout, stderr) => {
            if (error === null) return resolve({ stdout, stderr });
            if (error.code === 'ENOENT') {
              return reject(new WorkspaceError('git_failed', `git is not installed at "${gitPath}"`));
            }
            const code = typeof error.code === 'number' ? error.code : null;
            const why = error.killed ? `${stderr}\n(timed out)` : stderr || error.message;
            reject(new GitCommandError(args, code, why));
          },
        );
      });
    },
  };
}
