/**
 * Runs inside the VM image build (plain Node, no dependencies). Derives three small, self-contained npm
 * projects (package.json + package-lock.json) from the monorepo's lockfile and core/package.json:
 *
 *   runtime/  core's production dependencies and its peer zod (better-sqlite3, node-pty, pino, zod)
 *   compile/  the same plus what `tsc -p core/tsconfig.build.json` needs (typescript, @types/*)
 *   claude/   the Claude Code CLI's native package for this machine's architecture
 *
 * Each keeps the exact versions and integrity hashes of the monorepo's lock, so `npm ci` installs what the
 * developers tested. Because the image's layers depend on these derived files and not on the whole lock,
 * adding a dependency to the api or the dashboard does not rebuild the agent's native modules.
 *
 *   node vm/agent-manifests.mjs <package-lock.json> <core/package.json> <out-dir>
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [lockPath, corePackagePath, outDir] = process.argv.slice(2);
if (!lockPath || !corePackagePath || !outDir) {
  process.stderr.write('usage: node agent-manifests.mjs <package-lock.json> <core/package.json> <out-dir>\n');
  process.exit(2);
}

// Both files come from this repository's build context, not from a user: plain JSON.parse is enough.
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const corePackage = JSON.parse(readFileSync(corePackagePath, 'utf8'));
const packages = lock.packages ?? {};
if (lock.lockfileVersion !== 3 && lock.lockfileVersion !== 2) fail('expected a v2/v3 package-lock.json');

/** Where the core workspace sits in the lock (its key in `packages`). */
const coreLocation = Object.keys(packages).find(
  (key) => !key.includes('node_modules/') && key !== '' && packages[key].name === corePackage.name,
);
if (coreLocation === undefined) fail(`workspace ${corePackage.name} not found in ${lockPath}`);

function fail(message) {
  process.stderr.write(`agent-manifests: ${message}\n`);
  process.exit(1);
}

/** Node's resolution over lock locations: <from>/node_modules/<name>, then each parent's. */
function resolveFrom(from, name) {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate] && !packages[candidate].link) return candidate;
    if (dir === '') return undefined;
    const cut = dir.lastIndexOf('node_modules/');
    dir = cut <= 0 ? '' : dir.slice(0, cut - 1);
  }
}

/** A location as it sits in the derived project: a workspace's own node_modules move to the root. */
function relocate(location) {
  const prefix = `${coreLocation}/node_modules/`;
  return location.startsWith(prefix) ? `node_modules/${location.slice(prefix.length)}` : location;
}

/**
 * Every package reachable from `roots` ([{ name, from }]), with whether some path to it is not optional.
 * Optional dependencies that the lock does not hold (other platforms) are skipped, as npm does.
 */
function closure(roots) {
  const required = new Map();
  const queue = [];
  const visit = (location, optional) => {
    const seen = required.get(location);
    if (seen === true || (seen === false && optional)) return;
    required.set(location, !optional);
    queue.push([location, optional]);
  };
  for (const root of roots) {
    const location = resolveFrom(root.from, root.name);
    if (!location) fail(`${root.name} is not in the lock (needed by ${root.from || 'the root'})`);
    visit(location, false);
  }
  while (queue.length > 0) {
    const [location, optional] = queue.shift();
    const entry = packages[location];
    const edges = [
      ...Object.keys(entry.dependencies ?? {}).map((name) => [name, false]),
      ...Object.keys(entry.optionalDependencies ?? {}).map((name) => [name, true]),
      ...Object.keys(entry.peerDependencies ?? {}).map((name) => [
        name,
        entry.peerDependenciesMeta?.[name]?.optional === true,
      ]),
    ];
    for (const [name, edgeOptional] of edges) {
      const target = resolveFrom(location, name);
      if (target) visit(target, optional || edgeOptional);
      else if (!edgeOptional) fail(`${name}, a dependency of ${location}, is not in the lock`);
    }
  }
  return required;
}

function writeProject(name, roots) {
  const required = closure(roots);
  const dependencies = {};
  for (const root of roots) {
    const location = resolveFrom(root.from, root.name);
    dependencies[root.name] = packages[location].version;
  }
  const derived = {};
  for (const [location, isRequired] of [...required].sort(([a], [b]) => a.localeCompare(b))) {
    const target = relocate(location);
    if (derived[target]) fail(`${target} is needed in two versions; cannot flatten ${name}`);
    const {
      dev: _dev,
      devOptional: _devOptional,
      peer: _peer,
      optional: _optional,
      ...entry
    } = packages[location];
    derived[target] = isRequired ? entry : { ...entry, optional: true };
  }
  const manifest = { name: `ff-agent-${name}`, version: '0.0.0', private: true, dependencies };
  const projectLock = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: manifest.name, version: manifest.version, dependencies }, ...derived },
  };
  const dir = join(outDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify(projectLock, null, 2)}\n`);
  process.stdout.write(`agent-manifests: ${name}: ${Object.keys(derived).length} packages\n`);
}

// zod is a peer dependency of the published package (consumers bring the one copy), but the agent is its
// own consumer: the image installs it like a dependency. Type packages core's published declarations
// need are dependencies of the package, yet nothing loads them at run time: only the compile stage gets them.
const coreDependencies = Object.keys({ ...corePackage.dependencies, ...corePackage.peerDependencies }).map(
  (name) => ({ name, from: coreLocation }),
);
const isTypes = (dependency) => dependency.name.startsWith('@types/');
const coreTypes = Object.keys(corePackage.devDependencies ?? {})
  .filter((name) => name.startsWith('@types/'))
  .map((name) => ({ name, from: coreLocation }));

writeProject(
  'runtime',
  coreDependencies.filter((dependency) => !isTypes(dependency)),
);
writeProject('compile', [
  ...coreDependencies,
  ...coreTypes,
  { name: 'typescript', from: coreLocation },
  { name: '@types/node', from: coreLocation },
]);

const cliVersion = corePackage.devDependencies?.['@anthropic-ai/claude-code'];
if (!cliVersion) fail(`${corePackage.name} does not pin @anthropic-ai/claude-code`);
const cliPackage = `@anthropic-ai/claude-code-linux-${process.arch}`;
const cliLocation = resolveFrom(coreLocation, cliPackage);
if (!cliLocation) fail(`${cliPackage} is not in the lock`);
if (packages[cliLocation].version !== cliVersion)
  fail(`${cliPackage} is ${packages[cliLocation].version} in the lock, core pins ${cliVersion}`);
writeProject('claude', [{ name: cliPackage, from: coreLocation }]);
