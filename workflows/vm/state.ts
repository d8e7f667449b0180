/**
 * The VM actor's state and its transitions, as pure functions: the workflow only decides *when* to apply
 * an event; *what* an event does to the state is here, tested without Temporal or Docker.
 *
 *   PROVISIONING ──agent answers──► ONBOARDING ──gh + claude credentials──► READY
 *        ▲   │                          │  ▲                                   │
 *        │   └──fails──► FAILED ◄──too many crashes──────────────────────────┤
 *        └──ensureReady──┘              ▼  │                                   ▼
 *                                   SUSPENDED ◄───────────idle / suspend────────┘
 *   any ──terminate──► TERMINATED
 *
 * `operation` says what the actor is doing right now; the status changes only when it is done.
 */
import type { AgentHealth, VmContainerRef } from '../../activities/vm/types.js';
import type { VmView } from './messages.js';

export type VmStatus = 'PROVISIONING' | 'ONBOARDING' | 'READY' | 'SUSPENDED' | 'TERMINATED' | 'FAILED';
export type VmOperation = 'provision' | 'resume' | 'restart' | 'suspend' | 'terminate';

export type OnboardingChecklist = { githubCli: boolean; claude: boolean };

/** A dependency that keeps failing while the actor retries (Docker, the database); visible, never silent. */
export type VmProblem = {
  source: 'docker' | 'database';
  message: string;
  sinceMs: number;
  /** When it was last tried; the next try waits problemRetryDelayMs after it. */
  lastAtMs: number;
  attempts: number;
};

export type VmState = {
  userId: string;
  vmId: string;
  status: VmStatus;
  operation: VmOperation | null;
  container: VmContainerRef | null;
  onboarding: OnboardingChecklist;
  failureReason: string | null;
  /** Crash restarts over the VM's life, and the times of recent ones (for the crash-loop rule). */
  restarts: number;
  recentCrashesAtMs: number[];
  createdAtMs: number;
  updatedAtMs: number;
  lastActiveAtMs: number;
  lastHealthAtMs: number | null;
  readyAtMs: number | null;
  suspendedAtMs: number | null;
  /** Optional: states carried from runs before it existed lack it. */
  problem?: VmProblem | null;
  /** Held stopped by usage:<userId> until minutes are available again. Optional, like problem. */
  quotaHold?: VmQuotaHold | null;
  /**
   * Resumed only for background work (ensureReadyForBackground): suspend no later than this unless the
   * user shows up (any TOUCHED clears it). Optional, like problem; only runs with the background patch set it.
   */
  backgroundUntilMs?: number | null;
};

export type VmQuotaHold = {
  sinceMs: number;
  message: string;
  /** It was running (or starting) when the hold came: it resumes once the hold is lifted. */
  resume: boolean;
  usedMinutes: number;
  limitMinutes: number;
  /** The end of the billing period: the hold lapses then even if usage:<userId> never lifts it. */
  untilMs: number;
};

export type CrashPolicy = { maxCrashes: number; windowMs: number };

export type VmEvent =
  | { type: 'PROVISION_STARTED' }
  | { type: 'CONTAINER_ASSIGNED'; container: VmContainerRef }
  | { type: 'AGENT_ANSWERED'; health: AgentHealth }
  | { type: 'HEALTH_OK'; health: AgentHealth }
  | { type: 'RESUME_STARTED' }
  | { type: 'SUSPEND_STARTED' }
  | { type: 'SUSPENDED' }
  | { type: 'CRASH_DETECTED'; policy: CrashPolicy; detail: string }
  | { type: 'TERMINATE_STARTED' }
  | { type: 'TERMINATED' }
  | { type: 'FAILED'; reason: string }
  | { type: 'TOUCHED' }
  /** A step could not be done because a dependency did not answer; it is retried after a back-off. */
  | { type: 'PROBLEM'; source: VmProblem['source']; message: string }
  | { type: 'PROBLEM_CLEARED'; source: VmProblem['source'] }
  | { type: 'QUOTA_HOLD'; hold: Omit<VmQuotaHold, 'sinceMs'> }
  | { type: 'QUOTA_RELEASED' }
  /** The VM came up for background work only: its idle deadline is at most `untilMs`. */
  | { type: 'BACKGROUND_WAKE'; untilMs: number };

