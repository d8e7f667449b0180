// The ratchet defines its own input types; these checks keep them in step with the wire shapes the VM
// agent sends (protocol/github.ts) and stores (protocol/workspace.ts). They fail at compile time.
import assert from 'node:assert/strict';
import type { PullRequestSnapshot } from '../../src/protocol/github.js';
import { type RatchetStateName, RatchetStateSchema } from '../../src/protocol/workspace.js';
import { RATCHET_STATES, type RatchetSnapshot, type RatchetState } from '../../src/ratchet/index.js';

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const snapshotFits: PullRequestSnapshot extends RatchetSnapshot ? true : false = true;
const statesMatch: Equal<RatchetState, RatchetStateName> = true;

describe('ratchet / wire compatibility', () => {
  it('accepts the agent snapshot and shares the state names with the portable state', () => {
    assert.ok(snapshotFits && statesMatch);
    assert.deepEqual([...RATCHET_STATES], [...RatchetStateSchema.options]);
  });
});
