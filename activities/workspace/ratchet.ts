/**
 * The workspace actor's hold on its ratchet:<workspaceId> actor. A workflow cannot call another workflow's
 * update, so these activities do it with the Temporal client: start it (update-with-start of setEnabled,
 * so a running one is only told), hand it off before a pull (its memory back, refused while a fixer works),
 * end it on archive. The workflow id is the guarantee of one ratchet per workspace; every call here is
 * safe to repeat: a second start finds the running one, a handoff or end of an ended one is "not running".
 */
import { Context } from '@temporalio/activity';
import {
  type Client,
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultRatchetSettings,
  endRatchetUpdate,
  handOffUpdate,
  type RatchetActorInput,
  RatchetErrorType,
  RatchetHandOffSchema,
  type RatchetSettings,
  RatchetViewSchema,
  setRatchetEnabledUpdate,
} from '../../workflows/ratchet/messages.js';
import { WorkspaceErrorType } from '../../workflows/workspace/messages.js';
import type { RatchetHandOffResult, RatchetMemoryPayload, WorkspaceActivities } from './types.js';

/** The ratchet actor's workflow type, by name (workflows/index.ts exports a function of this name). */
export const RATCHET_WORKFLOW_TYPE = 'ratchetWorkflow';

export type { RatchetSettings };

export type WorkspaceRatchetDeps = {
  temporal: Client;
  /** Settings a ratchet actor starts with, over defaultRatchetSettings (tests poll faster). */
  ratchetSettings?: Partial<RatchetSettings>;
  /** Task queue of the ratchet actors; this activity's own by default (a single-host deployment). */
  ratchetTaskQueue?: string;
};

const final = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);

/** An update sent to an actor whose run has finished. */
const completed = (err: unknown): boolean =>
  err instanceof Error && /workflow execution already completed/i.test(err.message);

/** The actor refused because its loop has ended (it is completing): as good as not running. */
const endedRefusal = (err: unknown): boolean =>
  err instanceof WorkflowUpdateFailedError &&
  err.cause instanceof ApplicationFailure &&
  err.cause.type === RatchetErrorType.ended;

/** What an ended ratchet left as its result: its memory and last view, or (older shapes) a view. */
const EndedRatchetSchema = z.union([RatchetHandOffSchema, RatchetViewSchema]);

function taskQueueOf(deps: WorkspaceRatchetDeps): string {
  if (deps.ratchetTaskQueue) return deps.ratchetTaskQueue;
  try {
    return Context.current().info.taskQueue;
  } catch {
    throw new Error('no task queue for the ratchet actor (not in an activity and none configured)');
  }
}

export function createWorkspaceRatchetActivities(deps: WorkspaceRatchetDeps) {
  const handle = (workspaceId: string) => deps.temporal.workflow.getHandle(workflowIds.ratchet(workspaceId));

  async function syncWorkspaceRatchet(input: {
    workspaceId: string;
    userId: string;
    enabled: boolean;
    memory: RatchetMemoryPayload;
  }): Promise<{ running: boolean }> {
    const workflowId = workflowIds.ratchet(input.workspaceId);
    if (!input.enabled) {
      try {
        await handle(input.workspaceId).executeUpdate(setRatchetEnabledUpdate, {
          args: [{ enabled: false }],
        });
        return { running: true };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError || completed(err) || endedRefusal(err))
          return { running: false };
        throw err;
      }
    }
    const start: RatchetActorInput = {
      workspaceId: input.workspaceId,
      userId: input.userId,
      memory: { ...input.memory, enabled: true },
      settings: { ...defaultRatchetSettings, ...deps.ratchetSettings },
    };
    try {
      // Started if it does not run; a running one (a retry of this activity) is only told.
      await deps.temporal.workflow.executeUpdateWithStart(setRatchetEnabledUpdate, {
        args: [{ enabled: true }],
        startWorkflowOperation: new WithStartWorkflowOperation(RATCHET_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: taskQueueOf(deps),
          args: [start],
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      });
    } catch (err) {
      // An ended loop still completing: retried, it finds the run over and starts a new one.
      if (endedRefusal(err))
        throw ApplicationFailure.retryable(
          'the previous ratchet is still ending',
          WorkspaceErrorType.unavailable,
        );
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure)
        throw final(WorkspaceErrorType.invalidInput, `the ratchet refused to start: ${err.cause.message}`);
      throw err;
    }
    return { running: true };
  }

  async function handOffWorkspaceRatchet(input: { workspaceId: string }): Promise<RatchetHandOffResult> {
    const ratchet = handle(input.workspaceId);
    try {
      const answer = await ratchet.executeUpdate(handOffUpdate);
      // Checked as it crosses from the other actor: this is what the desktop is handed.
      const parsed = RatchetHandOffSchema.parse(answer);
      return { found: true, memory: parsed.memory, ratchetState: parsed.view.state };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { found: false };
      // Ended on its own (PR merged or closed, VM gone, a handoff retried after its answer was lost), or
      // ending right now: its result is the memory.
      const ended = completed(err) || endedRefusal(err);
      if (!ended && err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
        if (err.cause.type === WorkspaceErrorType.fixerActive)
          throw final(WorkspaceErrorType.fixerActive, 'Fixer session active — wait or stop it first');
        throw final(WorkspaceErrorType.unavailable, `the ratchet refused the handoff: ${err.cause.message}`);
      }
      if (!ended) throw err;
    }
    const result: unknown = await ratchet.result().catch(() => null);
    const parsed = EndedRatchetSchema.safeParse(result);
    if (!parsed.success) return { found: true, memory: null, ratchetState: null };
    if ('memory' in parsed.data)
      return { found: true, memory: parsed.data.memory, ratchetState: parsed.data.view.state };
    return { found: true, memory: null, ratchetState: parsed.data.state };
  }

  async function endWorkspaceRatchet(input: {
    workspaceId: string;
    reason: 'archived';
  }): Promise<{ ended: boolean }> {
    try {
      await handle(input.workspaceId).executeUpdate(endRatchetUpdate, { args: [{ reason: input.reason }] });
      return { ended: true };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || completed(err) || endedRefusal(err))
        return { ended: false };
      throw err;
    }
  }

  return { syncWorkspaceRatchet, handOffWorkspaceRatchet, endWorkspaceRatchet } satisfies Pick<
    WorkspaceActivities,
    'syncWorkspaceRatchet' | 'handOffWorkspaceRatchet' | 'endWorkspaceRatchet'
  >;
}
