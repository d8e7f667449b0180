/**
 * The workspace actor's state and its transitions, as pure functions: the workflow decides *when* an event
 * happens; *what* it does to the state, and what the actor does next, is decided here and tested without
 * Temporal, Docker or a VM.
 *
 *   PROVISIONING ──restored──▶ READY ──pull──▶ READY (location DESKTOP) ──send──▶ PROVISIONING
 *     │  ▲   step vm → restore    │ └─archive─▶ ARCHIVED (the actor ends)      └──(linger over)──▶ ends
 *     │  └──retry / send──┐       │
 *     └──failed──────▶ FAILED ────┴─archive─▶ ARCHIVED
 *
 * `restoreSeq` counts the sends and retries that asked for a restore, `recordedSeq` the last of them whose
 * PROVISIONING was written to the read model: a send or retry is answered once its own number is recorded.
 */
import type { PortableWorkspaceState, RatchetStateName } from '@factory-factory/core/protocol';
import { initialRatchetMemory } from '@factory-factory/core/ratchet';
import type { z } from 'zod';
import { RatchetMemorySchema } from '../ratchet/messages.js';
import type {
  CarriedWorkspaceStateSchema,
  WorkspaceDetailsSchema,
  WorkspaceRatchetLinkSchema,
  WorkspaceSource,
  WorkspaceView,
} from './messages.js';

export type WorkspaceState = z.output<typeof CarriedWorkspaceStateSchema>;
export type WorkspaceDetails = z.output<typeof WorkspaceDetailsSchema>;
export type WorkspaceRatchetLink = z.output<typeof WorkspaceRatchetLinkSchema>;
export type WorkspaceRatchetMemory = z.output<typeof RatchetMemorySchema>;
export type RestoreMode = 'send' | 'retry';

export type WorkspaceEvent =
  /** A send to a workspace that is not in the cloud right now (pulled) or whose restore failed. */
  | { type: 'SENT'; source: WorkspaceSource }
  | { type: 'RETRY_REQUESTED'; automatic: boolean }
  /** The main loop took the owed restore. */
  | { type: 'RESTORE_TAKEN' }
  /** The PROVISIONING of the latest send or retry was written (or the write was tried and shown as a problem). */
  | { type: 'RECORDED' }
  | { type: 'VM_READY' }
  | { type: 'RESTORED'; details: WorkspaceDetails }
  | { type: 'RESTORE_FAILED'; reason: string; retryable: boolean }
  | { type: 'PULLED'; details: WorkspaceDetails }
  | { type: 'ARCHIVED' }
  /** The read model accepted a write: its version (bumped per write) and creation time are the truth. */
  | { type: 'PERSISTED'; version: number; createdAtMs: number }
  | { type: 'PROBLEM'; message: string }
  | { type: 'PROBLEM_CLEARED' }
  /** The user turned the cloud ratchet on or off (POST /api/workspaces/:id/ratchet). */
  | { type: 'RATCHET_ENABLED'; enabled: boolean }
  /** The ratchet:<id> actor was told `enabled` (started, if it had to be). */
  | { type: 'RATCHET_SYNCED'; enabled: boolean }
  | { type: 'RATCHET_SYNC_FAILED' }
  /** The ratchet:<id> actor handed its memory back and ended (a pull); null: there was none to ask. */
  | {
      type: 'RATCHET_HANDED_OFF';
      memory: WorkspaceRatchetMemory | null;
      ratchetState: RatchetStateName | null;
    };

export class InvalidWorkspaceTransition extends Error {
  constructor(state: WorkspaceState, event: WorkspaceEvent) {
    super(
      `workspace ${state.workspaceId}: ${event.type} is not allowed in ${state.status}/${state.location}${state.step ? `/${state.step}` : ''}`,
    );
    this.name = 'InvalidWorkspaceTransition';
  }
}

