/**
 * workspace:<workspaceId> — one workspace of one user while the cloud has it. One id per workspace makes
 * this the only actor that restores, hands back or archives it.
 *
 * Update handlers only record what was asked and wait; the main loop does the work one step at a time, so
 * a pull never interleaves with a restore or an archive. *What* to do next is decided by
 * `nextWorkspaceStep` and *what* an outcome does to the state by `applyWorkspaceEvent` (both pure, in
 * state.ts); this file only does the steps. Every transition is written to the `workspaces` read model,
 * which is what the api reads; a database that does not answer is retried and shown as the view's problem.
 *
 * Deadlines: a restore is bounded by settings.restoreTimeoutMs (then FAILED, retryable); a pulled workspace
 * waits desktopLingerMs for the next send, then the actor ends; a long wait continues-as-new once history
 * is long, only when no handler runs and nothing is pending, so no request is lost across runs.
 *
 * The ratchet (behind the `workspace-drives-ratchet` patch; runs recorded before it replay without it):
 * while READY in the cloud with ratchetEnabled, ratchet:<id> runs, started from the sent state's memory.
 * The user's setting (setRatchet) is told to it; a pull first hands it off (its memory comes back in the
 * pulled state; a working fixer refuses the pull), and if the export then fails it is started again from
 * that memory; an archive ends it. What is owed is decided by nextWorkspaceStep like everything else.
 */
import {
  type ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RatchetHandOffResult, WorkspaceActivities } from '../../activities/workspace/types.js';
import { workflowNow } from '../clock.js';
import {
  failureTypeOf,
  finalFailure,
  reasonOf,
  refuseArguments as refuseNoArguments,
  timedOut,
} from '../failures.js';
import { FfcUserId, FfcWorkspaceId } from '../search-attributes.js';
import { parseOrFail } from '../validation.js';
import {
  archiveUpdate,
  DEFAULT_DESKTOP_LINGER_MS,
  DEFAULT_WORKSPACE_MAX_HISTORY_EVENTS,
  type PullResult,
  pullUpdate,
  retryUpdate,
  SendToCloudArgsSchema,
  SetWorkspaceRatchetArgsSchema,
  sendToCloudUpdate,
  setWorkspaceRatchetUpdate,
  type WorkspaceActorInput,
  WorkspaceActorInputSchema,
  WorkspaceErrorType,
  type WorkspaceView,
  workspaceViewQuery,
} from './messages.js';
import {
  applyWorkspaceEvent,
  detailsFromSource,
  newWorkspaceState,
  nextWorkspaceStep,
  portableWithRatchet,
  problemRetryDelayMs,
  ratchetLinkOf,
  ratchetSyncDueAtMs,
  sendDisposition,
  toWorkspaceView,
  type WorkspaceEvent,
  type WorkspaceState,
} from './state.js';

/** The failure type of a malformed start, continue-as-new or update argument. */
export const WORKSPACE_INVALID_INPUT = WorkspaceErrorType.invalidInput;
/** Raised by ensureWorkspaceVm when the VM actor says the VM cannot be started (activities/workspace). */
const VM_FAILED = 'WorkspaceVmFailed';
/** Failures of the user's own making, or final answers: retrying the activity cannot change them. */
const FINAL_FAILURES = [
  WorkspaceErrorType.invalidSource,
  WorkspaceErrorType.notReady,
  WorkspaceErrorType.fixerActive,
  WorkspaceErrorType.archived,
  WorkspaceErrorType.notOwner,
  VM_FAILED,
];
/** Failures a restore must not retry automatically (settings.maxAutoRetries): the same input fails again. */
const USER_CAUSED = [
  WorkspaceErrorType.invalidSource,
  WorkspaceErrorType.notReady,
  WorkspaceErrorType.notOwner,
];

/** Runs that record this marker drive a ratchet:<id> actor; older histories replay without it. */
export const WORKSPACE_RATCHET_PATCH = 'workspace-drives-ratchet';

/** After the actor's last transition, how long it keeps trying to write it to a database that is down. */
const MAX_FINAL_READ_MODEL_ATTEMPTS = 30;

