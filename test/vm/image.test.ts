import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import { ensureVmImage, VM_IMAGE_LATEST, vmImageInputs } from '../../scripts/build-vm-image.js';
import { testDocker, uniqueSuffix } from '../support/services.js';
import { runInImage } from './helpers.js';

/**
 * The VM image (vm/Dockerfile on the offline base): built here when its inputs changed, then inspected and
 * run. The agent inside it is exercised end to end by lifecycle.test.ts.
 */
describe('VM image', () => {
  let docker: Docker;
  let tag: string;
  const labels = { 'ffc.test': `vm-image-${uniqueSuffix()}` };

  before(async function () {
    this.timeout(20 * 60_000); // a cold build compiles SQLite and node-pty
    docker = testDocker();
    ({ tag } = await ensureVmImage({ docker }));
  });

  const run = (cmd: string[]) => runInImage(docker, tag, cmd, labels);

  it('is tagged by the hash of its inputs, and latest points at it', async () => {
    assert.match(tag, /^ffc-vm:[0-9a-f]{12}$/);
    const [image, latest] = await Promise.all([
      docker.getImage(tag).inspect(),
      docker.getImage(VM_IMAGE_LATEST).inspect(),
    ]);
    assert.equal(latest.Id, image.Id);
    const inputs = vmImageInputs();
    assert.ok(inputs.includes('vm/Dockerfile') && inputs.includes('package-lock.json'));
    assert.ok(inputs.some((path) => path.startsWith('core/src/agent/')));
    assert.ok(!inputs.some((path) => path.includes('/dist/') || path.includes('node_modules')));
    assert.deepEqual((await ensureVmImage({ docker })).built, false, 'a second run builds nothing');
  });

  it('runs the agent as the non-root user ff (1000:1000) with its home on /home/ff', async () => {
    const image = await docker.getImage(tag).inspect();
    assert.equal(image.Config.User, '1000:1000');
    assert.deepEqual(image.Config.Entrypoint, ['node', '/opt/ff-agent/dist/agent/main.js']);
    assert.ok(image.Config.Env.includes('HOME=/home/ff'));
    const id = await run(['sh', '-c', 'id -u; id -g; id -un; stat -c %u:%g /home/ff /run/ff-agent']);
    assert.equal(id.exitCode, 0, id.stderr);
    assert.deepEqual(id.stdout.trim().split('\n'), ['1000', '1000', 'ff', '1000:1000', '1000:1000']);
  });

  it('carries the real Claude Code CLI, gh, git and procps', async () => {
    const claude = await run(['claude', '--version']);
    assert.equal(claude.exitCode, 0, claude.stderr);
    assert.match(claude.stdout, /^2\.1\.197 \(Claude Code\)/);
    const gh = await run(['gh', '--version']);
    assert.equal(gh.exitCode, 0, gh.stderr);
    assert.match(gh.stdout, /^gh version 2\./);
    const tools = await run(['sh', '-c', 'git --version && ps --version && node --version']);
    assert.equal(tools.exitCode, 0, tools.stderr);
    assert.match(tools.stdout, /git version 2\.[\s\S]*procps-ng[\s\S]*v20\./);
  });

  it('holds the compiled agent with native modules built for its own Node, and no build tools', async () => {
    const natives = await run([
      'node',
      '-e',
      [
        "const { createRequire } = require('node:module');",
        "const req = createRequire('/opt/ff-agent/package.json');",
        "const db = new (req('better-sqlite3'))(':memory:');",
        "const pty = req('node-pty');",
        "console.log(db.prepare('select sqlite_version() as v').get().v, typeof pty.spawn);",
      ].join(' '),
    ]);
    assert.equal(natives.exitCode, 0, natives.stderr);
    assert.match(natives.stdout, /^3\.\d+\.\d+ function/);
    const layout = await run([
      'sh',
      '-c',
      'test -f /opt/ff-agent/dist/agent/main.js && ! test -e /opt/ff-agent/src && ' +
        '! command -v g++ && ! command -v make && ! command -v python3 && echo clean',
    ]);
    assert.equal(layout.stdout.trim(), 'clean', layout.stderr);
  });

  it('refuses to start the agent without its socket and secret settings', async () => {
    // The image's defaults point at /run/ff-agent; with nothing mounted there, the agent says what is missing.
    const agent = await run(['node', '/opt/ff-agent/dist/agent/main.js']);
    assert.notEqual(agent.exitCode, 0);
    assert.match(agent.stderr, /ff-agent failed to start: .*secret/i);
  });
});
