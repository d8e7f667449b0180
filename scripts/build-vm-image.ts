/**
 * Makes sure the VM images exist, building them only when their inputs changed (each tag is a content hash
 * of its inputs). Run by `dev.sh up` and `dev.sh test`; a second run with nothing changed does nothing.
 *
 *   ffc-vm-base:<hash>  Debian bookworm + Node 20 + npm, built offline by vm/build-base.sh
 *   ffc-vm:<hash>       vm/Dockerfile on that base: git, gh, the Claude Code CLI and the agent (core/);
 *                       also tagged ffc-vm:latest, the default VM_IMAGE
 *
 * Tests import ensureVmImage() so a single test file can run on a machine where `dev.sh` never ran.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Docker from 'dockerode';
import { loadConfig } from '../platform/config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const VM_IMAGE_REPOSITORY = 'ffc-vm';
export const VM_IMAGE_LATEST = `${VM_IMAGE_REPOSITORY}:latest`;

function hashOf(parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 12);
}

async function imageId(docker: Docker, tag: string): Promise<string | null> {
  try {
    return (await docker.getImage(tag).inspect()).Id;
  } catch {
    return null;
  }
}

export function baseImageTag(): string {
  return `ffc-vm-base:${hashOf([readFileSync(resolve(root, 'vm/build-base.sh')), process.version])}`;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(resolve(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/**
 * Everything vm/Dockerfile reads from the context, sorted: the build context is exactly these files
 * (not the whole repository), and the image's tag hashes them.
 */
export function vmImageInputs(): string[] {
  return [
    'vm/Dockerfile',
    'vm/agent-manifests.mjs',
    'package-lock.json',
    'tsconfig.base.json',
    'core/package.json',
    'core/tsconfig.build.json',
    ...filesUnder('core/src'),
  ]
    .map((path) => relative(root, resolve(root, path)))
    .sort();
}

export function vmImageTag(baseTag: string): string {
  const parts: (string | Buffer)[] = [`base=${baseTag}\0`];
  for (const path of vmImageInputs()) parts.push(`${path}\0`, readFileSync(resolve(root, path)), '\0');
  return `${VM_IMAGE_REPOSITORY}:${hashOf(parts)}`;
}

export type EnsureImageOptions = {
  docker?: Docker;
  /** Progress lines; silent when omitted. */
  log?: (line: string) => void;
};

/** Builds ffc-vm-base:<hash> offline when it is missing. */
export async function ensureBaseImage(options: EnsureImageOptions = {}): Promise<string> {
  const docker = options.docker ?? new Docker(loadConfig().docker);
  const log = options.log ?? (() => {});
  const tag = baseImageTag();
  if (await imageId(docker, tag)) {
    log(`base image ${tag} is current`);
    return tag;
  }
  log(`building base image ${tag} offline (debootstrap, ~1 min)`);
  const result = spawnSync(resolve(root, 'vm/build-base.sh'), [tag], {
    stdio: options.log ? 'inherit' : 'pipe',
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`vm/build-base.sh failed${output ? `:\n${output}` : ' (its output is above)'}`);
  }
  return tag;
}

/**
 * The CA file the host's npm trusts (`npm config get cafile`), if any: where a TLS-inspecting proxy sits
 * between this machine and the registry, the build's npm must trust the same certificates.
 */
function npmCaFile(): string | null {
  const result = spawnSync('npm', ['config', 'get', 'cafile'], { encoding: 'utf8' });
  const path = result.status === 0 ? result.stdout.trim() : '';
  return path.startsWith('/') && existsSync(path) ? path : null;
}

/** A directory holding exactly the build's inputs (plus the build CA): the context sent to dockerd. */
function stageContext(): { dir: string; files: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ffc-vm-context-'));
  const files = vmImageInputs();
  for (const path of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    copyFileSync(resolve(root, path), join(dir, path));
  }
  const ca = npmCaFile();
  if (ca) {
    copyFileSync(ca, join(dir, 'vm/build-ca.pem'));
    files.push('vm/build-ca.pem');
  }
  return { dir, files };
}

type BuildEvent = { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } };

/** Runs one `docker build` through the Engine API; keeps the whole log in a file, throws with its tail. */
async function buildImage(
  docker: Docker,
  input: { tag: string; baseTag: string; logFile: string },
  log: (line: string) => void,
): Promise<void> {
  const lines: string[] = [];
  let failure: string | null = null;
  const context = stageContext();
  try {
    const stream = await docker.buildImage(
      { context: context.dir, src: context.files },
      {
        t: input.tag,
        dockerfile: 'vm/Dockerfile',
        buildargs: { BASE: input.baseTag },
        // dockerd runs without a bridge here; steps that download (apt, npm) use the host's network.
        networkmode: 'host',
        rm: true,
        forcerm: true,
        labels: { 'ffc.image': 'vm' },
      },
    );
    await new Promise<void>((resolveBuild, rejectBuild) => {
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? rejectBuild(err) : resolveBuild()),
        (event: BuildEvent) => {
          const text = event.stream ?? event.status ?? '';
          for (const line of text.split('\n')) {
            if (line.trim() === '') continue;
            lines.push(line);
            if (/^Step \d+\/\d+ : /.test(line)) log(line);
          }
          if (event.error) {
            failure = event.errorDetail?.message ?? event.error;
            lines.push(`ERROR: ${failure}`);
          }
        },
      );
    });
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
  } finally {
    rmSync(context.dir, { recursive: true, force: true });
    mkdirSync(dirname(input.logFile), { recursive: true });
    writeFileSync(input.logFile, `${lines.join('\n')}\n`);
  }
  if (failure !== null) {
    throw new Error(
      `docker build of ${input.tag} failed: ${failure}\n--- last lines of ${input.logFile} ---\n${lines
        .slice(-40)
        .join('\n')}`,
    );
  }
}

/**
 * Makes sure ffc-vm:<hash of the inputs> exists (building the base first if needed) and that
 * ffc-vm:latest points at it. Returns the hash tag and whether it was built now.
 */
export async function ensureVmImage(
  options: EnsureImageOptions = {},
): Promise<{ tag: string; baseTag: string; built: boolean }> {
  const config = loadConfig();
  const docker = options.docker ?? new Docker(config.docker);
  const log = options.log ?? (() => {});
  const baseTag = await ensureBaseImage({ ...options, docker });
  const tag = vmImageTag(baseTag);
  let built = false;
  if (await imageId(docker, tag)) {
    log(`VM image ${tag} is current`);
  } else {
    const logFile = join(config.dataDir, 'logs', 'vm-image-build.log');
    log(`building VM image ${tag} (a few minutes on a cold cache; log in ${logFile})`);
    const started = Date.now();
    await buildImage(docker, { tag, baseTag, logFile }, (line) => log(`  ${line}`));
    log(`built ${tag} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    built = true;
  }
  const id = await imageId(docker, tag);
  if (id === null) throw new Error(`docker build reported success but ${tag} does not exist`);
  if ((await imageId(docker, VM_IMAGE_LATEST)) !== id) {
    await docker.getImage(tag).tag({ repo: VM_IMAGE_REPOSITORY, tag: 'latest' });
    log(`tagged ${tag} as ${VM_IMAGE_LATEST}`);
  }
  return { tag, baseTag, built };
}

async function main(): Promise<void> {
  await ensureVmImage({ log: (line) => console.log(`    ${line}`) });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(`build-vm-image: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