/** Bounded: a database that stays down is shown as the workspace's problem and retried by the loop. */
const readModel = proxyActivities<Pick<WorkspaceActivities, 'recordWorkspaceView'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 4 },
});
/** Pull and archive run while the user waits: a few tries, then the caller hears why. */
const handoff = proxyActivities<Pick<WorkspaceActivities, 'pullWorkspaceFromVm' | 'archiveWorkspaceInVm'>>({
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
    nonRetryableErrorTypes: FINAL_FAILURES,
  },
});

/** Starting, telling, handing off and ending ratchet:<id>: quick calls to Temporal, a few tries. */
const ratchetControl = proxyActivities<
  Pick<WorkspaceActivities, 'syncWorkspaceRatchet' | 'handOffWorkspaceRatchet' | 'endWorkspaceRatchet'>
>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
    nonRetryableErrorTypes: FINAL_FAILURES,
  },
});

/** The restore's activities, each bounded by what is left of the restore's deadline. */
function restoreActivities(remainingMs: number) {
  const bounded = Math.max(1_000, Math.floor(remainingMs));
  const vm = proxyActivities<Pick<WorkspaceActivities, 'ensureWorkspaceVm'>>({
    scheduleToCloseTimeout: bounded,
    startToCloseTimeout: Math.min(bounded, 5 * 60_000),
    heartbeatTimeout: '30 seconds',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '10 seconds',
      maximumAttempts: 5,
      nonRetryableErrorTypes: FINAL_FAILURES,
    },
  });
  // A worker killed mid-restore is noticed by the missing heartbeat and the (idempotent) activity retried.
  const agent = proxyActivities<Pick<WorkspaceActivities, 'restoreWorkspaceInVm'>>({
    scheduleToCloseTimeout: bounded,
    heartbeatTimeout: '20 seconds',
    retry: {
      initialInterval: '2 seconds',
      maximumInterval: '30 seconds',
      maximumAttempts: 6,
      nonRetryableErrorTypes: FINAL_FAILURES,
    },
  });
  // Proxies, not plain objects: spreading them would copy nothing.
  return {
    ensureWorkspaceVm: vm.ensureWorkspaceVm,
    restoreWorkspaceInVm: agent.restoreWorkspaceInVm,
  };
}

const failure = finalFailure;

/** Updates other than sendToCloud take no arguments; anything sent along is a caller's mistake, refused. */
const refuseArguments = (name: string, args: unknown[]) =>
  refuseNoArguments(name, args, WORKSPACE_INVALID_INPUT);

type Pending<T> = { done: boolean; result?: T; error?: ApplicationFailure };

export async function workspaceWorkflow(rawInput: unknown): Promise<WorkspaceView> {
  // Validated before anything else: a malformed start fails this run with a clear error, and no bad value
  // ever reaches a timer or a condition.
  const input: WorkspaceActorInput = parseOrFail(
    WorkspaceActorInputSchema,
    rawInput,
    'input of workspace workflow',
    WORKSPACE_INVALID_INPUT,
  );
  if (input.source.kind === 'portable' && input.source.state.workspaceId !== input.workspaceId)
    throw failure(
      WORKSPACE_INVALID_INPUT,
      `invalid input of workspace workflow: source.state.workspaceId is ${input.source.state.workspaceId}, not ${input.workspaceId}`,
    );
  const carried = input.carried?.state;
  if (carried && (carried.workspaceId !== input.workspaceId || carried.userId !== input.userId))
    throw failure(
      WORKSPACE_INVALID_INPUT,
      'invalid input of workspace workflow: carried.state is of another workspace or user',
    );
  return runWorkspaceActor(input);
}

