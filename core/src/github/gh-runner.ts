import { execFile } from 'node:child_process';
import { GitHubError } from './errors.js';

export interface GhRunResult {
  /** 0 on success. gh exits 1 on API errors and 4 when it has no credentials. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the gh binary. Non-zero exits are returned (callers read stdout of `gh api -i` even on errors). */
export interface GhRunner {
  run(args: readonly string[]): Promise<GhRunResult>;
}

export interface GhRunnerOptions {
  /** Path of the gh binary; "gh" searches PATH. */
  ghPath?: string;
  /**
   * The complete environment gh runs with (HOME / GH_CONFIG_DIR hold the VM user's credentials). Passed
   * in by the composition root; the non-interactive switches below are added on top.
   */
  env: Record<string, string | undefined>;
  /** Per call; a stuck gh is killed. */
  timeoutMs?: number;
  /** At most this many gh processes at once per runner (GitHub dislikes bursts; the VM has few cores). */
  maxConcurrent?: number;
}

const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** Variables that keep gh from prompting, paging, colouring or phoning home for updates. */
const NON_INTERACTIVE = {
  GH_PROMPT_DISABLED: '1',
  GH_NO_UPDATE_NOTIFIER: '1',
  GH_SPINNER_DISABLED: '1',
  GH_PAGER: 'cat',
  NO_COLOR: '1',
  CLICOLOR: '0',
};

export function createGhRunner(options: GhRunnerOptions): GhRunner {
  const ghPath = options.ghPath ?? 'gh';
  const timeoutMs = options.timeoutMs ?? 30_000;
  const env = { ...options.env, ...NON_INTERACTIVE };
  const limit = createLimiter(options.maxConcurrent ?? 5);

  const runOnce = (args: readonly string[]) =>
    new Promise<GhRunResult>((resolve, reject) => {
      execFile(
        ghPath,
        [...args],
        { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (error === null) return resolve({ exitCode: 0, stdout, stderr });
          if (error.code === 'ENOENT' || error.code === 'EACCES') {
            return reject(
              new GitHubError(
                'cli_not_installed',
                `The GitHub CLI (gh) is not installed or not executable at "${ghPath}"`,
              ),
            );
          }
          if (error.killed || error.signal) {
            return reject(new GitHubError('network_error', `gh did not answer within ${timeoutMs} ms`));
          }
          if (typeof error.code === 'number') return resolve({ exitCode: error.code, stdout, stderr });
          if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
            return reject(
              new GitHubError('invalid_response', 'gh printed more output than the product accepts'),
            );
          }
          reject(new GitHubError('unknown', `gh could not be run: ${error.message}`));
        },
      );
    });

  return { run: (args) => limit(() => runOnce(args)) };
}

function createLimiter(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  return async (task) => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
