/**
 * The workspace actor's side effects in the user's VM (implements the VM half of WorkspaceActivities).
 *
 * The VM is brought up through its own actor, vm:<userId> (update-with-start of ensureReady, as the api
 * does), never by touching Docker here. Its agent is reached only through connectVmAgent, at the run dir
 * the VM actor reports (vmContainerQuery): the host never trusts the VM's filesystem, and the socket is
 * checked and the agent authenticated before anything is sent.
 *
 * Every activity is safe to retry: the agent's create and import are idempotent on the workspace id (the
 * actor's id), so a worker killed mid-restore and the retry on another worker leave one clone and one
 * worktree; a restore also remembers in its heartbeat that it already handed the workspace over, so a
 * retry only waits for the outcome.
 */
import { type AgentClient, AgentClientError } from '@factory-factory/core/agent-client';
import type { Workspace } from '@factory-factory/core/protocol';
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { Config } from '../../platform/config.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import { type VmSettings, vmContainerQuery } from '../../workflows/vm/messages.js';
import { WorkspaceErrorType } from '../../workflows/workspace/messages.js';
import { createWorkspaceRatchetActivities, type RatchetSettings } from './ratchet.js';
import {
  type PulledWorkspace,
  type RestoreOutcome,
  type RestoreRequest,
  type WorkspaceActivities,
  WorkspaceActivityFailure,
  type WorkspaceDetails,
} from './types.js';

export type WorkspaceAgentDeps = {
  temporal: Client;
  /** Where per-VM secrets live (config.vm.secretRoot). */
  vm: Pick<Config['vm'], 'secretRoot'>;
  /** Settings a VM actor is started with if the user has none yet. */
  vmSettings: VmSettings;
  /** Task queue of the VM actors; defaults to this activity's own (a single-host deployment). */
  vmTaskQueue?: string;
  /** Settings a ratchet actor starts with, over the defaults (activities/workspace/ratchet.ts). */
  ratchetSettings?: Partial<RatchetSettings>;
  /** The longest wait between a restore's looks at how far the agent got (it starts at 20 ms and doubles). */
  pollIntervalMs?: number;
};

/** What a restore's heartbeat carries to the next attempt. */
const RestoreProgressSchema = z.object({ handedOver: z.boolean() });

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

function heartbeat(details?: unknown): void {
  activityContext()?.heartbeat(details);
}

/** Sleeps, but ends early with CancelledFailure when the activity is cancelled (a restore's deadline). */
function pause(ms: number): Promise<void> {
  const context = activityContext();
  if (context) return context.sleep(ms);
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Heartbeats while a long call (the VM coming up) runs, so a dead worker is told from a slow VM. */
async function heartbeating<T>(work: Promise<T>, everyMs = 5_000): Promise<T> {
  heartbeat();
  const timer = setInterval(() => heartbeat(), everyMs);
  try {
    const cancelled = activityContext()?.cancelled;
    if (!cancelled) return await work;
    // Cancellation rejects the race; the call itself finishes (or not) on its own, its result unused.
    return await Promise.race([work, cancelled.then(() => work)]);
  } finally {
    clearInterval(timer);
  }
}

const final = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);

/** The agent's answers that retrying cannot change, as failures the actor tells apart. */
function mapAgentError(err: unknown): unknown {
  if (!(err instanceof AgentClientError)) return err;
  switch (err.code) {
    case 'bad_request':
      return final(WorkspaceErrorType.invalidSource, err.message);
    case 'conflict':
      if (/fixer session/i.test(err.message))
        return final(WorkspaceErrorType.fixerActive, 'Fixer session active — wait or stop it first');
      return final(WorkspaceErrorType.notReady, err.message);
    case 'unauthorized':
      // The socket answered but not as this VM's agent: never retried into, shown as it is.
      return final(WorkspaceErrorType.unavailable, `the VM's agent could not be trusted: ${err.message}`);
    default:
      // unavailable, timeout, disconnected, internal: the VM restarting, busy or briefly gone.
      return ApplicationFailure.retryable(
        `the VM's agent did not answer: ${err.message}`,
        WorkspaceErrorType.unavailable,
      );
  }
}

