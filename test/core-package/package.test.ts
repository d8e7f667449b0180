/**
 * @factory-factory/core as a stranger gets it: `npm pack` in core/, the tarball installed into an empty
 * project offline, two small consumers (./consumer/) type-checked against the published `.d.ts` and run
 * with plain `node` (no tsx, no `source` condition). One drives the real Claude CLI against the fake
 * Anthropic API through ClaudeSession; the other imports the ratchet and the root entry and shows that no
 * native addon was loaded.
 *
 * The scratch project gets a lockfile cut from the repository's own (the versions and hashes this repo
 * installed and tested): the npm cache holds those tarballs but not every registry document, so an offline
 * install works from a lock and not from bare version ranges. Install scripts are skipped: better-sqlite3
 * and node-pty would compile from source offline (minutes), and neither consumer needs them.
 *
 * Each run leaves its transcript (the packed file list and both consumers' output) in
 * <tmpdir>/ffc-core-package.txt, which is what a release note quotes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { claudeBinPath, claudeTestEnv, TempDirs } from '../../core/test/support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { childEnv } from '../support/env.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const coreDir = join(repoRoot, 'core');
const transcriptFile = join(tmpdir(), 'ffc-core-package.txt');

type Run = { status: number | null; stdout: string; stderr: string };

/** Runs a process to its end without blocking this one (the fake Anthropic API lives in this process). */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

