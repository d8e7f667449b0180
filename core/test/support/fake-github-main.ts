// Runs a fake GitHub in its own process, e.g. for a VM container or another test process:
//   tsx core/test/support/fake-github-main.ts --dir /tmp/x [--fixtures fixtures.json]
// Prints one JSON line `{"socketPath": …, "configDir": …}` when ready; drive it with PUT /__fixtures
// (putFakeGitHubFixtures) and stop it with SIGTERM.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startFakeGitHub } from './fake-github.js';

const { values } = parseArgs({
  options: { dir: { type: 'string' }, fixtures: { type: 'string' } },
});
const fixtures = values.fixtures ? JSON.parse(readFileSync(values.fixtures, 'utf8')) : {};
const fake = await startFakeGitHub({ fixtures, ...(values.dir ? { dir: values.dir } : {}) });
process.stdout.write(`${JSON.stringify({ socketPath: fake.socketPath, configDir: fake.configDir })}\n`);
const stop = () => {
  fake.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
