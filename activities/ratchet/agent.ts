/**
 * The ratchet actor's side effects in the user's VM (implements the VM half of RatchetActivities).
 *
 * The agent is reached only through connectVmAgent, at the run dir the VM actor reports (vmContainerQuery),
 * the same door every path into a VM goes through: the socket is checked and the agent authenticated before
 * anything is sent. Unlike the workspace activities, nothing here brings a VM up on the side: a poll of a
 * suspended VM answers `vm_suspended` and the workflow decides whether to resume it (wakeVmForPoll, which
 * asks the VM actor for a background-only resume). A poll is never user activity: no `touch`. A fixer at
 * work is the user's work, though: while one runs, checkFixer keeps the VM from idling out under it.
 *
 * Every activity is idempotent: the snapshot is a read, the dispatch is keyed by its dispatch id in the
 * agent (a retry answers the same session), status and stop are safe to repeat.
 */
import { type AgentClient, AgentClientError } from '@factory-factory/core/agent-client';
import { Context } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../platform/config.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  ensureReadyForBackgroundUpdate,
  touchSignal,
  VmErrorType,
  vmContainerQuery,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
import type { VmContainerRef } from '../vm/types.js';
import {
  type FixerCheckResult,
  type PollPullRequestResult,
  type RatchetActivities,
  RatchetActivityFailure,
} from './types.js';
import { watchPullRequestWith } from './watch.js';

