/**
 * Messages of the ratchet:<workspaceId> actor: the ratchet loop of one cloud workspace. The workspace actor
 * starts it (seeded with the memory the desktop sent) once the workspace is READY in the cloud with the
 * ratchet enabled; it polls the PR through the VM's agent (gh inside the VM), decides with core's pure
 * ratchet logic, dispatches a fixer session in the VM and awaits its outcome.
 *
 *   polling ──TRIGGER_FIXER──▶ fixer_running ──COMPLETED / DIED / timeout / stopFixer──▶ polling
 *      │ ▲                                                                      (DIED: retried ≤ 3, then stalled)
 *   setEnabled(false / true)
 *      ▼ │
 *   disabled
 *   any ──handOff / end / PR merged or closed / VM terminated──▶ ended (the workflow completes with the memory)
 *
 * Its workflow id is the guarantee that no two fixers are dispatched for one workspace.
 */
import {
  RatchetStateSchema,
  ReviewTrustPolicySchema,
  WorkspaceIdSchema,
} from '@factory-factory/core/protocol';
import type { RatchetMemory } from '@factory-factory/core/ratchet';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';

const UserIdSchema = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a user id is 1-128 of [A-Za-z0-9_.@-]');
const finiteMs = z.number().finite().nonnegative();
const duration = (min: number) =>
  z
    .number()
    .int()
    .min(min)
    .max(7 * 24 * 3600 * 1000);
const IsoTimeSchema = z.iso.datetime({ offset: true });
const DispatchKeySchema = z.string().min(1).max(4096);

/** Who may start a fixer: core's ReviewTrustPolicy (trusted associations, exact bot logins, trigger mode). */
export { ReviewTrustPolicySchema };

/** core/ratchet's RatchetMemory as it travels (start input, continue-as-new, handOff's answer). */
export const RatchetMemorySchema = z.object({
  enabled: z.boolean(),
  lastDispatchKey: DispatchKeySchema.nullable(),
  dispatchKeys: z.array(DispatchKeySchema).max(50),
  reviewLastCheckedAt: IsoTimeSchema.nullable(),
  dispatchOutcome: z.enum(['RUNNING', 'COMPLETED', 'DIED']).nullable(),
  dispatchRetryCount: z.number().int().min(0).max(1000),
  dispatchStalled: z.boolean(),
  /** Dispatch times (retries included) of the last 24 h: the daily cap counts these. */
  dispatchTimesMs: z.array(finiteMs).max(1000).default([]),
}) satisfies z.ZodType<RatchetMemory>;

export const DEFAULT_RATCHET_POLL_INTERVAL_MS = 30_000;
export const DEFAULT_RATCHET_SUSPENDED_POLL_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_RATCHET_FIXER_TIMEOUT_MS = 60 * 60_000;
export const DEFAULT_RATCHET_FIXER_CHECK_INTERVAL_MS = 10_000;
export const DEFAULT_RATCHET_MAX_DISPATCHES_PER_DAY = 10;
export const DEFAULT_RATCHET_MAX_HISTORY_EVENTS = 2000;
/** How long one watch polls quietly before it reports anyway (the view's last decision is then refreshed). */
export const DEFAULT_RATCHET_WATCH_MAX_MS = 10 * 60_000;

export const RatchetSettingsSchema = z.object({
  /** Between polls while the VM runs. */
  pollIntervalMs: duration(100).default(DEFAULT_RATCHET_POLL_INTERVAL_MS),
  /** Between polls while the VM is suspended: each one resumes it briefly (never as user activity). */
  suspendedPollIntervalMs: duration(100).default(DEFAULT_RATCHET_SUSPENDED_POLL_INTERVAL_MS),
  /** Fixer runs per PR per 24 h, retries included; then WAITING 'daily_cap' (the user sees it). */
  maxDispatchesPerDay: z.number().int().min(0).max(1000).default(DEFAULT_RATCHET_MAX_DISPATCHES_PER_DAY),
  /** A fixer still working after this is stopped and counted as died. */
  fixerTimeoutMs: duration(1000).default(DEFAULT_RATCHET_FIXER_TIMEOUT_MS),
  /** Between looks at a working fixer (a wake signal looks at once). */
  fixerCheckIntervalMs: duration(100).default(DEFAULT_RATCHET_FIXER_CHECK_INTERVAL_MS),
  trust: ReviewTrustPolicySchema.default({ triggerMode: 'changes_requested', trustedBots: [] }),
  /**
   * Polls are watched in one activity that reports only those that change something, for at most this
   * long (activities/ratchet/watch.ts). 0: every poll is reported (one activity per poll).
   */
  watchMaxMs: duration(0).default(DEFAULT_RATCHET_WATCH_MAX_MS),
  /** Set FfcUserId/FfcWorkspaceId/FfcRatchetState; false only on a server without our search attributes. */
  searchAttributes: z.boolean().optional(),
  /** Continue-as-new once history has this many events. */
  maxHistoryEvents: z.number().int().min(10).max(50_000).optional(),
});
export type RatchetSettings = z.output<typeof RatchetSettingsSchema>;

