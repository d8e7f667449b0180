/**
 * The contract between the usage:<userId> workflow (and vm:<userId>, which tells it of transitions) and
 * their side effects. Workflows import these types only; activities/usage/ implements them.
 */
import type { PlanName } from '../../workflows/usage/plans.js';

/** A VM transition as vm:<userId> reports it: its VM started (true) or stopped (false) running at atMs. */
export type VmTransitionReport = { userId: string; vmId: string; running: boolean; atMs: number };

export type UsageNotifyActivities = {
  /** Signal-with-start of usage:<userId>, so a usage actor that ended is started again by the news. */
  notifyUsageOfVm(report: VmTransitionReport): Promise<void>;
};

export type RecordedSlice = {
  key: string;
  vmId: string;
  startMs: number;
  endMs: number;
  seconds: number;
  minutes: number;
};

export type LoadedUsage = {
  account: { plan: PlanName; paymentFailedAtMs: number | null };
  /** Recorded minutes of the period asked for. */
  usedMinutes: number;
  /** Recorded slices not yet reported to the meter, oldest first, at most `limit`. */
  unreported: RecordedSlice[];
  moreUnreported: boolean;
};

export type UsageRecordActivities = {
  loadUsage(input: {
    userId: string;
    periodStartMs: number;
    periodEndMs: number;
    limit: number;
  }): Promise<LoadedUsage>;
  /**
   * INSERT … ON CONFLICT (idempotency_key) DO NOTHING: a retry after a crash records nothing twice.
   * Answers the keys that are in usage_records now (inserted by this call or an earlier attempt).
   */
  recordUsageSlices(input: { userId: string; slices: RecordedSlice[] }): Promise<{ recordedKeys: string[] }>;
  /** Sets reported_at once; a repeat leaves the first time. */
  markUsageReported(input: { key: string }): Promise<void>;
};

/** BILLING's meter report (activities/billing/meter-events.ts), which the usage workflow proxies. */
export type {
  MeterEventActivities,
  ReportComputeMinutesInput,
} from '../billing/meter-events.js';
