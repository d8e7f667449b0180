/**
 * ffc pull's merge of dispatch keys (cli/src/ratchet/handoff.ts pulledWorkspace), alone: the interleaving
 * test reaches a key the cloud dispatched mid-stint only rarely, and a mutant that kept just the local keys
 * and the cloud's last one passed all its seeds.
 */
import assert from 'node:assert/strict';
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import { initialRatchetMemory } from '@factory-factory/core/ratchet';
import { memoryOf, pulledWorkspace, storedRatchetOf } from '../../cli/src/ratchet/handoff.js';
import type { LocalWorkspace } from '../../cli/src/workspace-store.js';
import { portableWorkspaceState } from '../support/portable-state.js';

const key = (head: string) => `pr:7|head:${head}|ci:FAILURE:unit:FAILURE:1|review:none|merge:clean`;
const DESKTOP_KEY = key('d'.repeat(40));
const CLOUD_FIRST = key('a'.repeat(40));
const CLOUD_LAST = key('b'.repeat(40));

const local: LocalWorkspace = {
  id: 'ws-keys',
  name: 'keys',
  checkoutDir: '/tmp/ws-keys',
  repoUrl: 'https://github.com/acme/app.git',
  branchName: 'feature-x',
  location: 'CLOUD',
  prUrl: 'https://github.com/acme/app/pull/7',
  ratchet: storedRatchetOf(
    initialRatchetMemory({ enabled: true, lastDispatchKey: DESKTOP_KEY, dispatchOutcome: 'COMPLETED' }),
    'CI_FAILED',
  ),
  activeFixer: null,
  lastDecision: null,
  problem: null,
};

function pulledState(dispatchKeys: string[], lastKey: string): PortableWorkspaceState {
  return portableWorkspaceState(local.id, {
    name: local.name,
    repoUrl: local.repoUrl,
    branchName: local.branchName,
    prUrl: local.prUrl,
    prNumber: 7,
    ratchetEnabled: true,
    ratchetState: 'CI_FAILED',
    ratchetLastCiRunId: lastKey,
    ratchetDispatchKeys: dispatchKeys,
  });
}

describe('ffc pull: the dispatch keys the desktop keeps', () => {
  it('keeps every key the cloud dispatched, not only its last, beside the desktop’s own', () => {
    const pulled = pulledWorkspace(
      local,
      pulledState([DESKTOP_KEY, CLOUD_FIRST, CLOUD_LAST], CLOUD_LAST),
      local.checkoutDir,
    );
    const memory = memoryOf(pulled);
    assert.equal(pulled.location, 'DESKTOP');
    assert.equal(memory.lastDispatchKey, CLOUD_LAST);
    assert.ok(
      memory.dispatchKeys.includes(CLOUD_FIRST),
      `the cloud's first key is kept: ${memory.dispatchKeys}`,
    );
    assert.ok(memory.dispatchKeys.includes(DESKTOP_KEY), 'the desktop’s own key is kept');
    assert.equal(memory.dispatchKeys.at(-1), CLOUD_LAST, 'the dedup key is last');
    assert.equal(new Set(memory.dispatchKeys).size, memory.dispatchKeys.length, 'no key twice');
  });
});
