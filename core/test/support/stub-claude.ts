import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Writes an executable that runs stub-claude.mjs with Node. A wrapper is needed because the session
 * passes the CLI's flags (starting with -p) as argv, which Node itself would take for its own.
 */
export function writeStubClaude(dir: string): string {
  const script = fileURLToPath(new URL('./stub-claude.mjs', import.meta.url));
  const path = join(dir, 'stub-claude');
  writeFileSync(path, `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Environment for the stub: just PATH and the mode. */
export type StubClaudeMode = 'garbage' | 'silent' | 'no-session-id';

export function stubClaudeEnv(mode: StubClaudeMode): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', STUB_CLAUDE_MODE: mode };
}
