import assert from 'node:assert/strict';
import { reconcileStrayContainers } from '../../workflows/reconciler/workflow.js';
import { vmContainerQuery, vmStateQuery } from '../../workflows/vm/messages.js';
import { startDockerEngine, stopDockerEngine } from '../support/docker-engine.js';
import { eventually } from '../support/vm.js';
import { startVmActorRig, type VmActorRig } from '../support/vm-actor-rig.js';
import { runInVm } from '../support/vm-terminal.js';

/**
 * The Docker engine stops for about 20 s while a user's VM runs (the real dockerd, stopped and started
 * again the way scripts/dev.sh runs it). The actor must ride it out, the VM must come back, and neither
 * the actor nor a reconciler run at that moment may delete the user's volume.
 */
describe('Docker engine down for 20 s under a running VM (real dockerd, Temporal, VM image)', function () {
  this.timeout(10 * 60_000);
  let rig: VmActorRig;
  let userId: string;
  const handle = () => rig.handle(userId);

  before(async () => {
    rig = await startVmActorRig();
    userId = await rig.newUser('docker-down');
  });

  after(async () => {
    // Whatever happened, the engine must be up again for the tests after this one.
    await startDockerEngine().catch(() => {});
    await rig?.stop();
  });

  it('the actor survives, shows the problem, brings the VM back with the file intact; the reconciler keeps the volume', async () => {
    await rig.ensureReady(userId);
    const ref = await handle().query(vmContainerQuery);
    assert.ok(ref);
    await runInVm(ref, `echo written-before-the-outage-${rig.suffix} > ~/before.txt`);
    const runId = (await handle().describe()).runId;

    await stopDockerEngine();
    let reconcile: Promise<unknown> | undefined;
    try {
      // Either it noticed between two checks (a problem, retried with back-off) or it is in the middle of a
      // restart whose Docker calls are being retried; both are the actor waiting, not failing.
      const during = await eventually('the actor to notice the outage', async () => {
        const view = await handle().query(vmStateQuery);
        return view.problem?.source === 'docker' || view.operation === 'restart' ? view : undefined;
      });
      if (during.problem) assert.match(during.problem.message, /Docker engine does not answer/);
      // A reconciler run at this moment: it cannot list containers, and must not delete anything either way.
      reconcile = rig.client.workflow
        .execute(reconcileStrayContainers, {
          taskQueue: rig.worker.taskQueue,
          workflowId: `reconcile-docker-down-${rig.suffix}`,
          args: [{ graceMs: 0 }],
        })
        .catch((err: unknown) => err);
      await new Promise((resolve) => setTimeout(resolve, 20_000));
    } finally {
      await startDockerEngine();
    }
    await reconcile;

    await eventually(
      'the VM back and answering',
      async () => {
        const view = await handle().query(vmStateQuery);
        return view.status === 'ONBOARDING' && view.operation === null && !view.problem ? view : undefined;
      },
      180_000,
      500,
    );
    assert.equal((await handle().describe()).runId, runId, 'the same actor run: it never failed');
    assert.ok(await rig.docker.getVolume(ref.volumeName).inspect(), 'the volume is kept');
    const back = await handle().query(vmContainerQuery);
    assert.ok(back);
    assert.match(
      await runInVm(back, 'cat ~/before.txt'),
      new RegExp(`written-before-the-outage-${rig.suffix}`),
    );
  });
});
