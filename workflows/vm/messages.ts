/**
 * Messages of the vm:<userId> actor. The api starts it lazily with update-with-start of `ensureReady`;
 * every other message goes to the running actor.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type {
  OnboardingChecklist,
  PendingRequests,
  VmOperation,
  VmProblem,
  VmState,
  VmStatus,
} from './state.js';

export type VmSettings = {
  idleTimeoutMs: number;
  healthIntervalMs: number;
  /** How long provisioning or a resume may wait for the agent to answer. */
  agentTimeoutMs: number;
  /** A VM that crashes this many times within the window is marked FAILED instead of restarted. */
  maxCrashes: number;
  crashWindowMs: number;
  /** Claim a started container from the warm pool before creating one. */
  useWarmPool: boolean;
  /** Continue-as-new once history has this many events (bounded history, bounded replay). */
  maxHistoryEvents: number;
  /**
   * Set FfcUserId/FfcVmState so ops can find the VM in the Temporal UI. False only on a server without
   * our search attributes (Temporal's time-skipping test server cannot register any).
   */
  searchAttributes: boolean;
  /**
   * How long a VM resumed only for background work (a ratchet poll, ensureReadyForBackground) stays up
   * without user activity before it is suspended again. Optional: inputs from before it existed lack it.
   */
  backgroundGraceMs?: number;
};

/** backgroundGraceMs when unset: a poll takes seconds; the VM must not stay up its whole idle timeout. */
export const DEFAULT_VM_BACKGROUND_GRACE_MS = 2 * 60 * 1000;

export const defaultVmSettings: VmSettings = {
  idleTimeoutMs: 30 * 60 * 1000,
  healthIntervalMs: 30 * 1000,
  agentTimeoutMs: 60 * 1000,
  maxCrashes: 3,
  crashWindowMs: 10 * 60 * 1000,
  useWarmPool: false,
  maxHistoryEvents: 2000,
  searchAttributes: true,
};

const duration = z
  .number()
  .int()
  .positive()
  .max(365 * 24 * 3600 * 1000);

/** What a start (or a continue-as-new) must carry; checked before the actor does anything. */
export const VmSettingsSchema = z.object({
  idleTimeoutMs: duration,
  healthIntervalMs: duration,
  agentTimeoutMs: duration,
  maxCrashes: z.number().int().positive().max(1000),
  crashWindowMs: duration,
  useWarmPool: z.boolean(),
  maxHistoryEvents: z.number().int().min(10).max(50_000),
  searchAttributes: z.boolean(),
  backgroundGraceMs: duration.optional(),
}) satisfies z.ZodType<VmSettings>;

/** A container reference as it travels in workflow state (also the warm pool's). */
export const ContainerRefSchema = z.object({
  containerName: z.string().min(1).max(128),
  containerId: z.string().min(1).max(128),
  volumeName: z.string().min(1).max(128),
  runDir: z.string().min(1).max(4096),
});

const VmStatusSchema = z.enum(['PROVISIONING', 'ONBOARDING', 'READY', 'SUSPENDED', 'TERMINATED', 'FAILED']);
const VmOperationSchema = z.enum(['provision', 'resume', 'restart', 'suspend', 'terminate']);
const OnboardingSchema = z.object({ githubCli: z.boolean(), claude: z.boolean() });
const VmProblemSchema = z.object({
  source: z.enum(['docker', 'database']),
  message: z.string(),
  sinceMs: z.number().finite(),
  lastAtMs: z.number().finite(),
  attempts: z.number().int().min(1),
});

const finiteMs = z.number().finite();
const QuotaHoldSchema = z.object({
  sinceMs: finiteMs,
  message: z.string().max(500),
  resume: z.boolean(),
  usedMinutes: z.number().int().min(0),
  limitMinutes: z.number().int().min(0),
  untilMs: finiteMs,
});
/** Carried state is our own output, but a continue-as-new can also be forged from a raw client. */
const CarriedStateSchema = z
  .object({
    userId: z.string(),
    vmId: z.string().min(1).max(100),
    status: VmStatusSchema,
    operation: VmOperationSchema.nullable(),
    container: ContainerRefSchema.nullable(),
    onboarding: OnboardingSchema,
    failureReason: z.string().nullable(),
    restarts: z.number().int().min(0),
    recentCrashesAtMs: z.array(finiteMs).max(1000),
    createdAtMs: finiteMs,
    updatedAtMs: finiteMs,
    lastActiveAtMs: finiteMs,
    lastHealthAtMs: finiteMs.nullable(),
    readyAtMs: finiteMs.nullable(),
    suspendedAtMs: finiteMs.nullable(),
    problem: VmProblemSchema.nullable().optional(),
    quotaHold: QuotaHoldSchema.nullable().optional(),
    backgroundUntilMs: finiteMs.nullable().optional(),
  })
  .strip();

export const VmWorkflowInputSchema = z.object({
  userId: z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a user id is 1-128 of [A-Za-z0-9_.@-]'),
  settings: VmSettingsSchema,
  carried: z
    .object({
      state: CarriedStateSchema,
      pending: z.object({ ready: z.boolean(), suspend: z.boolean(), terminate: z.boolean() }),
    })
    .optional(),
});