async function runWorkspaceActor(input: WorkspaceActorInput): Promise<WorkspaceView> {
  const { settings } = input;
  // Decided once per run, before any command: the whole run takes one path.
  const ratchetLinked = patched(WORKSPACE_RATCHET_PATCH);
  const desktopLingerMs = settings.desktopLingerMs ?? DEFAULT_DESKTOP_LINGER_MS;
  const maxHistoryEvents = settings.maxHistoryEvents ?? DEFAULT_WORKSPACE_MAX_HISTORY_EVENTS;
  let state: WorkspaceState =
    input.carried?.state ??
    newWorkspaceState({
      workspaceId: input.workspaceId,
      userId: input.userId,
      source: input.source,
      nowMs: workflowNow(),
    });
  const pulls: Pending<PullResult>[] = [];
  const archives: Pending<WorkspaceView>[] = [];
  const ratchetRequests: (Pending<WorkspaceView> & { enabled: boolean })[] = [];
  /** The read model holds this id for another user: this run must not act on it. */
  let ownershipRefused = false;
  /** The view as the latest send or retry was recorded: what that send or retry answers. */
  let recordedView: { seq: number; view: WorkspaceView } | null = null;

  if (settings.searchAttributes !== false) {
    upsertSearchAttributes([
      { key: FfcUserId, value: input.userId },
      { key: FfcWorkspaceId, value: input.workspaceId },
    ]);
  }

  function apply(event: WorkspaceEvent): void {
    state = applyWorkspaceEvent(state, event, workflowNow());
  }

  async function persist(): Promise<void> {
    try {
      const recorded = await readModel.recordWorkspaceView(toWorkspaceView(state));
      if (recorded.written)
        apply({ type: 'PERSISTED', version: recorded.version, createdAtMs: Date.parse(recorded.createdAt) });
      else if (recorded.reason === 'notOwner') ownershipRefused = true;
      apply({ type: 'PROBLEM_CLEARED' });
    } catch (err) {
      const message = `the database does not answer; the dashboard may show an older state: ${reasonOf(err)}`;
      apply({ type: 'PROBLEM', message });
      log.warn('workspace actor: read model not written', {
        workspaceId: state.workspaceId,
        error: reasonOf(err),
      });
    }
  }

  const archivingOrArchived = () => state.status === 'ARCHIVED' || archives.length > 0;
  function refuseIfArchived(): void {
    if (archivingOrArchived())
      throw failure(WorkspaceErrorType.archived, `workspace ${state.workspaceId} is archived`);
  }
  const notOwner = () =>
    failure(WorkspaceErrorType.notOwner, `workspace ${state.workspaceId} belongs to another user`);

  /** A send or retry is answered once its PROVISIONING is recorded, not when the restore is done. */
  async function answerWhenRecorded(): Promise<WorkspaceView> {
    const seq = state.restoreSeq;
    // Recorded already (a repeated send to a workspace in the cloud): the current view is the answer.
    if (state.recordedSeq >= seq) return toWorkspaceView(state);
    await condition(() => state.recordedSeq >= seq || ownershipRefused || state.status === 'ARCHIVED');
    if (ownershipRefused) throw notOwner();
    return recordedView?.seq === seq ? recordedView.view : toWorkspaceView(state);
  }

  // ---- messages ----
  setHandler(workspaceViewQuery, () => toWorkspaceView(state));

  setHandler(
    sendToCloudUpdate,
    async (args: unknown) => {
      const send = parseOrFail(SendToCloudArgsSchema, args, 'sendToCloud', WORKSPACE_INVALID_INPUT);
      if (sendDisposition(state) === 'restore') apply({ type: 'SENT', source: send.source });
      return answerWhenRecorded();
    },
    {
      validator: (...args: unknown[]) => {
        if (args.length !== 1)
          throw failure(WORKSPACE_INVALID_INPUT, 'invalid sendToCloud: it takes one argument');
        const send = parseOrFail(SendToCloudArgsSchema, args[0], 'sendToCloud', WORKSPACE_INVALID_INPUT);
        if (send.userId !== state.userId || ownershipRefused) throw notOwner();
        if (send.source.kind === 'portable' && send.source.state.workspaceId !== state.workspaceId)
          throw failure(
            WorkspaceErrorType.invalidSource,
            `the state sent is of workspace ${send.source.state.workspaceId}, not ${state.workspaceId}`,
          );
        refuseIfArchived();
        // Answered as in the cloud while a pull is about to hand it to the desktop would mislead the caller.
        if (pulls.length > 0)
          throw failure(
            WorkspaceErrorType.notReady,
            'the workspace is being pulled; send it again once that is done',
          );
      },
    },
  );

  setHandler(
    pullUpdate,
    async () => {
      const request: Pending<PullResult> = { done: false };
      pulls.push(request);
      await condition(() => request.done);
      if (request.error) throw request.error;
      if (!request.result) throw failure(WorkspaceErrorType.unavailable, 'the pull ended without an answer');
      return request.result;
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('pull', args);
        refuseIfArchived();
        if (state.status !== 'READY')
          throw failure(
            WorkspaceErrorType.notReady,
            `workspace ${state.workspaceId} is ${state.status}; only a READY workspace can be pulled`,
          );
      },
    },
  );

  setHandler(
    archiveUpdate,
    async () => {
      if (state.status === 'ARCHIVED') return toWorkspaceView(state);
      const request: Pending<WorkspaceView> = { done: false };
      archives.push(request);
      await condition(() => request.done);
      if (request.error) throw request.error;
      return request.result ?? toWorkspaceView(state);
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('archive', args);
        if (state.status === 'PROVISIONING')
          throw failure(
            WorkspaceErrorType.notReady,
            `workspace ${state.workspaceId} is being restored; archive it once it is READY or FAILED`,
          );
      },
    },
  );

  setHandler(
    setWorkspaceRatchetUpdate,
    async (args: unknown) => {
      const { enabled } = parseOrFail(
        SetWorkspaceRatchetArgsSchema,
        args,
        'setRatchet',
        WORKSPACE_INVALID_INPUT,
      );
      const request: Pending<WorkspaceView> & { enabled: boolean } = { done: false, enabled };
      ratchetRequests.push(request);
      await condition(() => request.done);
      if (request.error) throw request.error;
      return request.result ?? toWorkspaceView(state);
    },
    {
      validator: (...args: unknown[]) => {
        if (!ratchetLinked)
          throw failure(
            WorkspaceErrorType.notReady,
            'this workspace was sent before the cloud ratchet existed; send it again',
          );
        if (args.length !== 1)
          throw failure(WORKSPACE_INVALID_INPUT, 'invalid setRatchet: it takes one argument');
        parseOrFail(SetWorkspaceRatchetArgsSchema, args[0], 'setRatchet', WORKSPACE_INVALID_INPUT);
        refuseIfArchived();
        if (state.location !== 'CLOUD' || pulls.length > 0)
          throw failure(
            WorkspaceErrorType.notReady,
            `workspace ${state.workspaceId} is on the desktop (or being pulled); its ratchet runs there`,
          );
      },
    },
  );

  setHandler(
    retryUpdate,
    async () => {
      if (state.status === 'FAILED') apply({ type: 'RETRY_REQUESTED', automatic: false });
      return answerWhenRecorded();
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('retry', args);
        refuseIfArchived();
      },
    },
  );

  // ---- steps of the main loop ----

  async function restore(): Promise<void> {
    const mode = state.pendingRestore ?? 'send';
    apply({ type: 'RESTORE_TAKEN' });
    const deadline = workflowNow() + settings.restoreTimeoutMs;
    await persist();
    apply({ type: 'RECORDED' });
    recordedView = { seq: state.restoreSeq, view: toWorkspaceView(state) };
    if (ownershipRefused) return;
    try {
      await restoreActivities(deadline - workflowNow()).ensureWorkspaceVm({ userId: state.userId });
      apply({ type: 'VM_READY' });
      await persist();
      const outcome = await restoreActivities(deadline - workflowNow()).restoreWorkspaceInVm({
        workspaceId: state.workspaceId,
        userId: state.userId,
        source: state.source,
        mode,
      });
      if (outcome.status === 'READY') apply({ type: 'RESTORED', details: outcome.details });
      else apply({ type: 'RESTORE_FAILED', reason: outcome.reason, retryable: true });
    } catch (err) {
      const type = failureTypeOf(err);
      const reason = timedOut(err)
        ? `the restore did not finish within ${Math.round(settings.restoreTimeoutMs / 60_000)} min (${reasonOf(err)})`
        : reasonOf(err);
      apply({
        type: 'RESTORE_FAILED',
        reason,
        retryable: type === null || !USER_CAUSED.includes(type as (typeof USER_CAUSED)[number]),
      });
    }
    await persist();
  }

  /** Fails are final answers for the caller; anything else is the VM not answering. */
  function callerFailure(err: unknown): ApplicationFailure {
    const type = failureTypeOf(err);
    if (
      type !== null &&
      FINAL_FAILURES.includes(type as (typeof FINAL_FAILURES)[number]) &&
      type !== VM_FAILED
    )
      return failure(type, reasonOf(err));
    return failure(WorkspaceErrorType.unavailable, `the VM did not answer: ${reasonOf(err)}; try again`);
  }

  async function pull(): Promise<void> {
    const requests = pulls.splice(0);
    const settle = (outcome: { result?: PullResult; error?: ApplicationFailure }) => {
      for (const request of requests) Object.assign(request, outcome, { done: true });
    };
    if (state.status !== 'READY') {
      settle({
        error: failure(
          state.status === 'ARCHIVED' ? WorkspaceErrorType.archived : WorkspaceErrorType.notReady,
          `workspace ${state.workspaceId} is ${state.status}; only a READY workspace can be pulled`,
        ),
      });
      return;
    }
    // The cloud loop stops before the export: no fixer can start between the export and the answer.
    let handedOff: RatchetHandOffResult = { found: false };
    if (ratchetLinked) {
      try {
        handedOff = await ratchetControl.handOffWorkspaceRatchet({ workspaceId: state.workspaceId });
      } catch (err) {
        settle({ error: callerFailure(err) });
        return;
      }
      if (handedOff.found)
        apply({ type: 'RATCHET_HANDED_OFF', memory: handedOff.memory, ratchetState: handedOff.ratchetState });
    }
    try {
      const pulled = await handoff.pullWorkspaceFromVm({
        userId: state.userId,
        workspaceId: state.workspaceId,
      });
      const portable = ratchetLinked
        ? portableWithRatchet(pulled.state, {
            enabled: state.details.ratchetEnabled,
            memory: handedOff.found ? ratchetLinkOf(state).memory : null,
            ratchetState: handedOff.found ? handedOff.ratchetState : null,
          })
        : pulled.state;
      apply({ type: 'PULLED', details: detailsFromSource({ kind: 'portable', state: portable }) });
      await persist();
      settle({
        result: { workspace: toWorkspaceView(state), state: portable, sessions: pulled.sessions },
      });
    } catch (err) {
      // Still in the cloud: the main loop starts the ratchet again from the memory it handed back.
      settle({ error: callerFailure(err) });
    }
  }

  /** Starts ratchet:<id> or tells it the setting; a failure is shown in the log and tried again later. */
  async function syncRatchet(): Promise<unknown> {
    const enabled = state.details.ratchetEnabled;
    try {
      await ratchetControl.syncWorkspaceRatchet({
        workspaceId: state.workspaceId,
        userId: state.userId,
        enabled,
        memory: ratchetLinkOf(state).memory,
      });
      apply({ type: 'RATCHET_SYNCED', enabled });
      return null;
    } catch (err) {
      apply({ type: 'RATCHET_SYNC_FAILED' });
      log.warn('workspace actor: ratchet not started or told', {
        workspaceId: state.workspaceId,
        error: reasonOf(err),
      });
      return err;
    }
  }

  async function setRatchet(): Promise<void> {
    const requests = ratchetRequests.splice(0);
    const last = requests[requests.length - 1];
    if (!last) return;
    const settle = (outcome: { result?: WorkspaceView; error?: ApplicationFailure }) => {
      for (const request of requests) Object.assign(request, outcome, { done: true });
    };
    if (state.status === 'ARCHIVED')
      return settle({
        error: failure(WorkspaceErrorType.archived, `workspace ${state.workspaceId} is archived`),
      });
    if (state.location !== 'CLOUD')
      return settle({
        error: failure(WorkspaceErrorType.notReady, `workspace ${state.workspaceId} is on the desktop`),
      });
    // Requests that arrived together: the last one is the setting.
    apply({ type: 'RATCHET_ENABLED', enabled: last.enabled });
    await persist();
    // Not READY yet: the ratchet starts once the restore is done.
    if (ratchetSyncDueAtMs(state) !== null) {
      const err = await syncRatchet();
      if (err !== null) {
        settle({
          error: failure(
            WorkspaceErrorType.unavailable,
            `the setting is saved, but the ratchet did not answer (${reasonOf(err)}); it is tried again`,
          ),
        });
        return;
      }
    }
    settle({ result: toWorkspaceView(state) });
  }

  async function archive(): Promise<void> {
    const requests = archives.splice(0);
    const settle = (outcome: { result?: WorkspaceView; error?: ApplicationFailure }) => {
      for (const request of requests) Object.assign(request, outcome, { done: true });
    };
    if (state.status === 'ARCHIVED') return settle({ result: toWorkspaceView(state) });
    if (state.status === 'PROVISIONING') {
      settle({
        error: failure(WorkspaceErrorType.notReady, `workspace ${state.workspaceId} is being restored`),
      });
      return;
    }
    try {
      await handoff.archiveWorkspaceInVm({ userId: state.userId, workspaceId: state.workspaceId });
      if (ratchetLinked) {
        // The VM refused the archive while a fixer worked, so none is lost here; a ratchet that does not
        // answer is logged (it finds the workspace archived at its next poll).
        await ratchetControl
          .endWorkspaceRatchet({ workspaceId: state.workspaceId, reason: 'archived' })
          .catch((err: unknown) =>
            log.warn('workspace actor: ratchet not ended', {
              workspaceId: state.workspaceId,
              error: reasonOf(err),
            }),
          );
      }
      apply({ type: 'ARCHIVED' });
      await persist();
      settle({ result: toWorkspaceView(state) });
    } catch (err) {
      settle({ error: callerFailure(err) });
    }
  }

  const anyPending = () =>
    pulls.length > 0 || archives.length > 0 || ratchetRequests.length > 0 || state.pendingRestore !== null;

  async function idle(untilMs: number | null): Promise<void> {
    if (untilMs === null) {
      await condition(anyPending);
      return;
    }
    const waitMs = Math.max(1, Math.ceil(untilMs - workflowNow()));
    // Input is validated, so this cannot happen; if it did, a loop that never awaits would take the worker down.
    if (!Number.isFinite(waitMs))
      throw failure(WORKSPACE_INVALID_INPUT, `workspace actor computed a wait of ${waitMs} ms`);
    await condition(anyPending, waitMs);
  }

  async function finish(): Promise<WorkspaceView> {
    for (let attempt = 0; state.problem && attempt < MAX_FINAL_READ_MODEL_ATTEMPTS; attempt++) {
      await sleep(problemRetryDelayMs(state));
      await persist();
    }
    await condition(allHandlersFinished);
    return toWorkspaceView(state);
  }

  // ---- main loop ----
  for (;;) {
    if (ownershipRefused) {
      await condition(allHandlersFinished);
      throw notOwner();
    }
    const step = nextWorkspaceStep({
      state,
      pending: { pull: pulls.length > 0, archive: archives.length > 0, ratchet: ratchetRequests.length > 0 },
      nowMs: workflowNow(),
      maxAutoRetries: settings.maxAutoRetries,
      desktopLingerMs,
      ratchet: ratchetLinked,
      historyIsLong:
        workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistoryEvents,
    });
    switch (step.kind) {
      case 'archive':
        await archive();
        break;
      case 'pull':
        await pull();
        break;
      case 'restore':
        await restore();
        break;
      case 'auto-retry':
        apply({ type: 'RETRY_REQUESTED', automatic: true });
        break;
      case 'retry-read-model':
        await persist();
        break;
      case 'set-ratchet':
        await setRatchet();
        break;
      case 'sync-ratchet':
        await syncRatchet();
        break;
      case 'continue-as-new':
        await condition(allHandlersFinished);
        if (!anyPending()) await continueAsNew<typeof workspaceWorkflow>({ ...input, carried: { state } });
        break;
      case 'complete':
        return finish();
      case 'wait':
        await idle(step.untilMs);
        break;
    }
  }
}
