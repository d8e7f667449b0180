import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TerminalManager } from '../terminal/index.js';
import type { AgentConfig } from './config.js';
import { createCoreWorkspaces } from './core-workspaces.js';
import { type CredentialStatus, createCredentialProbe } from './credentials.js';
import { AgentRequestError } from './errors.js';
import { lazyGitHubClient } from './github-client.js';
import { createAgentHandlers } from './handlers.js';
import {
  AGENT_RUN_VARIABLE,
  ProcessGroupLedger,
  reapMarkedProcesses,
  recordAgentRun,
} from './process-groups.js';
import { RatchetDispatchLedger } from './ratchet-dispatches.js';
import { createRatchetHandlers } from './ratchet-handlers.js';
import { AgentServer } from './server.js';
import { SessionRegistry } from './sessions.js';
import { AgentStore } from './store.js';
import { readAgentVersion } from './version.js';

export interface RunningAgent {
  readonly version: string;
  readonly socketPath: string;
  /** Stops listening, ends every CLI process, setup script and terminal, closes the database. */
  close(): Promise<void>;
}

export interface StartAgentOptions {
  config: AgentConfig;
  secret: string;
  logger: Logger;
  /**
   * What health.ping reports about the logins; main.ts starts it before loading the agent so its check
   * runs meanwhile. Made here from the config when not given.
   */
  credentials?: () => Promise<CredentialStatus>;
}

/**
 * Milliseconds since the process started, as performance.now() counts them, without loading perf_hooks
 * (a dozen modules an idle agent has no other use for).
 */
function uptimeMs(): number {
  return process.uptime() * 1000;
}

/** Reads the per-VM secret. Whitespace around it (a trailing newline) is not part of it. */
export function readAgentSecret(path: string): string {
  const secret = readFileSync(path, 'utf8').trim();
  if (secret.length < 16) throw new Error(`the secret in ${path} is shorter than 16 characters`);
  return secret;
}

/** The composition root: store, workspaces, sessions, terminals, handlers, socket server. */
export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { config, logger } = options;
  const initStarted = uptimeMs();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const store = AgentStore.open(join(config.dataDir, 'agent.db'));
  // Before anything starts a child: what a crashed predecessor left running (a CLI mid-turn and the tools
  // it ran, a setup script) is ended, so it cannot race the sessions and workspaces resumed below.
  const processGroups = new ProcessGroupLedger(store.database, logger);
  const reaped = processGroups.reap();
  if (reaped > 0) logger.warn({ reaped }, 'ended process groups left by the previous agent');
  const runId = randomUUID();
  reapMarkedProcesses(recordAgentRun(config.dataDir, runId), logger);
  // What the agent starts on its own account carries this run's marker; terminals get the plain environment.
  const ownedChildEnv = { ...config.childEnv, [AGENT_RUN_VARIABLE]: runId };
  // Workspaces and sessions need each other: handoff and archiving ask whether a fixer session is
  // working, and sessions run in their workspace's worktree.
  // One GitHub client for the whole agent (workspaces read issues, the ratchet reads PRs): its login cache
  // and rate-limit pause are shared.
  const github = lazyGitHubClient({ ghBin: config.ghBin, childEnv: ownedChildEnv });
  const workspaces = createCoreWorkspaces({
    config: { ...config, childEnv: ownedChildEnv },
    database: store.database,
    github,
    fixerActivity: { isFixerActive: (workspaceId) => sessions.isFixerActive(workspaceId) },
    processGroups,
    logger,
  });
  const sessions = new SessionRegistry(
    store,
    {
      bin: config.claudeBin,
      env: ownedChildEnv,
      extraArgs: config.claudeExtraArgs,
      includePartialMessages: config.includePartialMessages,
      processGroups,
      limits: {
        interactiveTimeoutMs: config.interactiveTimeoutMs,
        stopGraceMs: config.stopGraceMs,
        hungTimeoutMs: config.hungTimeoutMs,
        maxQueuedMessages: config.maxQueuedMessages,
        replayMaxEvents: config.replayMaxEvents,
        replayMaxBytes: config.replayMaxBytes,
      },
    },
    async (workspaceId) => {
      // A stored session keeps its directory even when its workspace is no longer READY (archived): it
      // is listed with its history, and sending to it is refused by the handler.
      const workspace = await workspaces.get(workspaceId);
      if (workspace?.status === 'READY') return workspaces.worktreePath(workspaceId);
      if (workspace?.worktreePath) return workspace.worktreePath;
      throw new AgentRequestError('not_found', `no workspace ${workspaceId} with a worktree`);
    },
    logger,
  );
  await sessions.load();
  await workspaces.resumeInterrupted();
  const terminals = new TerminalManager({ logger });
  const version = readAgentVersion();
  const existingWorkspace = async (id: string) => {
    const workspace = await workspaces.get(id);
    if (!workspace) throw new AgentRequestError('not_found', `no workspace ${id}`);
    return workspace;
  };
  const server = new AgentServer({
    socketPath: config.socketPath,
    socketMode: config.socketMode,
    secret: options.secret,
    agentVersion: version,
    logger,
    handlers: createAgentHandlers({
      agentVersion: version,
      startedAt: Date.now(),
      workspaces,
      sessions,
      terminals,
      connections: (): number => server.connectionCount,
      credentials:
        options.credentials ??
        createCredentialProbe({
          home: config.homeDir,
          ghBin: config.ghBin,
          childEnv: config.childEnv,
        }),
      terminalEnv: config.childEnv,
      homeDir: config.homeDir,
      ratchet: createRatchetHandlers({
        sessions,
        dispatches: new RatchetDispatchLedger(store.database),
        github,
        existingWorkspace,
        readyWorkspace: async (id) => {
          const workspace = await existingWorkspace(id);
          if (workspace.status !== 'READY') {
            throw new AgentRequestError(
              'conflict',
              `workspace ${id} is ${workspace.status}; a fixer runs only in a READY workspace`,
            );
          }
          return workspace;
        },
        worktreePath: (id) => workspaces.worktreePath(id),
      }),
    }),
  });
  try {
    await server.listen();
  } catch (error) {
    await sessions.closeAll();
    await workspaces.close();
    store.close();
    throw error;
  }
  // Start-up timings (bench/vm-containers.ts reads them): since the process started, and of that the
  // part in here (store, sessions, workspaces, listen) after node's boot and the module loading.
  const listeningAt = uptimeMs();
  logger.info(
    {
      socket: config.socketPath,
      version,
      startupMs: Math.round(listeningAt),
      initMs: Math.round(listeningAt - initStarted),
    },
    'agent listening',
  );

  let closing: Promise<void> | null = null;
  return {
    version,
    socketPath: config.socketPath,
    close() {
      closing ??= (async () => {
        await server.close();
        terminals.closeAll();
        await sessions.closeAll();
        // Setup scripts still running are killed with their process groups; their workspaces stay
        // PROVISIONING and are provisioned again at the next start.
        await workspaces.close();
        store.close();
        logger.info('agent stopped');
      })();
      return closing;
    },
  };
}
