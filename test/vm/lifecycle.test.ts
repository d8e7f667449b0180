import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentClient, AgentClientError } from '@factory-factory/core/agent-client';
import { AGENT_PROTOCOL_VERSION } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type Docker from 'dockerode';
import { LABEL_RUN_DIR, LABEL_VOLUME, managedLabels } from '../../activities/vm/labels.js';
import { createVmContainerActivities, VmFailureType, vmVolumeName } from '../../activities/vm/lifecycle.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type { Config } from '../../platform/config.js';
import { connectVmAgent, vmAgentEndpoint, vmAgentSocketPath } from '../../platform/vm-agent.js';
import { ensureVmImage } from '../../scripts/build-vm-image.js';
import { connectTestTemporal, testConfig, testDocker, uniqueSuffix } from '../support/services.js';
import { eventually } from '../support/vm.js';
import { runInTerminal } from '../support/vm-terminal.js';
import { execIn, NO_NEW_PRIVS_PROBE, requireRuntime } from './helpers.js';

/**
 * The Docker side of a VM against the real engine and the real agent in the real image: create, the agent
 * answering over its socket, suspend/resume, crash, remove, adoption and rename, and the hardening. Run
 * under the configured VM_RUNTIME: `dev.sh test` runs this file once with runc and once with runsc.
 */
