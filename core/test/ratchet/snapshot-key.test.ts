import assert from 'node:assert/strict';
import { snapshotKey } from '../../src/ratchet/index.js';
import { failingCheck, failingSnapshot, passingCheck, snapshot } from './snapshots.js';

describe('ratchet / snapshotKey', () => {
  it('spells out PR, CI, review activity and conflict', () => {
    assert.equal(snapshotKey(snapshot()), 'pr:7|ci:SUCCESS|review:no-changes-requested:none|merge:clean');
    assert.equal(
      snapshotKey(
        snapshot({
          ciStatus: 'PENDING',
          hasChangesRequested: true,
          latestReviewActivityAt: '2024-01-02T05:00:00Z',
          hasMergeConflict: true,
        }),
      ),
      'pr:7|ci:PENDING|review:changes-requested:1704171600000|merge:conflict',
    );
  });

  it('lists failing checks with their run ids, sorted, ignoring passing ones', () => {
    const key = snapshotKey(
      snapshot({
        ciStatus: 'FAILURE',
        checks: [failingCheck('lint', '12', 'TIMED_OUT'), passingCheck('build'), failingCheck('e2e', '12')],
      }),
    );
    assert.equal(
      key,
      'pr:7|ci:FAILURE:e2e:FAILURE:12,lint:TIMED_OUT:12|review:no-changes-requested:none|merge:clean',
    );
  });

  it('changes when the same check fails in a new run', () => {
    assert.notEqual(snapshotKey(failingSnapshot('10')), snapshotKey(failingSnapshot('11')));
  });

  it('does not depend on check order or on equivalent time spellings', () => {
    const a = snapshot({
      ciStatus: 'FAILURE',
      checks: [failingCheck('a', '1'), failingCheck('b', '1')],
      latestReviewActivityAt: '2024-01-02T05:00:00Z',
    });
    const b = snapshot({
      ciStatus: 'FAILURE',
      checks: [failingCheck('b', '1'), failingCheck('a', '1')],
      latestReviewActivityAt: '2024-01-02T06:00:00+01:00',
    });
    assert.equal(snapshotKey(a), snapshotKey(b));
  });
});
