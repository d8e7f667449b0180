/**
 * usage:<userId> — compute minutes of one user's VM. One id per user makes this the only actor that meters
 * that user's running time, so a slice is made once however often a transition is told.
 *
 * vm:<userId> tells it (vmTransition, through signal-with-start) when the VM starts and stops running;
 * billing tells it when the plan changes (planChanged). It never polls the VM. Running time becomes
 * slices (state.ts): each is written to usage_records, then reported to Stripe's meter under the same key
 * (reportComputeMinutes of activities/billing/meter-events.ts, idempotent on that key), then marked reported. When the period's
 * minutes are spent it holds the VM (suspendForQuota) until an upgrade or the next period lifts the hold
 * (quotaRestored).
 *
 * Messages are queued and applied by the main loop, after the account and this period's recorded minutes
 * are read; *what* to do next is `nextUsageStep`, *what* an outcome does is `applyUsageEvent` (both pure).
 * Every wait has a deadline (the next slice, the period's end, a retry, the linger); with nothing to
 * meter, report or hold the actor ends, and the next news starts it again. History stays bounded through
 * continue-as-new, carrying the queue.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { MeterEventActivities, UsageRecordActivities } from '../../activities/usage/types.js';
import { workflowNow } from '../clock.js';
import { workflowIds } from '../ids.js';
import { parseOrFail } from '../validation.js';
import { quotaRestoredSignal, suspendForQuotaSignal } from '../vm/messages.js';
import {
  PlanChangedSchema,
  planChangedSignal,
  USAGE_INVALID_INPUT,
  type UsageInboxMessage,
  type UsageView,
  type UsageWorkflowInput,
  UsageWorkflowInputSchema,
  usageStateQuery,
  VmTransitionSchema,
  vmTransitionSignal,
} from './messages.js';
import {
  acceptsNow,
  applyUsageEvent,
  holdMessage,
  meterIdentifierOf,
  minuteLimitOf,
  newUsageState,
  nextUsageStep,
  toUsageView,
  type UsageEvent,
  type UsageSlice,
  type UsageState,
} from './state.js';

/** Slices of unreported usage read back per load. */
const LOAD_LIMIT = 100;
/** Messages kept unapplied at most; a flood beyond it is dropped (and logged), never a growing history. */
const MAX_INBOX = 1000;
/** activities/usage/records.ts: the account's row is gone. */
const UNKNOWN_USER = 'UsageUnknownUser';

/** Bounded: a database that does not answer is retried by the loop with the slice's back-off. */
const records = proxyActivities<UsageRecordActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [UNKNOWN_USER],
  },
});
/** A short timeout: a worker that died mid-report is noticed soon and the (idempotent) report sent again. */
const meter = proxyActivities<MeterEventActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 5 },
});

