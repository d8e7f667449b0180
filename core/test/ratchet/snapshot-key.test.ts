import assert from 'node:assert/strict';
import { snapshotKey } from '../../src/ratchet/index.js';
import { failingCheck, failingSnapshot, passingCheck, snapshot } from './snapshots.js';

describe('ratchet / snapshotKey', () => {
  const head = 'a'.repeat(40);
  it('spells out PR, head commit, CI, review activity and conflict', () => {
    assert.equal(snapshotKey(snapshot()), `pr:7|head:${head}|ci:SUCCESS|review:none|merge:clean`);
    assert.equal(
      snapshotKey(snapshot({ headSha: null })),
      'pr:7|head:none|ci:SUCCESS|review:none|merge:clean',
    );
    assert.equal(
      snapshotKey(
        snapshot({
          ciStatus: 'PENDING',
          hasChangesRequested: true,
          latestReviewActivityAt: '2024-01-02T05:00:00Z',
          hasMergeConflict: true,
        }),
      ),
      `pr:7|head:${head}|ci:PENDING|review:1704171600000|merge:conflict`,
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
      `pr:7|head:${head}|ci:FAILURE:e2e:FAILURE:12,lint:TIMED_OUT:12|review:none|merge:clean`,
    );
  });

  it('changes when the same check fails in a new run', () => {
    assert.notEqual(snapshotKey(failingSnapshot('10')), snapshotKey(failingSnapshot('11')));
  });

  it('changes with the head commit: a conflict or a green PR after a push is a new situation', () => {
    const conflicted = snapshot({ hasMergeConflict: true });
    assert.notEqual(snapshotKey(conflicted), snapshotKey({ ...conflicted, headSha: 'b'.repeat(40) }));
    assert.notEqual(snapshotKey(snapshot()), snapshotKey(snapshot({ headSha: 'b'.repeat(40) })));
  });

  it('does not depend on the standing review decision, only on triggering activity', () => {
    assert.equal(snapshotKey(snapshot()), snapshotKey(snapshot({ hasChangesRequested: true })));
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
