/**
 * ratchet:<workspaceId> — the ratchet loop of one cloud workspace. One id per workspace makes this the only
 * actor that dispatches fixers for it: no two fixers for one workspace, whatever else happens.
 *
 * Handlers only record what was asked (and answer from the state); the main loop does the work one step at
 * a time, so a stopFixer never interleaves with a dispatch. *What* to do next is decided by
 * `nextRatchetStep` and *what* an outcome does to the state by the transitions of state.ts (both pure, with
 * core/ratchet's decide underneath); this file only does the steps. Every change of the view is written to
 * `workspace_ratchets`, which is what the api reads.
 *
 * Polls are watched (behind patched('ratchet-watch')): one activity polls every interval and reports only
 * a poll that would change something (or the last one after watchMaxMs), so a quiet PR costs its workflow
 * nothing per poll. The workflow still decides every reported poll itself. Any handler's request (a wake,
 * stopFixer, handOff, setEnabled) cancels the watch, and the loop acts on the request at once.
 *
 * A dispatch is recorded in the state (with an id from uuid4, replay-safe) before its activity runs, and
 * the agent is idempotent on that id, so a worker killed mid-dispatch never starts a second fixer. handOff
 * ends the loop at once: a poll in flight when it is answered is discarded, so nothing is dispatched after
 * the memory was handed back.
 */
import {
  type ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
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
import type { RatchetActivities } from '../../activities/ratchet/types.js';
import { workflowNow } from '../clock.js';
import { failureTypeOf, finalFailure, reasonOf, refuseArguments as refuseNoArguments } from '../failures.js';
import { FfcRatchetState, FfcUserId, FfcWorkspaceId } from '../search-attributes.js';
import { parseOrFail } from '../validation.js';
import {
  DEFAULT_RATCHET_MAX_HISTORY_EVENTS,
  EndRatchetArgsSchema,
  endRatchetUpdate,
  handOffUpdate,
  type ParsedRatchetActorInput,
  RatchetActorInputSchema,
  RatchetErrorType,
  type RatchetHandOff,
  type RatchetView,
  ratchetViewQuery,
  SetRatchetEnabledArgsSchema,
  type StopFixerResult,
  setRatchetEnabledUpdate,
  stopFixerUpdate,
  wakeSignal,
} from './messages.js';
import {
  applyPollOutcome,
  enabledSet,
  fixerChecked,
  fixerDispatched,
  fixerSettled,
  fixerUnreachable,
  newRatchetState,
  nextRatchetStep,
  type RatchetActorState,
  type RatchetPollOutcome,
  ratchetEnded,
  ratchetPersisted,
  toRatchetView,
  wakesSuspendedVm,
  watchBaseline,
} from './state.js';

/** Activity failure types (activities/ratchet/types.ts's RatchetActivityFailure; a type import cannot hold values). */
const VM_UNAVAILABLE = 'RatchetVmUnavailable';
const DISPATCH_REFUSED = 'RatchetDispatchRefused';
const VM_QUOTA = 'RatchetVmQuota';
const VM_TERMINATED = 'RatchetVmTerminated';

/** After the loop ended, how long it keeps trying to write its last view to a database that is down. */
const MAX_FINAL_READ_MODEL_ATTEMPTS = 10;

const readModel = proxyActivities<Pick<RatchetActivities, 'recordRatchetView'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 4 },
});
/** gh in the VM makes a few requests; a dead worker is noticed by the timeout and the poll simply redone. */
const github = proxyActivities<Pick<RatchetActivities, 'pollPullRequest'>>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: [VM_TERMINATED],
  },
});
/**
 * A watch polls for up to watchMaxMs and heartbeats every poll: a dead worker is noticed one poll interval
 * (plus a slow gh) after its last heartbeat, and the watch redone (it only reads).
 */
const watchActivities = (settings: ParsedRatchetActorInput['settings']) =>
  proxyActivities<Pick<RatchetActivities, 'watchPullRequest'>>({
    startToCloseTimeout: settings.watchMaxMs + settings.pollIntervalMs + 2 * 60_000,
    heartbeatTimeout: settings.pollIntervalMs + 2 * 60_000,
    retry: {
      initialInterval: '1 second',
      maximumInterval: '10 seconds',
      maximumAttempts: 3,
      nonRetryableErrorTypes: [VM_TERMINATED],
    },
  });
