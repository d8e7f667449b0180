/**
 * What the api does with cloud workspaces and their sessions. Workspaces are the workspace:<id> actor's
 * (update-with-start of sendToCloud, then pull / archive / retry); reads come from the read model it
 * writes (db/workspaces.ts), tenant-scoped, so they answer in milliseconds and also while no worker runs.
 * Sessions live in the VM: they are reached through the user's shared agent connection, and only after the
 * read model says the workspace is the caller's and READY in the cloud.
 *
 * Tenancy: another user's workspace or session is answered exactly like one that does not exist (404),
 * never 403, so ids cannot be probed.
 */
import { randomUUID } from 'node:crypto';
import { type AgentClient, AgentClientError } from '@factory-factory/core/agent-client';
import { AgentErrorCode, type AgentSessionInfo, type PermissionMode } from '@factory-factory/core/protocol';
import { parseRepoUrl, type RepoUrlScheme } from '@factory-factory/core/workspace';
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from '../../db/pool.js';
import { getRatchetView } from '../../db/ratchet.js';
import {
  getWorkspaceView,
  InvalidCursorError,
  listWorkspaceViews,
  UnreadableWorkspaceError,
} from '../../db/workspaces.js';
import { workflowIds } from '../../workflows/ids.js';
import { RatchetErrorType, stopFixerUpdate, wakeSignal } from '../../workflows/ratchet/messages.js';
import {
  archiveUpdate,
  type CloudWorkspaceStatus,
  defaultWorkspaceSettings,
  type PullResult,
  pullUpdate,
  retryUpdate,
  sendToCloudUpdate,
  setWorkspaceRatchetUpdate,
  type WorkspaceActorInput,
  WorkspaceErrorType,
  type WorkspaceSettings,
  type WorkspaceSource,
  type WorkspaceView,
} from '../../workflows/workspace/messages.js';
import type { AgentConnections } from '../agents/connections.js';
import type { SendWorkspaceRequest } from '../contract/workspaces.js';
import { ApiError } from '../errors.js';
import type { QuotaService } from '../limits/quota-service.js';
import type { VmService } from './vm-service.js';

/**
 * The actor's workflow type, by name: the api starts it without importing workflow code (the workflow
 * bundle is the worker's). workflows/index.ts exports a function of this name.
 */
export const WORKSPACE_WORKFLOW_TYPE = 'workspaceWorkflow';

export const workspaceNotFound = () =>
  new ApiError(404, 'workspace_not_found', 'no such workspace (GET /api/workspaces lists yours)');
export const sessionNotFound = () =>
  new ApiError(404, 'session_not_found', 'no such session in this workspace');

/** What a send or pull refused because a fixer works answers with (the desktop shows the same words). */
export const FIXER_ACTIVE_MESSAGE = 'Fixer session active — wait or stop it first';

const ratchetNotRunning = () =>
  new ApiError(
    409,
    'ratchet_not_running',
    'this workspace\'s cloud ratchet is not running (turned off, or ended with its pull request); POST /api/workspaces/{id}/ratchet {"enabled":true} starts it',
  );

/** A message or update that reached no running workflow (never started, or its run has ended). */
const notRunning = (err: unknown): boolean =>
  err instanceof WorkflowNotFoundError ||
  (err instanceof Error && /workflow execution already completed/i.test(err.message)) ||
  (err instanceof WorkflowUpdateFailedError &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === RatchetErrorType.ended);

/** The actor's failures (ApplicationFailure types), Temporal's "no such workflow", or an ended actor. */
function toApiError(err: unknown): unknown {
  if (err instanceof WorkflowNotFoundError) return workspaceNotFound();
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const { type, message } = err.cause;
    switch (type) {
      case WorkspaceErrorType.fixerActive:
        return new ApiError(
          409,
          'fixer_active',
          `${message}: the ratchet is fixing this workspace's pull request right now; try again once the fixer session finishes`,
        );
      case WorkspaceErrorType.archived:
        return new ApiError(409, 'workspace_archived', message);
      case WorkspaceErrorType.notReady:
        return new ApiError(409, 'workspace_not_ready', message);
      case WorkspaceErrorType.invalidSource:
        return new ApiError(400, 'invalid_source', message);
      case WorkspaceErrorType.notOwner:
        return workspaceNotFound();
      case WorkspaceErrorType.unavailable:
        return new ApiError(503, 'workspace_unavailable', message);
      default:
        return new ApiError(500, 'workspace_error', message);
    }
  }
  // An update sent to an actor that has finished (the workspace was pulled or archived meanwhile).
  if (err instanceof Error && /workflow execution already completed/i.test(err.message)) {
    return new ApiError(
      409,
      'workspace_not_in_cloud',
      'this workspace is no longer in the cloud (pulled or archived); send it again to work on it here',
    );
  }
  return err;
}

