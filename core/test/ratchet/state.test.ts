import assert from 'node:assert/strict';
import { deriveRatchetState, type RatchetSnapshot, type RatchetState } from '../../src/ratchet/index.js';
import { failingSnapshot, snapshot } from './snapshots.js';

describe('ratchet / deriveRatchetState', () => {
  const table: Array<[string, RatchetSnapshot | null, boolean, RatchetState]> = [
    ['no PR', null, true, 'IDLE'],
    ['disabled ratchet', failingSnapshot('1'), false, 'IDLE'],
    ['merged', snapshot({ state: 'MERGED', ciStatus: 'FAILURE' }), true, 'MERGED'],
    ['closed without merge', snapshot({ state: 'CLOSED' }), true, 'IDLE'],
    ['failing CI', failingSnapshot('1'), true, 'CI_FAILED'],
    ['failing CI beats a conflict', failingSnapshot('1', { hasMergeConflict: true }), true, 'CI_FAILED'],
    [
      'conflict with CI running',
      snapshot({ ciStatus: 'PENDING', hasMergeConflict: true }),
      true,
      'MERGE_CONFLICT',
    ],
    ['conflict with green CI', snapshot({ hasMergeConflict: true }), true, 'MERGE_CONFLICT'],
    ['pending CI', snapshot({ ciStatus: 'PENDING' }), true, 'CI_RUNNING'],
    ['unknown CI counts as running', snapshot({ ciStatus: 'UNKNOWN' }), true, 'CI_RUNNING'],
    ['changes requested on green CI', snapshot({ hasChangesRequested: true }), true, 'REVIEW_PENDING'],
    [
      'pending CI outranks changes requested',
      snapshot({ ciStatus: 'PENDING', hasChangesRequested: true }),
      true,
      'CI_RUNNING',
    ],
    ['green and unreviewed', snapshot(), true, 'READY'],
  ];
  for (const [label, snap, enabled, expected] of table) {
    it(`${label} → ${expected}`, () => {
      assert.equal(deriveRatchetState(snap, enabled), expected);
    });
  }
});
