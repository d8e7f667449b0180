/** Runs the real `ffc` binary (node_modules/.bin/ffc) as a subprocess, as a user or a script would. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { childEnv } from '../support/env.js';

export const FFC_BIN = resolve(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'ffc');

export type FfcResult = {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
};

export type FfcOptions = {
  env?: Record<string, string>;
  /** Written to stdin, then stdin is closed; stdin is empty (closed at once) without it. */
  input?: string;
  cwd?: string;
  /** Kills it (SIGKILL) after this long, so a hung ffc fails its test instead of the whole run. */
  killAfterMs?: number;
};

export function runFfc(args: string[], options: FfcOptions = {}): Promise<FfcResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(FFC_BIN, args, {
      cwd: options.cwd,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh FFC_CONFIG_DIR (not created: ffc login must create it). */
export function freshConfigDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'ffc-cli-')), 'config');
}

/** One readable line: no JSON body, no stack trace. */
export function isReadableErrorLine(stderr: string): boolean {
  const lines = stderr.trim().split('\n');
  return (
    lines.length === 1 &&
    lines[0]?.startsWith('ffc: ') === true &&
    !/\{\s*"|"error"\s*:/.test(stderr) &&
    !/\bat .+:\d+:\d+/.test(stderr)
  );
}