/** The agent's error code, if `err` carries one. */
export function agentErrorCode(err: unknown): AgentErrorCode | null {
  if (err instanceof AgentClientError) return err.code;
  if (!(err instanceof Error) || !('code' in err)) return null;
  const parsed = AgentErrorCode.safeParse(err.code);
  return parsed.success ? parsed.data : null;
}

/** An agent failure as an HTTP answer; the agent's own words only where they describe the caller's input. */
function agentApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  const code = agentErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case null:
      return err;
    case 'not_found':
      return sessionNotFound();
    case 'bad_request':
      return new ApiError(400, 'bad_request', message);
    case 'conflict':
      return new ApiError(409, 'conflict', message);
    case 'queue_full':
      return new ApiError(429, 'queue_full', message);
    case 'timeout':
      return new ApiError(504, 'vm_timeout', 'your VM did not answer in time; try again');
    case 'unavailable':
    case 'disconnected':
    case 'unauthorized':
      return new ApiError(503, 'vm_unavailable', 'your VM is not reachable right now; try again in a moment');
    default:
      return new ApiError(502, 'vm_error', 'your VM could not do that; try again');
  }
}

export type CreateSessionInput = {
  prompt?: string;
  model?: string;
  permissionMode?: PermissionMode;
  name?: string;
  id?: string;
};

export class WorkspaceService {
  constructor(
    private readonly deps: {
      temporal: Client;
      pool: Pool;
      taskQueue: string;
      agents: AgentConnections;
      vms: VmService;
      /** config.vm.repoUrlSchemes: what the deployment's VMs clone from. */
      repoUrlSchemes: readonly RepoUrlScheme[];
      settings?: WorkspaceSettings;
      /** Quotas checked before a send (api/limits): cloud workspaces, and the minutes its VM needs. */
      quotas?: QuotaService;
    },
  ) {}

  private handle(workspaceId: string) {
    return this.deps.temporal.workflow.getHandle(workflowIds.workspace(workspaceId));
  }

