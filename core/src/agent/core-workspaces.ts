import { resolve } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import type { GitHubClient } from '../github/client.js';
import type {
  CreateWorkspaceInput,
  PortableWorkspaceState,
  PortableWorkspaceStateInput,
  Workspace,
  WorkspaceLocation,
} from '../protocol/index.js';
import type { ProcessGroupRecorder } from '../protocol/process-group.js';
import {
  createGitRunner,
  type FixerActivity,
  type Provisioning,
  SqliteWorkspaceStore,
  WorkspaceError,
  type WorkspaceGitHubBridge,
  WorkspaceService,
} from '../workspace/index.js';
import type { AgentConfig } from './config.js';
import { lazyGitHubClient } from './github-client.js';
import type { AgentWorkspaceBridge } from './workspaces.js';

export interface CoreWorkspacesOptions {
  config: AgentConfig;
  /** The agent's SQLite connection; workspaces get their own table (ff_workspaces) in it. */
  database: Database;
  fixerActivity: FixerActivity;
  /** Where each setup script's process group is recorded (the agent reaps them after a crash). */
  processGroups?: ProcessGroupRecorder;
  /** The agent's shared GitHub client (github-client.ts); one of its own when not given. */
  github?: () => Promise<GitHubClient>;
  logger: Logger;
}

/**
 * The agent's workspaces: core/workspace's WorkspaceService on the VM's volume, with git and gh run in the
 * child environment (the VM user's HOME, gh config and credential helper).
 */
export function createCoreWorkspaces(options: CoreWorkspacesOptions): CoreWorkspaces {
  const { config } = options;
  const logger = options.logger.child({ component: 'workspaces' });
  const service = new WorkspaceService({
    store: new SqliteWorkspaceStore(options.database),
    git: createGitRunner({ env: config.childEnv }),
    github: gitHubBridge(options.github ?? lazyGitHubClient(config)),
    reposRoot: resolve(config.dataDir, 'repos'),
    worktreesRoot: resolve(config.dataDir, 'worktrees'),
    location: config.workspaceLocation,
    allowedUrlSchemes: config.repoUrlSchemes,
    setup: { timeoutMs: config.setupTimeoutMs, env: config.childEnv },
    fixerActivity: options.fixerActivity,
    ...(options.processGroups ? { processGroups: options.processGroups } : {}),
    logger,
  });
  return new CoreWorkspaces(service, logger);
}

/**
 * core/github, loaded on the first call: only a workspace created from an issue (or without a branch
 * prefix) asks GitHub anything, and an idle VM should not hold the domain's code until one does.
 */
function gitHubBridge(load: () => Promise<GitHubClient>): WorkspaceGitHubBridge {
  return {
    getIssue: async (issueUrl) => (await load()).getIssue(issueUrl),
    getViewerLogin: async () => (await load()).getViewerLogin(),
  };
}

/**
 * AgentWorkspaceBridge over WorkspaceService. Requests answer as soon as a workspace is PROVISIONING:
 * a clone can take minutes, longer than anyone should wait on a request. The outcome (READY, or FAILED
 * with initError) is in the store, where `workspace.get` reads it.
 */
export class CoreWorkspaces implements AgentWorkspaceBridge {
  constructor(
    private readonly service: WorkspaceService,
    private readonly logger: Logger,
  ) {}

  /**
   * At start-up: provisioning cut short by a stop or crash of the agent (left PROVISIONING, or NEW before
   * it began) starts again, as a capped retry.
   */
  async resumeInterrupted(): Promise<void> {
    const interrupted = await this.service.recoverInterrupted();
    const unstarted = (await this.service.list()).filter((w) => w.status === 'NEW');
    for (const workspace of [...interrupted, ...unstarted]) {
      try {
        await this.startProvisioning(workspace.id);
      } catch (error) {
        this.logger.warn(
          { workspaceId: workspace.id, error: String(error) },
          'interrupted workspace not provisioned again',
        );
      }
    }
  }

  /** Stops running setup scripts (agent shutdown); their workspaces resume at the next start. */
  close(): Promise<void> {
    return this.service.close();
  }

  async create(input: CreateWorkspaceInput): Promise<Workspace> {
    const workspace = await this.service.register(input);
    if (workspace.status !== 'NEW') return workspace;
    try {
      return await this.startProvisioning(workspace.id);
    } catch (error) {
      // A retried create racing the first one: whichever started provisioning, the answer is the same.
      if (
        error instanceof WorkspaceError &&
        (error.code === 'conflict' || error.code === 'invalid_transition')
      ) {
        return (await this.service.get(workspace.id)) ?? workspace;
      }
      throw error;
    }
  }

  async list(options: { includeArchived: boolean }): Promise<Workspace[]> {
    const all = await this.service.list();
    return options.includeArchived ? all : all.filter((w) => w.status !== 'ARCHIVED');
  }

  get(id: string): Promise<Workspace | null> {
    return this.service.get(id);
  }

  archive(id: string): Promise<Workspace> {
    return this.service.archive(id);
  }

  retry(id: string): Promise<Workspace> {
    return this.startProvisioning(id);
  }

  exportState(id: string, options: { handoffTo?: WorkspaceLocation }): Promise<PortableWorkspaceState> {
    return this.service.exportState(id, options);
  }

  async importState(state: PortableWorkspaceStateInput): Promise<Workspace> {
    return this.inBackground(await this.service.beginImport(state));
  }

  worktreePath(id: string): Promise<string> {
    return this.service.worktreePath(id);
  }

  takeQueuedPrompt(id: string): Promise<string | null> {
    return this.service.takeQueuedPrompt(id);
  }

  private async startProvisioning(id: string): Promise<Workspace> {
    return this.inBackground(await this.service.beginProvision(id));
  }

  /**
   * The service records the outcome itself; a rejection here means it could not even write FAILED (the
   * database closed under it at shutdown), and the next start-up resumes that workspace.
   */
  private inBackground({ workspace, done }: Provisioning): Workspace {
    done.catch((error: unknown) =>
      this.logger.warn(
        { workspaceId: workspace.id, error: String(error) },
        'provisioning cut short; it resumes when the agent starts again',
      ),
    );
    return workspace;
  }
}
