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

export type VmStatus = 'PROVISIONING' | 'ONBOARDING' | 'READY' | 'SUSPENDED' | 'TERMINATED' | 'FAILED';
export type VmOperation = 'provision' | 'resume' | 'restart' | 'suspend' | 'terminate';

export type OnboardingChecklist = { githubCli: boolean; claude: boolean };

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
  | { type: 'TOUCHED' };

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
  if (state.status === 'TERMINATED' && event.type !== 'TOUCHED') reject();

  switch (event.type) {
    case 'TOUCHED':
      return { ...s, lastActiveAtMs: nowMs, updatedAtMs: state.updatedAtMs };

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
      if (state.operation !== 'provision' && state.operation !== 'restart') reject();
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
      return { ...s, status: 'SUSPENDED', operation: null, suspendedAtMs: nowMs };

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
  }
}

/** When an idle VM is due to be suspended. */
export const idleDeadlineMs = (s: VmState, idleTimeoutMs: number): number => s.lastActiveAtMs + idleTimeoutMs;

/** When the next health check is due. */
export const nextHealthCheckMs = (s: VmState, intervalMs: number): number =>
  (s.lastHealthAtMs ?? s.updatedAtMs) + intervalMs;
