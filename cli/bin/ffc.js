#!/usr/bin/env node
// Runs the TypeScript sources of ffc (this repository has no build step for the cloud side). The child gets
// the terminal as it is, so `ffc attach` and `ffc vm terminal` can put it in raw mode.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// tsx is found from here, not from the directory ffc runs in (`ffc send` runs in any checkout).
const tsx = import.meta.resolve('tsx');
const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');
const child = spawn(
  process.execPath,
  ['--conditions=source', '--import', tsx, main, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
// Ctrl-C reaches the child too (same process group); the child decides what it means.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => {
  // Killed by a signal: exit as a shell reports it (128 + the signal's number; Ctrl-C is 130). Re-raising
  // the signal here would hit the SIGINT handler above and exit 0.
  if (signal) process.exit(128 + (constants.signals[signal] ?? 0));
  else process.exit(code ?? 1);
});