export const defaultRatchetSettings: RatchetSettings = {
  pollIntervalMs: DEFAULT_RATCHET_POLL_INTERVAL_MS,
  suspendedPollIntervalMs: DEFAULT_RATCHET_SUSPENDED_POLL_INTERVAL_MS,
  maxDispatchesPerDay: DEFAULT_RATCHET_MAX_DISPATCHES_PER_DAY,
  fixerTimeoutMs: DEFAULT_RATCHET_FIXER_TIMEOUT_MS,
  fixerCheckIntervalMs: DEFAULT_RATCHET_FIXER_CHECK_INTERVAL_MS,
  trust: { triggerMode: 'changes_requested', trustedBots: [] },
  watchMaxMs: DEFAULT_RATCHET_WATCH_MAX_MS,
};

export const RatchetPhaseSchema = z.enum(['polling', 'fixer_running', 'disabled', 'ended']);
export type RatchetPhase = z.output<typeof RatchetPhaseSchema>;

export const RatchetEndReasonSchema = z.enum([
  'handed_off',
  'merged',
  'pr_closed',
  'archived',
  'vm_terminated',
  'deleted',
]);
export type RatchetEndReason = z.output<typeof RatchetEndReasonSchema>;

export const RatchetProblemCodeSchema = z.enum([
  'rate_limited',
  'vm_unavailable',
  'github_unavailable',
  'quota',
]);
export type RatchetProblemCode = z.output<typeof RatchetProblemCodeSchema>;

const ActionSchema = z.enum(['WAITING', 'TRIGGER_FIXER', 'FIXER_ACTIVE', 'COMPLETED', 'DISABLED']);

export const RatchetDecisionRecordSchema = z.object({
  action: ActionSchema,
  /** core/ratchet's RatchetReason ('ci_failed', 'clean', 'daily_cap', …). */
  reason: z.string().min(1).max(64),
  key: DispatchKeySchema.nullable(),
  atMs: finiteMs,
});

export const ActiveFixerSchema = z.object({
  /** The fixer session in the VM; null between recording the dispatch and the VM's answer. */
  sessionId: z.string().min(1).max(200).nullable(),
  /** The dispatch's id (the queued message's id in the VM): a retried dispatch sends nothing twice. */
  dispatchId: z.string().min(1).max(100),
  key: DispatchKeySchema,
  startedAtMs: finiteMs,
  /** 1 for the first dispatch of a key, 2… for retries after the fixer died. */
  attempt: z.number().int().min(1).max(1000),
});
export type ActiveFixer = z.output<typeof ActiveFixerSchema>;

export const LastFixerOutcomeSchema = z.object({
  outcome: z.enum(['COMPLETED', 'DIED']),
  detail: z.string().max(4096).nullable(),
  atMs: finiteMs,
});

export const RatchetProblemSchema = z.object({
  code: RatchetProblemCodeSchema,
  message: z.string().max(4096),
  sinceMs: finiteMs,
});

/** What callers see: the query's answer, the read model's `view` (workspace_ratchets), the api's `ratchet`. */
export const RatchetViewSchema = z.object({
  workspaceId: z.string(),
  userId: z.string(),
  enabled: z.boolean(),
  state: RatchetStateSchema,
  phase: RatchetPhaseSchema,
  lastDecision: RatchetDecisionRecordSchema.nullable(),
  /** The dedup key of the last dispatch (the desktop's ratchetLastCiRunId). */
  lastDispatchKey: z.string().nullable(),
  reviewLastCheckedAt: z.string().nullable(),
  activeFixer: ActiveFixerSchema.nullable(),
  /** The last dispatch did not move the PR or its fixer kept dying: a human should look. */
  stalled: z.boolean(),
  retryCount: z.number().int().min(0),
  dispatchesToday: z.number().int().min(0),
  maxDispatchesPerDay: z.number().int().min(0),
  nextPollAtMs: z.number().nullable(),
  /** Something that keeps the loop from seeing the PR right now, in words a user can act on. */
  problem: RatchetProblemSchema.nullable(),
  endedReason: RatchetEndReasonSchema.nullable(),
  /** How the last fixer ended, with the VM's words for a death (absent in views written before it). */
  lastFixerOutcome: LastFixerOutcomeSchema.nullable().optional(),
  updatedAt: z.string(),
  /** Bumped by every accepted write of the read model. */
  version: z.number().int().nonnegative(),
});
export type RatchetView = z.output<typeof RatchetViewSchema>;

