// The ratchet's own vocabulary. It deliberately does not import the github domain: a PR snapshot from any
// source (gh in the VM, the desktop app, a test table) can drive it as long as it has this shape.
// core/protocol/github.ts's PullRequestSnapshot is structurally assignable to RatchetSnapshot.
import type { ReviewTriggerMode, ReviewTrustPolicy } from '../protocol/github.js';
import { type RatchetStateName, RatchetStateSchema } from '../protocol/workspace.js';

/**
 * Who may start a fixer and whose words reach its prompt. The snapshot source (core/github) applies it
 * while collecting review activity, so untrusted text never enters a snapshot at all.
 */
export type { ReviewTriggerMode, ReviewTrustPolicy };

/** Where a workspace's PR stands, from the ratchet's point of view; the names are the wire's (protocol). */
export type RatchetState = RatchetStateName;

export const RATCHET_STATES: readonly RatchetState[] = RatchetStateSchema.options;

export type RatchetCiStatus = 'PENDING' | 'SUCCESS' | 'FAILURE' | 'UNKNOWN';

export interface RatchetCheck {
  readonly name: string;
  /** Effective result (conclusion once completed, else state/status). */
  readonly result: string;
  readonly detailsUrl: string | null;
  /** GitHub Actions run id, so a re-run with a new id counts as a new failure. */
  readonly runId: string | null;
  readonly failed: boolean;
}

export interface RatchetFeedback {
  readonly kind: 'review' | 'line_comment' | 'conversation';
  readonly author: string;
  /** GitHub's author association (OWNER, MEMBER, COLLABORATOR, …); null when GitHub did not say. */
  readonly authorAssociation: string | null;
  readonly body: string;
  readonly reviewState: string | null;
  readonly path: string | null;
  readonly line: number | null;
  readonly url: string | null;
  readonly at: string | null;
}

/** One observation of a PR. */
export interface RatchetSnapshot {
  readonly number: number;
  readonly url: string;
  readonly state: 'OPEN' | 'CLOSED' | 'MERGED';
  readonly baseRefName: string | null;
  /** The head commit the snapshot saw; the dedup key is on it, so a new push is a new situation. */
  readonly headSha: string | null;
  /** The PR's branch, for the fixer's push instructions (optional: not every source knows it). */
  readonly headRefName?: string | null;
  readonly ciStatus: RatchetCiStatus;
  readonly checks: readonly RatchetCheck[];
  readonly hasChangesRequested: boolean;
  readonly hasMergeConflict: boolean;
  /**
   * ISO time of the newest *triggering* review activity by a trusted author (see ReviewTrustPolicy):
   * untrusted activity never moves it.
   */
  readonly latestReviewActivityAt: string | null;
  readonly reviewFeedback: readonly RatchetFeedback[];
}

export type FixerOutcome = 'RUNNING' | 'COMPLETED' | 'DIED';

/**
 * What the ratchet remembers between polls for one workspace. The owner (a Temporal workflow, or the
 * desktop's database) persists it and passes it back in; the ratchet never stores anything itself.
 */
export interface RatchetMemory {
  readonly enabled: boolean;
  /** Snapshot key of the last dispatch: the dedup key (the desktop's `ratchetLastCiRunId`). */
  readonly lastDispatchKey: string | null;
  /** Recent dispatch keys, newest last, at most MAX_REMEMBERED_DISPATCH_KEYS. */
  readonly dispatchKeys: readonly string[];
  /** Newest review activity already handed to a fixer (the desktop's `prReviewLastCheckedAt`). */
  readonly reviewLastCheckedAt: string | null;
  readonly dispatchOutcome: FixerOutcome | null;
  /** Retries of lastDispatchKey after its fixer died. */
  readonly dispatchRetryCount: number;
  /** The last dispatch did not move the PR (or kept dying); a human should look. */
  readonly dispatchStalled: boolean;
  /**
   * Epoch milliseconds of the dispatches (retries included) of the last 24 h, oldest first: the daily
   * cap counts them. Times enter only through applyDecision's `nowMs`, so decide stays clock-free.
   */
  readonly dispatchTimesMs: readonly number[];
}

/** The daily cap on fixer runs, with the caller's clock (decide reads no clock itself). */
export interface RatchetLimits {
  readonly nowMs: number;
  readonly maxDispatchesPerDay: number;
}

/** What the caller knows about sessions right now. */
export interface FixerStatus {
  /** A ratchet fixer session for this workspace is alive and working. */
  readonly active: boolean;
  /** Another session of the workspace is mid-turn; a fixer would step on the user's work. */
  readonly otherSessionWorking?: boolean;
}

export type RatchetAction = 'WAITING' | 'TRIGGER_FIXER' | 'FIXER_ACTIVE' | 'COMPLETED' | 'DISABLED';

export type RatchetReason =
  | 'disabled'
  | 'no_pr'
  | 'merged'
  | 'pr_closed'
  | 'fixer_active'
  | 'ci_running'
  | 'clean'
  | 'stalled'
  | 'retries_exhausted'
  | 'already_dispatched'
  | 'session_busy'
  | 'daily_cap'
  | 'retry_after_fixer_died'
  | 'ci_failed'
  | 'merge_conflict'
  | 'review_feedback';

export interface RatchetDecision {
  readonly action: RatchetAction;
  readonly reason: RatchetReason;
  /** The state derived from the snapshot, for display and persistence. */
  readonly state: RatchetState;
  /** snapshotKey(snapshot), or null without a PR. */
  readonly key: string | null;
}