export type VmWorkflowInput = {
  userId: string;
  settings: VmSettings;
  /** Set by continue-as-new: the state and requests carried into the next run. */
  carried?: { state: VmState; pending: PendingRequests };
};

export type { PendingRequests } from './state.js';

/** What callers see: the state without internals, timestamps as ISO strings. */
export type VmView = {
  userId: string;
  vmId: string;
  status: VmStatus;
  operation: VmOperation | null;
  containerName: string | null;
  containerId: string | null;
  onboarding: OnboardingChecklist;
  failureReason: string | null;
  /**
   * Something the actor keeps retrying (Docker or the database not answering), shown instead of hidden;
   * null when all is well. Absent in views written before it existed.
   */
  problem?: VmProblem | null;
  restarts: number;
  /**
   * Why the VM is held stopped and refuses to start, when it is not idleness or the user: 'quota_exhausted'
   * while the period's compute minutes are spent (until an upgrade or the next period). Absent in views
   * written before it existed.
   */
  suspendReason?: 'quota_exhausted' | null;
  /** The same in words, for the user. */
  suspendMessage?: string | null;
  createdAt: string;
  updatedAt: string;
  lastActiveAt: string;
  lastHealthAt: string | null;
  readyAt: string | null;
  suspendedAt: string | null;
};

/** A VmView read back from the read model (jsonb written by recordVmState). */
export const VmViewSchema = z.object({
  userId: z.string(),
  vmId: z.string(),
  status: VmStatusSchema,
  operation: VmOperationSchema.nullable(),
  containerName: z.string().nullable(),
  containerId: z.string().nullable(),
  onboarding: OnboardingSchema,
  failureReason: z.string().nullable(),
  problem: VmProblemSchema.nullable().optional(),
  restarts: z.number(),
  suspendReason: z.enum(['quota_exhausted']).nullable().optional(),
  suspendMessage: z.string().nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastActiveAt: z.string(),
  lastHealthAt: z.string().nullable(),
  readyAt: z.string().nullable(),
  suspendedAt: z.string().nullable(),
}) satisfies z.ZodType<VmView>;

/** Failure types the api maps to HTTP errors. */
export const VmErrorType = {
  terminating: 'VmTerminating',
  terminated: 'VmTerminated',
  failed: 'VmFailed',
  busy: 'VmBusy',
  notRunning: 'VmNotRunning',
  /** The period's compute minutes are spent; the failure's details carry QuotaFailureDetails. */
  quotaExhausted: 'VmQuotaExhausted',
} as const;

/** What a quotaExhausted failure carries, for the api's limit body. */
export const QuotaFailureDetailsSchema = z.object({
  usedMinutes: z.number().int().min(0),
  limitMinutes: z.number().int().min(0),
});

/** Provision or resume; resolves once the agent answers (ONBOARDING or READY). */
export const ensureReadyUpdate = defineUpdate<VmView>('ensureReady');
/** Stop the container, keep it and its volume. A suspended VM answers at once. */
export const suspendUpdate = defineUpdate<VmView>('suspend');
/** Remove the container and the user's volume; the actor ends. */
export const terminateUpdate = defineUpdate<VmView>('terminate');
/**
 * Provision-free resume for background work (the ratchet's poll of a suspended VM): like ensureReady, but
 * not user activity. A VM it resumes is suspended again after settings.backgroundGraceMs unless the user
 * shows up; a VM already usable is left exactly as it is (its idle timer untouched). Refused (VmFailed) for
 * a FAILED VM: only the user's ensureReady retries one.
 */
export const ensureReadyForBackgroundUpdate = defineUpdate<VmView>('ensureReadyForBackground');
/** Any user traffic: restarts the idle timer. */
export const touchSignal = defineSignal('touch');
export const vmStateQuery = defineQuery<VmView>('state');
/** Where the agent of this VM listens (for the api's relay); null unless usable. */
export const vmContainerQuery = defineQuery<VmContainerRef | null>('container');

/**
 * From usage:<userId>: the period's compute minutes are spent. The VM stops (if it runs) and refuses
 * ensureReady until quotaRestored; GET /api/vms/me shows the message.
 */
export const SuspendForQuotaSchema = z.object({
  usedMinutes: z.number().int().min(0),
  limitMinutes: z.number().int().min(0),
  periodEndMs: z.number().finite().nonnegative(),
  message: z.string().min(1).max(500),
});
export type SuspendForQuota = z.output<typeof SuspendForQuotaSchema>;
export const suspendForQuotaSignal = defineSignal<[SuspendForQuota]>('suspendForQuota');

/**
 * From usage:<userId>: minutes are available again. After an upgrade (`resume`) a VM held while running
 * starts again; when a new period begins it is only allowed to start again (nobody may be there to use it).
 */
export const QuotaRestoredSchema = z.object({
  usedMinutes: z.number().int().min(0),
  limitMinutes: z.number().int().min(0),
  resume: z.boolean(),
});
export type QuotaRestored = z.output<typeof QuotaRestoredSchema>;
export const quotaRestoredSignal = defineSignal<[QuotaRestored]>('quotaRestored');
