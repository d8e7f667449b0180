import assert from 'node:assert/strict';
import { computeCiStatus, derivePrDisplayState, summarizeChecks } from '../../src/github/index.js';
import type { CiStatus, GhStatusCheck } from '../../src/protocol/github.js';

function run(
  name: string,
  status: string,
  conclusion: string,
  startedAt = '2024-01-02T03:05:00Z',
  runId = '10',
): GhStatusCheck {
  return {
    __typename: 'CheckRun',
    name,
    status,
    conclusion,
    startedAt,
    completedAt: '0001-01-01T00:00:00Z',
    detailsUrl: `https://github.com/o/r/actions/runs/${runId}/job/1`,
    workflowName: 'CI',
  };
}
function ctx(context: string, state: string): GhStatusCheck {
  return {
    __typename: 'StatusContext',
    context,
    state,
    targetUrl: 'https://ci.example.test/1',
    startedAt: '2024-01-02T03:06:00Z',
  };
}

describe('github / CI status from the status-check rollup', () => {
  const table: Array<[string, GhStatusCheck[] | null, CiStatus]> = [
    ['no rollup at all', null, 'UNKNOWN'],
    ['no checks', [], 'SUCCESS'],
    [
      'all passed, skipped or neutral',
      [run('a', 'COMPLETED', 'SUCCESS'), run('b', 'COMPLETED', 'SKIPPED'), run('c', 'COMPLETED', 'NEUTRAL')],
      'SUCCESS',
    ],
    [
      'one failure among passes',
      [run('a', 'COMPLETED', 'SUCCESS'), run('b', 'COMPLETED', 'FAILURE')],
      'FAILURE',
    ],
    [
      'a failure outranks a running check',
      [run('a', 'IN_PROGRESS', ''), run('b', 'COMPLETED', 'FAILURE')],
      'FAILURE',
    ],
    ['timed out', [run('a', 'COMPLETED', 'TIMED_OUT')], 'FAILURE'],
    ['cancelled', [run('a', 'COMPLETED', 'CANCELLED')], 'FAILURE'],
    ['startup failure', [run('a', 'COMPLETED', 'STARTUP_FAILURE')], 'FAILURE'],
    ['action required', [run('a', 'COMPLETED', 'ACTION_REQUIRED')], 'FAILURE'],
    ['queued', [run('a', 'QUEUED', '')], 'PENDING'],
    ['in progress', [run('a', 'COMPLETED', 'SUCCESS'), run('b', 'IN_PROGRESS', '')], 'PENDING'],
    ['status context pending', [ctx('ci/legacy', 'PENDING')], 'PENDING'],
    ['status context expected', [ctx('ci/legacy', 'EXPECTED')], 'PENDING'],
    ['status context error', [ctx('ci/legacy', 'ERROR')], 'FAILURE'],
    ['status context success', [ctx('ci/legacy', 'SUCCESS'), run('a', 'COMPLETED', 'SUCCESS')], 'SUCCESS'],
    [
      'a re-run that passed replaces the failed attempt',
      [
        run('t', 'COMPLETED', 'FAILURE', '2024-01-02T03:00:00Z'),
        run('t', 'COMPLETED', 'SUCCESS', '2024-01-02T04:00:00Z'),
      ],
      'SUCCESS',
    ],
    [
      'a re-run that is still going replaces the failed attempt',
      [
        run('t', 'COMPLETED', 'FAILURE', '2024-01-02T03:00:00Z'),
        run('t', 'IN_PROGRESS', '', '2024-01-02T04:00:00Z'),
      ],
      'PENDING',
    ],
    [
      'an older success does not hide a newer failure',
      [
        run('t', 'COMPLETED', 'FAILURE', '2024-01-02T05:00:00Z'),
        run('t', 'COMPLETED', 'SUCCESS', '2024-01-02T04:00:00Z'),
      ],
      'FAILURE',
    ],
    ['stale conclusion on a re-queued run counts as running', [run('t', 'QUEUED', 'FAILURE')], 'PENDING'],
    ['an unrecognised result', [run('a', 'COMPLETED', 'STALE')], 'UNKNOWN'],
  ];
  for (const [label, rollup, expected] of table) {
    it(`${label} → ${expected}`, () => assert.equal(computeCiStatus(rollup), expected));
  }

  it('summarises latest attempts with run ids parsed from the details URL', () => {
    const checks = summarizeChecks([
      run('test', 'COMPLETED', 'FAILURE', '2024-01-02T03:00:00Z', '10'),
      run('test', 'COMPLETED', 'FAILURE', '2024-01-02T04:00:00Z', '11'),
      ctx('ci/legacy', 'SUCCESS'),
    ]);
    assert.deepEqual(checks, [
      {
        name: 'test',
        workflowName: 'CI',
        result: 'FAILURE',
        detailsUrl: 'https://github.com/o/r/actions/runs/11/job/1',
        runId: '11',
        failed: true,
      },
      {
        name: 'ci/legacy',
        workflowName: null,
        result: 'SUCCESS',
        detailsUrl: 'https://ci.example.test/1',
        runId: null,
        failed: false,
      },
    ]);
  });

  it('keeps same-named checks of different workflows apart', () => {
    const a = { ...run('test', 'COMPLETED', 'SUCCESS'), workflowName: 'Unit' };
    const b = { ...run('test', 'COMPLETED', 'FAILURE'), workflowName: 'E2E' };
    assert.equal(summarizeChecks([a, b]).length, 2);
    assert.equal(computeCiStatus([a, b]), 'FAILURE');
  });
});

describe('github / PR display state', () => {
  const table: Array<[string, Parameters<typeof derivePrDisplayState>[0], string]> = [
    ['merged beats everything', { state: 'MERGED', isDraft: true, reviewDecision: 'APPROVED' }, 'MERGED'],
    ['closed', { state: 'CLOSED', isDraft: true, reviewDecision: null }, 'CLOSED'],
    ['draft beats a review decision', { state: 'OPEN', isDraft: true, reviewDecision: 'APPROVED' }, 'DRAFT'],
    ['approved', { state: 'OPEN', isDraft: false, reviewDecision: 'APPROVED' }, 'APPROVED'],
    [
      'changes requested',
      { state: 'OPEN', isDraft: false, reviewDecision: 'CHANGES_REQUESTED' },
      'CHANGES_REQUESTED',
    ],
    ['review required', { state: 'OPEN', isDraft: false, reviewDecision: 'REVIEW_REQUIRED' }, 'OPEN'],
    ['no decision', { state: 'OPEN', isDraft: null, reviewDecision: null }, 'OPEN'],
  ];
  for (const [label, view, expected] of table) {
    it(`${label} → ${expected}`, () => assert.equal(derivePrDisplayState(view), expected));
  }
});
