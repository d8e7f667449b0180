/**
 * Helpers for the VM tests: commands inside containers through the Engine API (docker exec, or a
 * throwaway container of an image). A shell through the agent's terminal is in test/support/vm-terminal.ts.
 */
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';

export type CommandResult = { exitCode: number; stdout: string; stderr: string };

async function collect(
  docker: Docker,
  stream: NodeJS.ReadableStream,
): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  out.on('data', (chunk: Buffer) => stdout.push(chunk));
  err.on('data', (chunk: Buffer) => stderr.push(chunk));
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  return { stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
}

/** A non-TTY container's log: frames with an 8-byte header (stream 1 or 2, then the length). */
function demux(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Record<number, Buffer[]> = { 1: [], 2: [] };
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset] ?? 1;
    const size = buffer.readUInt32BE(offset + 4);
    out[kind === 2 ? 2 : 1]?.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return {
    stdout: Buffer.concat(out[1] ?? []).toString('utf8'),
    stderr: Buffer.concat(out[2] ?? []).toString('utf8'),
  };
}

/** `docker exec` as the container's own user (the VM's, 1000:1000). */
export async function execIn(docker: Docker, containerId: string, cmd: string[]): Promise<CommandResult> {
  const exec = await docker.getContainer(containerId).exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const output = await collect(docker, stream);
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, ...output };
}

/** One command in a throwaway container of `image` (no network), removed afterwards. */
export async function runInImage(
  docker: Docker,
  image: string,
  cmd: string[],
  labels: Record<string, string>,
): Promise<CommandResult> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: cmd,
    Labels: labels,
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const raw = await container.logs({ stdout: true, stderr: true, follow: false });
    return { exitCode: StatusCode, ...demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))) };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Prints `NoNewPrivs: <0|1>` as the kernel reports it (prctl PR_GET_NO_NEW_PRIVS, through perl, which the
 * image has): gVisor's /proc/self/status has no NoNewPrivs line, so the same question works under both.
 */
export const NO_NEW_PRIVS_PROBE =
  "perl -MPOSIX -e 'my %prctl = (x86_64 => 157, aarch64 => 167); " +
  'print "NoNewPrivs: ", syscall($prctl{(uname())[4]}, 39, 0, 0, 0, 0), "\\n"\'';

/** Fails with what to do when the Docker engine has no runtime of that name (VM_RUNTIME). */
export async function requireRuntime(docker: Docker, runtime: string): Promise<void> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  const known = Object.keys(info.Runtimes ?? {});
  if (!known.includes(runtime))
    throw new Error(
      `the Docker engine has no '${runtime}' runtime (it has ${known.join(', ')}): VMs under VM_RUNTIME=${runtime} ` +
        'need it registered; scripts/dev.sh registers runsc with the engine it starts (README, "Isolation")',
    );
}
