/**
 * FROZEN: the vm:<userId> actor as it ran before the second pass (isolation, fault exits, validated input).
 * workflow.ts runs this only to replay runs that started before `patched('vm-runtime-second-pass')`, so
 * their histories stay deterministic; never change it, delete it once no such run is left.
 *
 * vm:<userId> — the lifecycle of one user's VM. One id per user makes this the only actor that ever
 * creates, starts, stops or removes that user's container.
 *
 * Update handlers only record what was asked and wait; the main loop does the work one step at a time, so
 * concurrent requests never interleave Docker operations. Idle suspension and the health check are timers
 * of the same loop. History stays bounded through continue-as-new, taken only when no handler is running
 * and nothing is pending, so no request is lost across runs.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createVmReadModelActivities } from '../../activities/vm/read-model.js';
import type { VmContainerActivities, VmContainerRef } from '../../activities/vm/types.js';
import type { createWarmPoolClientActivities } from '../../activities/vm/warm-pool-client.js';
import { workflowNow } from '../clock.js';
import { userVmContainerName } from '../ids.js';
import { FfcUserId, FfcVmState } from '../search-attributes.js';
import {
  ensureReadyUpdate,
  type PendingRequests,
  suspendUpdate,
  terminateUpdate,
  touchSignal,
  VmErrorType,
  type VmView,
  type VmWorkflowInput,
  vmContainerQuery,
  vmStateQuery,
} from './messages.js';
import {
  applyVmEvent,
  idleDeadlineMs,
  isUsable,
  newVmState,
  nextHealthCheckMs,
  toVmView,
  type VmEvent,
  type VmState,
} from './state.js';

/** Removal during terminate retries until Docker answers: a half-terminated VM is worse than a slow one. */
const dockerRemove = proxyActivities<Pick<VmContainerActivities, 'removeVmContainer'>>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
/**
 * Docker calls take well under a second; a short timeout means a worker that died mid-call is noticed and
 * the (idempotent) call retried in seconds, not minutes.
 */
const docker = proxyActivities<VmContainerActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '20 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['VmContainerMissing'],
  },
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
const readModel = proxyActivities<ReturnType<typeof createVmReadModelActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '30 seconds' },
});
const warmPool = proxyActivities<ReturnType<typeof createWarmPoolClientActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