function reasonOf(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

const isUnknownUser = (err: unknown): boolean =>
  err instanceof ActivityFailure &&
  err.cause instanceof ApplicationFailure &&
  err.cause.type === UNKNOWN_USER;

function eventOf(message: UsageInboxMessage): UsageEvent {
  if (message.kind === 'vmTransition')
    return { type: 'VM_TRANSITION', vmId: message.vmId, running: message.running, atMs: message.atMs };
  return {
    type: 'PLAN_CHANGED',
    plan: message.plan,
    paymentFailedAtMs: message.paymentFailedAtMs,
    changedAtMs: message.changedAtMs,
  };
}

export async function usageWorkflow(rawInput: unknown): Promise<UsageView> {
  // Validated before anything else: a malformed start fails this run, and no bad value reaches a timer.
  const input: UsageWorkflowInput = parseOrFail(
    UsageWorkflowInputSchema,
    rawInput,
    'input of usage workflow',
    USAGE_INVALID_INPUT,
  );
  if (input.carried && input.carried.state.userId !== input.userId) {
    throw ApplicationFailure.nonRetryable(
      'invalid input of usage workflow: carried.state.userId: not the userId of this actor',
      USAGE_INVALID_INPUT,
    );
  }
  const { userId, settings } = input;
  let state: UsageState = input.carried?.state ?? newUsageState(userId, workflowNow());
  const inbox: UsageInboxMessage[] = [...(input.carried?.inbox ?? [])];
  let loadFailures = 0;

  const apply = (event: UsageEvent): void => {
    state = applyUsageEvent(state, event, workflowNow());
  };
  function enqueue(message: UsageInboxMessage): void {
    if (inbox.length >= MAX_INBOX) {
      log.warn('usage actor: inbox full, message dropped', { userId, kind: message.kind });
      return;
    }
    inbox.push(message);
  }

  // ---- messages: checked, queued, applied by the loop ----
  setHandler(usageStateQuery, () => toUsageView(state, settings.gracePeriodMs, workflowNow()));
  setHandler(vmTransitionSignal, (...args: unknown[]) => {
    // A signal cannot be refused: one that is not ours is ignored.
    const parsed = VmTransitionSchema.safeParse(args[0]);
    if (parsed.success && args.length === 1) enqueue({ kind: 'vmTransition', ...parsed.data });
  });
  setHandler(planChangedSignal, (...args: unknown[]) => {
    const parsed = PlanChangedSchema.safeParse(args[0]);
    if (parsed.success && args.length === 1) enqueue({ kind: 'planChanged', ...parsed.data });
  });

  function drainInbox(): void {
    while (state.loaded && inbox.length > 0) {
      const first = inbox[0];
      if (!first) break;
      const event = eventOf(first);
      // A new transition waits until the previous stop has been turned into slices.
      if (!acceptsNow(state, event)) break;
      inbox.shift();
      apply(event);
    }
  }

  // ---- steps ----
  async function load(): Promise<void> {
    try {
      const loaded = await records.loadUsage({
        userId,
        periodStartMs: state.period.startMs,
        periodEndMs: state.period.endMs,
        limit: LOAD_LIMIT,
      });
      apply({ type: 'LOADED', period: state.period, ...loaded });
      loadFailures = 0;
    } catch (err) {
      loadFailures++;
      log.warn('usage actor: could not read usage', { userId, error: reasonOf(err) });
      await sleep(Math.min(60_000, 1_000 * 2 ** Math.min(6, loadFailures)));
    }
  }

  async function record(slices: UsageSlice[]): Promise<void> {
    const keys = slices.map((x) => x.key);
    try {
      const { recordedKeys } = await records.recordUsageSlices({
        userId,
        slices: slices.map(({ key, vmId, startMs, endMs, seconds, minutes }) => ({
          key,
          vmId,
          startMs,
          endMs,
          seconds,
          minutes,
        })),
      });
      const recorded = new Set(recordedKeys);
      apply({ type: 'SLICES_RECORDED', keys: keys.filter((k) => recorded.has(k)) });
      const missing = keys.filter((k) => !recorded.has(k));
      if (missing.length > 0) apply({ type: 'SLICES_RECORD_FAILED', keys: missing });
    } catch (err) {
      if (isUnknownUser(err)) {
        log.warn('usage actor: the account is gone; its usage is not recorded', { userId });
        apply({ type: 'SLICES_DROPPED', keys });
        return;
      }
      log.warn('usage actor: could not record usage', { userId, error: reasonOf(err) });
      apply({ type: 'SLICES_RECORD_FAILED', keys });
    }
  }

  async function report(slice: UsageSlice): Promise<void> {
    try {
      await meter.reportComputeMinutes({
        userId,
        identifier: meterIdentifierOf(slice),
        minutes: slice.minutes,
        timestampSec: Math.floor(slice.endMs / 1000),
      });
      // A crash here (reported, not marked) reports it again after the restart: the meter answers that
      // identifier as a duplicate, which counts as delivered, and nothing is billed twice.
      await records.markUsageReported({ key: slice.key });
      apply({ type: 'SLICE_REPORTED', key: slice.key });
    } catch (err) {
      log.warn('usage actor: could not report usage', { userId, key: slice.key, error: reasonOf(err) });
      apply({ type: 'SLICE_REPORT_FAILED', key: slice.key });
    }
  }

  const vm = () => getExternalWorkflowHandle(workflowIds.vm(userId));

  async function hold(usedMinutes: number, limitMinutes: number): Promise<void> {
    const now = workflowNow();
    try {
      await vm().signal(suspendForQuotaSignal, {
        usedMinutes,
        limitMinutes,
        periodEndMs: state.period.endMs,
        message: holdMessage(state, settings.gracePeriodMs, now),
      });
    } catch (err) {
      // No VM actor (never made, or terminated): nothing runs, and the api refuses to start one.
      log.info('usage actor: no VM to hold', { userId, error: reasonOf(err) });
      if (state.running)
        apply({ type: 'VM_TRANSITION', vmId: state.running.vmId, running: false, atMs: now });
    }
    apply({ type: 'HOLD_SENT', usedMinutes, limitMinutes });
  }

  async function lift(resume: boolean): Promise<void> {
    try {
      await vm().signal(quotaRestoredSignal, {
        usedMinutes: state.usedMinutes,
        limitMinutes: minuteLimitOf(state, settings.gracePeriodMs, workflowNow()) ?? 0,
        resume,
      });
    } catch (err) {
      log.info('usage actor: no VM to release', { userId, error: reasonOf(err) });
    }
    apply({ type: 'HOLD_LIFTED' });
  }

  // ---- main loop ----
  for (;;) {
    drainInbox();
    const step = nextUsageStep({
      state,
      nowMs: workflowNow(),
      gracePeriodMs: settings.gracePeriodMs,
      lingerMs: settings.lingerMs,
      historyIsLong:
        workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= settings.maxHistoryEvents,
      inboxEmpty: inbox.length === 0,
    });
    switch (step.kind) {
      case 'load':
        await load();
        break;
      case 'continue-as-new':
        await condition(allHandlersFinished);
        apply({ type: 'CARRY_OVER' });
        await continueAsNew<typeof usageWorkflow>({ userId, settings, carried: { state, inbox } });
        break;
      case 'record':
        await record(step.slices);
        break;
      case 'hold':
        await hold(step.usedMinutes, step.limitMinutes);
        break;
      case 'lift':
        await lift(step.resume);
        break;
      case 'tick':
        apply({ type: 'TICK' });
        break;
      case 'report':
        await report(step.slice);
        break;
      case 'end':
        await condition(allHandlersFinished);
        if (inbox.length === 0) return toUsageView(state, settings.gracePeriodMs, workflowNow());
        break;
      case 'wait': {
        const waitMs = Math.max(1, Math.ceil(step.untilMs - workflowNow()));
        // Input is validated, so this cannot happen; a loop that never awaits would take the worker down.
        if (!Number.isFinite(waitMs))
          throw ApplicationFailure.nonRetryable(
            `usage actor computed a wait of ${waitMs} ms`,
            USAGE_INVALID_INPUT,
          );
        await condition(() => inbox.length > 0, waitMs);
        break;
      }
    }
  }
}
