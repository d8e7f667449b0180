/**
 * Every benchmark, one after another in its own process so one's memory does not colour the next:
 *
 *   npm run bench            (needs the backing services: scripts/dev.sh services)
 *   npm run bench -- ratchet web   only the named ones
 *
 * Each prints its figures next to a baseline measured in the same run; nothing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const benchmarks = [
  'agent.ts',
  'vm-containers.ts',
  'vm-actor.ts',
  'relay.ts',
  'workspaces.ts',
  'sessions.ts',
  'web.ts',
  'ratchet.ts',
];
const only = process.argv.slice(2);
const chosen =
  only.length === 0 ? benchmarks : benchmarks.filter((file) => only.includes(file.replace(/\.ts$/, '')));
let failed = 0;
for (const file of chosen) {
  console.log(`\n=== bench/${file} ===`);
  const result = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', resolve(here, file)],
    {
      stdio: 'inherit',
    },
  );
  if (result.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
