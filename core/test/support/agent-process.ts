/**
 * Runs the real agent (core/src/agent/main.ts through tsx) as a child process, the way the VM runs
 * the compiled one, and connects clients to it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/agent/client.js';
import type { AgentParams, Workspace } from '../../src/protocol/index.js';
import type { FakeGitHub } from './fake-github.js';
import { GH_BINARY } from './gh-harness.js';

const coreDir = fileURLToPath(new URL('../..', import.meta.url));

export interface AgentProcessOptions {
  /** Holds the socket, secret file and data dir; the caller removes it. */
  dir: string;
  home: string;
  claudeBin: string;
  fakeAnthropicUrl: string;
  /** Runs the agent's gh (the real /usr/bin/gh) against this fake GitHub, with its leak guard. */
  github?: FakeGitHub;
  /** More FF_* settings or env for the agent. */
  env?: Record<string, string>;
  /** Run the compiled agent (core/dist/agent/main.js, as in the VM image) instead of the source. */
  compiled?: boolean;
  /** Node flags before the entry point (e.g. --optimize-for-size). */
  nodeArgs?: string[];
}

export interface AgentProcess {
  readonly socketPath: string;
  readonly secret: string;
  readonly pid: number | undefined;
  connect(clientName?: string): Promise<AgentClient>;
  /** SIGTERM and wait (SIGKILL after 20 s). */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would (nothing of the agent runs after it), and wait for the exit. */
  crash(): Promise<void>;
  /** Output so far, for failure messages. */
  readonly output: string;
}

/** gh's environment for the fake GitHub, as FF_CHILD_ENV_* (the agent keeps its own PATH and HOME). */
function ghChildEnv(github: FakeGitHub | undefined): Record<string, string> {
  if (!github) return {};
  const env: Record<string, string> = { FF_GH_BIN: GH_BINARY };
  for (const [name, value] of Object.entries(github.ghEnv())) {
    if (name !== 'PATH' && name !== 'HOME') env[`FF_CHILD_ENV_${name}`] = value;
  }
  // The leak guard's proxies are for GitHub; the CLI's fake Anthropic API is on loopback.
  env.FF_CHILD_ENV_NO_PROXY = '127.0.0.1,localhost';
  env.FF_CHILD_ENV_no_proxy = '127.0.0.1,localhost';
  return env;
}

export function agentEnvironment(options: AgentProcessOptions, secretFile: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: options.home,
    LANG: 'C.UTF-8',
    FF_AGENT_SOCKET: join(options.dir, 'agent.sock'),
    FF_AGENT_SECRET_FILE: secretFile,
    FF_AGENT_DATA_DIR: join(options.dir, 'data'),
    FF_AGENT_LOG_LEVEL: 'warn',
    FF_CLAUDE_BIN: options.claudeBin,
    FF_GH_BIN: 'gh',
    // What the CLI needs to talk to the fake and nothing else (see TESTING.md).
    FF_CHILD_ENV_ANTHROPIC_BASE_URL: options.fakeAnthropicUrl,
    FF_CHILD_ENV_ANTHROPIC_API_KEY: 'sk-fake-agent-test',
    FF_CHILD_ENV_CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    FF_CHILD_ENV_DISABLE_TELEMETRY: '1',
    FF_CHILD_ENV_DISABLE_AUTOUPDATER: '1',
    FF_CHILD_ENV_CLAUDE_CODE_MAX_RETRIES: '0',
    FF_CHILD_ENV_GH_NO_UPDATE_NOTIFIER: '1',
    FF_CHILD_ENV_SHELL: '/bin/bash',
    // Test repositories are local bare repos (core/test/support/git-sandbox.ts).
    FF_WORKSPACE_URL_SCHEMES: 'https,ssh,file',
    ...ghChildEnv(options.github),
    ...options.env,
  };
}

/** Creates a workspace and waits for its provisioning; throws with git's reason unless it is READY. */
export async function createReadyWorkspace(
  client: AgentClient,
  params: AgentParams<'workspace.create'>,
): Promise<Workspace & { worktreePath: string }> {
  const created = await client.createWorkspace(params);
  const workspace = await client.waitForWorkspace(created.id, { timeoutMs: 60_000 });
  if (workspace.status !== 'READY' || workspace.worktreePath === null) {
    throw new Error(`workspace ${workspace.id} is ${workspace.status}: ${workspace.initError ?? ''}`);
  }
  return { ...workspace, worktreePath: workspace.worktreePath };
}

export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const secret = 'test-secret-0123456789abcdef';
  const secretFile = join(options.dir, 'secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const env = agentEnvironment(options, secretFile);
  const socketPath = env.FF_AGENT_SOCKET ?? '';
  const args = [
    ...(options.nodeArgs ?? []),
    ...(options.compiled
      ? ['dist/agent/main.js']
      : ['--conditions=source', '--import', 'tsx', 'src/agent/main.ts']),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: coreDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const connect = (clientName = 'test') => AgentClient.connect({ socketPath, secret, clientName });

  // Ready when a client gets through the hello.
  for (let attempt = 0; ; attempt++) {
    if (hasExited) throw new Error(`agent exited during startup:\n${output}`);
    try {
      const probe = await connect('readiness-probe');
      probe.close();
      break;
    } catch (error) {
      if (attempt > 400) throw new Error(`agent did not come up: ${String(error)}\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  return {
    socketPath,
    secret,
    pid: child.pid,
    connect,
    get output() {
      return output;
    },
    async crash() {
      if (hasExited) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (hasExited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