export class InvalidVmTransition extends Error {
  constructor(state: VmState, event: VmEvent) {
    super(
      `VM of ${state.userId}: ${event.type} is not allowed in ${state.status}/${state.operation ?? 'idle'}`,
    );
    this.name = 'InvalidVmTransition';
  }
}

export function newVmState(userId: string, vmId: string, nowMs: number): VmState {
  return {
    userId,
    vmId,
    status: 'PROVISIONING',
    operation: null,
    container: null,
    onboarding: { githubCli: false, claude: false },
    failureReason: null,
    restarts: 0,
    recentCrashesAtMs: [],
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
    lastActiveAtMs: nowMs,
    lastHealthAtMs: null,
    readyAtMs: null,
    suspendedAtMs: null,
  };
}

/** Usable: the agent answered and nothing is in progress; sessions and terminals can be opened. */
export const isUsable = (s: VmState): boolean =>
  (s.status === 'READY' || s.status === 'ONBOARDING') && s.operation === null;

const onboardingOf = (health: AgentHealth): OnboardingChecklist => ({
  githubCli: health.credentials.gh,
  claude: health.credentials.claude,
});

/** READY once both logins exist in the VM; back to ONBOARDING if the user logs out of either. */
const statusFor = (onboarding: OnboardingChecklist): VmStatus =>
  onboarding.githubCli && onboarding.claude ? 'READY' : 'ONBOARDING';

