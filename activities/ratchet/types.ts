/**
 * The contract between the ratchet:<workspaceId> workflow and its side effects: the PR snapshot and the
 * fixer session, both through the VM's agent (gh and claude run inside the VM, so credentials never leave
 * it), waking a suspended VM for a poll without counting as user activity, and the read model. Workflows
 * import these types only; activities/ratchet/*.ts implement them, all idempotent.
 */
import type { PullRequestSnapshot } from '@factory-factory/core/protocol';
import type { DecisionOutline, RatchetMemory, ReviewTrustPolicy } from '@factory-factory/core/ratchet';
import type { RatchetView } from '../../workflows/ratchet/messages.js';

export type PollPullRequestResult =
  /** null: the workspace has no PR (yet). */
  | { kind: 'snapshot'; snapshot: PullRequestSnapshot | null }
  /** The VM sleeps; it was not woken (a poll is not user activity). */
  | { kind: 'vm_suspended' }
  /** The user's VM is gone (terminated, or never made): the loop ends. */
  | { kind: 'vm_terminated' }
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** GitHub did not answer gh in the VM (network, auth); the message says which. */
  | { kind: 'unavailable'; message: string };

/**
 * What a watch compares each poll with: the memory and the last decision the workflow holds. A poll that
 * would decide the same and leave the memory as it is (core's isQuietPoll) is not reported.
 */
export type WatchBaseline = {
  memory: RatchetMemory;
  decision: DecisionOutline;
  maxDispatchesPerDay: number;
};

export type WatchPullRequestInput = {
  userId: string;
  workspaceId: string;
  trust: ReviewTrustPolicy;
  /** null: report the first poll, whatever it says. */
  baseline: WatchBaseline | null;
  /** Between polls while they are quiet. */
  pollIntervalMs: number;
  /** Report the latest poll after this long even if every one was quiet (0: poll once). */
  maxWatchMs: number;
};

/** The first poll that is not quiet (or the last one when the watch ran its time), and how many were made. */
export type WatchPullRequestResult = { outcome: PollPullRequestResult; polls: number };

export type FixerCheckResult = { outcome: 'RUNNING' | 'COMPLETED' | 'DIED'; detail: string | null };

/** What the read model answered. */
export type RecordedRatchetViewResult =
  | { written: true; version: number }
  | { written: false; reason: 'stale' | 'notOwner' };

/** ApplicationFailure types the activities raise. */
export const RatchetActivityFailure = {
  /** The VM's agent could not be reached or did not answer; retrying later may work. */
  vmUnavailable: 'RatchetVmUnavailable',
  /** The agent refused the dispatch (another ratchet dispatch is working, bad prompt): not retried. */
  dispatchRefused: 'RatchetDispatchRefused',
  /** The VM is held stopped: the period's compute minutes are spent (the VM actor's VmQuotaExhausted). */
  quota: 'RatchetVmQuota',
  /** The user's VM is gone: the loop ends. */
  vmTerminated: 'RatchetVmTerminated',
} as const;

export interface RatchetActivities {
  /** The workspace's PR as gh in the VM sees it, judged by `trust`. Never wakes the VM, never touches it. */
  pollPullRequest(input: {
    userId: string;
    workspaceId: string;
    trust: ReviewTrustPolicy;
  }): Promise<PollPullRequestResult>;
  /**
   * Polls like pollPullRequest every `pollIntervalMs` and answers with the first poll that is not quiet
   * against `baseline`, or with the last one after `maxWatchMs`. Heartbeats every poll; cancellable. Polls
   * that change nothing never reach the workflow, which is what lets one worker carry many ratchets.
   */
  watchPullRequest(input: WatchPullRequestInput): Promise<WatchPullRequestResult>;
  /**
   * Resumes a suspended VM for one poll through its actor (ensureReadyForBackground): not user activity,
   * so the VM suspends again soon after. Fails with quota or vmTerminated.
   */
  wakeVmForPoll(input: { userId: string }): Promise<void>;
  /** Starts (or finds, on a retry) the fixer session in the VM for this dispatch id. */
  dispatchFixer(input: {
    userId: string;
    workspaceId: string;
    dispatchId: string;
    prompt: string;
  }): Promise<{ sessionId: string }>;
  /** How the dispatch's turn stands. While it runs, the VM is kept awake (the fixer is the user's work). */
  checkFixer(input: {
    userId: string;
    workspaceId: string;
    sessionId: string;
    dispatchId: string;
  }): Promise<FixerCheckResult>;
  /** Stops the workspace's ratchet fixer session, if one works. */
  stopFixer(input: {
    userId: string;
    workspaceId: string;
  }): Promise<{ stopped: boolean; sessionId: string | null }>;
  /** Upserts the view into workspace_ratchets, never over a newer write or another user's row. */
  recordRatchetView(view: RatchetView): Promise<RecordedRatchetViewResult>;
}
