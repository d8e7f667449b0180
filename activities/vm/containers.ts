/**
 * Docker side effects on managed containers, built from a dockerode client. Each activity is safe to
 * retry: removing something already gone succeeds.
 */
import type Docker from 'dockerode';
import { LABEL_MANAGED, LABEL_ROLE, LABEL_RUN_DIR, LABEL_USER, LABEL_VOLUME, ownerOf } from './labels.js';
import type { VmContainerRef } from './types.js';

export type ManagedContainer = {
  id: string;
  name: string;
  owner: string;
  role: string;
  userId: string | null;
  state: string;
  createdAtMs: number;
  /** Set for VM containers (they carry their volume and run dir labels), so all three can be removed. */
  vmRef: VmContainerRef | null;
};

/** Docker answers 404 for a missing object and 304 for "already in that state". */
export function dockerStatusCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'statusCode' in err) {
    const code = (err as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** Frames of a non-TTY container log (8-byte headers), as text. */
export function demuxLogs(buffer: Buffer): string {
  const parts: string[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size).toString('utf8'));
    offset += 8 + size;
  }
  return offset === 0 ? buffer.toString('utf8') : parts.join('');
}

export function createContainerInventoryActivities(deps: { docker: Docker }) {
  const { docker } = deps;
  return {
    /** Every container carrying our managed label, running or not. */
    async listManagedContainers(): Promise<ManagedContainer[]> {
      const list = await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_MANAGED}=true`] },
      });
      return list.map((c) => {
        const name = (c.Names[0] ?? '').replace(/^\//, '');
        return {
          id: c.Id,
          name,
          owner: ownerOf(name, c.Labels),
          role: c.Labels[LABEL_ROLE] ?? '',
          userId: c.Labels[LABEL_USER] ?? null,
          state: c.State,
          createdAtMs: c.Created * 1000,
          vmRef:
            c.Labels[LABEL_VOLUME] && c.Labels[LABEL_RUN_DIR]
              ? {
                  containerName: name,
                  containerId: c.Id,
                  volumeName: c.Labels[LABEL_VOLUME],
                  runDir: c.Labels[LABEL_RUN_DIR],
                }
              : null,
        };
      });
    },

    /** Force-removes a container that is not a VM (VMs go through removeVmContainer); gone is success. */
    async removeContainer(containerId: string): Promise<{ removed: boolean }> {
      try {
        await docker.getContainer(containerId).remove({ force: true, v: true });
        return { removed: true };
      } catch (err) {
        if (dockerStatusCode(err) === 404) return { removed: false };
        throw err;
      }
    },
  };
}
