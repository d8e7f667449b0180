/**
 * A stranger's program, copied into a scratch project by ../package.test.ts and compiled there against the
 * published `.d.ts`: it imports `@factory-factory/core/ratchet`, then the root entry, and shows that neither
 * loaded a native addon; then it loads one on purpose (argv[2], a built better-sqlite3) to show that the
 * check sees addons at all. An addon shows up both as a `process.dlopen` call and as a mapping of its
 * `.node` file in /proc/self/maps.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const opened: string[] = [];
const dlopen = process.dlopen.bind(process);
process.dlopen = (module: object, filename: string, flags?: number) => {
  opened.push(filename);
  return flags === undefined ? dlopen(module, filename) : dlopen(module, filename, flags);
};

function nativeModules(): string[] {
  const mapped = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((line) => line.split(/\s+/).slice(5).join(' '))
    .filter((path) => path.endsWith('.node'));
  return [...new Set([...opened, ...mapped])].sort();
}

function report(after: string): void {
  const loaded = nativeModules();
  process.stdout.write(`native after ${after}: ${loaded.length === 0 ? 'none' : loaded.join(', ')}\n`);
}

const ratchet = await import('@factory-factory/core/ratchet');
const multiplier = ratchet.nextBackoffMultiplier(1, 'rate_limited');
process.stdout.write(
  `ratchet: state ${ratchet.deriveRatchetState(null)}, next poll in ${ratchet.pollDelayMs(30_000, multiplier)} ms\n`,
);
report('@factory-factory/core/ratchet');

const core = await import('@factory-factory/core');
process.stdout.write(`root: ${Object.keys(core).sort().join(', ')}\n`);
report('@factory-factory/core');

const control = process.argv[2];
if (control) {
  const Database = createRequire(import.meta.url)(control) as new (path: string) => { close(): void };
  new Database(':memory:').close();
  report(`loading ${control} (control)`);
}
