/**
 * The production worker entry (worker/main.ts) as a separate process, so a test can kill it with SIGKILL
 * mid-work and start another, exactly as a crash and a restart happen in production.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './env.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type WorkerProcess = {
  child: ChildProcess;
  output: () => string;
  kill: (signal: NodeJS.Signals) => Promise<void>;
};

/** Starts worker/main.ts and resolves once it reports it is polling. */
export async function startWorkerProcess(
  env: Record<string, string>,
  timeoutMs = 90_000,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'worker/main.ts'], {
    cwd: root,
    env: childEnv({ LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  await new Promise<void>((resolveStarted, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), timeoutMs);
    const check = () => {
      if (output.includes('worker running')) {
        clearTimeout(timer);
        resolveStarted();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output}`));
    });
  });
  return {
    child,
    output: () => output,
    kill: (signal) =>
      new Promise<void>((resolveKilled) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveKilled();
        child.once('exit', () => resolveKilled());
        child.kill(signal);
      }),
  };
}
