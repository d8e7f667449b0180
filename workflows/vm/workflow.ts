/**
 * vm:<userId> — the lifecycle of one user's VM. One id per user makes this the only actor that ever
 * creates, starts, stops or removes that user's container.
 *
 * Update handlers only record what was asked and wait; the main loop does the work one step at a time, so
 * concurrent requests never interleave Docker operations. *What* to do next is decided by `nextVmStep` and
 * *what* an outcome does to the state by `applyVmEvent` (both pure, in state.ts); this file only does the
 * steps. History stays bounded through continue-as-new, taken only when no handler is running and nothing
 * is pending, so no request is lost across runs.
 *
 * Faults never end the run: a Docker engine or database that does not answer is retried with back-off and
 * shown as the state's `problem`; a container that vanished is recreated on the user's volume; FAILED
 * stops the container and ensureReady retries it. Only terminate ends the actor.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { UsageNotifyActivities } from '../../activities/usage/types.js';
import type { createVmReadModelActivities } from '../../activities/vm/read-model.js';
import type { VmContainerActivities, VmContainerRef } from '../../activities/vm/types.js';
import type { createWarmPoolClientActivities } from '../../activities/vm/warm-pool-client.js';
import { workflowNow } from '../clock.js';
import { finalFailure, reasonOf, refuseArguments as refuseNoArguments } from '../failures.js';
import { userVmContainerName } from '../ids.js';
import { FfcUserId, FfcVmState } from '../search-attributes.js';
import { parseOrFail } from '../validation.js';
import {
  DEFAULT_VM_BACKGROUND_GRACE_MS,
  ensureReadyForBackgroundUpdate,
  ensureReadyUpdate,
  type PendingRequests,
  QuotaRestoredSchema,
  quotaRestoredSignal,
  SuspendForQuotaSchema,
  suspendForQuotaSignal,
  suspendUpdate,
  terminateUpdate,
  touchSignal,
  VmErrorType,
  type VmView,
  type VmWorkflowInput,
  VmWorkflowInputSchema,
  vmContainerQuery,
  vmStateQuery,
} from './messages.js';
import {
  applyVmEvent,
  crashDetail,
  isMeteredRunning,
  isUsable,
  newVmState,
  nextVmStep,
  problemRetryDelayMs,
  toVmView,
  type VmEvent,
  type VmProblem,
  type VmQuotaHold,
  type VmState,
} from './state.js';
import { vmWorkflowV1 } from './workflow-v1.js';

/** Runs started before this marker replay the frozen first version (workflow-v1.ts). */
export const VM_SECOND_PASS_PATCH = 'vm-runtime-second-pass';
/**
 * Runs started before this marker replay without metering: they tell usage:<userId> nothing (their
 * histories have no such activities). A run continued from one reports a VM that is running at its start.
 */
export const VM_USAGE_PATCH = 'vm-usage-metering';
/**
 * Runs that handled ensureReadyForBackground (a ratchet poll resuming a suspended VM) carry this marker.
 * Histories from before it never contain that update, so they replay unchanged.
 */
export const VM_BACKGROUND_WAKE_PATCH = 'vm-background-wake';
/** The failure type of a malformed start or continue-as-new input. */
export const VM_INVALID_INPUT = 'VmInvalidInput';
const CONTAINER_MISSING = 'VmContainerMissing';

/**
 * Docker calls take well under a second; a short timeout means a worker that died mid-call is noticed and
 * the (idempotent) call retried in seconds. Ten attempts ride out an engine restart of a minute or two.
 */
