/**
 * The ratchet's watch: polls the PR again and again inside one activity and answers the workflow only with
 * a poll that matters (core's isQuietPoll says which do not). A ratchet polling every 30 s costs its
 * workflow one activity per change (or per `maxWatchMs`), not one per poll; that is what lets a worker
 * carry many ratchets. The workflow re-decides every reported poll itself, so the watch only ever delays a
 * quiet poll, never a decision: it cannot dispatch, and a wrong "quiet" is bounded by maxWatchMs.
 *
 * Read-only and so idempotent: a retry after a dead worker simply watches again from its first poll.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isQuietPoll } from '@factory-factory/core/ratchet';
import { Context } from '@temporalio/activity';
import type {
  PollPullRequestResult,
  RatchetActivities,
  WatchPullRequestInput,
  WatchPullRequestResult,
} from './types.js';

type Poll = RatchetActivities['pollPullRequest'];

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

function quiet(input: WatchPullRequestInput, outcome: PollPullRequestResult, nowMs: number): boolean {
  if (outcome.kind !== 'snapshot' || input.baseline === null) return false;
  const { memory, decision, maxDispatchesPerDay } = input.baseline;
  return isQuietPoll(memory, decision, outcome.snapshot, { nowMs, maxDispatchesPerDay });
}

/** watchPullRequest over any single poll (the VM agent's in production). */
export function watchPullRequestWith(poll: Poll, clock: () => number = Date.now) {
  return async function watchPullRequest(input: WatchPullRequestInput): Promise<WatchPullRequestResult> {
    const context = activityContext();
    const startedMs = clock();
    let polls = 0;
    for (;;) {
      const outcome = await poll({
        userId: input.userId,
        workspaceId: input.workspaceId,
        trust: input.trust,
      });
      polls++;
      // Heartbeats are throttled by the SDK; a cancelled watch learns it on one of them.
      context?.heartbeat({ polls });
      const nowMs = clock();
      if (!quiet(input, outcome, nowMs)) return { outcome, polls };
      if (nowMs + input.pollIntervalMs - startedMs > input.maxWatchMs) return { outcome, polls };
      // Cancellation-aware: a cancelled watch (the workflow woke, or was handed off) stops between polls.
      if (context) await context.sleep(input.pollIntervalMs);
      else await sleep(input.pollIntervalMs);
    }
  };
}