export function applyVmEvent(state: VmState, event: VmEvent, nowMs: number): VmState {
  const s: VmState = { ...state, updatedAtMs: nowMs };
  const reject = (): never => {
    throw new InvalidVmTransition(state, event);
  };
  if (
    state.status === 'TERMINATED' &&
    !['TOUCHED', 'PROBLEM', 'PROBLEM_CLEARED', 'QUOTA_HOLD', 'QUOTA_RELEASED'].includes(event.type)
  )
    reject();

  switch (event.type) {
    case 'TOUCHED':
      // The user is here: whatever a background wake allowed, the full idle timeout applies again.
      return {
        ...s,
        lastActiveAtMs: nowMs,
        updatedAtMs: state.updatedAtMs,
        ...(state.backgroundUntilMs != null ? { backgroundUntilMs: null } : {}),
      };

    case 'PROVISION_STARTED':
      if (state.operation !== null || (state.status !== 'PROVISIONING' && state.status !== 'FAILED'))
        reject();
      return {
        ...s,
        status: 'PROVISIONING',
        operation: 'provision',
        failureReason: null,
        recentCrashesAtMs: [],
      };

    case 'CONTAINER_ASSIGNED':
      // Resume too: a container removed behind the actor's back is recreated on the same volume.
      if (state.operation !== 'provision' && state.operation !== 'restart' && state.operation !== 'resume')
        reject();
      return { ...s, container: event.container };

    case 'RESUME_STARTED':
      if (state.status !== 'SUSPENDED' || state.operation !== null) reject();
      return { ...s, operation: 'resume' };

    case 'AGENT_ANSWERED': {
      if (state.operation !== 'provision' && state.operation !== 'resume' && state.operation !== 'restart')
        reject();
      const onboarding = onboardingOf(event.health);
      return {
        ...s,
        status: statusFor(onboarding),
        operation: null,
        onboarding,
        failureReason: null,
        lastHealthAtMs: nowMs,
        readyAtMs: nowMs,
        suspendedAtMs: null,
        // A resumed VM starts a fresh idle period.
        lastActiveAtMs: nowMs,
      };
    }

    case 'HEALTH_OK': {
      if (!isUsable(state)) return { ...s, lastHealthAtMs: nowMs };
      const onboarding = onboardingOf(event.health);
      return { ...s, status: statusFor(onboarding), onboarding, lastHealthAtMs: nowMs };
    }

    case 'SUSPEND_STARTED':
      if (!isUsable(state)) reject();
      return { ...s, operation: 'suspend' };

    case 'SUSPENDED':
      if (state.operation !== 'suspend') reject();
      return {
        ...s,
        status: 'SUSPENDED',
        operation: null,
        suspendedAtMs: nowMs,
        ...(state.backgroundUntilMs != null ? { backgroundUntilMs: null } : {}),
      };

    case 'CRASH_DETECTED': {
      if (!isUsable(state)) reject();
      const recent = [...state.recentCrashesAtMs, nowMs].filter((t) => nowMs - t < event.policy.windowMs);
      if (recent.length >= event.policy.maxCrashes) {
        return {
          ...s,
          status: 'FAILED',
          operation: null,
          recentCrashesAtMs: recent,
          failureReason: `the VM crashed ${recent.length} times within ${Math.round(event.policy.windowMs / 60000)} min (last: ${event.detail})`,
        };
      }
      return { ...s, operation: 'restart', restarts: state.restarts + 1, recentCrashesAtMs: recent };
    }

    case 'TERMINATE_STARTED':
      if (state.operation === 'terminate') reject();
      return { ...s, operation: 'terminate' };

    case 'TERMINATED':
      if (state.operation !== 'terminate') reject();
      return { ...s, status: 'TERMINATED', operation: null, container: null };

    case 'FAILED':
      return { ...s, status: 'FAILED', operation: null, failureReason: event.reason };

    case 'PROBLEM': {
      const earlier = state.problem?.source === event.source ? state.problem : null;
      return {
        ...s,
        problem: {
          source: event.source,
          message: event.message,
          sinceMs: earlier?.sinceMs ?? nowMs,
          lastAtMs: nowMs,
          attempts: (earlier?.attempts ?? 0) + 1,
        },
      };
    }

    case 'PROBLEM_CLEARED':
      return state.problem?.source === event.source ? { ...s, problem: null } : state;

    case 'QUOTA_HOLD':
      return { ...s, quotaHold: { ...event.hold, sinceMs: nowMs } };

    case 'QUOTA_RELEASED':
      return { ...s, quotaHold: null };

    case 'BACKGROUND_WAKE':
      if (!isUsable(state)) reject();
      return { ...s, backgroundUntilMs: Math.min(event.untilMs, state.backgroundUntilMs ?? event.untilMs) };
  }
}

/** Back-off between retries of a step whose dependency does not answer: 1 s doubling to 1 min. */
export const problemRetryDelayMs = (s: VmState): number =>
  Math.min(60_000, 1_000 * 2 ** Math.min(6, Math.max(0, (s.problem?.attempts ?? 1) - 1)));

export type PendingRequests = { ready: boolean; suspend: boolean; terminate: boolean };

/** What the actor's main loop does next; decided here, done by the workflow. */
export type VmStep =
  | { kind: 'terminate' }
  | { kind: 'bring-up' }
  | { kind: 'suspend' }
  /** Suspend asked of a FAILED VM: make sure its container is stopped; it stays FAILED (retryable). */
  | { kind: 'stop-failed' }
  | { kind: 'answer-pending' }
  | { kind: 'continue-as-new' }
  | { kind: 'idle-suspend' }
  | { kind: 'health-check' }
  /** The last read-model write failed and its back-off is over: write the state again. */
  | { kind: 'retry-read-model' }
  /** Nothing to do until a request arrives or `untilMs` (null: no deadline). */
  | { kind: 'wait'; untilMs: number | null };

/** When a read model left behind by a failed write is due to be written again; null when it is current. */
export const readModelRetryAtMs = (s: VmState): number | null =>
  s.problem?.source === 'database' ? s.problem.lastAtMs + problemRetryDelayMs(s) : null;

const earliest = (...times: (number | null)[]): number | null => {
  const known = times.filter((t): t is number => t !== null);
  return known.length > 0 ? Math.min(...known) : null;
};