export type RatchetAgentDeps = {
  temporal: Client;
  /** Where per-VM secrets live (config.vm.secretRoot). */
  vm: Pick<Config['vm'], 'secretRoot'>;
};

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Heartbeats while a long call (a VM resuming) runs, so a dead worker is told from a slow VM. */
async function heartbeating<T>(work: Promise<T>, everyMs = 5_000): Promise<T> {
  const context = activityContext();
  context?.heartbeat();
  const timer = setInterval(() => context?.heartbeat(), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

const final = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);
const retryable = (message: string) =>
  ApplicationFailure.retryable(message, RatchetActivityFailure.vmUnavailable);

/** A rate limit as the agent reports it: code `unavailable` with `retryAfterSeconds` set. */
function rateLimitOf(err: AgentClientError): { retryAfterMs: number | null } | null {
  if (err.retryAfterSeconds !== null) return { retryAfterMs: err.retryAfterSeconds * 1000 };
  return /rate.?limit/i.test(err.message) ? { retryAfterMs: null } : null;
}

type VmWhere =
  | { kind: 'agent'; agent: AgentClient }
  | { kind: 'suspended' }
  | { kind: 'terminated' }
  | { kind: 'not_running'; status: string };

export function createRatchetAgentActivities(deps: RatchetAgentDeps) {
  const vmHandle = (userId: string) => deps.temporal.workflow.getHandle(workflowIds.vm(userId));

  /** The user's VM's agent when the VM is usable; otherwise what the VM actor says it is. Never starts it. */
  async function reach(userId: string): Promise<VmWhere> {
    const handle = vmHandle(userId);
    let ref: VmContainerRef | null;
    try {
      ref = await handle.query(vmContainerQuery);
    } catch (err) {
      // No VM actor: the VM was terminated (its actor ended) or never made. Either way there is nothing to poll.
      if (err instanceof WorkflowNotFoundError) return { kind: 'terminated' };
      throw err;
    }
    if (!ref) {
      const view = await handle.query(vmStateQuery).catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      });
      if (view === null || view.status === 'TERMINATED') return { kind: 'terminated' };
      if (view.status === 'SUSPENDED' && view.operation === null) return { kind: 'suspended' };
      return { kind: 'not_running', status: view.operation ?? view.status.toLowerCase() };
    }
    try {
      const agent = await connectVmAgent(vmAgentEndpoint(ref, deps.vm.secretRoot), {
        clientName: 'ffc-worker-ratchet',
      });
      return { kind: 'agent', agent };
    } catch (err) {
      if (err instanceof AgentClientError && err.code === 'unauthorized')
        throw final(
          RatchetActivityFailure.vmUnavailable,
          `the VM's agent could not be trusted: ${err.message}`,
        );
      // Suspended (or restarted) between the query and the connect: the retry sees what it is now.
      throw retryable(`the VM's agent did not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async function withAgent<T>(
    userId: string,
    work: (agent: AgentClient) => Promise<T>,
    otherwise: (where: Exclude<VmWhere, { kind: 'agent' }>) => T | Promise<T>,
  ): Promise<T> {
    const where = await reach(userId);
    if (where.kind !== 'agent') return otherwise(where);
    try {
      return await work(where.agent);
    } finally {
      where.agent.close();
    }
  }

  /** The agent's answers retrying cannot change, as failures the workflow tells apart. */
  function mapCallError(err: unknown, what: string): unknown {
    if (!(err instanceof AgentClientError)) return err;
    switch (err.code) {
      case 'bad_request':
      case 'conflict':
      case 'not_found':
        return final(RatchetActivityFailure.dispatchRefused, `${what}: ${err.message}`);
      case 'unauthorized':
        return final(
          RatchetActivityFailure.vmUnavailable,
          `the VM's agent could not be trusted: ${err.message}`,
        );
      default:
        return retryable(`${what}: the VM's agent did not answer: ${err.message}`);
    }
  }

  async function pollPullRequest(
    input: Parameters<RatchetActivities['pollPullRequest']>[0],
  ): Promise<PollPullRequestResult> {
    return withAgent<PollPullRequestResult>(
      input.userId,
      async (agent) => {
        try {
          const answer = await agent.ratchetSnapshot(input.workspaceId, { trust: input.trust });
          return { kind: 'snapshot', snapshot: answer.snapshot };
        } catch (err) {
          if (!(err instanceof AgentClientError)) throw err;
          const limited = rateLimitOf(err);
          if (limited) return { kind: 'rate_limited', retryAfterMs: limited.retryAfterMs };
          // gh in the VM could not get an answer from GitHub (network, login): the loop shows it and retries.
          if (err.code === 'unavailable') return { kind: 'unavailable', message: err.message };
          // The workspace is not (or no longer) in the VM: nothing to poll there right now.
          if (err.code === 'not_found')
            return { kind: 'unavailable', message: `the workspace is not in the VM: ${err.message}` };
          throw mapCallError(err, 'the PR snapshot failed');
        }
      },
      (where): PollPullRequestResult => {
        if (where.kind === 'terminated') return { kind: 'vm_terminated' };
        if (where.kind === 'suspended') return { kind: 'vm_suspended' };
        throw retryable(`the VM is ${where.status}`);
      },
    );
  }

  async function wakeVmForPoll(input: { userId: string }): Promise<void> {
    try {
      await heartbeating(vmHandle(input.userId).executeUpdate(ensureReadyForBackgroundUpdate));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError)
        throw final(RatchetActivityFailure.vmTerminated, 'the VM is gone (its actor has ended)');
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        switch (err.cause.type) {
          case VmErrorType.quotaExhausted:
            throw final(RatchetActivityFailure.quota, err.cause.message);
          case VmErrorType.terminated:
          case VmErrorType.terminating:
            throw final(RatchetActivityFailure.vmTerminated, err.cause.message);
          default:
            throw final(RatchetActivityFailure.vmUnavailable, err.cause.message);
        }
      }
      throw err;
    }
  }

  async function dispatchFixer(
    input: Parameters<RatchetActivities['dispatchFixer']>[0],
  ): Promise<{ sessionId: string }> {
    return withAgent(
      input.userId,
      async (agent) => {
        try {
          const answer = await agent.dispatchFixer({
            workspaceId: input.workspaceId,
            dispatchId: input.dispatchId,
            prompt: input.prompt,
          });
          return { sessionId: answer.sessionId };
        } catch (err) {
          throw mapCallError(err, 'the fixer could not be started');
        }
      },
      (where) => {
        if (where.kind === 'terminated') throw final(RatchetActivityFailure.vmTerminated, 'the VM is gone');
        // Asleep or starting: the workflow tries again after its interval (the poll before it had it up).
        throw retryable(where.kind === 'suspended' ? 'the VM is suspended' : `the VM is ${where.status}`);
      },
    );
  }

  async function checkFixer(
    input: Parameters<RatchetActivities['checkFixer']>[0],
  ): Promise<FixerCheckResult> {
    return withAgent(
      input.userId,
      async (agent) => {
        let answer: FixerCheckResult;
        try {
          answer = await agent.fixerStatus({
            workspaceId: input.workspaceId,
            sessionId: input.sessionId,
            dispatchId: input.dispatchId,
          });
        } catch (err) {
          if (err instanceof AgentClientError && err.code === 'not_found')
            return { outcome: 'DIED', detail: `the fixer session is gone: ${err.message}` };
          throw mapCallError(err, 'the fixer could not be checked');
        }
        // A fixer at work is the user's work: the VM must not idle out under it (a poll never does this).
        if (answer.outcome === 'RUNNING')
          await vmHandle(input.userId)
            .signal(touchSignal)
            .catch(() => undefined);
        return { outcome: answer.outcome, detail: answer.detail };
      },
      (where): FixerCheckResult => {
        if (where.kind === 'not_running') throw retryable(`the VM is ${where.status}`);
        // A stopped VM has no fixer running: the CLI went with it.
        return {
          outcome: 'DIED',
          detail:
            where.kind === 'suspended' ? 'the VM was suspended while the fixer worked' : 'the VM is gone',
        };
      },
    );
  }

  async function stopFixer(input: { userId: string; workspaceId: string }) {
    return withAgent(
      input.userId,
      async (agent) => {
        try {
          const answer = await agent.stopFixer(input.workspaceId);
          return { stopped: answer.stopped, sessionId: answer.sessionId };
        } catch (err) {
          if (err instanceof AgentClientError && err.code === 'not_found')
            return { stopped: false, sessionId: null };
          throw mapCallError(err, 'the fixer could not be stopped');
        }
      },
      (where) => {
        if (where.kind === 'not_running') throw retryable(`the VM is ${where.status}`);
        return { stopped: false, sessionId: null };
      },
    );
  }

  return {
    pollPullRequest,
    watchPullRequest: watchPullRequestWith(pollPullRequest),
    wakeVmForPoll,
    dispatchFixer,
    checkFixer,
    stopFixer,
  } satisfies Omit<RatchetActivities, 'recordRatchetView'>;
}
