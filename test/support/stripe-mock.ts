/**
 * Stripe's own stripe-mock (a Go program that answers every Stripe API path from fixtures and validates
 * each request against Stripe's API description), as tests run it. dev.sh installs it
 * (`GOPATH=$FFC_DATA_DIR/tools/go go install github.com/stripe/stripe-mock@…`) and exports STRIPE_MOCK_BIN.
 *
 * It listens on a unix socket in a fresh directory, not a port: nothing to collide with between test
 * processes, and no listener beyond this machine (asked for a TCP address, it also opens HTTPS on every
 * interface). Only the project's fake (test/support/fake-stripe.ts) talks to it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testConfig } from './services.js';

export function stripeMockBinary(): string {
  const fromEnv = process.env.STRIPE_MOCK_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const installed = join(testConfig.dataDir, 'tools', 'go', 'bin', 'stripe-mock');
  if (existsSync(installed)) return installed;
  const onPath = spawnSync('sh', ['-c', 'command -v stripe-mock'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  throw new Error(
    'stripe-mock not found: run `scripts/dev.sh services` (it runs go install github.com/stripe/stripe-mock@v0.203.0)',
  );
}

export type StripeMockAnswer = { status: number; headers: Record<string, string>; body: string };

export type StripeMock = {
  socketPath: string;
  /** Sends one request as the Stripe client sent it (method, path with query, headers, raw body). */
  send: (req: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body: string;
  }) => Promise<StripeMockAnswer>;
  stop: () => Promise<void>;
};

function send(
  socketPath: string,
  req: { method: string; path: string; headers: Record<string, string>; body: string },
): Promise<StripeMockAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        socketPath,
        method: req.method,
        path: req.path,
        headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (typeof value === 'string') headers[name] = value;
          }
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(req.body);
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

/** Starts stripe-mock and resolves once it answers a request; fails with its output if it does not. */
export async function startStripeMock(): Promise<StripeMock> {
  const dir = mkdtempSync(join(tmpdir(), 'ffc-stripe-mock-'));
  const socketPath = join(dir, 'http.sock');
  const child = spawn(stripeMockBinary(), ['-http-unix', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`stripe-mock exited with code ${child.exitCode}:\n${output}`);
    }
    try {
      const answer = await send(socketPath, {
        method: 'GET',
        path: '/v1/balance',
        headers: { authorization: 'Bearer sk_test_ready' },
        body: '',
      });
      if (answer.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`stripe-mock did not answer within 15 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { socketPath, send: (req) => send(socketPath, req), stop };
}
