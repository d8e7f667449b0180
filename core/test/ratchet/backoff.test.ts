import assert from 'node:assert/strict';
import { MAX_BACKOFF_MULTIPLIER, nextBackoffMultiplier, pollDelayMs } from '../../src/ratchet/index.js';

describe('ratchet / rate-limit backoff', () => {
  it('doubles on each rate-limited cycle up to ×4 and resets on a clean one', () => {
    const seen: number[] = [];
    let m = 1;
    for (const outcome of ['rate_limited', 'rate_limited', 'rate_limited', 'other_error', 'clean'] as const) {
      m = nextBackoffMultiplier(m, outcome);
      seen.push(m);
    }
    assert.deepEqual(seen, [2, 4, MAX_BACKOFF_MULTIPLIER, 4, 1]);
  });

  it('repairs a nonsense multiplier', () => {
    assert.equal(nextBackoffMultiplier(Number.NaN, 'rate_limited'), 2);
    assert.equal(nextBackoffMultiplier(0, 'other_error'), 1);
  });

  it('lets a longer server retry-after win', () => {
    assert.equal(pollDelayMs(30_000, 2), 60_000);
    assert.equal(pollDelayMs(30_000, 2, 90_000), 90_000);
    assert.equal(pollDelayMs(30_000, 4, 90_000), 120_000);
  });
});
