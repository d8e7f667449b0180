/**
 * Makes sure the VM images exist, building them only when their inputs changed (the tag is a content hash
 * of the inputs). Run by `dev.sh up` and `dev.sh test`; a second run with nothing changed does nothing.
 *
 *   ffc-vm-base:<hash>  Debian bookworm + Node 20 + npm, built offline by vm/build-base.sh
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { loadConfig } from '../platform/config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function hashOf(parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 12);
}

async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

export function baseImageTag(): string {
  return `ffc-vm-base:${hashOf([readFileSync(resolve(root, 'vm/build-base.sh')), process.version])}`;
}

async function main(): Promise<void> {
  const docker = new Docker(loadConfig().docker);
  const baseTag = baseImageTag();
  if (await imageExists(docker, baseTag)) {
    console.log(`    base image ${baseTag} is current`);
  } else {
    console.log(`    building base image ${baseTag} offline (debootstrap, ~1 min)`);
    const result = spawnSync(resolve(root, 'vm/build-base.sh'), [baseTag], { stdio: 'inherit' });
    if (result.status !== 0) throw new Error('vm/build-base.sh failed (its output is above)');
  }
}

main().catch((err: unknown) => {
  console.error(`build-vm-image: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
