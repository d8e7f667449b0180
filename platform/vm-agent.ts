/**
 * How the cloud (worker activities, the api's terminal relay) reaches the agent inside a VM: a unix socket
 * in the VM's run dir on the Docker host, authenticated both ways on the per-VM secret. No control traffic
 * crosses an IP network, and the secret itself never crosses the socket.
 *
 *   <vm-run>/<name>/agent.sock        the agent's socket; the VM sees the dir at /run/ff-agent, read-write
 *   <vm-secrets>/<name>/secret        the per-VM secret; the VM sees the dir at /run/ff-agent-secret, read-only
 *
 * The host never trusts the VM's filesystem. Everything in the run dir is the VM user's to change, so the
 * socket path is checked (a real socket, not a symlink) and, since that check and connect() cannot be one
 * step, whatever answers must prove it knows this VM's secret before anything but a nonce is sent. The
 * secret lives where only the host writes, and is read without following links, of bounded size.
 */
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { AgentClient, AgentClientError } from '@factory-factory/core/agent-client';

export const VM_AGENT_SOCKET_NAME = 'agent.sock';
export const VM_AGENT_SECRET_NAME = 'secret';
/** Where the run dir is mounted inside the VM (read-write: the agent creates its socket there). */
export const VM_RUN_DIR_IN_CONTAINER = '/run/ff-agent';
/** Where the VM's secret dir is mounted inside the VM (read-only). */
export const VM_SECRET_DIR_IN_CONTAINER = '/run/ff-agent-secret';
/** A secret file bigger than this is not ours. */
const MAX_SECRET_BYTES = 4096;
const DIR_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** What the host needs to reach one VM's agent. */
export type VmAgentEndpoint = { socketPath: string; secretFile: string };

export type ConnectVmAgentOptions = {
  /** Names the caller in the agent's log, e.g. 'worker' or 'api-terminal'. */
  clientName?: string;
  /** Connect plus handshake (default 5 s). */
  connectTimeoutMs?: number;
  /** Per request unless overridden (default 30 s). */
  requestTimeoutMs?: number;
};

export function vmAgentSocketPath(runDir: string): string {
  return join(runDir, VM_AGENT_SOCKET_NAME);
}

/**
 * A VM's secret dir is named like its run dir (the container's name when it was created, which a warm-pool
 * claim's rename does not change), under the host-only secrets root.
 */
export function vmSecretDir(secretRoot: string, runDir: string): string {
  const name = basename(runDir);
  if (!DIR_NAME.test(name)) throw new Error(`run dir ${runDir} does not name a VM`);
  return join(secretRoot, name);
}

export function vmAgentEndpoint(ref: { runDir: string }, secretRoot: string): VmAgentEndpoint {
  return {
    socketPath: vmAgentSocketPath(ref.runDir),
    secretFile: join(vmSecretDir(secretRoot, ref.runDir), VM_AGENT_SECRET_NAME),
  };
}

/**
 * The per-VM secret; surrounding whitespace is not part of it (as the agent reads it). Opened without
 * following a symlink and without blocking on a FIFO, and refused unless it is a small regular file.
 */
export async function readVmAgentSecret(secretFile: string): Promise<string> {
  const handle = await open(secretFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > MAX_SECRET_BYTES)
      throw new Error('the VM secret is not a small regular file');
    const buffer = Buffer.alloc(MAX_SECRET_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_SECRET_BYTES) throw new Error('the VM secret is not a small regular file');
    const secret = buffer.subarray(0, bytesRead).toString('utf8').trim();
    if (secret.length < 16) throw new Error('the VM secret is missing or too short');
    return secret;
  } finally {
    await handle.close();
  }
}

/** The socket path must be a socket itself: a symlink planted in its place is never followed on purpose. */
async function checkSocketPath(socketPath: string): Promise<void> {
  const stat = await lstat(socketPath).catch(() => null);
  if (!stat)
    throw new AgentClientError('unavailable', 'the VM agent is not listening (its socket does not exist)');
  if (!stat.isSocket())
    throw new AgentClientError(
      'unavailable',
      'the VM agent socket was replaced by something that is not a socket; a restart of the VM repairs it',
    );
}

/**
 * A connected, mutually authenticated client of the VM's agent. Rejects with AgentClientError:
 * `unavailable` when nothing usable listens (the VM is stopped or starting, or its socket was tampered
 * with), `unauthorized` when the peer is not this VM's agent, `timeout`. The caller closes it.
 */
export async function connectVmAgent(
  endpoint: VmAgentEndpoint,
  options: ConnectVmAgentOptions = {},
): Promise<AgentClient> {
  const secret = await readVmAgentSecret(endpoint.secretFile);
  await checkSocketPath(endpoint.socketPath);
  return AgentClient.connect({
    socketPath: endpoint.socketPath,
    secret,
    clientName: options.clientName ?? 'ffc',
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
}