/** Resuming a VM takes seconds to a minute. */
const vm = proxyActivities<Pick<RatchetActivities, 'wakeVmForPoll'>>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    maximumInterval: '20 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: [VM_QUOTA, VM_TERMINATED, VM_UNAVAILABLE],
  },
});
/** Dispatch, check and stop are idempotent (the dispatch on its id), so retrying them is always safe. */
const fixer = proxyActivities<Pick<RatchetActivities, 'dispatchFixer' | 'checkFixer' | 'stopFixer'>>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
    nonRetryableErrorTypes: [DISPATCH_REFUSED, VM_TERMINATED],
  },
});

const failure = finalFailure;
const refuseArguments = (name: string, args: unknown[]) =>
  refuseNoArguments(name, args, RatchetErrorType.invalidInput);

function oneArgument(name: string, args: unknown[]): unknown {
  if (args.length !== 1)
    throw failure(RatchetErrorType.invalidInput, `invalid ${name}: it takes one argument`);
  return args[0];
}

/** The view without what changes on every poll: a write is owed only when this differs. */
function viewSignature(view: RatchetView): string {
  const { nextPollAtMs: _next, updatedAt: _updated, version: _version, lastDecision, ...rest } = view;
  return JSON.stringify({ ...rest, lastDecision: lastDecision && { ...lastDecision, atMs: 0 } });
}

type Pending<T> = { done: boolean; result?: T; error?: ApplicationFailure };

export async function ratchetWorkflow(rawInput: unknown): Promise<RatchetHandOff> {
  // Validated before anything else: a malformed start fails this run with a clear error, and no bad value
  // ever reaches a timer or a condition.
  const input = parseOrFail(
    RatchetActorInputSchema,
    rawInput,
    'input of ratchet workflow',
    RatchetErrorType.invalidInput,
  );
  const carried = input.carried?.state;
  if (carried && (carried.workspaceId !== input.workspaceId || carried.userId !== input.userId))
    throw failure(
      RatchetErrorType.invalidInput,
      'invalid input of ratchet workflow: carried.state is of another workspace or user',
    );
  return runRatchetActor(input);
}

