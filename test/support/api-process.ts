/**
 * The production api entry (api/main.ts) as a separate process configured only by environment variables,
 * exactly as a deployment runs it, so a test can kill it with SIGKILL mid-stream and start another on the
 * same port (clients reconnect to the same URL, as they would behind a load balancer).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './env.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type ApiProcess = {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  output: () => string;
  /** Resolves once the process has exited (at once if it already has). */
  kill: (signal: NodeJS.Signals) => Promise<void>;
};

/** A port that was free a moment ago (the api wants a fixed one: API_PORT has no "any"). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts api/main.ts with `env` (API_PORT among it) and resolves once it logs that it listens. */
export async function startApiProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ApiProcess> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'api/main.ts'], {
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
  const url = await new Promise<string>((resolveStarted, reject) => {
    const timer = setTimeout(() => reject(new Error(`api did not start:\n${output}`)), timeoutMs);
    const check = () => {
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"api listening"/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolveStarted(match[1]);
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`api exited with ${code}:\n${output}`));
    };
    child.stdout?.on('data', check);
    child.once('exit', onExit);
  });
  return {
    child,
    url,
    output: () => output,
    kill: (signal) =>
      new Promise<void>((resolveKilled) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolveKilled();
        child.once('exit', () => resolveKilled());
        child.kill(signal);
      }),
  };
}