function describeRun(what: string, result: Run): string {
  return `${what} exited ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/**
 * This process's environment for npm and tsc, minus what would change what they do: npm_* settings
 * inherited from an `npm run` above us (a local prefix there would make `npm pack` pack the root), and
 * NODE_OPTIONS (dev.sh sets `--conditions=source`, which would point the consumers at TypeScript).
 */
function toolEnv(): NodeJS.ProcessEnv {
  const env = childEnv();
  for (const key of Object.keys(env)) if (/^npm_/i.test(key) || key === 'NODE_OPTIONS') delete env[key];
  return env;
}

type LockEntry = {
  version?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
};

/** Node's resolution over lock locations: <from>/node_modules/<name>, then each parent's. */
function resolveInLock(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate] && !packages[candidate].link) return candidate;
    if (dir === '') return undefined;
    const cut = dir.lastIndexOf('node_modules/');
    dir = cut <= 0 ? '' : dir.slice(0, cut - 1);
  }
}

/**
 * The repository lock's entries for everything `names` (resolved from core/) need, placed as a project
 * beside core would have them: core's own nested node_modules move to the top.
 */
function lockEntriesFor(names: string[]): Record<string, LockEntry> {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages = lock.packages;
  const out: Record<string, LockEntry> = {};
  const queue: string[] = [];
  for (const name of names) {
    const location = resolveInLock(packages, 'core', name);
    assert.ok(location, `${name} is not in package-lock.json`);
    queue.push(location);
  }
  for (let location = queue.shift(); location !== undefined; location = queue.shift()) {
    const target = location.replace(/^core\/node_modules\//, 'node_modules/');
    if (out[target]) continue;
    const entry = packages[location];
    assert.ok(entry, location);
    const { dev: _dev, devOptional: _devOptional, peer: _peer, optional: _optional, ...kept } = entry;
    out[target] = kept;
    const optional = new Set([
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.entries(entry.peerDependenciesMeta ?? {})
        .filter(([, meta]) => meta.optional)
        .map(([name]) => name),
    ]);
    const edges = [entry.dependencies, entry.optionalDependencies, entry.peerDependencies].flatMap((deps) =>
      Object.keys(deps ?? {}),
    );
    for (const name of edges) {
      const next = resolveInLock(packages, location, name);
      if (next) queue.push(next);
      else assert.ok(optional.has(name), `${name} (needed by ${location}) is not in package-lock.json`);
    }
  }
  return out;
}

/** Every file an `exports` map points at (all conditions). */
function exportTargets(exportsField: unknown): string[] {
  if (typeof exportsField === 'string') return [exportsField];
  if (exportsField && typeof exportsField === 'object')
    return Object.values(exportsField).flatMap(exportTargets);
  return [];
}

describe('@factory-factory/core from its tarball', function () {
  this.timeout(240_000);
  const dirs = new TempDirs();
  const transcript: string[] = [];
  let fake: FakeAnthropic;
  let consumer: string;
  let installed: string;

  before(async () => {
    fake = await startFakeAnthropic();
    const work = dirs.make('core-package');
    const packDir = join(work, 'pack');
    consumer = join(work, 'consumer');
    mkdirSync(packDir);
    mkdirSync(join(consumer, 'src'), { recursive: true });

    // The real pack: prepack builds dist/ first. A dry run afterwards prints the same list for the record.
    const pack = await run('npm', ['pack', '--pack-destination', packDir], { cwd: coreDir, env: toolEnv() });
    assert.equal(pack.status, 0, describeRun('npm pack', pack));
    const tarballs = readdirSync(packDir).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, describeRun('npm pack', pack));
    const tarball = join(packDir, tarballs[0] ?? '');
    const dryRun = await run('npm', ['pack', '--dry-run', '--ignore-scripts'], {
      cwd: coreDir,
      env: toolEnv(),
    });
    assert.equal(dryRun.status, 0, describeRun('npm pack --dry-run', dryRun));
    transcript.push('$ cd core && npm pack --dry-run', dryRun.stderr.trim(), dryRun.stdout.trim(), '');

    const manifest = JSON.parse(readFileSync(join(coreDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const runtime = [
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ];
    const zodVersion = lockEntriesFor(['zod'])['node_modules/zod']?.version;
    assert.ok(zodVersion);
    const dependencies = { '@factory-factory/core': `file:${tarball}`, zod: zodVersion };
    const project = { name: 'core-consumer', version: '1.0.0', private: true, type: 'module', dependencies };
    writeFileSync(join(consumer, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
    const lock = {
      name: project.name,
      version: project.version,
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: project.name, version: project.version, dependencies },
        ...lockEntriesFor(runtime),
      },
    };
    writeFileSync(join(consumer, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
    const install = await run(
      'npm',
      ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-update-notifier'],
      { cwd: consumer, env: toolEnv() },
    );
    assert.equal(install.status, 0, describeRun('npm install --offline', install));
    transcript.push(`$ npm install --offline --ignore-scripts ${tarballs[0]}`, install.stdout.trim(), '');
    installed = join(consumer, 'node_modules/@factory-factory/core');

    for (const name of ['session.ts', 'ratchet.ts'])
      copyFileSync(join(here, 'consumer', name), join(consumer, 'src', name));
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        // The published declarations are checked too, not only the consumer's use of them.
        skipLibCheck: false,
        noEmitOnError: true,
        rootDir: 'src',
        outDir: 'dist',
        typeRoots: [join(repoRoot, 'node_modules/@types')],
        types: ['node'],
      },
      include: ['src'],
    };
    writeFileSync(join(consumer, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  });

  after(async () => {
    writeFileSync(transcriptFile, `${transcript.join('\n')}\n`);
    await fake.close();
    dirs.cleanup();
  });

  it('installs a complete package: every export target, LICENSE, README, the agent bin, one zod', () => {
    const packed = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      exports: unknown;
      bin: Record<string, string>;
      repository?: { url?: string };
      peerDependencies?: Record<string, string>;
      dependencies?: Record<string, string>;
    };
    const targets = exportTargets(packed.exports);
    assert.ok(targets.length > 10, `exports: ${targets.join(', ')}`);
    const missing = targets.filter((target) => !existsSync(join(installed, target)));
    assert.deepEqual(missing, [], 'export targets missing from the tarball');
    for (const target of targets.filter((t) => t.endsWith('.js') && t.startsWith('./dist/'))) {
      assert.ok(existsSync(join(installed, `${target}.map`)), `${target}.map`);
      assert.ok(existsSync(join(installed, target.replace(/\.js$/, '.d.ts'))), `${target} declarations`);
    }
    assert.match(readFileSync(join(installed, 'LICENSE'), 'utf8'), /^MIT License/);
    assert.match(readFileSync(join(installed, 'README.md'), 'utf8'), /npm install @factory-factory\/core/);
    assert.ok(packed.repository?.url, 'repository');
    assert.ok(!existsSync(join(installed, 'test')), 'tests are not published');
    assert.ok(packed.peerDependencies?.zod && !packed.dependencies?.zod, 'zod is a peer dependency');
    // One zod in the tree: the consumer's schemas and core's compose.
    assert.ok(!existsSync(join(installed, 'node_modules/zod')), 'core brought its own zod');
    assert.deepEqual(Object.keys(packed.bin), ['ff-agent']);
    assert.ok(existsSync(join(consumer, 'node_modules/.bin/ff-agent')), 'the bin is linked');
  });

  it('type-checks the consumers against the published declarations', async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const check = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], {
      cwd: consumer,
      env: toolEnv(),
    });
    assert.equal(check.status, 0, describeRun('tsc', check));
    assert.ok(existsSync(join(consumer, 'dist/session.js')) && existsSync(join(consumer, 'dist/ratchet.js')));
  });

  // Plain node with nothing inherited: no NODE_OPTIONS (no tsx, no source condition), node on PATH only.
  const nodeOnlyEnv = (): NodeJS.ProcessEnv => ({ PATH: `${dirname(process.execPath)}:/usr/bin:/bin` });

  it('drives the real Claude CLI through the published ClaudeSession and streams the answer', async () => {
    const home = dirs.make('consumer-home');
    const cwd = dirs.make('consumer-work');
    const chunks = ['Hello ', 'from the ', 'packed ', 'core.'];
    fake.script(turns.deltas(chunks));
    const env = JSON.stringify(claudeTestEnv({ fakeUrl: fake.url, home }));
    const prompt = 'say hello from the tarball';
    const result = await run(process.execPath, ['dist/session.js', claudeBinPath(), env, cwd, prompt], {
      cwd: consumer,
      env: nodeOnlyEnv(),
    });
    transcript.push(`$ node dist/session.js <claude> <env> <cwd> '${prompt}'`, result.stdout.trim(), '');
    assert.equal(result.status, 0, describeRun('the session consumer', result));
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(
      lines.filter((line) => line.startsWith('stream: ')),
      chunks.map((chunk) => `stream: ${chunk}`),
    );
    assert.ok(lines.includes(`result: success: ${chunks.join('')}`), result.stdout);
    assert.equal(lines.at(-1), 'closed: process stopped');
    assert.equal(fake.requests[0]?.lastUserText, prompt);
  });

  it('imports the ratchet and the root entry without loading a native module', async () => {
    const control = dirname(
      createRequire(join(coreDir, 'package.json')).resolve('better-sqlite3/package.json'),
    );
    const result = await run(process.execPath, ['dist/ratchet.js', control], {
      cwd: consumer,
      env: nodeOnlyEnv(),
    });
    transcript.push('$ node dist/ratchet.js <a built better-sqlite3>', result.stdout.trim(), '');
    assert.equal(result.status, 0, describeRun('the ratchet consumer', result));
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines[0], 'ratchet: state IDLE, next poll in 60000 ms');
    assert.equal(lines[1], 'native after @factory-factory/core/ratchet: none');
    assert.equal(lines[2], 'root: github, protocol, ratchet, session, terminal, workspace');
    assert.equal(lines[3], 'native after @factory-factory/core: none');
    // The control: the same check does see an addon once one is loaded.
    assert.match(lines[4] ?? '', /^native after loading .*: .*better_sqlite3\.node/);
  });

  it('runs the agent from the package bin', async () => {
    // No FF_AGENT_SOCKET: the agent explains what is missing and exits, having loaded no native module.
    const result = await run(join(consumer, 'node_modules/.bin/ff-agent'), [], {
      cwd: consumer,
      env: nodeOnlyEnv(),
    });
    transcript.push('$ npx ff-agent', result.stderr.trim(), '');
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /^ff-agent failed to start: .*FF_AGENT_SOCKET is required/);
  });
});