export function nextVmStep(input: {
  state: VmState;
  pending: PendingRequests;
  nowMs: number;
  idleTimeoutMs: number;
  healthIntervalMs: number;
  historyIsLong: boolean;
}): VmStep {
  const { state, pending, nowMs } = input;
  if (pending.terminate) return { kind: 'terminate' };
  if (pending.ready) return isUsable(state) ? { kind: 'answer-pending' } : { kind: 'bring-up' };
  if (pending.suspend) {
    if (isUsable(state)) return { kind: 'suspend' };
    if (state.status === 'FAILED' && state.container) return { kind: 'stop-failed' };
    return { kind: 'answer-pending' };
  }
  if (input.historyIsLong) return { kind: 'continue-as-new' };
  const retryAt = readModelRetryAtMs(state);
  if (retryAt !== null && nowMs >= retryAt) return { kind: 'retry-read-model' };
  // SUSPENDED, FAILED or never provisioned: nothing to do until someone asks (or the read model is due).
  if (!isUsable(state)) return { kind: 'wait', untilMs: retryAt };
  const idleAt = idleDeadlineMs(state, input.idleTimeoutMs);
  // While a dependency is failing, health checks back off instead of hammering it.
  const healthAt =
    state.problem?.source === 'docker'
      ? state.problem.lastAtMs + problemRetryDelayMs(state)
      : nextHealthCheckMs(state, input.healthIntervalMs);
  if (nowMs >= idleAt) return { kind: 'idle-suspend' };
  if (nowMs >= healthAt) return { kind: 'health-check' };
  return { kind: 'wait', untilMs: earliest(idleAt, healthAt, retryAt) };
}

/** What the health check saw when the agent did not answer, in words for failureReason. */
export function crashDetail(inspected: {
  exists: boolean;
  running: boolean;
  status: string;
  exitCode: number | null;
  oomKilled: boolean;
}): string {
  if (!inspected.exists) return 'container removed';
  if (inspected.running) return 'agent stopped answering';
  return `container ${inspected.status}${inspected.exitCode !== null ? ` with exit code ${inspected.exitCode}` : ''}${inspected.oomKilled ? ' (out of memory)' : ''}`;
}

/** What callers see: the state without internals, timestamps as ISO strings. */
export function toVmView(s: VmState): VmView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    userId: s.userId,
    vmId: s.vmId,
    status: s.status,
    operation: s.operation,
    containerName: s.container?.containerName ?? null,
    containerId: s.container?.containerId ?? null,
    onboarding: s.onboarding,
    failureReason: s.failureReason,
    problem: s.problem ?? null,
    restarts: s.restarts,
    suspendReason: s.quotaHold ? 'quota_exhausted' : null,
    suspendMessage: s.quotaHold?.message ?? null,
    createdAt: new Date(s.createdAtMs).toISOString(),
    updatedAt: new Date(s.updatedAtMs).toISOString(),
    lastActiveAt: new Date(s.lastActiveAtMs).toISOString(),
    lastHealthAt: iso(s.lastHealthAtMs),
    readyAt: iso(s.readyAtMs),
    suspendedAt: iso(s.suspendedAtMs),
  };
}

/** When an idle VM is due to be suspended: its idle timeout, or sooner after a background-only wake. */
export const idleDeadlineMs = (s: VmState, idleTimeoutMs: number): number =>
  s.backgroundUntilMs != null
    ? Math.min(s.lastActiveAtMs + idleTimeoutMs, s.backgroundUntilMs)
    : s.lastActiveAtMs + idleTimeoutMs;

/** When the next health check is due. */
export const nextHealthCheckMs = (s: VmState, intervalMs: number): number =>
  (s.lastHealthAtMs ?? s.updatedAtMs) + intervalMs;

/** Running for metering: the agent answered and the VM has not stopped since (restarts included). */
export const isMeteredRunning = (s: VmState): boolean => s.status === 'READY' || s.status === 'ONBOARDING';