async function runRatchetActor(input: ParsedRatchetActorInput): Promise<RatchetHandOff> {
  const { settings } = input;
  // Polls are watched in one activity that reports only those that change something (older runs, recorded
  // before, poll once per activity).
  const watchesPolls = patched('ratchet-watch');
  const watcher = watchActivities(settings);
  const searchAttributes = settings.searchAttributes !== false;
  const maxHistoryEvents = settings.maxHistoryEvents ?? DEFAULT_RATCHET_MAX_HISTORY_EVENTS;
  let state: RatchetActorState =
    input.carried?.state ??
    newRatchetState({
      workspaceId: input.workspaceId,
      userId: input.userId,
      memory: input.memory,
      nowMs: workflowNow(),
    });
  const pending = { stopFixer: false, wake: false };
  const stops: Pending<StopFixerResult>[] = [];
  /** The recorded dispatch's prompt until the VM took it (a dispatch is never carried across runs). */
  let prompt: string | null = null;
  /** The signature of the view last written; null until the first write. */
  let writtenSignature: string | null = null;
  /** The last write failed: when to try again (the database may be down), and how often it failed. */
  let retryWriteAtMs: number | null = null;
  let failedWrites = 0;
  /** A handler changed the state: the loop writes the view (and re-decides) at once. */
  let changedByHandler = false;

  const view = (): RatchetView =>
    toRatchetView(state, { nowMs: workflowNow(), maxDispatchesPerDay: settings.maxDispatchesPerDay });
  const ended = () => state.endedReason !== null;

  if (searchAttributes) {
    upsertSearchAttributes([
      { key: FfcUserId, value: input.userId },
      { key: FfcWorkspaceId, value: input.workspaceId },
      { key: FfcRatchetState, value: state.ratchetState },
    ]);
  }

  function set(next: RatchetActorState): void {
    const before = state;
    state = next;
    if (searchAttributes && before.ratchetState !== next.ratchetState)
      upsertSearchAttributes([{ key: FfcRatchetState, value: next.ratchetState }]);
  }

  const viewOwed = () => writtenSignature !== viewSignature(view());

  async function persist(): Promise<void> {
    const current = view();
    try {
      const recorded = await readModel.recordRatchetView(current);
      if (recorded.written) state = ratchetPersisted(state, recorded.version);
      else if (recorded.reason === 'notOwner')
        log.warn('ratchet actor: the read model row is another user’s; not written', {
          workspaceId: state.workspaceId,
        });
      writtenSignature = viewSignature(current);
      retryWriteAtMs = null;
      failedWrites = 0;
    } catch (err) {
      failedWrites++;
      retryWriteAtMs = workflowNow() + Math.min(60_000, 1_000 * 2 ** Math.min(6, failedWrites - 1));
      log.warn('ratchet actor: read model not written', {
        workspaceId: state.workspaceId,
        error: reasonOf(err),
      });
    }
  }

  // ---- messages ----
  setHandler(ratchetViewQuery, () => view());

  setHandler(wakeSignal, (...args: unknown[]) => {
    // A signal cannot be refused; one with arguments is not ours and is ignored.
    if (args.some((arg) => arg !== undefined)) return;
    pending.wake = true;
  });

  setHandler(
    setRatchetEnabledUpdate,
    (args: unknown) => {
      const { enabled } = parseOrFail(
        SetRatchetEnabledArgsSchema,
        args,
        'setEnabled',
        RatchetErrorType.invalidInput,
      );
      if (!ended()) set(enabledSet(state, enabled, workflowNow()));
      changedByHandler = true;
      return view();
    },
    {
      validator: (...args: unknown[]) => {
        parseOrFail(
          SetRatchetEnabledArgsSchema,
          oneArgument('setEnabled', args),
          'setEnabled',
          RatchetErrorType.invalidInput,
        );
        if (ended()) throw failure(RatchetErrorType.ended, `the ratchet of ${state.workspaceId} has ended`);
      },
    },
  );

  setHandler(
    stopFixerUpdate,
    async () => {
      const request: Pending<StopFixerResult> = { done: false };
      stops.push(request);
      pending.stopFixer = true;
      await condition(() => request.done);
      if (request.error) throw request.error;
      return request.result ?? { stopped: false, sessionId: null, view: view() };
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('stopFixer', args);
        if (ended()) throw failure(RatchetErrorType.ended, `the ratchet of ${state.workspaceId} has ended`);
      },
    },
  );

  setHandler(
    handOffUpdate,
    () => {
      // Ends here, synchronously: whatever the main loop is waiting for, it dispatches nothing after this.
      set(ratchetEnded(state, 'handed_off', workflowNow()));
      changedByHandler = true;
      return { memory: state.memory, view: view() };
    },
    {
      validator: (...args: unknown[]) => {
        refuseArguments('handOff', args);
        if (state.activeFixer !== null)
          throw failure(RatchetErrorType.fixerActive, 'Fixer session active — wait or stop it first');
      },
    },
  );

  setHandler(
    endRatchetUpdate,
    (args: unknown) => {
      const { reason } = parseOrFail(EndRatchetArgsSchema, args, 'end', RatchetErrorType.invalidInput);
      set(ratchetEnded(state, reason, workflowNow()));
      changedByHandler = true;
      return view();
    },
    {
      validator: (...args: unknown[]) => {
        parseOrFail(EndRatchetArgsSchema, oneArgument('end', args), 'end', RatchetErrorType.invalidInput);
      },
    },
  );

  // ---- steps of the main loop ----

  /**
   * Polls until one matters (the watch), or until a handler asks for something: then null, and the watch
   * is cancelled (a poll it makes meanwhile is never applied). Any failure is the caller's to read.
   */
  async function watchPolls(pollAsked: boolean): Promise<RatchetPollOutcome | null> {
    const scope = new CancellationScope();
    try {
      return await scope.run(() => {
        const watched = watcher
          .watchPullRequest({
            userId: state.userId,
            workspaceId: state.workspaceId,
            trust: settings.trust,
            // A poll someone asked for (a wake) is reported whatever it finds: they want it looked at now.
            baseline: pollAsked ? null : watchBaseline(state, settings),
            pollIntervalMs: settings.pollIntervalMs,
            maxWatchMs: settings.watchMaxMs,
          })
          .then(({ outcome }): RatchetPollOutcome => outcome);
        const interrupted = condition(wake).then(() => null);
        // The loser is cancelled below; its rejection is expected and nobody's to handle.
        watched.catch(() => undefined);
        interrupted.catch(() => undefined);
        return Promise.race([watched, interrupted]);
      });
    } finally {
      scope.cancel();
    }
  }

  /**
   * One poll (a watch where patched); a VM found asleep is resumed for it when it is due (never as user
   * activity). null: a handler interrupted the watch, nothing was polled that counts.
   */
  async function pollOnce(
    pollAsked: boolean,
  ): Promise<{ outcome: RatchetPollOutcome; wokeVm: boolean } | null> {
    const ask = async (watch: boolean): Promise<RatchetPollOutcome | null> => {
      try {
        if (watch) return await watchPolls(pollAsked);
        return await github.pollPullRequest({
          userId: state.userId,
          workspaceId: state.workspaceId,
          trust: settings.trust,
        });
      } catch (err) {
        if (failureTypeOf(err) === VM_TERMINATED) return { kind: 'vm_terminated' };
        return { kind: 'vm_unavailable', message: `the VM did not answer the poll: ${reasonOf(err)}` };
      }
    };
    const first = await ask(watchesPolls);
    if (first === null) return null;
    if (first.kind !== 'vm_suspended' || !wakesSuspendedVm(state, pollAsked) || ended())
      return { outcome: first, wokeVm: false };
    try {
      await vm.wakeVmForPoll({ userId: state.userId });
    } catch (err) {
      const type = failureTypeOf(err);
      if (type === VM_TERMINATED) return { outcome: { kind: 'vm_terminated' }, wokeVm: false };
      if (type === VM_QUOTA) return { outcome: { kind: 'quota', message: reasonOf(err) }, wokeVm: false };
      return {
        outcome: {
          kind: 'vm_unavailable',
          message: `the VM could not be resumed for a poll: ${reasonOf(err)}`,
        },
        wokeVm: false,
      };
    }
    if (ended()) return { outcome: first, wokeVm: true };
    // The VM is up only for this poll: one poll, reported whatever it says.
    const second = await ask(false);
    return second === null ? null : { outcome: second, wokeVm: true };
  }

  async function poll(): Promise<void> {
    const pollAsked = pending.wake;
    pending.wake = false;
    const polled = await pollOnce(pollAsked);
    // Handed off (or ended) while the poll was out: its answer is nobody's business any more. Interrupted:
    // the loop looks at what the handler asked for first.
    if (ended() || polled === null) return;
    const { outcome, wokeVm } = polled;
    const applied = applyPollOutcome(state, outcome, {
      nowMs: workflowNow(),
      settings,
      dispatchId: uuid4(),
      wokeVm,
    });
    set(applied.state);
    if (applied.next.kind === 'dispatch') {
      prompt = applied.next.prompt;
      log.info('ratchet actor: fixer dispatch recorded', {
        workspaceId: state.workspaceId,
        key: state.activeFixer?.key,
        dispatchId: state.activeFixer?.dispatchId,
      });
      // Recorded (and shown) before the VM is asked: a crash in between retries under the same id.
      await persist();
    }
  }

  async function dispatch(): Promise<void> {
    const active = state.activeFixer;
    if (!active) return;
    if (prompt === null) {
      // Cannot happen (a dispatch is taken within the run that recorded it); if it did, retrying is right.
      set(fixerSettled(state, 'DIED', workflowNow()));
      return;
    }
    pending.wake = false;
    try {
      const { sessionId } = await fixer.dispatchFixer({
        userId: state.userId,
        workspaceId: state.workspaceId,
        dispatchId: active.dispatchId,
        prompt,
      });
      set(fixerDispatched(state, sessionId, workflowNow()));
      prompt = null;
    } catch (err) {
      const type = failureTypeOf(err);
      if (type === DISPATCH_REFUSED) {
        log.warn('ratchet actor: the VM refused the dispatch', {
          workspaceId: state.workspaceId,
          error: reasonOf(err),
        });
        set(fixerSettled(state, 'DIED', workflowNow(), `the VM refused the dispatch: ${reasonOf(err)}`));
        prompt = null;
      } else if (type === VM_TERMINATED) {
        set(fixerSettled(state, 'DIED', workflowNow()));
        set(ratchetEnded(state, 'vm_terminated', workflowNow()));
      } else {
        set(fixerUnreachable(state, `the VM did not take the fixer: ${reasonOf(err)}`, workflowNow()));
      }
    }
  }

  async function checkFixer(): Promise<void> {
    const active = state.activeFixer;
    if (!active?.sessionId) return;
    pending.wake = false;
    try {
      const check = await fixer.checkFixer({
        userId: state.userId,
        workspaceId: state.workspaceId,
        sessionId: active.sessionId,
        dispatchId: active.dispatchId,
      });
      set(fixerChecked(state, check, workflowNow()));
    } catch (err) {
      if (failureTypeOf(err) === VM_TERMINATED) {
        set(fixerSettled(state, 'DIED', workflowNow()));
        set(ratchetEnded(state, 'vm_terminated', workflowNow()));
      } else
        set(
          fixerUnreachable(state, `the VM did not answer about the fixer: ${reasonOf(err)}`, workflowNow()),
        );
    }
  }

  /** Best effort: a VM that does not answer has no fixer running that could be stopped either. */
  async function stopQuietly(): Promise<{ stopped: boolean; sessionId: string | null }> {
    try {
      return await fixer.stopFixer({ userId: state.userId, workspaceId: state.workspaceId });
    } catch (err) {
      log.warn('ratchet actor: could not stop the fixer', {
        workspaceId: state.workspaceId,
        error: reasonOf(err),
      });
      return { stopped: false, sessionId: null };
    }
  }

  async function stopFixerForCaller(): Promise<void> {
    const requests = stops.splice(0);
    pending.stopFixer = false;
    const settle = (outcome: { result?: StopFixerResult; error?: ApplicationFailure }) => {
      for (const request of requests) Object.assign(request, outcome, { done: true });
    };
    try {
      const stopped = await fixer.stopFixer({ userId: state.userId, workspaceId: state.workspaceId });
      // Stopped by the user: its dispatch is done with (COMPLETED), never retried.
      if (state.activeFixer) set(fixerSettled(state, 'COMPLETED', workflowNow()));
      prompt = null;
      await persist();
      settle({ result: { ...stopped, view: view() } });
    } catch (err) {
      settle({
        error: failure(
          RatchetErrorType.unavailable,
          `the VM did not answer; the fixer was not stopped: ${reasonOf(err)}`,
        ),
      });
    }
  }

  async function finish(): Promise<RatchetHandOff> {
    if (state.activeFixer) {
      // Ended while a fixer worked (archived, deleted): it must not go on pushing for a workspace that is gone.
      if (state.endedReason !== 'vm_terminated') await stopQuietly();
      set(fixerSettled(state, 'COMPLETED', workflowNow()));
    }
    await persist();
    for (let attempt = 0; retryWriteAtMs !== null && attempt < MAX_FINAL_READ_MODEL_ATTEMPTS; attempt++) {
      await sleep(Math.max(1, retryWriteAtMs - workflowNow()));
      await persist();
    }
    await condition(allHandlersFinished);
    return { memory: state.memory, view: view() };
  }

  const wake = () => pending.wake || pending.stopFixer || ended() || changedByHandler;

  async function idle(stepUntilMs: number | null): Promise<void> {
    const untilMs =
      retryWriteAtMs === null ? stepUntilMs : Math.min(stepUntilMs ?? retryWriteAtMs, retryWriteAtMs);
    if (untilMs === null) {
      await condition(wake);
      return;
    }
    const waitMs = Math.max(1, Math.ceil(untilMs - workflowNow()));
    // Input is validated, so this cannot happen; if it did, a loop that never awaits would take the worker down.
    if (!Number.isFinite(waitMs))
      throw failure(RatchetErrorType.invalidInput, `ratchet actor computed a wait of ${waitMs} ms`);
    await condition(wake, waitMs);
  }

  // ---- main loop ----
  for (;;) {
    changedByHandler = false;
    const step = nextRatchetStep({
      state,
      pending,
      nowMs: workflowNow(),
      settings,
      historyIsLong:
        workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistoryEvents,
    });
    switch (step.kind) {
      case 'complete':
        return finish();
      case 'stop-fixer':
        await stopFixerForCaller();
        break;
      case 'dispatch':
        await dispatch();
        break;
      case 'check-fixer':
        await checkFixer();
        break;
      case 'fixer-timeout':
        await stopQuietly();
        log.warn('ratchet actor: the fixer ran out of time', { workspaceId: state.workspaceId });
        set(fixerSettled(state, 'DIED', workflowNow(), 'the fixer ran out of time and was stopped'));
        prompt = null;
        break;
      case 'continue-as-new':
        if (viewOwed()) await persist();
        await condition(allHandlersFinished);
        if (!pending.stopFixer && !pending.wake && !ended())
          await continueAsNew<typeof ratchetWorkflow>({ ...input, carried: { state } });
        break;
      case 'poll':
        await poll();
        break;
      case 'wait':
        await idle(step.untilMs);
        break;
    }
    const writeDue = retryWriteAtMs === null || workflowNow() >= retryWriteAtMs;
    if (!ended() && writeDue && viewOwed()) await persist();
  }
}