const failure = (type: string, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

/** The message of the innermost cause, which is where an activity's own error text is. */
function reasonOf(err: unknown): string {
  let current: unknown = err;
  while (current instanceof ActivityFailure || (current instanceof Error && current.cause instanceof Error)) {
    current = current instanceof Error ? current.cause : undefined;
  }
  return current instanceof Error ? current.message : String(current);
}

export async function vmWorkflowV1(input: VmWorkflowInput): Promise<VmView> {
  const { settings } = input;
  let state: VmState = input.carried?.state ?? newVmState(input.userId, uuid4(), workflowNow());
  const pending: PendingRequests = input.carried?.pending ?? {
    ready: false,
    suspend: false,
    terminate: false,
  };
  let agentMisses = 0;

  if (settings.searchAttributes) {
    upsertSearchAttributes([
      { key: FfcUserId, value: input.userId },
      { key: FfcVmState, value: state.status },
    ]);
  }

  function apply(event: VmEvent): void {
    const before = state.status;
    state = applyVmEvent(state, event, workflowNow());
    if (settings.searchAttributes && state.status !== before) {
      upsertSearchAttributes([{ key: FfcVmState, value: state.status }]);
    }
  }
  const persist = () => readModel.recordVmState(toVmView(state));
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
  setHandler(touchSignal, () => {
    if (state.status !== 'TERMINATED') apply({ type: 'TOUCHED' });
  });

  setHandler(
    ensureReadyUpdate,
    async () => {
      apply({ type: 'TOUCHED' });
      if (isUsable(state)) return toVmView(state);
      pending.ready = true;
      await condition(() => !pending.ready || terminatingOrGone());
      if (isUsable(state)) return toVmView(state);
      if (terminatingOrGone()) throw failure(VmErrorType.terminating, 'the VM was terminated while starting');
      throw failure(
        VmErrorType.failed,
        `the VM could not be started: ${state.failureReason ?? 'unknown reason'}`,
      );
    },
    { validator: () => refuseIfTerminating() },
  );

  setHandler(
    suspendUpdate,
    async () => {
      if (state.status === 'SUSPENDED' && state.operation === null) return toVmView(state);
      pending.suspend = true;
      await condition(() => !pending.suspend || terminatingOrGone());
      return toVmView(state);
    },
    {
      validator: () => {
        refuseIfTerminating();
        if (state.status === 'SUSPENDED') return;
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
      // Answer only once the read model says TERMINATED too (the main loop clears the request after it
      // persisted). Actors started before this change answered as soon as the state changed.
      const afterReadModel = patched('terminate-answers-after-read-model');
      await condition(() => state.status === 'TERMINATED' && (!afterReadModel || !pending.terminate));
      return toVmView(state);
    },
    { validator: () => refuseIfTerminating() },
  );

  // ---- steps of the main loop ----
  async function bringUp(): Promise<void> {
    try {
      if (state.status === 'SUSPENDED') {
        apply({ type: 'RESUME_STARTED' });
      } else {
        apply({ type: 'PROVISION_STARTED' });
        if (!state.container) {
          await persist();
          const claimed = settings.useWarmPool
            ? await warmPool.claimWarmVm({ claimId: `${workflowInfo().workflowId}/${state.vmId}` })
            : null;
          const ref = claimed
            ? await docker.renameVmContainer(claimed, userVmContainerName(state.userId))
            : await docker.createVmContainer({
                containerName: userVmContainerName(state.userId),
                role: 'vm',
                owner: workflowInfo().workflowId,
                userId: state.userId,
              });
          apply({ type: 'CONTAINER_ASSIGNED', container: ref });
        }
      }
      await docker.startVmContainer(container());
      const answered = await agentWait.waitForVmAgent(container(), { timeoutMs: settings.agentTimeoutMs });
      apply({ type: 'AGENT_ANSWERED', health: answered });
      agentMisses = 0;
    } catch (err) {
      if (terminatingOrGone()) return;
      apply({ type: 'FAILED', reason: reasonOf(err) });
    }
    await persist();
  }

  async function suspend(): Promise<void> {
    apply({ type: 'SUSPEND_STARTED' });
    try {
      await docker.stopVmContainer(container());
      apply({ type: 'SUSPENDED' });
    } catch (err) {
      apply({ type: 'FAILED', reason: `suspending failed: ${reasonOf(err)}` });
    }
    await persist();
  }

  async function terminate(): Promise<void> {
    apply({ type: 'TERMINATE_STARTED' });
    if (state.container) await dockerRemove.removeVmContainer(state.container);
    apply({ type: 'TERMINATED' });
    await persist();
  }

  async function checkHealth(): Promise<void> {
    const ref = container();
    const answered = await health.pingVmAgent(ref);
    if (answered) {
      agentMisses = 0;
      const before = state.status;
      apply({ type: 'HEALTH_OK', health: answered });
      if (state.status !== before) await persist();
      return;
    }
    const inspected = await health.inspectVmContainer(ref);
    // A running container whose agent misses a few pings in a row is treated as crashed too.
    if (inspected.running && ++agentMisses < 3) return;
    agentMisses = 0;
    const detail = !inspected.exists
      ? 'container removed'
      : inspected.running
        ? 'agent stopped answering'
        : `container ${inspected.status}${inspected.exitCode !== null ? ` with exit code ${inspected.exitCode}` : ''}${inspected.oomKilled ? ' (out of memory)' : ''}`;
    apply({
      type: 'CRASH_DETECTED',
      detail,
      policy: { maxCrashes: settings.maxCrashes, windowMs: settings.crashWindowMs },
    });
    if (state.status === 'FAILED') {
      await persist();
      return;
    }
    try {
      if (!inspected.exists) {
        // The container is gone but the volume with the user's work may not be: mount it again.
        const recreated = await docker.createVmContainer({
          containerName: userVmContainerName(state.userId),
          role: 'vm',
          owner: workflowInfo().workflowId,
          userId: state.userId,
          volumeName: ref.volumeName,
        });
        apply({ type: 'CONTAINER_ASSIGNED', container: recreated });
      } else if (inspected.running) {
        await docker.stopVmContainer(ref);
      }
      await docker.startVmContainer(container());
      apply({
        type: 'AGENT_ANSWERED',
        health: await agentWait.waitForVmAgent(container(), { timeoutMs: settings.agentTimeoutMs }),
      });
    } catch (err) {
      apply({ type: 'FAILED', reason: `restart after crash failed: ${reasonOf(err)}` });
    }
    await persist();
  }

  const anyPending = () => pending.ready || pending.suspend || pending.terminate;

  // ---- main loop ----
  for (;;) {
    if (pending.terminate) {
      await terminate();
      pending.ready = pending.suspend = pending.terminate = false;
      await condition(allHandlersFinished);
      return toVmView(state);
    }
    if (pending.ready) {
      if (!isUsable(state)) await bringUp();
      pending.ready = false;
      continue;
    }
    if (pending.suspend) {
      if (isUsable(state)) await suspend();
      pending.suspend = false;
      continue;
    }

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= settings.maxHistoryEvents) {
      await condition(allHandlersFinished);
      if (!anyPending()) {
        await continueAsNew<typeof vmWorkflowV1>({
          userId: input.userId,
          settings,
          carried: { state, pending },
        });
      }
      continue;
    }

    if (!isUsable(state)) {
      // SUSPENDED, FAILED or never provisioned: nothing to do until someone asks.
      await condition(anyPending);
      continue;
    }

    const now = workflowNow();
    const idleAt = idleDeadlineMs(state, settings.idleTimeoutMs);
    const healthAt = nextHealthCheckMs(state, settings.healthIntervalMs);
    const wakeAt = Math.min(idleAt, healthAt);
    if (wakeAt > now && (await condition(anyPending, wakeAt - now))) continue;
    if (workflowNow() >= idleDeadlineMs(state, settings.idleTimeoutMs)) {
      await suspend();
    } else if (workflowNow() >= nextHealthCheckMs(state, settings.healthIntervalMs)) {
      await checkHealth();
    }
  }
}
