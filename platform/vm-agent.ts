/**
 * How the cloud (worker activities, the api's terminal relay) reaches the agent inside a VM: a unix socket
 * in the VM's run dir on the Docker host, authenticated with the per-VM secret stored beside it. No control
 * traffic crosses an IP network. The secret is read here and handed to the client; it is never logged.
 *
 *   <runDir>/agent.sock   the agent's socket (the container sees it at /run/ff-agent/agent.sock)
 *   <runDir>/secret       the per-VM secret, 0600, owned by the VM's user
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentClient } from '@factory-factory/core/agent-client';

export const VM_AGENT_SOCKET_NAME = 'agent.sock';
export const VM_AGENT_SECRET_NAME = 'secret';
/** Where the run dir is mounted inside the VM. */
export const VM_RUN_DIR_IN_CONTAINER = '/run/ff-agent';

export type ConnectVmAgentOptions = {
  /** Names the caller in the agent's log, e.g. 'worker' or 'api-terminal'. */
  clientName?: string;
  /** Connect plus hello (default 5 s). */
  connectTimeoutMs?: number;
  /** Per request unless overridden (default 30 s). */
  requestTimeoutMs?: number;
};

export function vmAgentSocketPath(runDir: string): string {
  return join(runDir, VM_AGENT_SOCKET_NAME);
}

export function vmAgentSecretPath(runDir: string): string {
  return join(runDir, VM_AGENT_SECRET_NAME);
}

/** The per-VM secret; surrounding whitespace is not part of it (as the agent reads it). */
export async function readVmAgentSecret(runDir: string): Promise<string> {
  const secret = (await readFile(vmAgentSecretPath(runDir), 'utf8')).trim();
  if (secret.length < 16) throw new Error(`the VM secret in ${runDir} is missing or too short`);
  return secret;
}

/**
 * A connected, authenticated client of the VM's agent. Rejects with AgentClientError: `unavailable` when
 * nothing listens (the VM is stopped or still starting), `unauthorized` on a wrong secret, `timeout`.
 * The caller closes it.
 */
export async function connectVmAgent(
  runDir: string,
  options: ConnectVmAgentOptions = {},
): Promise<AgentClient> {
  const secret = await readVmAgentSecret(runDir);
  return AgentClient.connect({
    socketPath: vmAgentSocketPath(runDir),
    secret,
    clientName: options.clientName ?? 'ffc',
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
}
