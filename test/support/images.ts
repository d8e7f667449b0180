/**
 * Images for tests that need a plain container: the offline base image that `dev.sh test` builds
 * (Debian + Node). Tests fail with the reason when it is missing rather than skipping.
 */
import { testDocker } from './services.js';

let found: Promise<string> | undefined;

export function testImage(): Promise<string> {
  found ??= (async () => {
    const images = await testDocker().listImages({ filters: { reference: ['ffc-vm-base'] } });
    const tag = images.flatMap((i) => i.RepoTags ?? []).find((t) => t.startsWith('ffc-vm-base:'));
    if (!tag)
      throw new Error(
        'no ffc-vm-base image: run `scripts/dev.sh services && npx tsx scripts/build-vm-image.ts`',
      );
    return tag;
  })();
  return found;
}
