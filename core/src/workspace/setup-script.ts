import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { safeParseJson } from '../protocol/json.js';
import { killProcessGroup, type ProcessGroupRecorder } from '../protocol/process-group.js';
import type { SetupScriptResult } from '../protocol/workspace.js';
import { PathEscapeError } from './errors.js';
import { resolveInside } from './path-safety.js';

export const PROJECT_CONFIG_FILE = 'factory-factory.json';
const MAX_CONFIG_BYTES = 64 * 1024;

/** `factory-factory.json` at the root of a repository. */
export const ProjectConfigSchema = z.object({
  scripts: z
    .object({
      setup: z.string().max(10_000).optional(),
      run: z.string().max(10_000).optional(),
      postRun: z.string().max(10_000).optional(),
      cleanup: z.string().max(10_000).optional(),
    })
    .optional(),
});
export type ProjectConfig = z.output<typeof ProjectConfigSchema>;

export type ProjectConfigRead =
  | { kind: 'absent' }
  | { kind: 'invalid'; message: string }
  | { kind: 'ok'; config: ProjectConfig };

/** Reads the worktree's factory-factory.json; a symlink pointing outside the worktree counts as invalid. */
export async function readProjectConfig(worktreePath: string): Promise<ProjectConfigRead> {
  let path: string;
  try {
    path = await resolveInside(worktreePath, PROJECT_CONFIG_FILE);
  } catch (err) {
    if (err instanceof PathEscapeError) return { kind: 'invalid', message: err.message };
    throw err;
  }
  try {
    const info = await stat(path);
    if (!info.isFile()) return { kind: 'invalid', message: `${PROJECT_CONFIG_FILE} is not a file` };
    if (info.size > MAX_CONFIG_BYTES)
      return { kind: 'invalid', message: `${PROJECT_CONFIG_FILE} is too large` };
  } catch {
    return { kind: 'absent' };
  }
  const parsed = safeParseJson(ProjectConfigSchema, await readFile(path, 'utf8'), MAX_CONFIG_BYTES);
  return parsed.ok
    ? { kind: 'ok', config: parsed.value }
    : { kind: 'invalid', message: `${PROJECT_CONFIG_FILE}: ${parsed.error.message}` };
}

export interface SetupScriptOptions {
  /** Killed (with everything it started) after this long. The desktop's default is 300 s. */
  timeoutMs: number;
  env: Record<string, string | undefined>;
  shell?: string;
  /** Only the tail of the output is kept. */
  maxOutputBytes?: number;
  /** Aborting kills the script's process group and rejects with SetupScriptCancelledError. */
  signal?: AbortSignal;
  /** Told the script's process group, so a successor of a crashed owner can end it. */
  processGroups?: ProcessGroupRecorder;
}

/** The setup script was cancelled (its owner is stopping): it has no outcome, and may run again later. */
export class SetupScriptCancelledError extends Error {
  constructor() {
    super('the setup script was cancelled');
    this.name = 'SetupScriptCancelledError';
  }
}

/** Runs `factory-factory.json`'s setup script with `bash -c` in the worktree, keeping the output's tail. */
export async function runSetupScript(
  worktreePath: string,
  options: SetupScriptOptions,
): Promise<SetupScriptResult> {
  const read = await readProjectConfig(worktreePath);
  if (read.kind === 'absent') return { status: 'NOT_CONFIGURED', exitCode: null, output: '' };
  if (read.kind === 'invalid') return { status: 'INVALID_CONFIG', exitCode: null, output: read.message };
  const script = read.config.scripts?.setup;
  if (script === undefined || script.trim() === '')
    return { status: 'NOT_CONFIGURED', exitCode: null, output: '' };
  return runShell(script, worktreePath, options);
}

function runShell(script: string, cwd: string, options: SetupScriptOptions): Promise<SetupScriptResult> {
  const maxBytes = options.maxOutputBytes ?? 64 * 1024;
  const { signal, processGroups } = options;
  if (signal?.aborted) return Promise.reject(new SetupScriptCancelledError());
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills the script's children too (npm install spawns plenty).
    const child = spawn(options.shell ?? 'bash', ['-c', script], {
      cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = child.pid;
    if (pgid !== undefined) processGroups?.started(pgid, 'setup_script');
    let output = Buffer.alloc(0);
    const keep = (chunk: Buffer) => {
      output = Buffer.concat([output, chunk]);
      if (output.length > maxBytes * 2) output = output.subarray(output.length - maxBytes);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let cancelled = false;
    const killAll = () => {
      if (pgid !== undefined) killProcessGroup(pgid);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, options.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      killAll();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // Whatever the script left running in the background goes too.
      killAll();
      if (pgid !== undefined) processGroups?.ended(pgid);
    };
    const text = () => {
      const tail = output.length > maxBytes ? output.subarray(output.length - maxBytes) : output;
      return tail.toString('utf8');
    };
    child.once('error', (err) => {
      finish();
      resolve({ status: 'FAILED', exitCode: null, output: `${text()}\n${err.message}`.trim() });
    });
    child.once('close', (code) => {
      finish();
      if (cancelled) {
        reject(new SetupScriptCancelledError());
      } else if (timedOut) {
        resolve({
          status: 'TIMED_OUT',
          exitCode: null,
          output: `${text()}\n[setup timed out after ${options.timeoutMs} ms]`,
        });
      } else {
        resolve({ status: code === 0 ? 'SUCCEEDED' : 'FAILED', exitCode: code, output: text() });
      }
    });
  });
}