describe(`VM container activities (real Docker, real agent, runtime ${testConfig.vm.runtime})`, () => {
  const suffix = uniqueSuffix();
  const testLabel = { 'ffc.test': `vm-lifecycle-${suffix}` };
  const marker = `marker-${suffix}`;
  let docker: Docker;
  let temporal: Client;
  let runDirRoot: string;
  let vm: Config['vm'];
  let activities: ReturnType<typeof createVmContainerActivities>;
  /** A workflow that stays RUNNING (its queue has no worker): a live owner, so no reconciler reaps ours. */
  const owner = `test-vm-lifecycle-owner-${suffix}`;
  const endpointOf = (ref: VmContainerRef) => vmAgentEndpoint(ref, vm.secretRoot);
  const secretOf = (ref: VmContainerRef) => endpointOf(ref).secretFile;

  before(async function () {
    this.timeout(20 * 60_000);
    docker = testDocker();
    await requireRuntime(docker, testConfig.vm.runtime);
    const { tag } = await ensureVmImage({ docker });
    temporal = await connectTestTemporal();
    await temporal.workflow.start('ownerThatNeverRuns', { taskQueue: `idle-${suffix}`, workflowId: owner });
    runDirRoot = mkdtempSync(join(tmpdir(), 'ffc-vm-test-'));
    vm = {
      ...testConfig.vm,
      image: tag,
      networkMode: 'none',
      memoryBytes: 768 * 1024 * 1024,
      nanoCpus: 500_000_000,
      pidsLimit: 256,
      runDirRoot,
      secretRoot: mkdtempSync(join(tmpdir(), 'ffc-vm-secrets-test-')),
      extraEnv: { FFC_TEST_MARKER: marker },
      extraMounts: [],
    };
    activities = createVmContainerActivities({ docker, vm, labels: testLabel });
  });

  after(async () => {
    const filters = { label: [`ffc.test=${testLabel['ffc.test']}`] };
    for (const c of (await docker?.listContainers({ all: true, filters })) ?? [])
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    for (const v of (await docker?.listVolumes({ filters }))?.Volumes ?? [])
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
    if (runDirRoot) rmSync(runDirRoot, { recursive: true, force: true });
    if (vm?.secretRoot) rmSync(vm.secretRoot, { recursive: true, force: true });
    await temporal?.workflow
      .getHandle(owner)
      .terminate('test over')
      .catch(() => undefined);
    await temporal?.connection.close();
  });

  const name = (what: string) => `ffc-test-${what}-${suffix}`;
  const create = (containerName: string) =>
    activities.createVmContainer({ containerName, role: 'vm', owner, userId: `user-${suffix}` });

  /** Runs an activity the way the worker does, recording its heartbeats. */
  async function inActivity<R>(fn: () => Promise<R>): Promise<{ result: R; heartbeats: number }> {
    // Failures are asserted by the tests; the SDK's warning for each would only be noise.
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    let heartbeats = 0;
    env.on('heartbeat', () => heartbeats++);
    const result = await env.run<[], R, () => Promise<R>>(fn);
    return { result, heartbeats };
  }

  async function rejectsWith(promise: Promise<unknown>, type: string, message?: RegExp): Promise<void> {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
      assert.equal(err.type, type);
      if (message) assert.match(err.message, message);
      return true;
    });
  }

  describe('one VM through its life', () => {
    let ref: VmContainerRef;

    it('creates the container, its home volume, a run dir and a host-only secret dir', async () => {
      ref = await create(name('main'));
      assert.equal(ref.containerName, name('main'));
      assert.equal(ref.volumeName, vmVolumeName(name('main')));
      assert.equal(ref.runDir, join(runDirRoot, name('main')));

      const dir = statSync(ref.runDir);
      assert.equal(dir.mode & 0o777, 0o700);
      assert.deepEqual([dir.uid, dir.gid], [1000, 1000]);
      // The secret is the host's (the VM's group may read it through a read-only mount), never in the run dir.
      const secretDir = statSync(dirname(secretOf(ref)));
      assert.equal(secretDir.mode & 0o777, 0o750);
      assert.deepEqual([secretDir.uid, secretDir.gid], [0, 1000]);
      const secretFile = statSync(secretOf(ref));
      assert.equal(secretFile.mode & 0o777, 0o440);
      assert.deepEqual([secretFile.uid, secretFile.gid], [0, 1000]);
      assert.match(readFileSync(secretOf(ref), 'utf8').trim(), /^[0-9a-f]{64}$/);
      assert.deepEqual(
        readdirSync(ref.runDir).filter((f) => f !== 'agent.sock'),
        [],
      );

      const volume = await docker.getVolume(ref.volumeName).inspect();
      assert.equal(volume.Labels['ffc.managed'], 'true');
      assert.equal(volume.Labels['ffc.owner'], owner);
      const info = await docker.getContainer(ref.containerId).inspect();
      assert.equal(info.Config.Labels['ffc.owner'], owner);
      assert.equal(info.Config.Labels['ffc.user-id'], `user-${suffix}`);
      assert.equal(info.Config.Labels['ffc.volume'], ref.volumeName);
      assert.equal(info.Config.Labels['ffc.run-dir'], ref.runDir);
      assert.equal((await activities.inspectVmContainer(ref)).status, 'created');
    });

    it('starts it, and the agent answers health.ping over the socket with the secret (heartbeating)', async () => {
      await activities.startVmContainer(ref);
      await activities.startVmContainer(ref); // already running: success
      const { result: health, heartbeats } = await inActivity(() =>
        activities.waitForVmAgent(ref, { timeoutMs: 60_000 }),
      );
      assert.ok(heartbeats >= 1, 'heartbeats on every attempt');
      assert.equal(health.protocolVersion, AGENT_PROTOCOL_VERSION);
      assert.deepEqual(health.credentials, { gh: false, claude: false }, 'a fresh VM is not onboarded');
      const ping = await activities.pingVmAgent(ref);
      assert.ok(ping && ping.uptimeMs >= 0);
      const status = await activities.inspectVmContainer(ref);
      assert.equal(status.running, true);
      assert.equal(status.status, 'running');
      assert.equal(status.exitCode, null);
      assert.ok(status.startedAt);
    });

    it('refuses a client with a wrong secret', async () => {
      await assert.rejects(
        AgentClient.connect({ socketPath: vmAgentSocketPath(ref.runDir), secret: 'x'.repeat(64) }),
        (err: unknown) => err instanceof AgentClientError && err.code === 'unauthorized',
      );
    });

    it('is hardened: limits, no capabilities, no-new-privileges, non-root, read-only root, no Docker socket', async () => {
      const info = await docker.getContainer(ref.containerId).inspect();
      const host = info.HostConfig;
      assert.equal(host.Runtime, vm.runtime);
      assert.equal(host.Memory, 768 * 1024 * 1024);
      assert.equal(host.NanoCpus, 500_000_000);
      assert.equal(host.PidsLimit, 256);
      assert.deepEqual(host.CapDrop, ['ALL']);
      assert.equal(host.CapAdd ?? null, null);
      assert.ok(host.SecurityOpt?.includes('no-new-privileges'));
      assert.equal(host.Privileged, false);
      assert.equal(host.ReadonlyRootfs, true);
      assert.equal(host.NetworkMode, 'none');
      assert.equal(host.RestartPolicy?.Name, 'no');
      assert.equal(info.Config.User, '1000:1000');
      assert.ok(host.Tmpfs && '/tmp' in host.Tmpfs);
      const mounts = info.Mounts.map((m) => `${m.Source}:${m.Destination}`);
      assert.ok(!mounts.some((m) => m.includes('docker.sock')), `no Docker socket in ${mounts.join(', ')}`);
      assert.deepEqual(info.Mounts.map((m) => m.Destination).sort(), [
        '/home/ff',
        '/run/ff-agent',
        '/run/ff-agent-secret',
      ]);
      const secretMount = info.Mounts.find((m) => m.Destination === '/run/ff-agent-secret');
      assert.equal(secretMount?.RW, false, 'the secret is mounted read-only');

      const probe = await execIn(docker, ref.containerId, [
        'sh',
        '-c',
        [
          'id -u',
          // gVisor's /proc/self/status has no NoNewPrivs line: ask the kernel (prctl) under both runtimes.
          'grep -E "^(CapEff|CapPrm):" /proc/self/status | tr -s "\\t " " "',
          NO_NEW_PRIVS_PROBE,
          'touch /probe 2>/dev/null && echo root-writable || echo root-read-only',
          'echo home > "$HOME/probe" && cat "$HOME/probe"',
          'echo tmp > /tmp/probe && cat /tmp/probe',
          'test -e /var/run/docker.sock || test -e /run/docker.sock && echo docker-socket || echo no-docker-socket',
          'test -r /run/ff-agent-secret/secret && echo secret-readable',
          '{ echo x > /run/ff-agent-secret/secret; } 2>/dev/null && echo secret-writable || echo secret-read-only',
          'mv /run/ff-agent-secret/secret /tmp/s 2>/dev/null && echo secret-movable || echo secret-fixed',
        ].join('; '),
      ]);
      assert.equal(probe.exitCode, 0, probe.stderr);
      assert.deepEqual(probe.stdout.trim().split('\n'), [
        '1000',
        'CapPrm: 0000000000000000',
        'CapEff: 0000000000000000',
        'NoNewPrivs: 1',
        'root-read-only',
        'home',
        'tmp',
        'no-docker-socket',
        'secret-readable',
        'secret-read-only',
        'secret-fixed',
      ]);
    });

    it("runs on its runtime's kernel: the host's under runc, gVisor's user-space kernel under runsc", async () => {
      const probe = await execIn(docker, ref.containerId, [
        'sh',
        '-c',
        'uname -r; dmesg 2>/dev/null | head -n 1',
      ]);
      assert.equal(probe.exitCode, 0, probe.stderr);
      const [kernel, firstLog = ''] = probe.stdout.trim().split('\n');
      if (vm.runtime === 'runsc') {
        assert.notEqual(kernel, release(), "not the host's kernel");
        assert.match(firstLog, /Starting gVisor/, "gVisor's kernel log, readable from inside its sandbox");
      } else {
        assert.equal(kernel, release(), "the host's kernel");
        assert.equal(firstLog, '', "the host's kernel log is closed to the VM's user");
      }
    });

    it('gives terminals (like claude and gh) VM_EXTRA_ENV under its own names, and no agent settings', async () => {
      const agent = await connectVmAgent(endpointOf(ref), { clientName: 'test' });
      try {
        const output = await runInTerminal(
          agent,
          'echo "M=$FFC_TEST_MARKER S=$(printenv FF_AGENT_SECRET_FILE || echo none)' +
            ' P=$(printenv FF_CHILD_ENV_FFC_TEST_MARKER || echo none)"',
          /M=marker-\S+ S=\S+ P=\S+/,
        );
        assert.match(output, new RegExp(`M=${marker} S=none P=none`));
      } finally {
        agent.close();
      }
    });

    it('suspends (stopped, volume kept), and a file written in HOME through a terminal survives resume', async () => {
      const agent = await connectVmAgent(endpointOf(ref));
      try {
        await runInTerminal(agent, `echo kept-${suffix} > ~/kept.txt && echo written-$((6*7))`, /written-42/);
      } finally {
        agent.close();
      }
      await activities.stopVmContainer(ref);
      await activities.stopVmContainer(ref); // already stopped: success
      const stopped = await activities.inspectVmContainer(ref);
      assert.equal(stopped.running, false);
      assert.equal(stopped.status, 'exited');
      assert.equal(stopped.exitCode, 0, 'the agent shut down cleanly on SIGTERM');
      assert.ok(await docker.getVolume(ref.volumeName).inspect(), 'volume kept');
      assert.equal(await activities.pingVmAgent(ref), null);

      const secretBefore = readFileSync(secretOf(ref), 'utf8');
      await activities.startVmContainer(ref);
      await inActivity(() => activities.waitForVmAgent(ref, { timeoutMs: 60_000 }));
      assert.equal(readFileSync(secretOf(ref), 'utf8'), secretBefore, 'same secret');
      const read = await execIn(docker, ref.containerId, ['cat', '/home/ff/kept.txt']);
      assert.equal(read.stdout.trim(), `kept-${suffix}`);
    });

    it('reports a killed container as not running with its exit code, and fails a wait fast', async () => {
      await docker.getContainer(ref.containerId).kill();
      const status = await activities.inspectVmContainer(ref);
      assert.equal(status.exists, true);
      assert.equal(status.running, false);
      assert.equal(status.status, 'exited');
      assert.equal(status.exitCode, 137);
      assert.equal(status.oomKilled, false);
      assert.ok(status.finishedAt);
      assert.equal(await activities.pingVmAgent(ref), null);
      const started = Date.now();
      await rejectsWith(
        inActivity(() => activities.waitForVmAgent(ref, { timeoutMs: 60_000 })),
        VmFailureType.agentUnreachable,
        /container exited \(exit code 137\)/,
      );
      assert.ok(Date.now() - started < 30_000, 'did not wait for the whole timeout');

      // Restarting after the crash works: the stale socket file does not get in the way.
      await activities.startVmContainer(ref);
      await inActivity(() => activities.waitForVmAgent(ref, { timeoutMs: 60_000 }));
    });

    it('removes the container, its volume and its run dir; removing again succeeds', async () => {
      await activities.removeVmContainer(ref);
      await assert.rejects(docker.getContainer(ref.containerId).inspect(), /no such container/i);
      await assert.rejects(docker.getVolume(ref.volumeName).inspect(), /no such volume/i);
      assert.throws(() => statSync(ref.runDir), /ENOENT/);
      await activities.removeVmContainer(ref);

      const gone = await activities.inspectVmContainer(ref);
      assert.deepEqual(gone, {
        exists: false,
        running: false,
        status: 'missing',
        exitCode: null,
        oomKilled: false,
        startedAt: null,
        finishedAt: null,
      });
      await rejectsWith(activities.stopVmContainer(ref), VmFailureType.containerMissing);
      await rejectsWith(activities.startVmContainer(ref), VmFailureType.containerMissing);
      assert.equal(await activities.pingVmAgent(ref), null);
    });
  });

  it('retires a container of the old layout (secret in the run dir) on start and on create, keeping its volume', async () => {
    const legacy = async (containerName: string): Promise<VmContainerRef> => {
      const volumeName = vmVolumeName(containerName);
      const runDir = join(runDirRoot, containerName);
      mkdirSync(runDir, { recursive: true });
      await docker.createVolume({ Name: volumeName, Labels: testLabel });
      const container = await docker.createContainer({
        name: containerName,
        Image: vm.image,
        Labels: {
          ...testLabel,
          ...managedLabels({ owner, role: 'vm' }),
          [LABEL_VOLUME]: volumeName,
          [LABEL_RUN_DIR]: runDir,
        },
        HostConfig: {
          NetworkMode: 'none',
          Mounts: [
            { Type: 'bind', Source: runDir, Target: '/run/ff-agent' },
            { Type: 'volume', Source: volumeName, Target: '/home/ff' },
          ],
        },
      });
      return { containerName, containerId: container.id, volumeName, runDir };
    };
    const old = await legacy(name('legacy-start'));
    await rejectsWith(activities.startVmContainer(old), VmFailureType.containerMissing, /predated/);
    await assert.rejects(docker.getContainer(old.containerId).inspect(), /no such container/i);
    assert.ok(await docker.getVolume(old.volumeName).inspect(), 'its volume stays for the recreated VM');
    await docker.getVolume(old.volumeName).remove();

    const adoptedOld = await legacy(name('legacy-create'));
    const replaced = await create(name('legacy-create'));
    assert.notEqual(replaced.containerId, adoptedOld.containerId);
    assert.equal(replaced.volumeName, adoptedOld.volumeName, 'the same home volume');
    await activities.removeVmContainer(replaced);
  });

  it('moves a VM to VM_RUNTIME when it next starts, keeping its files; a running one is left alone', async () => {
    const other = vm.runtime === 'runc' ? 'runsc' : 'runc';
    await requireRuntime(docker, other);
    const runtimeOf = async (r: VmContainerRef) =>
      (await docker.getContainer(r.containerId).inspect()).HostConfig.Runtime;
    // A VM made before the deployment switched runtimes, with a file in its home.
    const before = createVmContainerActivities({ docker, vm: { ...vm, runtime: other }, labels: testLabel });
    const old = await before.createVmContainer({ containerName: name('switch'), role: 'vm', owner });
    await before.startVmContainer(old);
    await before.waitForVmAgent(old, { timeoutMs: 60_000 });
    await execIn(docker, old.containerId, ['sh', '-c', `echo switched-${suffix} > /home/ff/switch.txt`]);

    // Running: adopted as it is, and a start of it succeeds without touching it.
    assert.deepEqual(await create(name('switch')), old);
    await activities.startVmContainer(old);
    assert.equal(await runtimeOf(old), other);
    assert.ok(await activities.pingVmAgent(old), 'its agent still answers');

    // Suspended, then resumed: retired (its volume stays) and recreated under VM_RUNTIME with its files.
    await activities.stopVmContainer(old);
    await rejectsWith(
      activities.startVmContainer(old),
      VmFailureType.containerMissing,
      new RegExp(`made for the ${other} runtime, VM_RUNTIME is ${vm.runtime}`),
    );
    await assert.rejects(docker.getContainer(old.containerId).inspect(), /no such container/i);
    const moved = await create(name('switch'));
    assert.notEqual(moved.containerId, old.containerId);
    assert.equal(moved.volumeName, old.volumeName, 'the same home volume');
    assert.equal(await runtimeOf(moved), vm.runtime);
    await activities.startVmContainer(moved);
    await activities.waitForVmAgent(moved, { timeoutMs: 60_000 });
    const read = await execIn(docker, moved.containerId, ['cat', '/home/ff/switch.txt']);
    assert.equal(read.stdout.trim(), `switched-${suffix}`);
    await activities.removeVmContainer(moved);

    // A create that finds a stopped one of the other runtime makes a current one on its volume.
    const stale = await before.createVmContainer({ containerName: name('switch-create'), role: 'vm', owner });
    const replaced = await create(name('switch-create'));
    assert.notEqual(replaced.containerId, stale.containerId);
    assert.equal(replaced.volumeName, stale.volumeName);
    assert.equal(await runtimeOf(replaced), vm.runtime);
    await activities.removeVmContainer(replaced);
  });

  it('adopts an existing container on a second create: one container, same volume, same secret', async () => {
    const first = await create(name('adopt'));
    const secret = readFileSync(secretOf(first), 'utf8');
    const second = await create(name('adopt'));
    assert.deepEqual(second, first);
    assert.equal(readFileSync(secretOf(first), 'utf8'), secret);
    const named = await docker.listContainers({ all: true, filters: { name: [name('adopt')] } });
    assert.equal(named.length, 1);

    // A crash after the volume was made but before the container: the retry finishes the job.
    await activities.removeVmContainer(first);
    await docker.createVolume({ Name: first.volumeName, Labels: testLabel });
    const retried = await create(name('adopt'));
    assert.equal(retried.volumeName, first.volumeName);
    await activities.removeVmContainer(retried);
  });

  it('refuses to adopt a container it did not create', async () => {
    const foreign = await docker.createContainer({
      name: name('foreign'),
      Image: vm.image,
      Labels: testLabel,
      HostConfig: { NetworkMode: 'none' },
    });
    await rejectsWith(create(name('foreign')), VmFailureType.nameConflict, /not managed by FF Cloud/);
    await foreign.remove({ force: true });
  });

  it('renames a warm-pool container for its user, idempotently, and its agent keeps answering', async () => {
    const pooled = await activities.createVmContainer({ containerName: name('pool'), role: 'pool', owner });
    await activities.startVmContainer(pooled);
    await inActivity(() => activities.waitForVmAgent(pooled, { timeoutMs: 60_000 }));
    const claimed = await activities.renameVmContainer(pooled, name('claimed'));
    assert.equal(claimed.containerName, name('claimed'));
    assert.equal(claimed.containerId, pooled.containerId);
    assert.equal(claimed.volumeName, pooled.volumeName);
    assert.equal(claimed.runDir, pooled.runDir);
    assert.deepEqual(
      await activities.renameVmContainer(pooled, name('claimed')),
      claimed,
      'retry is a no-op',
    );
    assert.ok(await activities.pingVmAgent(claimed));
    // A create under the new name adopts the claimed container rather than making a second one.
    assert.deepEqual(await create(name('claimed')), claimed);

    const other = await create(name('other'));
    await rejectsWith(activities.renameVmContainer(other, name('claimed')), VmFailureType.nameConflict);
    await activities.removeVmContainer(other);
    await activities.removeVmContainer(claimed);
    await rejectsWith(activities.renameVmContainer(claimed, name('again')), VmFailureType.containerMissing);
  });

  it('holds a fork bomb to VM_PIDS_LIMIT: under runc the forks fail and the VM lives on, under runsc the VM stops whole', async () => {
    const ref = await create(name('forks'));
    await activities.startVmContainer(ref);
    await activities.waitForVmAgent(ref, { timeoutMs: 60_000 });
    // Detached: under runsc an exec whose sandbox dies never ends its stream.
    const bomb = await docker.getContainer(ref.containerId).exec({
      Cmd: [
        'sh',
        '-c',
        `i=0; while [ $i -lt ${vm.pidsLimit * 4} ]; do sleep 3 & i=$((i+1)); done; echo all > /tmp/forked`,
      ],
    });
    // Its (empty) answer stream would keep this process alive.
    (await bomb.start({ Detach: true })).destroy();
    if (vm.runtime === 'runsc') {
      // The limit counts gVisor's own host tasks (a few per process inside): at the limit the sandbox
      // itself cannot go on, and the whole VM stops; the host is untouched and a start brings it back.
      const stopped = await eventually(
        'the sandbox to stop at the pids limit',
        async () => {
          const status = await activities.inspectVmContainer(ref);
          return status.running ? undefined : status;
        },
        60_000,
      );
      assert.equal(stopped.status, 'exited');
      await activities.startVmContainer(ref);
      await activities.waitForVmAgent(ref, { timeoutMs: 60_000 });
    } else {
      // The kernel refuses the forks past the limit (EAGAIN); the shell gives up, the VM runs on.
      await eventually(
        'the bomb to end and its sleeps to exit',
        async () => {
          // While the limit is reached even this exec may fail to start.
          const ps = await execIn(docker, ref.containerId, [
            'sh',
            '-c',
            'ps -e -o comm= | grep -c "^sleep$" || true',
          ]).catch(() => null);
          return ps?.stdout.trim() === '0' ? true : undefined;
        },
        60_000,
        500,
      );
      assert.equal((await activities.inspectVmContainer(ref)).running, true);
      const forked = await execIn(docker, ref.containerId, ['cat', '/tmp/forked']);
      assert.notEqual(forked.exitCode, 0, 'the loop never got past the limit');
    }
    assert.ok(await activities.pingVmAgent(ref), 'the agent answers');
    await activities.removeVmContainer(ref);
  });

  it('gives up waiting for an agent that never answers, with a clear VmAgentUnreachable', async () => {
    const ref = await create(name('silent'));
    await activities.startVmContainer(ref);
    // A run dir with a secret but no agent behind it stands for an agent that hangs at start.
    const elsewhere = mkdtempSync(join(runDirRoot, 'silent-'));
    mkdirSync(dirname(vmAgentEndpoint({ runDir: elsewhere }, vm.secretRoot).secretFile));
    writeFileSync(vmAgentEndpoint({ runDir: elsewhere }, vm.secretRoot).secretFile, 'y'.repeat(64));
    const { heartbeats } = await inActivity(async () => {
      await rejectsWith(
        activities.waitForVmAgent({ ...ref, runDir: elsewhere }, { timeoutMs: 1_500 }),
        VmFailureType.agentUnreachable,
        /did not answer within 1500 ms .*not listening/,
      );
    });
    assert.ok(heartbeats > 1);
    await activities.removeVmContainer(ref);
  });

  it('refuses mounts that expose the Docker socket, and names Docker cannot take', async () => {
    for (const hostPath of ['/var/run/docker.sock', '/run', '/var/run', '/']) {
      const unsafe = createVmContainerActivities({
        docker,
        vm: { ...vm, extraMounts: [{ hostPath, containerPath: '/mnt/x', readOnly: true }] },
        labels: testLabel,
      });
      await rejectsWith(
        unsafe.createVmContainer({ containerName: name('unsafe'), role: 'vm', owner }),
        VmFailureType.invalidInput,
        /Docker socket/,
      );
    }
    assert.equal((await docker.listContainers({ all: true, filters: { name: [name('unsafe')] } })).length, 0);
    await rejectsWith(
      activities.createVmContainer({ containerName: 'bad/name', role: 'vm', owner }),
      VmFailureType.invalidInput,
    );
  });
});
