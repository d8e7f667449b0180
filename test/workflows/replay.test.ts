import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { loadHistories } from '../support/histories.js';
import { workflowBundle } from '../support/worker.js';

describe('workflow replay of recorded histories', () => {
  const histories = loadHistories();

  it('has recorded histories to replay', () => {
    assert.ok(histories.length > 0, 'record them with FFC_RECORD_HISTORIES=1 scripts/dev.sh test');
  });

  for (const { name, history } of histories) {
    it(`replays ${name} deterministically with the current workflow code`, async () => {
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, name);
    });
  }
});
