/**
 * A ratchet poll is not user activity (test/support/ratchet-rig.ts, with a VM idle timeout of 20 s): the
 * VM suspends while the cloud ratchet watches its PR; a poll asked for while it sleeps (the wake route, as
 * a webhook would) resumes it, the poll answers from gh inside the VM, and the VM suspends again by itself
 * soon after (the background grace), without a user doing anything.
 */
import assert from 'node:assert/strict';
import { workflowIds } from '../../workflows/ids.js';
import { vmStateQuery } from '../../workflows/vm/messages.js';
import { passingCheck, type RatchetRig, startRatchetRig } from '../support/ratchet-rig.js';
import { eventually } from '../support/vm.js';

describe('e2e: a suspended VM is resumed for a ratchet poll and suspends again', function () {
  this.timeout(12 * 60_000);
  let rig: RatchetRig;

  before(async () => {
    rig = await startRatchetRig('rx-sleep', {
      workerEnv: { VM_IDLE_TIMEOUT_MS: '20000', VM_HEALTH_INTERVAL_MS: '2000' },
    });
  });
  after(async () => {
    await rig?.stop();
  });

  const vmStatus = async () =>
    (await rig.cloud.temporal.workflow.getHandle(workflowIds.vm(rig.cloud.user.userId)).query(vmStateQuery))
      .status;

  it('resumes the VM for the poll without counting it as activity, then the VM suspends again', async () => {
    const workspaceId = `ws-sleep-${rig.cloud.suffix}`;
    const branch = 'rx-sleep';
    const head = rig.newBranch(branch);
    rig.setPullRequest({
      number: 201,
      headRefName: branch,
      headSha: head,
      checks: [passingCheck('unit', 1)],
    });
    await rig.sendWithPr(workspaceId, branch, 201, { ratchetEnabled: true });
    const first = await rig.waitForView(
      workspaceId,
      'a first decision',
      (view) => view.lastDecision !== null,
    );

    // Polls every 30 s never keep it awake: the idle timeout suspends it.
    await eventually(
      'the VM to suspend while the ratchet runs',
      async () => ((await vmStatus()) === 'SUSPENDED' ? true : undefined),
      4 * 60_000,
      1000,
    );
    const asleep = await rig.liveView(workspaceId);
    assert.equal(asleep?.phase, 'polling', 'the ratchet still runs');

    const woke = await rig.wake(workspaceId);
    assert.equal(woke.status, 202, woke.text);
    const polled = await rig.waitForView(
      workspaceId,
      'a decision from a poll of the resumed VM',
      (view) =>
        (view.lastDecision?.atMs ?? 0) > (asleep?.lastDecision?.atMs ?? first.lastDecision?.atMs ?? 0),
      4 * 60_000,
    );
    assert.equal(polled.problem, null, `the poll reached GitHub: ${JSON.stringify(polled.problem)}`);
    assert.equal(polled.lastDecision?.action, 'WAITING');

    await eventually(
      'the VM to suspend again after the poll',
      async () => ((await vmStatus()) === 'SUSPENDED' ? true : undefined),
      5 * 60_000,
      1000,
    );
  });
});