const docker = proxyActivities<VmContainerActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '20 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: [CONTAINER_MISSING],
  },
});
/** Stopping a FAILED VM's container is a courtesy: a few tries, then the next ensureReady handles it. */
const dockerBestEffort = proxyActivities<Pick<VmContainerActivities, 'stopVmContainer'>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: [CONTAINER_MISSING] },
});
const agentWait = proxyActivities<Pick<VmContainerActivities, 'waitForVmAgent'>>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 2 },
});
const health = proxyActivities<Pick<VmContainerActivities, 'pingVmAgent' | 'inspectVmContainer'>>({
  startToCloseTimeout: '20 seconds',
  retry: { maximumAttempts: 3 },
});
/** Bounded: a database that stays down is shown as the VM's problem and retried by the loop. */
const readModel = proxyActivities<ReturnType<typeof createVmReadModelActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 4 },
});
const warmPool = proxyActivities<ReturnType<typeof createWarmPoolClientActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * Telling usage:<userId> of a transition must not be lost (it is billing): retried until it is delivered,
 * in the background, so the VM's own work never waits for it.
 */
const usage = proxyActivities<UsageNotifyActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** How many claimed warm-pool containers may turn out to be gone before the actor creates its own. */
const MAX_POOL_CLAIMS = 3;
/** After terminate, how long the actor keeps trying to write TERMINATED to a database that is down. */
const MAX_FINAL_READ_MODEL_ATTEMPTS = 30;

const failure = finalFailure;

function isContainerMissing(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === CONTAINER_MISSING
  );
}

/** ensureReady's answer while the period's compute minutes are spent; the api turns it into a 402. */
const quotaFailure = (hold: VmQuotaHold) =>
  ApplicationFailure.create({
    type: VmErrorType.quotaExhausted,
    message: hold.message,
    nonRetryable: true,
    details: [{ usedMinutes: hold.usedMinutes, limitMinutes: hold.limitMinutes }],
  });

/** Updates of this actor take no arguments; anything sent along is a caller's mistake, refused. */
const refuseArguments = (name: string, args: unknown[]) => refuseNoArguments(name, args, VM_INVALID_INPUT);

export async function vmWorkflow(rawInput: unknown): Promise<VmView> {
  // Validated before anything else: a malformed start fails this run with a clear error, and no bad value
  // ever reaches a timer or a condition (a NaN timeout once took the whole worker down).
  const input: VmWorkflowInput = parseOrFail(
    VmWorkflowInputSchema,
    rawInput,
    'input of vm workflow',
    VM_INVALID_INPUT,
  );
  if (!patched(VM_SECOND_PASS_PATCH)) return vmWorkflowV1(input);
  return runVmActor(input);
}

