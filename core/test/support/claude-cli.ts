/** Helpers to run the real Claude Code CLI in tests: where its binary is, and a hermetic environment. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * The native binary from the platform package. The wrapper's `bin` may be a stub when install
 * scripts were skipped, so we never go through it.
 */
export function claudeBinPath(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('@anthropic-ai/claude-code-linux-x64/package.json');
  return join(dirname(manifest), 'claude');
}

/**
 * Environment for one CLI run against the fake API: a fresh HOME, no retries (a 5xx would otherwise
 * be retried for minutes), and no traffic anywhere but the fake.
 */
export function claudeTestEnv(options: { fakeUrl: string; home: string }): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: options.home,
    SHELL: '/bin/bash',
    LANG: 'C.UTF-8',
    ANTHROPIC_BASE_URL: options.fakeUrl,
    ANTHROPIC_API_KEY: 'sk-fake-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
  };
}

/** Temp directories removed by cleanup(); call it from an `after`/`afterEach` hook. */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `ff-${prefix}-`));
    this.dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