const ISSUE_NUMBER = /\/issues\/(\d{1,9})(?:[/?#]|$)/;

/** What the view shows before the agent has reported the workspace. */
export function detailsFromSource(source: WorkspaceSource): WorkspaceDetails {
  if (source.kind === 'portable') {
    const s = source.state;
    return {
      name: s.name,
      repoUrl: s.repoUrl,
      branchName: s.branchName,
      baseBranch: s.baseBranch,
      prUrl: s.prUrl,
      prNumber: s.prNumber,
      githubIssueUrl: s.githubIssueUrl,
      githubIssueNumber: s.githubIssueNumber,
      ratchetEnabled: s.ratchetEnabled,
      ratchetState: s.ratchetState,
    };
  }
  const number = source.issueUrl.match(ISSUE_NUMBER)?.[1];
  return {
    name: (source.name ?? `Issue ${source.issueUrl}`).slice(0, 200),
    repoUrl: source.repoUrl ?? null,
    branchName: null,
    baseBranch: source.baseBranch ?? null,
    prUrl: null,
    prNumber: null,
    githubIssueUrl: source.issueUrl,
    githubIssueNumber: number === undefined ? null : Number(number),
    ratchetEnabled: source.ratchetEnabled ?? false,
    ratchetState: 'IDLE',
  };
}

/**
 * What the cloud ratchet starts from: the desktop's dedup key, recent keys and review check time, so a
 * situation the desktop already handed to a fixer is not handed to another one here.
 */
export function ratchetMemoryFromSource(source: WorkspaceSource): WorkspaceRatchetMemory {
  if (source.kind === 'issue')
    return RatchetMemorySchema.parse(initialRatchetMemory({ enabled: source.ratchetEnabled ?? false }));
  const s = source.state;
  const keys = [...s.ratchetDispatchKeys];
  if (s.ratchetLastCiRunId !== null && !keys.includes(s.ratchetLastCiRunId)) keys.push(s.ratchetLastCiRunId);
  return RatchetMemorySchema.parse(
    initialRatchetMemory({
      enabled: s.ratchetEnabled,
      lastDispatchKey: s.ratchetLastCiRunId,
      dispatchKeys: keys,
      reviewLastCheckedAt: s.prReviewLastCheckedAt,
    }),
  );
}

/** A fresh link for a send: the ratchet not started yet, its memory the sent one. */
export const ratchetLinkFromSource = (source: WorkspaceSource): WorkspaceRatchetLink => ({
  memory: ratchetMemoryFromSource(source),
  actorEnabled: null,
  retryAtMs: null,
  failures: 0,
});

/** The link, also for a state carried from a run that predates it. */
export const ratchetLinkOf = (s: WorkspaceState): WorkspaceRatchetLink =>
  s.ratchet ?? ratchetLinkFromSource(s.source);

/** How many dispatch keys the portable state carries (its schema's maximum). */
const PORTABLE_DISPATCH_KEYS = 50;

/**
 * The pulled state with what the cloud ratchet did: its dedup key, recent keys, review check time, state
 * and the setting, so the desktop loop resumes without handing a handled situation to a fixer again.
 */
export function portableWithRatchet(
  pulled: PortableWorkspaceState,
  input: { enabled: boolean; memory: WorkspaceRatchetMemory | null; ratchetState: RatchetStateName | null },
): PortableWorkspaceState {
  const { memory } = input;
  return {
    ...pulled,
    ratchetEnabled: input.enabled,
    ...(input.ratchetState !== null ? { ratchetState: input.ratchetState } : {}),
    ...(memory
      ? {
          ratchetLastCiRunId: memory.lastDispatchKey,
          ratchetDispatchKeys: memory.dispatchKeys.slice(-PORTABLE_DISPATCH_KEYS),
          prReviewLastCheckedAt: memory.reviewLastCheckedAt,
        }
      : {}),
  };
}

/** Back-off between tries to start or tell the ratchet actor: 5 s doubling to 5 min. */
export const ratchetRetryDelayMs = (failures: number): number =>
  Math.min(300_000, 5_000 * 2 ** Math.min(6, Math.max(0, failures)));

/** Whether the ratchet actor must be started or told the setting now, or when (null: nothing to do). */
export function ratchetSyncDueAtMs(s: WorkspaceState): number | null {
  if (s.status !== 'READY' || s.location !== 'CLOUD') return null;
  const link = ratchetLinkOf(s);
  const wanted = s.details.ratchetEnabled;
  // Not started this stint: only an enabled ratchet is started; a started one is told every change.
  const due = link.actorEnabled === null ? wanted : link.actorEnabled !== wanted;
  if (!due) return null;
  return link.retryAtMs ?? s.updatedAtMs;
}

/** A new actor: PROVISIONING in the cloud, its first restore owed. */
export function newWorkspaceState(input: {
  workspaceId: string;
  userId: string;
  source: WorkspaceSource;
  nowMs: number;
}): WorkspaceState {
  return {
    workspaceId: input.workspaceId,
    userId: input.userId,
    source: input.source,
    status: 'PROVISIONING',
    location: 'CLOUD',
    step: 'vm',
    details: detailsFromSource(input.source),
    failureReason: null,
    failureRetryable: false,
    autoRetries: 0,
    restoreSeq: 1,
    pendingRestore: 'send',
    recordedSeq: 0,
    createdAtMs: input.nowMs,
    updatedAtMs: input.nowMs,
    pulledAtMs: null,
    version: 0,
    problem: null,
  };
}

/** In the cloud and being restored or restored: a send changes nothing (answered with the view). */
export const isInCloud = (s: WorkspaceState): boolean =>
  s.location === 'CLOUD' && (s.status === 'PROVISIONING' || s.status === 'READY');

/** What a send does: nothing (already in the cloud), a new restore, or a refusal (archived). */
export function sendDisposition(s: WorkspaceState): 'current' | 'restore' | 'archived' {
  if (s.status === 'ARCHIVED') return 'archived';
  return isInCloud(s) ? 'current' : 'restore';
}

export function applyWorkspaceEvent(
  state: WorkspaceState,
  event: WorkspaceEvent,
  nowMs: number,
): WorkspaceState {
  const s: WorkspaceState = { ...state, updatedAtMs: nowMs };
  const reject = (): never => {
    throw new InvalidWorkspaceTransition(state, event);
  };
  if (state.status === 'ARCHIVED' && !['PERSISTED', 'PROBLEM', 'PROBLEM_CLEARED'].includes(event.type))
    reject();

  switch (event.type) {
    case 'SENT':
      if (sendDisposition(state) !== 'restore') reject();
      return {
        ...s,
        source: event.source,
        status: 'PROVISIONING',
        location: 'CLOUD',
        step: 'vm',
        details: detailsFromSource(event.source),
        failureReason: null,
        failureRetryable: false,
        autoRetries: 0,
        restoreSeq: state.restoreSeq + 1,
        pendingRestore: 'send',
        pulledAtMs: null,
        // A send after a pull brings the desktop's newer memory; the previous stint's ratchet has ended.
        ratchet: ratchetLinkFromSource(event.source),
      };

    case 'RETRY_REQUESTED':
      if (state.status !== 'FAILED') reject();
      return {
        ...s,
        status: 'PROVISIONING',
        step: 'vm',
        failureReason: null,
        failureRetryable: false,
        autoRetries: event.automatic ? state.autoRetries + 1 : 0,
        restoreSeq: state.restoreSeq + 1,
        // A send not yet taken stays a send: its state has not reached the VM.
        pendingRestore: state.pendingRestore ?? 'retry',
      };

    case 'RESTORE_TAKEN':
      if (state.pendingRestore === null || state.status !== 'PROVISIONING') reject();
      return { ...s, pendingRestore: null, step: 'vm' };

    case 'RECORDED':
      return { ...state, recordedSeq: state.restoreSeq };

    case 'VM_READY':
      if (state.status !== 'PROVISIONING') reject();
      return { ...s, step: 'restore' };

    case 'RESTORED':
      if (state.status !== 'PROVISIONING') reject();
      return {
        ...s,
        status: 'READY',
        location: 'CLOUD',
        step: 'done',
        details: event.details,
        failureReason: null,
        failureRetryable: false,
      };

    case 'RESTORE_FAILED':
      if (state.status !== 'PROVISIONING') reject();
      return {
        ...s,
        status: 'FAILED',
        step: null,
        failureReason: event.reason,
        failureRetryable: event.retryable,
      };

    case 'PULLED':
      if (state.status !== 'READY') reject();
      return { ...s, location: 'DESKTOP', details: event.details, pulledAtMs: nowMs };

    case 'ARCHIVED':
      if (state.status !== 'READY' && state.status !== 'FAILED') reject();
      return {
        ...s,
        status: 'ARCHIVED',
        step: null,
        pendingRestore: null,
        ...(state.ratchet ? { ratchet: { ...state.ratchet, actorEnabled: null, retryAtMs: null } } : {}),
      };

    case 'RATCHET_ENABLED': {
      if (state.location !== 'CLOUD') reject();
      const link = ratchetLinkOf(state);
      return {
        ...s,
        details: { ...state.details, ratchetEnabled: event.enabled },
        ratchet: {
          ...link,
          memory: { ...link.memory, enabled: event.enabled },
          retryAtMs: null,
          failures: 0,
        },
      };
    }

    case 'RATCHET_SYNCED':
      // Not a change of the workspace: updatedAt stays.
      return {
        ...state,
        ratchet: { ...ratchetLinkOf(state), actorEnabled: event.enabled, retryAtMs: null, failures: 0 },
      };

    case 'RATCHET_SYNC_FAILED': {
      const link = ratchetLinkOf(state);
      return {
        ...state,
        ratchet: {
          ...link,
          retryAtMs: nowMs + ratchetRetryDelayMs(link.failures),
          failures: link.failures + 1,
        },
      };
    }

    case 'RATCHET_HANDED_OFF': {
      const link = ratchetLinkOf(state);
      // The actor has ended: whatever happens next (the export failing too) starts a new one from this memory.
      return {
        ...state,
        details:
          event.ratchetState !== null
            ? { ...state.details, ratchetState: event.ratchetState }
            : state.details,
        ratchet: {
          ...link,
          memory: event.memory ? { ...event.memory, enabled: state.details.ratchetEnabled } : link.memory,
          actorEnabled: null,
          retryAtMs: null,
          failures: 0,
        },
      };
    }

    case 'PERSISTED':
      // Not a change of the workspace: updatedAt stays what was written.
      return {
        ...state,
        version: Math.max(state.version, event.version),
        createdAtMs: Math.min(state.createdAtMs, event.createdAtMs),
      };

    case 'PROBLEM': {
      const earlier = state.problem;
      return {
        ...state,
        problem: {
          source: 'database',
          message: event.message,
          sinceMs: earlier?.sinceMs ?? nowMs,
          lastAtMs: nowMs,
          attempts: (earlier?.attempts ?? 0) + 1,
        },
      };
    }

    case 'PROBLEM_CLEARED':
      return state.problem ? { ...state, problem: null } : state;
  }
}

/** Back-off between writes of a read model whose database does not answer: 1 s doubling to 1 min. */
export const problemRetryDelayMs = (s: WorkspaceState): number =>
  Math.min(60_000, 1_000 * 2 ** Math.min(6, Math.max(0, (s.problem?.attempts ?? 1) - 1)));

/** When a read model left behind by a failed write is due to be written again; null when it is current. */
export const readModelRetryAtMs = (s: WorkspaceState): number | null =>
  s.problem ? s.problem.lastAtMs + problemRetryDelayMs(s) : null;

/** When an actor whose workspace went back to the desktop ends; null while the workspace is in the cloud. */
export const desktopLingerEndsAtMs = (s: WorkspaceState, lingerMs: number): number | null =>
  s.location === 'DESKTOP' && s.status === 'READY' && s.pulledAtMs !== null ? s.pulledAtMs + lingerMs : null;

export type WorkspaceStep =
  | { kind: 'archive' }
  | { kind: 'pull' }
  | { kind: 'restore' }
  | { kind: 'auto-retry' }
  | { kind: 'retry-read-model' }
  /** A setting of the ratchet (enable / disable) is waiting for an answer. */
  | { kind: 'set-ratchet' }
  /** Start the ratchet:<id> actor, or tell it the setting (it differs from what it was told). */
  | { kind: 'sync-ratchet' }
  | { kind: 'continue-as-new' }
  /** The actor's work is over (archived, or pulled and not sent back in time): it ends. */
  | { kind: 'complete' }
  | { kind: 'wait'; untilMs: number | null };

export type PendingWorkspaceRequests = { pull: boolean; archive: boolean; ratchet?: boolean };

export function nextWorkspaceStep(input: {
  state: WorkspaceState;
  pending: PendingWorkspaceRequests;
  nowMs: number;
  maxAutoRetries: number;
  desktopLingerMs: number;
  historyIsLong: boolean;
  /** This run drives a ratchet:<id> actor (false when replaying a run from before that existed). */
  ratchet?: boolean;
}): WorkspaceStep {
  const { state, pending, nowMs } = input;
  // Requests first: a handler waiting for an answer never waits behind a timer.
  if (pending.archive) return { kind: 'archive' };
  if (pending.pull) return { kind: 'pull' };
  if (pending.ratchet) return { kind: 'set-ratchet' };
  if (state.status === 'ARCHIVED') return { kind: 'complete' };
  if (state.pendingRestore !== null) return { kind: 'restore' };
  if (state.status === 'FAILED' && state.failureRetryable && state.autoRetries < input.maxAutoRetries)
    return { kind: 'auto-retry' };
  const ratchetAt = input.ratchet ? ratchetSyncDueAtMs(state) : null;
  if (ratchetAt !== null && nowMs >= ratchetAt) return { kind: 'sync-ratchet' };
  if (input.historyIsLong) return { kind: 'continue-as-new' };
  const retryAt = readModelRetryAtMs(state);
  if (retryAt !== null && nowMs >= retryAt) return { kind: 'retry-read-model' };
  const lingerEnds = desktopLingerEndsAtMs(state, input.desktopLingerMs);
  // The read model must be current before the actor ends: the api reads nothing else.
  if (lingerEnds !== null && nowMs >= lingerEnds && retryAt === null) return { kind: 'complete' };
  const times = [retryAt, lingerEnds, ratchetAt].filter((t): t is number => t !== null);
  return { kind: 'wait', untilMs: times.length > 0 ? Math.min(...times) : null };
}

/** What callers see: the state without internals, timestamps as ISO strings. */
export function toWorkspaceView(s: WorkspaceState): WorkspaceView {
  return {
    id: s.workspaceId,
    userId: s.userId,
    ...s.details,
    status: s.status,
    location: s.location,
    failureReason: s.failureReason,
    step: s.status === 'PROVISIONING' ? s.step : s.status === 'READY' ? 'done' : null,
    problem: s.problem
      ? {
          source: s.problem.source,
          message: s.problem.message,
          since: new Date(s.problem.sinceMs).toISOString(),
        }
      : null,
    createdAt: new Date(s.createdAtMs).toISOString(),
    updatedAt: new Date(s.updatedAtMs).toISOString(),
    version: s.version,
  };
}
