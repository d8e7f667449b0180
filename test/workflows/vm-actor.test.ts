import assert from 'node:assert/strict';
import { chmodSync, existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type Client, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { type FakeGitHub, startFakeGitHub } from '../../core/test/support/fake-github.js';
import type { Config } from '../../platform/config.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultVmSettings,
  suspendUpdate,
  terminateUpdate,
  VmErrorType,
  type VmSettings,
  type VmView,
  vmContainerQuery,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
import type { vmWorkflow } from '../../workflows/vm/workflow.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { eventually, removeUserVm } from '../support/vm.js';
import { runInVm } from '../support/vm-terminal.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

const settings: VmSettings = {
  ...defaultVmSettings,
  healthIntervalMs: 1_000,
  idleTimeoutMs: 60 * 60 * 1000,
  agentTimeoutMs: 90_000,
};

function failureType(err: unknown): string | undefined {
  return err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure
    ? (err.cause.type ?? undefined)
    : undefined;
}

describe('vm:<userId> actor (real Temporal, Docker and VM image)', function () {
  this.timeout(10 * 60_000);
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let fakeGitHub: FakeGitHub;
  const users: string[] = [];
  const suffix = uniqueSuffix();

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    // A fake GitHub on a unix socket, mounted into every VM of this test so the real gh can log in to it.
    fakeGitHub = await startFakeGitHub({});
    chmodSync(dirname(fakeGitHub.socketPath), 0o755);
    chmodSync(fakeGitHub.socketPath, 0o666);
    const vm: Config['vm'] = {
      ...testConfig.vm,
      networkMode: 'none',
      extraMounts: [
        { hostPath: dirname(fakeGitHub.socketPath), containerPath: '/run/fake-github', readOnly: false },
      ],
      extraEnv: {
        HTTPS_PROXY: 'http://127.0.0.1:9',
        HTTP_PROXY: 'http://127.0.0.1:9',
        GH_NO_UPDATE_NOTIFIER: '1',
      },
    };
    worker = await startTestWorker(createActivities({ docker, temporal: client, pool: db.pool, vm }));
  });

  after(async () => {
    for (const userId of users) await removeUserVm(client, docker, userId);
    await worker?.stop();
    await fakeGitHub?.close();
    await db?.drop();
    await client?.connection.close();
  });

  function newUser(name: string): string {
    const userId = `${name}-${suffix}`;
    users.push(userId);
    return userId;
  }

  async function ensureUserRow(userId: string) {
    await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING', [userId]);
  }

  async function ensureReady(userId: string, overrides: Partial<VmSettings> = {}): Promise<VmView> {
    await ensureUserRow(userId);
    return ensureVmReady(client, {
      userId,
      taskQueue: worker.taskQueue,
      settings: { ...settings, ...overrides },
    });
  }

  const handle = (userId: string) => client.workflow.getHandle<typeof vmWorkflow>(workflowIds.vm(userId));
  const containerOf = async (userId: string): Promise<VmContainerRef> => {
    const ref = await handle(userId).query(vmContainerQuery);
    assert.ok(ref, 'usable VM has a container');
    return ref;
  };

  it('provisions, suspends keeping the volume, resumes with files intact, and terminates removing everything', async () => {
    const userId = newUser('lifecycle');
    const ready = await ensureReady(userId);
    assert.equal(ready.status, 'ONBOARDING', 'no gh or claude login yet');
    assert.deepEqual(ready.onboarding, { githubCli: false, claude: false });
    const ref = await containerOf(userId);
    assert.equal(ref.containerName, `ffc-vm-${userId}`);

    const row = await db.pool.query('SELECT status, container_id FROM vms WHERE user_id = $1', [userId]);
    assert.equal(row.rows[0]?.status, 'ONBOARDING');
    assert.equal(row.rows[0]?.container_id, ref.containerId);

    await runInVm(ref, 'echo persisted-across-suspend > ~/proof.txt');

    const suspended = await handle(userId).executeUpdate(suspendUpdate);
    assert.equal(suspended.status, 'SUSPENDED');
    const stopped = await docker.getContainer(ref.containerId).inspect();
    assert.equal(stopped.State.Running, false, 'suspend stops the container');
    await docker.getVolume(ref.volumeName).inspect();
    assert.equal(
      (await handle(userId).executeUpdate(suspendUpdate)).status,
      'SUSPENDED',
      'suspend is idempotent',
    );

    const resumed = await ensureReady(userId);
    assert.equal(resumed.status, 'ONBOARDING');
    assert.equal(resumed.vmId, ready.vmId, 'the same VM');
    assert.match(await runInVm(ref, 'cat ~/proof.txt'), /persisted-across-suspend/);

    const terminated = await handle(userId).executeUpdate(terminateUpdate);
    assert.equal(terminated.status, 'TERMINATED');
    await assert.rejects(docker.getContainer(ref.containerId).inspect(), /no such container/i);
    await assert.rejects(docker.getVolume(ref.volumeName).inspect(), /no such volume/i);
    assert.equal(existsSync(ref.runDir), false, 'run dir with the secret is gone');
    const finalRow = await db.pool.query('SELECT status FROM vms WHERE user_id = $1', [userId]);
    assert.equal(finalRow.rows[0]?.status, 'TERMINATED');
    assert.equal((await handle(userId).result()).status, 'TERMINATED', 'the actor ends');

    if (shouldRecordHistories()) await recordHistory(client, workflowIds.vm(userId), 'vm-lifecycle');
  });

  it('moves from ONBOARDING to READY once the user logged in to gh and Claude inside the VM', async () => {
    const userId = newUser('onboarding');
    await ensureReady(userId);
    const ref = await containerOf(userId);
    // The real gh, logging in against the fake GitHub through the mounted socket.
    const login = await runInVm(
      ref,
      [
        'mkdir -p ~/.config/gh',
        `printf "http_unix_socket: /run/fake-github/${basename(fakeGitHub.socketPath)}\\n" > ~/.config/gh/config.yml`,
        `echo ${fakeGitHub.fixtures().token} | gh auth login --hostname github.com --with-token && echo GH-LOGIN-$((40+2))`,
      ].join(' && '),
    );
    assert.match(login, /GH-LOGIN-42/);
    const halfway = await eventually('gh login to be noticed', async () => {
      const view = await handle(userId).query(vmStateQuery);
      return view.onboarding.githubCli ? view : undefined;
    });
    assert.equal(halfway.status, 'ONBOARDING', 'Claude is not logged in yet');
    // Claude's login writes its credentials file; the OAuth flow itself needs the internet.
    await runInVm(ref, 'mkdir -p ~/.claude && echo "{}" > ~/.claude/.credentials.json');
    const done = await eventually('READY', async () => {
      const view = await handle(userId).query(vmStateQuery);
      return view.status === 'READY' ? view : undefined;
    });
    assert.deepEqual(done.onboarding, { githubCli: true, claude: true });
  });

  it('restarts a container killed from outside, and marks the VM FAILED in a crash loop', async () => {
    const userId = newUser('crashy');
    await ensureReady(userId, { maxCrashes: 2 });
    const ref = await containerOf(userId);
    await docker.getContainer(ref.containerId).kill();
    const restarted = await eventually('restart after kill', async () => {
      const view = await handle(userId).query(vmStateQuery);
      return view.restarts === 1 && view.operation === null && view.status === 'ONBOARDING'
        ? view
        : undefined;
    });
    assert.equal(restarted.restarts, 1);
    assert.equal((await docker.getContainer(ref.containerId).inspect()).State.Running, true);

    await docker.getContainer(ref.containerId).kill();
    const failed = await eventually('FAILED after the second crash', async () => {
      const view = await handle(userId).query(vmStateQuery);
      return view.status === 'FAILED' ? view : undefined;
    });
    assert.match(failed.failureReason ?? '', /crashed 2 times/);

    const recovered = await ensureReady(userId);
    assert.equal(recovered.status, 'ONBOARDING', 'ensureReady brings a FAILED VM back');
  });

  it('gives clear errors: ensureReady while terminating, terminate twice', async () => {
    const userId = newUser('refusals');
    await ensureReady(userId);
    const terminating = await handle(userId).startUpdate(terminateUpdate, { waitForStage: 'ACCEPTED' });
    const whileTerminating = await ensureReady(userId).catch((err: unknown) => err);
    assert.equal(failureType(whileTerminating), VmErrorType.terminating);
    const twice = await handle(userId)
      .executeUpdate(terminateUpdate)
      .catch((err: unknown) => err);
    assert.ok(twice instanceof Error, 'a second terminate is refused');
    assert.equal((await terminating.result()).status, 'TERMINATED');
  });

  it('continues as new with bounded history, keeping its state and answering requests', async () => {
    const userId = newUser('long-lived');
    const first = await ensureReady(userId, { maxHistoryEvents: 60 });
    const firstRun = (await handle(userId).describe()).runId;
    await eventually(
      'continue-as-new',
      async () => ((await handle(userId).describe()).runId !== firstRun ? true : undefined),
      120_000,
    );
    const suspended = await handle(userId).executeUpdate(suspendUpdate);
    assert.equal(suspended.status, 'SUSPENDED');
    const again = await ensureReady(userId, { maxHistoryEvents: 60 });
    assert.equal(again.vmId, first.vmId, 'the same VM across runs');
    assert.equal(again.status, 'ONBOARDING');
  });
});
