// Builders for ratchet snapshots used by the ratchet tables and the property test.
import type { RatchetCheck, RatchetSnapshot } from '../../src/ratchet/index.js';

export function failingCheck(name: string, runId: string, result = 'FAILURE'): RatchetCheck {
  return {
    name,
    result,
    detailsUrl: `https://github.com/o/r/actions/runs/${runId}/job/1`,
    runId,
    failed: true,
  };
}

export function passingCheck(name: string, runId = '1'): RatchetCheck {
  return {
    name,
    result: 'SUCCESS',
    detailsUrl: `https://github.com/o/r/actions/runs/${runId}/job/2`,
    runId,
    failed: false,
  };
}

export function snapshot(overrides: Partial<RatchetSnapshot> = {}): RatchetSnapshot {
  return {
    number: 7,
    url: 'https://github.com/o/r/pull/7',
    state: 'OPEN',
    baseRefName: 'main',
    headSha: 'a'.repeat(40),
    ciStatus: 'SUCCESS',
    checks: [passingCheck('build')],
    hasChangesRequested: false,
    hasMergeConflict: false,
    latestReviewActivityAt: null,
    reviewFeedback: [],
    ...overrides,
  };
}

export function failingSnapshot(runId: string, overrides: Partial<RatchetSnapshot> = {}): RatchetSnapshot {
  return snapshot({
    ciStatus: 'FAILURE',
    checks: [passingCheck('build'), failingCheck('test', runId)],
    ...overrides,
  });
}