  private async mapped<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toApiError(err);
    }
  }

  private checkRepoUrl(url: string): void {
    try {
      parseRepoUrl(url, this.deps.repoUrlSchemes);
    } catch (err) {
      const allowed = this.deps.repoUrlSchemes.join(', ');
      throw new ApiError(
        400,
        'invalid_repo_url',
        `${err instanceof Error ? err.message : 'not a repository URL'}: give a git clone URL (${allowed})`,
      );
    }
  }

  /**
   * Send to cloud: starts (or reuses) the workspace's actor and answers as soon as the send is recorded,
   * PROVISIONING in the cloud. Sending the same workspace again is the same workspace.
   */
  async send(userId: string, request: SendWorkspaceRequest): Promise<WorkspaceView> {
    let workspaceId: string;
    let source: WorkspaceSource;
    if ('state' in request) {
      this.checkRepoUrl(request.state.repoUrl);
      workspaceId = request.state.workspaceId;
      source = { kind: 'portable', state: request.state };
    } else {
      if (request.repoUrl !== undefined) this.checkRepoUrl(request.repoUrl);
      workspaceId = request.workspaceId ?? randomUUID();
      source = {
        kind: 'issue',
        issueUrl: request.issueUrl,
        ...(request.repoUrl !== undefined ? { repoUrl: request.repoUrl } : {}),
        ...(request.baseBranch !== undefined ? { baseBranch: request.baseBranch } : {}),
        ...(request.name !== undefined ? { name: request.name } : {}),
        ...(request.ratchetEnabled !== undefined ? { ratchetEnabled: request.ratchetEnabled } : {}),
      };
    }
    await this.refuseOthers(userId, workspaceId);
    // The desktop's own fixer is working on it: two ratchets on one PR is what the handoff rules out.
    if ('state' in request && request.state.ratchetActiveSessionId)
      throw new ApiError(
        409,
        'fixer_active',
        `${FIXER_ACTIVE_MESSAGE}: the desktop's ratchet fixer session ${request.state.ratchetActiveSessionId} is working on this workspace; send it once that session finishes`,
      );
    await this.deps.quotas?.checkWorkspaceSend(userId, workspaceId);
    const input: WorkspaceActorInput = {
      workspaceId,
      userId,
      source,
      settings: this.deps.settings ?? defaultWorkspaceSettings,
    };
    return this.mapped(() =>
      this.deps.temporal.workflow.executeUpdateWithStart(sendToCloudUpdate, {
        args: [{ userId, source }],
        startWorkflowOperation: new WithStartWorkflowOperation(WORKSPACE_WORKFLOW_TYPE, {
          workflowId: workflowIds.workspace(workspaceId),
          taskQueue: this.deps.taskQueue,
          args: [input],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      }),
    );
  }

  /**
   * A workspace id someone else already uses is refused as if it did not exist. The actor refuses a
   * foreign send too (notOwner), but an actor that has ended would be started anew under this id.
   */
  private async refuseOthers(userId: string, workspaceId: string): Promise<void> {
    if (await getWorkspaceView(this.deps.pool, userId, workspaceId)) return;
    const { rows } = await this.deps.pool.query<{ user_id: string }>(
      'SELECT user_id FROM workspaces WHERE id = $1',
      [workspaceId],
    );
    if (rows.some((row) => row.user_id !== userId)) throw workspaceNotFound();
  }

  async list(
    userId: string,
    query: { location?: 'DESKTOP' | 'CLOUD'; status?: CloudWorkspaceStatus; limit: number; cursor?: string },
  ): Promise<{ workspaces: WorkspaceView[]; nextCursor: string | null }> {
    try {
      return await listWorkspaceViews(this.deps.pool, userId, query);
    } catch (err) {
      throw readModelError(err);
    }
  }

  async get(userId: string, workspaceId: string): Promise<WorkspaceView> {
    const view = await getWorkspaceView(this.deps.pool, userId, workspaceId).catch((err: unknown) => {
      throw readModelError(err);
    });
    if (!view) throw workspaceNotFound();
    return view;
  }

  /** Pre-checks from the read model, so an ended actor is answered with the workspace's real state. */
  private async inCloud(userId: string, workspaceId: string): Promise<WorkspaceView> {
    const view = await this.get(userId, workspaceId);
    if (view.status === 'ARCHIVED')
      throw new ApiError(409, 'workspace_archived', 'this workspace is archived');
    if (view.location !== 'CLOUD')
      throw new ApiError(
        409,
        'workspace_not_in_cloud',
        'this workspace was pulled to the desktop; send it again to work on it in the cloud',
      );
    return view;
  }

  async pull(userId: string, workspaceId: string): Promise<PullResult> {
    await this.inCloud(userId, workspaceId);
    return this.mapped(() => this.handle(workspaceId).executeUpdate(pullUpdate));
  }

  async archive(userId: string, workspaceId: string): Promise<WorkspaceView> {
    await this.inCloud(userId, workspaceId);
    return this.mapped(() => this.handle(workspaceId).executeUpdate(archiveUpdate));
  }

  async retry(userId: string, workspaceId: string): Promise<WorkspaceView> {
    await this.inCloud(userId, workspaceId);
    return this.mapped(() => this.handle(workspaceId).executeUpdate(retryUpdate));
  }

  /** Turns the cloud ratchet on or off through the workspace actor; the answer carries the ratchet's view. */
  async setRatchet(userId: string, workspaceId: string, enabled: boolean): Promise<WorkspaceView> {
    await this.inCloud(userId, workspaceId);
    const view = await this.mapped(() =>
      this.handle(workspaceId).executeUpdate(setWorkspaceRatchetUpdate, { args: [{ enabled }] }),
    );
    return { ...view, ratchet: await getRatchetView(this.deps.pool, userId, workspaceId) };
  }

  private ratchetHandle(workspaceId: string) {
    return this.deps.temporal.workflow.getHandle(workflowIds.ratchet(workspaceId));
  }

  /**
   * Stops the ratchet's working fixer (its dispatch is settled, not retried). A fixer left by a loop that
   * no longer runs is stopped in the VM directly, so a pull can always be unblocked.
   */
  async stopFixer(
    userId: string,
    workspaceId: string,
  ): Promise<{ stopped: boolean; sessionId: string | null }> {
    await this.inCloud(userId, workspaceId);
    try {
      const answer = await this.ratchetHandle(workspaceId).executeUpdate(stopFixerUpdate);
      return { stopped: answer.stopped, sessionId: answer.sessionId };
    } catch (err) {
      if (!notRunning(err)) throw toApiError(err);
    }
    const view = await this.readyWorkspace(userId, workspaceId);
    try {
      return await this.deps.agents.withAgent(userId, (agent) => agent.stopFixer({ workspaceId: view.id }));
    } catch (err) {
      throw agentApiError(err);
    }
  }

  /** Makes the ratchet poll now (a GitHub webhook, a user who just pushed). */
  async wakeRatchet(userId: string, workspaceId: string): Promise<void> {
    await this.inCloud(userId, workspaceId);
    try {
      await this.ratchetHandle(workspaceId).signal(wakeSignal);
    } catch (err) {
      if (notRunning(err)) throw ratchetNotRunning();
      throw err;
    }
  }

  /** The caller's workspace, READY in the cloud: what every session operation needs first. */
  async readyWorkspace(userId: string, workspaceId: string): Promise<WorkspaceView> {
    const view = await this.inCloud(userId, workspaceId);
    if (view.status !== 'READY') {
      throw new ApiError(
        409,
        'workspace_not_ready',
        view.status === 'FAILED'
          ? `this workspace failed to set up${view.failureReason ? ` (${view.failureReason})` : ''}; POST /api/workspaces/${workspaceId}/retry`
          : 'this workspace is still being set up; try again once it is READY',
      );
    }
    return view;
  }

  /** Runs `use` with the user's shared agent connection, after the workspace checks, mapping agent errors. */
  private async inVm<T>(userId: string, workspaceId: string, use: (agent: AgentClient) => Promise<T>) {
    await this.readyWorkspace(userId, workspaceId);
    try {
      return await this.deps.agents.withAgent(userId, use);
    } catch (err) {
      throw agentApiError(err);
    }
  }

  /** The session, if it exists and belongs to this workspace; another workspace's is "not found". */
  private async sessionIn(agent: AgentClient, workspaceId: string, sessionId: string) {
    const found = await agent.getSession(sessionId);
    if (found.session.workspaceId !== workspaceId) throw sessionNotFound();
    return found;
  }

  /** Checks a session is the caller's (workspace and session), for the relay. */
  async checkSession(userId: string, workspaceId: string, sessionId: string): Promise<AgentSessionInfo> {
    return this.inVm(
      userId,
      workspaceId,
      async (agent) => (await this.sessionIn(agent, workspaceId, sessionId)).session,
    );
  }

  /** A new session, its CLI started at once; `prompt` becomes its first message. Idempotent on `id`. */
  async createSession(
    userId: string,
    workspaceId: string,
    input: CreateSessionInput,
  ): Promise<AgentSessionInfo> {
    const session = await this.inVm(userId, workspaceId, async (agent) => {
      // `startNow` spawns the CLI before the first message arrives, so the first token comes sooner.
      const created = await agent.createSession({
        workspaceId,
        startNow: true,
        ...(input.id !== undefined ? { id: input.id } : {}),
        ...(input.name !== undefined ? { name: input.name } : {}),
        ...(input.model !== undefined ? { model: input.model } : {}),
        ...(input.permissionMode !== undefined ? { permissionMode: input.permissionMode } : {}),
      });
      if (created.workspaceId !== workspaceId)
        throw new ApiError(409, 'conflict', 'that session id is taken by another workspace');
      if (input.prompt !== undefined) {
        // A fixed message id: a retried create does not send the prompt twice.
        await agent.sendMessage({ sessionId: created.id, id: `prompt-${created.id}`, text: input.prompt });
        return (await agent.getSession(created.id)).session;
      }
      return created;
    });
    void this.deps.vms.touch(userId);
    return session;
  }

  async listSessions(userId: string, workspaceId: string): Promise<AgentSessionInfo[]> {
    return this.inVm(userId, workspaceId, (agent) => agent.listSessions({ workspaceId }));
  }

  async getSession(userId: string, workspaceId: string, sessionId: string): Promise<AgentSessionInfo> {
    return this.checkSession(userId, workspaceId, sessionId);
  }

  async stopSession(userId: string, workspaceId: string, sessionId: string): Promise<AgentSessionInfo> {
    const session = await this.inVm(userId, workspaceId, async (agent) => {
      await this.sessionIn(agent, workspaceId, sessionId);
      await agent.stopSession(sessionId);
      return (await agent.getSession(sessionId)).session;
    });
    void this.deps.vms.touch(userId);
    return session;
  }
}

/** The read model's own failures: a cursor that is not ours (the caller's doing), a view it cannot read. */
function readModelError(err: unknown): unknown {
  if (err instanceof InvalidCursorError)
    return new ApiError(400, 'bad_request', `invalid query: cursor: ${err.message}`);
  if (err instanceof UnreadableWorkspaceError)
    return new ApiError(
      500,
      'workspace_error',
      'the stored state of this workspace is unreadable; contact support',
    );
  return err;
}