function detailsOf(w: Workspace): WorkspaceDetails {
  return {
    name: w.name,
    repoUrl: w.repoUrl,
    branchName: w.branchName,
    baseBranch: w.baseBranch,
    prUrl: w.prUrl,
    prNumber: w.prNumber,
    githubIssueUrl: w.githubIssueUrl,
    githubIssueNumber: w.githubIssueNumber,
    ratchetEnabled: w.ratchetEnabled,
    ratchetState: w.ratchetState,
  };
}

async function workspaceOrNull(agent: AgentClient, id: string): Promise<Workspace | null> {
  try {
    return await agent.getWorkspace(id);
  } catch (err) {
    if (err instanceof AgentClientError && err.code === 'not_found') return null;
    throw err;
  }
}

/** The restore's first look at the agent after handing the workspace over. */
const FIRST_POLL_MS = 20;

export function createWorkspaceAgentActivities(deps: WorkspaceAgentDeps) {
  const pollIntervalMs = deps.pollIntervalMs ?? 500;
  /** A warm VM restores in tens of ms, a clone of a big repo in minutes: look soon, then less and less often. */
  const firstPollMs = Math.min(FIRST_POLL_MS, pollIntervalMs);
  const taskQueue = () => deps.vmTaskQueue ?? activityContext()?.info.taskQueue;

  async function ensureVm(userId: string): Promise<{ status: string }> {
    const queue = taskQueue();
    if (!queue) throw new Error('no task queue for the VM actor (not in an activity and none configured)');
    try {
      const view = await heartbeating(
        ensureVmReady(deps.temporal, { userId, taskQueue: queue, settings: deps.vmSettings }),
      );
      return { status: view.status };
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure)
        throw final(WorkspaceActivityFailure.vmFailed, err.cause.message);
      throw err;
    }
  }

  /** The agent of the user's usable VM, bringing the VM up first if it is not (suspended, never started). */
  async function connectAgent(userId: string): Promise<AgentClient> {
    const handle = deps.temporal.workflow.getHandle(workflowIds.vm(userId));
    const container = () =>
      handle.query(vmContainerQuery).catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      });
    let ref = await container();
    if (!ref) {
      await ensureVm(userId);
      ref = await container();
    }
    if (!ref)
      throw ApplicationFailure.retryable('the VM is not running right now', WorkspaceErrorType.unavailable);
    try {
      return await connectVmAgent(vmAgentEndpoint(ref, deps.vm.secretRoot), {
        clientName: 'ffc-worker-workspace',
      });
    } catch (err) {
      throw mapAgentError(err);
    }
  }

  async function withAgent<T>(userId: string, work: (agent: AgentClient) => Promise<T>): Promise<T> {
    const agent = await connectAgent(userId);
    try {
      return await work(agent);
    } catch (err) {
      throw mapAgentError(err);
    } finally {
      agent.close();
    }
  }

  /** Gives the agent what this restore asks for; every call here is idempotent on the workspace id. */
  async function handOver(
    agent: AgentClient,
    request: RestoreRequest,
    current: Workspace | null,
  ): Promise<Workspace> {
    const { source, workspaceId } = request;
    if (source.kind === 'portable') {
      // The agent imports only what is handed to its side; whatever the desktop wrote, the cloud owns it now.
      const state = { ...source.state, workspaceId, location: 'CLOUD' as const };
      if (request.mode === 'retry' && current?.status === 'FAILED') return agent.retryWorkspace(workspaceId);
      return agent.importWorkspace(state);
    }
    if (current === null || current.status === 'ARCHIVED') {
      return agent.createWorkspace({
        source: 'GITHUB_ISSUE',
        id: workspaceId,
        issueUrl: source.issueUrl,
        ...(source.repoUrl !== undefined ? { repoUrl: source.repoUrl } : {}),
        ...(source.baseBranch !== undefined ? { baseBranch: source.baseBranch } : {}),
        ...(source.ratchetEnabled !== undefined ? { ratchetEnabled: source.ratchetEnabled } : {}),
      });
    }
    if (current.status === 'FAILED') return agent.retryWorkspace(workspaceId);
    if (current.location === 'DESKTOP') {
      // Pulled earlier and sent again as an issue: hand its own state back to the cloud side.
      const state = await agent.exportWorkspace(workspaceId);
      return agent.importWorkspace({ ...state, location: 'CLOUD' });
    }
    return current;
  }

  async function restoreWorkspaceInVm(request: RestoreRequest): Promise<RestoreOutcome> {
    const previous = RestoreProgressSchema.safeParse(activityContext()?.info.heartbeatDetails);
    const handedOverBefore = previous.success && previous.data.handedOver;
    return withAgent(request.userId, async (agent) => {
      heartbeat({ handedOver: handedOverBefore });
      let current = await workspaceOrNull(agent, request.workspaceId);
      // A retry of this same restore (the worker died) only waits: handing over again could provision a
      // workspace whose first provisioning failed a second time.
      if (!handedOverBefore || current === null) current = await handOver(agent, request, current);
      let waitMs = firstPollMs;
      for (;;) {
        heartbeat({ handedOver: true });
        switch (current.status) {
          case 'READY':
            return { status: 'READY', details: detailsOf(current) };
          case 'FAILED':
            return {
              status: 'FAILED',
              reason: current.initError ?? 'the workspace could not be set up in the VM',
            };
          case 'ARCHIVED':
            throw final(
              WorkspaceErrorType.notReady,
              `workspace ${request.workspaceId} was archived in the VM while it was being restored`,
            );
          default:
            await pause(waitMs);
            waitMs = Math.min(waitMs * 2, pollIntervalMs);
            current = await agent.getWorkspace(request.workspaceId);
        }
      }
    });
  }

  async function pullWorkspaceFromVm(input: {
    userId: string;
    workspaceId: string;
  }): Promise<PulledWorkspace> {
    return withAgent(input.userId, async (agent) => {
      heartbeat();
      let state: PulledWorkspace['state'];
      try {
        state = await agent.exportWorkspace(input.workspaceId, { handoffTo: 'DESKTOP' });
      } catch (err) {
        if (err instanceof AgentClientError && err.code === 'not_found')
          throw final(WorkspaceErrorType.notReady, `workspace ${input.workspaceId} is not in the VM`);
        throw err;
      }
      const sessions = await agent.listSessions({ workspaceId: input.workspaceId });
      return {
        state,
        sessions: sessions.map((s) => ({
          id: s.id,
          name: s.name,
          workflow: s.workflow,
          claudeSessionId: s.claudeSessionId,
          messageCount: s.messageCount,
          createdAt: s.createdAt,
        })),
      };
    });
  }

  async function archiveWorkspaceInVm(input: { userId: string; workspaceId: string }): Promise<void> {
    await withAgent(input.userId, async (agent) => {
      heartbeat();
      try {
        await agent.archiveWorkspace(input.workspaceId);
      } catch (err) {
        // Never made it into the VM (a restore that failed before the agent had it): nothing to remove.
        if (err instanceof AgentClientError && err.code === 'not_found') return;
        throw err;
      }
    });
  }

  return {
    ensureWorkspaceVm: (input: { userId: string }) => ensureVm(input.userId),
    restoreWorkspaceInVm,
    pullWorkspaceFromVm,
    archiveWorkspaceInVm,
    ...createWorkspaceRatchetActivities({
      temporal: deps.temporal,
      ...(deps.ratchetSettings ? { ratchetSettings: deps.ratchetSettings } : {}),
    }),
  } satisfies Omit<WorkspaceActivities, 'recordWorkspaceView'>;
}
