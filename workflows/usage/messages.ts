/**
 * Messages of the usage:<userId> actor: turns the VM's running time into compute minutes, reports them to
 * Stripe's meter, and tells vm:<userId> when the period's minutes are spent. Started with signal-with-start
 * by whoever has news for it (the VM actor, billing).
 *
 * (Contract first: the actor itself is built in workflows/usage/workflow.ts against these definitions.)
 */
import { defineSignal } from '@temporalio/workflow';
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
