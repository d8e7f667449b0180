// core/ratchet: the pure decision logic of the ratchet, which watches a workspace's pull request and
// dispatches a fixer session when CI fails, the branch conflicts, or reviewers ask for changes.
//
// Deterministic by construction so it can run inside Temporal workflows: no I/O, no clock, no randomness,
// no node: imports, no other domain. Time only enters through the snapshot's own timestamps.
//
// A poll cycle, as the caller (workflow or desktop loop) drives it:
//   const decision = decide(memory, snapshot, { active: fixerAlive, otherSessionWorking },
//                           { nowMs, maxDispatchesPerDay: DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY });
//   memory = applyDecision(memory, decision, snapshot, nowMs);    // persist memory (lastDispatchKey = dedup key)
//   if (decision.action === 'TRIGGER_FIXER') dispatch(buildFixerPrompt(snapshot));
// The snapshot source applies a ReviewTrustPolicy (core/github's getPullRequestSnapshot(url, {trust})):
// only trusted authors' activity is in a snapshot, so only they can trigger and reach a prompt.
//   ... when the fixer ends: memory = settleFixer(memory, exitedCleanly ? 'COMPLETED' : 'DIED');
//   multiplier = nextBackoffMultiplier(multiplier, cycleOutcome); sleep(pollDelayMs(base, multiplier));

export { DEFAULT_REVIEW_TRUST_POLICY } from '../protocol/github.js';
export {
  MAX_BACKOFF_MULTIPLIER,
  nextBackoffMultiplier,
  type PollCycleOutcome,
  pollDelayMs,
} from './backoff.js';
export {
  applyDecision,
  DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY,
  type DecisionOutline,
  decide,
  dispatchesInLastDay,
  initialRatchetMemory,
  isQuietPoll,
  MAX_FIXER_RETRIES,
  MAX_REMEMBERED_DISPATCH_KEYS,
  MAX_REMEMBERED_DISPATCH_TIMES,
  RATCHET_DISPATCH_WINDOW_MS,
  settleFixer,
} from './decide.js';
export {
  buildFixerPrompt,
  type FixerPromptOptions,
  MAX_PROMPT_FEEDBACK_BODY,
  MAX_PROMPT_FEEDBACK_ITEMS,
} from './fixer-prompt.js';
export { snapshotKey } from './snapshot-key.js';
export { deriveRatchetState } from './state.js';
export {
  type FixerOutcome,
  type FixerStatus,
  RATCHET_STATES,
  type RatchetAction,
  type RatchetCheck,
  type RatchetCiStatus,
  type RatchetDecision,
  type RatchetFeedback,
  type RatchetLimits,
  type RatchetMemory,
  type RatchetReason,
  type RatchetSnapshot,
  type RatchetState,
  type ReviewTriggerMode,
  type ReviewTrustPolicy,
} from './types.js';
