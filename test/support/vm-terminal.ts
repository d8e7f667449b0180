/**
 * A shell inside a VM the way a user gets one: a PTY the agent spawns (with the environment claude and gh
 * get), reached over the agent's unix socket.
 */
import type { AgentClient } from '@factory-factory/core/agent-client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { testConfig } from './services.js';

/** An authenticated client of the VM's agent, reached the way the worker and the api reach it. */
export function connectTestAgent(ref: VmContainerRef, clientName: string): Promise<AgentClient> {
  return connectVmAgent(vmAgentEndpoint(ref, testConfig.vm.secretRoot), { clientName });
}

/**
 * Runs `command` in a fresh terminal of the VM (a PTY the agent spawns, with the environment claude and gh
 * get) and resolves with the output once `until` matches it; the terminal is killed afterwards.
 */
export async function runInTerminal(
  agent: AgentClient,
  command: string,
  until: RegExp,
  timeoutMs = 15_000,
): Promise<string> {
  const terminal = await agent.createTerminal({ cols: 200, rows: 50 });
  const feed = await agent.subscribeTerminal(terminal.id);
  let output = feed.scrollback;
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`terminal output never matched ${until}:\n${output}`)),
        timeoutMs,
      );
      feed.on((event) => {
        if (event.type !== 'output') return;
        output += event.data;
        if (until.test(output)) {
          clearTimeout(timer);
          resolve(output);
        }
      });
      agent.terminalInput(terminal.id, `${command}\r`).catch(reject);
    });
  } finally {
    await feed.close();
    await agent.killTerminal(terminal.id).catch(() => undefined);
  }
}

/**
 * Runs a command in a VM and returns what it printed before a completion marker. The marker is split by
 * printf so the echoed command line itself never matches.
 */
export async function runInVm(ref: VmContainerRef, command: string, timeoutMs = 30_000): Promise<string> {
  const agent = await connectTestAgent(ref, 'test');
  try {
    const marker = `__done_${Math.random().toString(36).slice(2)}__`;
    const half = Math.floor(marker.length / 2);
    const output = await runInTerminal(
      agent,
      `${command}; printf '%s%s:%s\\n' '${marker.slice(0, half)}' '${marker.slice(half)}' "$?"`,
      new RegExp(`${marker}:\\d+`),
      timeoutMs,
    );
    return output.slice(0, output.lastIndexOf(marker));
  } finally {
    agent.close();
  }
}
