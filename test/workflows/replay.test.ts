import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { loadHistories } from '../support/histories.js';
import { workflowBundle } from '../support/worker.js';

describe('workflow replay of recorded histories', () => {
  const histories = loadHistories();

  it('has recorded histories to replay', () => {
    assert.ok(histories.length > 0, 'record them with FFC_RECORD_HISTORIES=1 scripts/dev.sh test');
  });

  it("has the workspace actor's histories (restore, pull, re-send, archive; failure and retry; a worker crash)", () => {
    const names = new Set(histories.map((h) => h.name));
    for (const name of ['workspace-lifecycle', 'workspace-failed-retry', 'workspace-worker-crash']) {
      assert.ok(names.has(name), `${name}.json: record it with FFC_RECORD_HISTORIES=1`);
    }
  });

  it("has the ratchet actor's histories and a VM history with a background-only wake", () => {
    const names = new Set(histories.map((h) => h.name));
    for (const name of [
      'ratchet-ci-failure',
      'ratchet-suspended-vm-poll',
      'vm-background-wake',
      'ratchet-watch-wake',
      'ratchet-watch-handoff',
    ]) {
      assert.ok(
        names.has(name),
        `${name}.json: record it with FFC_RECORD_HISTORIES=1 (ratchet-actor.test.ts, ratchet-watch.test.ts)`,
      );
    }
  });

  for (const { name, history } of histories) {
    it(`replays ${name} deterministically with the current workflow code`, async () => {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, name);
    });
  }
});