async function runVmActor(input: VmWorkflowInput): Promise<VmView> {
  const { settings } = input;
  let state: VmState = input.carried?.state ?? newVmState(input.userId, uuid4(), workflowNow());
  const pending: PendingRequests = input.carried?.pending ?? {
    ready: false,
    suspend: false,
    terminate: false,
  };
  let agentMisses = 0;
  /** The bring-up owed is for background work only (no user asked): the VM may sleep again soon after. */
  let backgroundOnly = false;
  const metered = patched(VM_USAGE_PATCH);
  /** Transitions told to usage:<userId>, in order; awaited before the run ends or continues as new. */
  let usageReports: Promise<void> = Promise.resolve();
  /** A message changed what the view shows (a quota hold) without a step of the loop: write it. */
  let viewStale = false;
  /** The last read-model write failed (shown as the database problem); nextVmStep schedules the retry. */
  const readModelBehind = () => state.problem?.source === 'database';

  if (settings.searchAttributes) {
    upsertSearchAttributes([
      { key: FfcUserId, value: input.userId },
      { key: FfcVmState, value: state.status },
    ]);
  }

  function reportRunning(running: boolean): void {
    if (!metered) return;
    const transition = { userId: state.userId, vmId: state.vmId, running, atMs: workflowNow() };
    usageReports = usageReports
      .then(() => usage.notifyUsageOfVm(transition))
      .catch((err: unknown) => log.warn('vm actor: usage not told', { error: reasonOf(err) }));
  }

  function apply(event: VmEvent): void {
    const before = state;
    state = applyVmEvent(state, event, workflowNow());
    if (settings.searchAttributes && state.status !== before.status) {
      upsertSearchAttributes([{ key: FfcVmState, value: state.status }]);
    }
    if (isMeteredRunning(before) !== isMeteredRunning(state)) reportRunning(isMeteredRunning(state));
  }
  // A run continued from one that did not meter yet: its running VM is metered from now on (a VM already
  // metered is the same VM to the usage actor, so telling it again changes nothing).
  if (input.carried && isMeteredRunning(state)) reportRunning(true);
  function problem(source: VmProblem['source'], message: string, err: unknown): void {
    apply({ type: 'PROBLEM', source, message: `${message}: ${reasonOf(err)}` });
    log.warn('vm actor: dependency problem', { userId: state.userId, source, message: reasonOf(err) });
  }

  async function persist(): Promise<void> {
    try {
      await readModel.recordVmState(toVmView(state));
      apply({ type: 'PROBLEM_CLEARED', source: 'database' });
    } catch (err) {
      problem('database', 'the database does not answer; the dashboard may show an older state', err);
    }
  }
  const container = (): VmContainerRef => {
    if (!state.container) throw failure(VmErrorType.failed, 'the VM has no container');
    return state.container;
  };
  const terminatingOrGone = () =>
    pending.terminate || state.operation === 'terminate' || state.status === 'TERMINATED';

  /** Validators refuse work on a VM that is gone or going; the two are told apart for the caller. */
  function refuseIfTerminating(): void {
    if (state.status === 'TERMINATED') throw failure(VmErrorType.terminated, 'the VM was terminated');
    if (terminatingOrGone()) throw failure(VmErrorType.terminating, 'the VM is being terminated');
  }

  // ---- messages ----
  setHandler(vmStateQuery, () => toVmView(state));
  setHandler(vmContainerQuery, () => (isUsable(state) ? state.container : null));
  setHandler(touchSignal, (...args: unknown[]) => {
    // A signal cannot be refused; one with arguments is not ours and is ignored.
    if (args.some((arg) => arg !== undefined)) return;
    backgroundOnly = false;
    if (state.status !== 'TERMINATED') apply({ type: 'TOUCHED' });
  });

  setHandler(
    ensureReadyUpdate,
    async () => {
      backgroundOnly = false;
      apply({ type: 'TOUCHED' });
      if (isUsable(state)) return toVmView(state);
      pending.ready = true;
      await condition(() => !pending.ready || terminatingOrGone());
      if (state.quotaHold) throw quotaFailure(state.quotaHold);
      if (isUsable(state)) return toVmView(state);
      if (terminatingOrGone()) throw failure(VmErrorType.terminating, 'the VM was terminated while starting');
      throw failure(
        VmErrorType.failed,
        `the VM could not be started: ${state.failureReason ?? 'unknown reason'}`,
      );
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('ensureReady', args);
        refuseIfTerminating();
        if (state.quotaHold) throw quotaFailure(state.quotaHold);
      },
    },
  );

  setHandler(
    ensureReadyForBackgroundUpdate,
    async () => {
      // Marks the run; no history from before it contains this update, so old ones replay unchanged.
      patched(VM_BACKGROUND_WAKE_PATCH);
      // Already up (the user's or another poll's): left exactly as it is, its idle timer untouched.
      if (isUsable(state)) return toVmView(state);
      if (!pending.ready) backgroundOnly = true;
      pending.ready = true;
      await condition(() => !pending.ready || terminatingOrGone());
      if (state.quotaHold) throw quotaFailure(state.quotaHold);
      if (isUsable(state)) return toVmView(state);
      if (terminatingOrGone()) throw failure(VmErrorType.terminating, 'the VM was terminated while starting');
      throw failure(
        VmErrorType.failed,
        `the VM could not be started: ${state.failureReason ?? 'unknown reason'}`,
      );
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('ensureReadyForBackground', args);
        refuseIfTerminating();
        if (state.quotaHold) throw quotaFailure(state.quotaHold);
        // Only the user retries a failed VM; background work never provisions or repairs one.
        if (state.status === 'FAILED' && state.operation === null)
          throw failure(VmErrorType.failed, `the VM has failed: ${state.failureReason ?? 'unknown reason'}`);
      },
    },
  );

  // Signals of usage:<userId>. No history from before them carries one, so they need no patch of their own.
  setHandler(suspendForQuotaSignal, (...args: unknown[]) => {
    // A signal cannot be refused: one that is not ours is ignored.
    const parsed = SuspendForQuotaSchema.safeParse(args[0]);
    if (!parsed.success || args.length > 1 || state.status === 'TERMINATED') return;
    const { message, usedMinutes, limitMinutes, periodEndMs } = parsed.data;
    if (periodEndMs <= workflowNow()) return;
    const starting =
      state.operation === 'provision' || state.operation === 'resume' || state.operation === 'restart';
    // Running (and not already being suspended), starting, or asked to start: it resumes after an upgrade.
    const running = isMeteredRunning(state) && state.operation !== 'suspend';
    const resume = state.quotaHold?.resume ?? (running || starting || pending.ready);
    apply({
      type: 'QUOTA_HOLD',
      hold: { message, usedMinutes, limitMinutes, resume, untilMs: periodEndMs },
    });
    // Callers waiting for the VM hear why it will not start; a running (or starting) VM is stopped.
    pending.ready = false;
    backgroundOnly = false;
    if (isUsable(state) || starting) pending.suspend = true;
    viewStale = true;
  });
  setHandler(quotaRestoredSignal, (...args: unknown[]) => {
    const parsed = QuotaRestoredSchema.safeParse(args[0]);
    if (!parsed.success || args.length > 1 || !state.quotaHold || state.status === 'TERMINATED') return;
    const { resume } = state.quotaHold;
    apply({ type: 'QUOTA_RELEASED' });
    // A VM that was stopped while running is started again after an upgrade, as if its user had asked.
    if (resume && parsed.data.resume) pending.ready = true;
    viewStale = true;
  });

  setHandler(
    suspendUpdate,
    async () => {
      if (state.status === 'SUSPENDED' && state.operation === null) return toVmView(state);
      pending.suspend = true;
      await condition(() => !pending.suspend || terminatingOrGone());
      return toVmView(state);
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('suspend', args);
        refuseIfTerminating();
        // A FAILED VM can be suspended too: its container is stopped, and ensureReady retries it.
        if (state.status === 'SUSPENDED' || (state.status === 'FAILED' && state.operation === null)) return;
        if (!isUsable(state)) {
          throw failure(
            VmErrorType.busy,
            `the VM cannot be suspended while ${state.operation ?? state.status.toLowerCase()}`,
          );
        }
      },
    },
  );

  setHandler(
    terminateUpdate,
    async () => {
      pending.terminate = true;
      // The main loop clears the request once it tried to write TERMINATED to the read model.
      await condition(() => state.status === 'TERMINATED' && !pending.terminate);
      return toVmView(state);
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('terminate', args);
        refuseIfTerminating();
      },
    },
  );

  // ---- steps of the main loop ----

  /** A FAILED VM must not keep running unsupervised; if Docker will not answer, the next start handles it. */
  async function stopQuietly(): Promise<void> {
    if (!state.container) return;
    try {
      await dockerBestEffort.stopVmContainer(state.container);
    } catch (err) {
      if (!isContainerMissing(err)) log.warn('could not stop a failed VM', { error: reasonOf(err) });
    }
  }

  /** A warm-pool container if one is ready (one that vanished is dropped for the next), else a new one. */
  async function obtainContainer(): Promise<VmContainerRef> {
    const name = userVmContainerName(state.userId);
    for (let attempt = 1; settings.useWarmPool && attempt <= MAX_POOL_CLAIMS; attempt++) {
      const claimed = await warmPool.claimWarmVm({
        claimId: `${workflowInfo().workflowId}/${state.vmId}/${attempt}`,
      });
      if (!claimed) break;
      try {
        return await docker.renameVmContainer(claimed, name);
      } catch (err) {
        if (!isContainerMissing(err)) throw err;
        log.warn('a claimed warm-pool VM is gone; claiming another', { container: claimed.containerName });
      }
    }
    return docker.createVmContainer({
      containerName: name,
      role: 'vm',
      owner: workflowInfo().workflowId,
      userId: state.userId,
    });
  }

  /** Starts the container; one removed behind the actor's back is recreated on the user's volume first. */
  async function startOrRecreate(): Promise<void> {
    try {
      await docker.startVmContainer(container());
    } catch (err) {
      if (!isContainerMissing(err)) throw err;
      const recreated = await docker.createVmContainer({
        containerName: userVmContainerName(state.userId),
        role: 'vm',
        owner: workflowInfo().workflowId,
        userId: state.userId,
        volumeName: container().volumeName,
      });
      apply({ type: 'CONTAINER_ASSIGNED', container: recreated });
      await docker.startVmContainer(recreated);
    }
  }

  async function waitForAgent(): Promise<void> {
    const answered = await agentWait.waitForVmAgent(container(), { timeoutMs: settings.agentTimeoutMs });
    apply({ type: 'AGENT_ANSWERED', health: answered });
    apply({ type: 'PROBLEM_CLEARED', source: 'docker' });
    agentMisses = 0;
  }

  async function bringUp(): Promise<void> {
    try {
      if (state.status === 'SUSPENDED') {
        apply({ type: 'RESUME_STARTED' });
      } else {
        apply({ type: 'PROVISION_STARTED' });
        if (!state.container) {
          await persist();
          apply({ type: 'CONTAINER_ASSIGNED', container: await obtainContainer() });
        }
      }
      await startOrRecreate();
      await waitForAgent();
    } catch (err) {
      if (terminatingOrGone()) return;
      apply({ type: 'FAILED', reason: reasonOf(err) });
      await stopQuietly();
    }
    await persist();
  }

  async function suspend(): Promise<void> {
    apply({ type: 'SUSPEND_STARTED' });
    try {
      await docker.stopVmContainer(container());
      apply({ type: 'SUSPENDED' });
    } catch (err) {
      // Gone is as stopped as it gets; the volume is still there and the next start recreates it.
      if (isContainerMissing(err)) apply({ type: 'SUSPENDED' });
      else apply({ type: 'FAILED', reason: `suspending failed: ${reasonOf(err)}` });
    }
    await persist();
  }

  /** Removal must finish: retried while Docker does not answer, visible as the state's problem. */
  async function terminate(): Promise<void> {
    apply({ type: 'TERMINATE_STARTED' });
    const ref = state.container;
    let removed = ref === null;
    while (!removed && ref) {
      try {
        await docker.removeVmContainer(ref);
        removed = true;
      } catch (err) {
        problem('docker', 'removing the VM is waiting for the Docker engine', err);
        await sleep(problemRetryDelayMs(state));
      }
    }
    apply({ type: 'PROBLEM_CLEARED', source: 'docker' });
    apply({ type: 'TERMINATED' });
    await persist();
  }

  async function checkHealth(): Promise<void> {
    const ref = container();
    const answered = await health.pingVmAgent(ref).catch(() => null);
    if (answered) {
      agentMisses = 0;
      const before = state.status;
      apply({ type: 'HEALTH_OK', health: answered });
      apply({ type: 'PROBLEM_CLEARED', source: 'docker' });
      if (state.status !== before) await persist();
      return;
    }
    let inspected: Awaited<ReturnType<VmContainerActivities['inspectVmContainer']>>;
    try {
      inspected = await health.inspectVmContainer(ref);
    } catch (err) {
      // Docker itself does not answer: that says nothing about the VM. Try again after a back-off.
      problem('docker', 'the Docker engine does not answer', err);
      return;
    }
    apply({ type: 'PROBLEM_CLEARED', source: 'docker' });
    // A running container whose agent misses a few pings in a row is treated as crashed too.
    if (inspected.running && ++agentMisses < 3) return;
    agentMisses = 0;
    apply({
      type: 'CRASH_DETECTED',
      detail: crashDetail(inspected),
      policy: { maxCrashes: settings.maxCrashes, windowMs: settings.crashWindowMs },
    });
    if (state.status === 'FAILED') {
      await stopQuietly();
      await persist();
      return;
    }
    try {
      if (inspected.exists && inspected.running) await docker.stopVmContainer(ref);
      await startOrRecreate();
      await waitForAgent();
    } catch (err) {
      apply({ type: 'FAILED', reason: `restart after crash failed: ${reasonOf(err)}` });
      await stopQuietly();
    }
    await persist();
  }

  const anyPending = () => pending.ready || pending.suspend || pending.terminate;

  const wake = () => anyPending() || viewStale;

  /** Waits for a request, until `untilMs` if given. */
  async function idle(untilMs: number | null): Promise<void> {
    if (untilMs === null) {
      await condition(wake);
      return;
    }
    const waitMs = Math.max(1, Math.ceil(untilMs - workflowNow()));
    // Input is validated, so this cannot happen; if it ever did, a loop that never awaits would be
    // interrupted by the SDK's deadlock watchdog in a way that kills the whole worker process.
    if (!Number.isFinite(waitMs)) throw failure(VM_INVALID_INPUT, `vm actor computed a wait of ${waitMs} ms`);
    await condition(wake, waitMs);
  }

  // ---- main loop ----
  for (;;) {
    // A hold never outlives its period: the next one brings fresh minutes (and needs no one to say so).
    if (state.quotaHold && workflowNow() >= state.quotaHold.untilMs) {
      apply({ type: 'QUOTA_RELEASED' });
      viewStale = true;
    }
    if (viewStale) {
      viewStale = false;
      await persist();
    }
    const step = nextVmStep({
      state,
      pending,
      nowMs: workflowNow(),
      idleTimeoutMs: settings.idleTimeoutMs,
      healthIntervalMs: settings.healthIntervalMs,
      historyIsLong:
        workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= settings.maxHistoryEvents,
    });
    switch (step.kind) {
      case 'terminate': {
        await terminate();
        pending.ready = pending.suspend = pending.terminate = false;
        // The caller has its answer; the database still gets TERMINATED if it comes back in time.
        for (let attempt = 0; readModelBehind() && attempt < MAX_FINAL_READ_MODEL_ATTEMPTS; attempt++) {
          await sleep(problemRetryDelayMs(state));
          await persist();
        }
        await usageReports;
        await condition(allHandlersFinished);
        return toVmView(state);
      }
      case 'bring-up':
        await bringUp();
        // Up for a poll only: it may sleep again after the grace, not after the whole idle timeout.
        if (backgroundOnly && isUsable(state))
          apply({
            type: 'BACKGROUND_WAKE',
            untilMs: workflowNow() + (settings.backgroundGraceMs ?? DEFAULT_VM_BACKGROUND_GRACE_MS),
          });
        backgroundOnly = false;
        pending.ready = false;
        break;
      case 'suspend':
        await suspend();
        pending.suspend = false;
        break;
      case 'stop-failed':
        await stopQuietly();
        pending.suspend = false;
        break;
      case 'answer-pending':
        pending.ready = pending.suspend = false;
        backgroundOnly = false;
        break;
      case 'continue-as-new':
        await usageReports;
        await condition(allHandlersFinished);
        if (!anyPending() && !viewStale)
          await continueAsNew<typeof vmWorkflow>({ ...input, carried: { state, pending } });
        break;
      case 'idle-suspend':
        await suspend();
        break;
      case 'health-check':
        await checkHealth();
        break;
      case 'retry-read-model':
        await persist();
        break;
      case 'wait':
        await idle(
          state.quotaHold
            ? Math.min(step.untilMs ?? state.quotaHold.untilMs, state.quotaHold.untilMs)
            : step.untilMs,
        );
        break;
    }
  }
}
