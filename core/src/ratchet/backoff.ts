// Polling slows down when GitHub rate-limits us and recovers after one clean cycle.

export const MAX_BACKOFF_MULTIPLIER = 4;

/** How a poll cycle went, as far as backoff cares. */
export type PollCycleOutcome = 'clean' | 'rate_limited' | 'other_error';

/** Doubles on a rate-limited cycle (at most ×4), resets on a clean one, holds on other errors. */
export function nextBackoffMultiplier(current: number, outcome: PollCycleOutcome): number {
  if (outcome === 'clean') return 1;
  const sane = Number.isFinite(current) && current >= 1 ? current : 1;
  if (outcome === 'rate_limited') return Math.min(sane * 2, MAX_BACKOFF_MULTIPLIER);
  return sane;
}

/** Delay before the next poll; a server-given retry-after wins when it is longer. */
export function pollDelayMs(baseMs: number, multiplier: number, retryAfterMs: number | null = null): number {
  const scaled = baseMs * multiplier;
  return retryAfterMs !== null && retryAfterMs > scaled ? retryAfterMs : scaled;
}