/** The actor's state as a continue-as-new carries it (our own output, but a raw client can forge one). */
export const CarriedRatchetStateSchema = z
  .object({
    workspaceId: WorkspaceIdSchema,
    userId: UserIdSchema,
    memory: RatchetMemorySchema,
    ratchetState: RatchetStateSchema,
    lastDecision: RatchetDecisionRecordSchema.nullable(),
    activeFixer: ActiveFixerSchema.nullable(),
    lastFixerCheckAtMs: finiteMs.nullable(),
    nextPollAtMs: finiteMs,
    backoffMultiplier: z.number().min(1).max(64),
    vmSuspended: z.boolean(),
    problem: RatchetProblemSchema.nullable(),
    endedReason: RatchetEndReasonSchema.nullable(),
    lastFixerOutcome: LastFixerOutcomeSchema.nullable().optional(),
    updatedAtMs: finiteMs,
    version: z.number().int().nonnegative(),
  })
  .strip();

export const RatchetActorInputSchema = z.object({
  workspaceId: WorkspaceIdSchema,
  userId: UserIdSchema,
  /** What the ratchet remembers: seeded from the desktop's portable state on the first start. */
  memory: RatchetMemorySchema,
  settings: RatchetSettingsSchema.default(defaultRatchetSettings),
  /** Set by continue-as-new: the state carried into the next run. */
  carried: z.object({ state: CarriedRatchetStateSchema }).optional(),
});
/** What a caller passes (defaults not applied yet). */
export type RatchetActorInput = z.input<typeof RatchetActorInputSchema>;
export type ParsedRatchetActorInput = z.output<typeof RatchetActorInputSchema>;

/** The workflow's result and handOff's answer: the memory to hand back to the desktop, and the last view. */
export const RatchetHandOffSchema = z.object({ memory: RatchetMemorySchema, view: RatchetViewSchema });
export type RatchetHandOff = { memory: RatchetMemory; view: RatchetView };

export const SetRatchetEnabledArgsSchema = z.object({ enabled: z.boolean() }).strict();
export const EndRatchetArgsSchema = z
  .object({ reason: z.enum(['archived', 'vm_terminated', 'deleted']) })
  .strict();
export type EndRatchetArgs = z.output<typeof EndRatchetArgsSchema>;

export type StopFixerResult = { stopped: boolean; sessionId: string | null; view: RatchetView };

/** Failure types the api maps to HTTP errors. */
export const RatchetErrorType = {
  /** A fixer works: handOff (a pull) must wait or stop it first (409). Same as WorkspaceErrorType.fixerActive. */
  fixerActive: 'WorkspaceFixerActive',
  /** The VM did not answer (503). Same as WorkspaceErrorType.unavailable. */
  unavailable: 'WorkspaceUnavailable',
  /** The loop already ended (409). */
  ended: 'RatchetEnded',
  /** A malformed start, continue-as-new or update argument. */
  invalidInput: 'RatchetInvalidInput',
} as const;

/** Poll now (a GitHub webhook, a send that just landed); while a fixer works, look at it now. */
export const wakeSignal = defineSignal('wake');
/** Turns the loop on or off (a working fixer is left to finish). */
export const setRatchetEnabledUpdate = defineUpdate<RatchetView, [{ enabled: boolean }]>('setEnabled');
/** Stops the working fixer; its dispatch settles COMPLETED (not retried). */
export const stopFixerUpdate = defineUpdate<StopFixerResult>('stopFixer');
/**
 * The workspace goes back to the desktop: refused with fixerActive while a fixer works; otherwise the loop
 * stops at once (no poll after the answer) and the workflow completes with the memory.
 */
export const handOffUpdate = defineUpdate<RatchetHandOff>('handOff');
/** The workspace was archived or deleted, or the VM terminated: the loop ends. */
export const endRatchetUpdate = defineUpdate<RatchetView, [EndRatchetArgs]>('end');
export const ratchetViewQuery = defineQuery<RatchetView>('view');
