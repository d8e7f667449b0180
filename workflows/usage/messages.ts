/**
 * Messages of the usage:<userId> actor: turns the VM's running time into compute minutes, reports them to
 * Stripe's meter, and tells vm:<userId> when the period's minutes are spent. Started with signal-with-start
 * by whoever has news for it (the VM actor, billing).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import { PlanNameSchema } from './plans.js';

const finiteMs = z.number().finite().nonnegative();

/** The account's plan changed (a Stripe webhook), or a payment failed or succeeded. */
export const PlanChangedSchema = z.object({
  plan: PlanNameSchema,
  /** When the latest payment failed; null once one succeeds. Limits fall to Free after the grace period. */
  paymentFailedAtMs: finiteMs.nullable(),
  /** The Stripe object's own timestamp: an older change arriving late is ignored. */
  changedAtMs: finiteMs,
});
export type PlanChanged = z.output<typeof PlanChangedSchema>;
export const planChangedSignal = defineSignal<[PlanChanged]>('planChanged');

/**
 * The user's VM started running (its agent answered after a provision, resume or restart) or stopped
 * (suspended, terminated, failed), at the VM actor's own transition time. Sent by vm:<userId> through an
 * activity (signal-with-start), possibly twice for one transition when that activity is retried.
 */
export const VmTransitionSchema = z.object({
  vmId: z.string().min(1).max(100),
  running: z.boolean(),
  atMs: finiteMs,
});
export type VmTransition = z.output<typeof VmTransitionSchema>;
export const vmTransitionSignal = defineSignal<[VmTransition]>('vmTransition');

/** A message as the actor keeps it until it is applied (and carries it across continue-as-new). */
export const UsageInboxMessageSchema = z.discriminatedUnion('kind', [
  VmTransitionSchema.extend({ kind: z.literal('vmTransition') }),
  PlanChangedSchema.extend({ kind: z.literal('planChanged') }),
]);
export type UsageInboxMessage = z.output<typeof UsageInboxMessageSchema>;

export type UsageSettings = {
  /** How long a failed payment keeps the paid plan's limits (config.billing.gracePeriodMs). */
  gracePeriodMs: number;
  /** How long an actor with nothing to meter, report or hold stays before it ends (the next news restarts it). */
  lingerMs: number;
  /** Continue-as-new once history has this many events. */
  maxHistoryEvents: number;
};

export const defaultUsageSettings: UsageSettings = {
  gracePeriodMs: 3 * 24 * 3600 * 1000,
  lingerMs: 15 * 60 * 1000,
  maxHistoryEvents: 2000,
};

const duration = z
  .number()
  .int()
  .positive()
  .max(365 * 24 * 3600 * 1000);

export const UsageSettingsSchema = z.object({
  gracePeriodMs: duration,
  lingerMs: duration,
  maxHistoryEvents: z.number().int().min(10).max(50_000),
}) satisfies z.ZodType<UsageSettings>;

const SliceSchema = z.object({
  key: z.string().min(1).max(300),
  vmId: z.string().min(1).max(100),
  startMs: finiteMs,
  endMs: finiteMs,
  seconds: z.number().int().min(0).max(3600),
  minutes: z.number().int().min(0).max(60),
  recorded: z.boolean(),
  attempts: z.number().int().min(0),
  retryAtMs: finiteMs,
});

/** Carried state is our own output, but a continue-as-new can also be forged from a raw client. */
const CarriedUsageStateSchema = z
  .object({
    userId: z.string(),
    loaded: z.boolean(),
    account: z
      .object({ plan: PlanNameSchema, paymentFailedAtMs: finiteMs.nullable(), changedAtMs: finiteMs })
      .nullable(),
    period: z.object({ startMs: finiteMs, endMs: finiteMs }),
    usedMinutes: z.number().int().min(0),
    moreUnreported: z.boolean().optional(),
    running: z
      .object({
        vmId: z.string().min(1).max(100),
        sliceStartMs: finiteMs,
        stopAtMs: finiteMs.nullable(),
        next: z
          .object({ vmId: z.string().min(1).max(100), atMs: finiteMs })
          .nullable()
          .optional(),
      })
      .nullable(),
    lastTransitionAtMs: finiteMs.nullable(),
    slices: z.array(SliceSchema).max(1000),
    hold: z
      .object({ sinceMs: finiteMs, usedMinutes: z.number().int().min(0), limitMinutes: z.number().int() })
      .nullable(),
    lastChangeAtMs: finiteMs,
  })
  .strip();

const userIdSchema = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a user id is 1-128 of [A-Za-z0-9_.@-]');

export const UsageWorkflowInputSchema = z.object({
  userId: userIdSchema,
  settings: UsageSettingsSchema,
  carried: z
    .object({
      state: CarriedUsageStateSchema,
      /** Messages received but not yet applied when the previous run continued as new. */
      inbox: z.array(UsageInboxMessageSchema).max(1000),
    })
    .optional(),
});
export type UsageWorkflowInput = z.output<typeof UsageWorkflowInputSchema>;

/** What the usage actor tells its callers and tests. */
export type UsageView = {
  userId: string;
  plan: z.output<typeof PlanNameSchema> | null;
  effectivePlan: z.output<typeof PlanNameSchema> | null;
  period: { start: string; end: string };
  minutes: { used: number; limit: number | null };
  running: { vmId: string; sliceStart: string } | null;
  /** Slices not yet written to usage_records or not yet reported to the meter. */
  unreportedSlices: number;
  /** The VM was told to stop because the period's minutes are spent. */
  holding: boolean;
};
export const usageStateQuery = defineQuery<UsageView>('usageState');

/** The failure type of a malformed start or continue-as-new input. */
export const USAGE_INVALID_INPUT = 'UsageInvalidInput';
