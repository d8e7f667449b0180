import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import {
  DockerEngineNotStartedByDevSh,
  startDockerEngine,
  stopDockerEngine,
} from './support/docker-engine.js';
import { testConfig, testDocker, uniqueSuffix } from './support/services.js';

/** Runs a throwaway container of the VM image as root with the volume at /data; resolves with its output. */
async function runOnVolume(docker: Docker, volume: string, script: string): Promise<string> {
  const container = await docker.createContainer({
    Image: testConfig.vm.image,
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [script],
    User: '0:0',
    HostConfig: { Binds: [`${volume}:/data`], NetworkMode: 'none' },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = String(await container.logs({ stdout: true, stderr: true }));
    assert.equal(StatusCode, 0, logs);
    return logs;
  } finally {
    await container.remove({ force: true });
  }
}

describe('test/support/docker-engine.ts (the real dockerd that dev.sh started)', () => {
  it('refuses an engine dev.sh did not start, saying why', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'ffc-engine-'));
    try {
      await assert.rejects(
        stopDockerEngine({ env: { DOCKER_HOST: 'tcp://10.0.0.5:2376' }, dataDir: elsewhere }),
        (err: unknown) =>
          err instanceof DockerEngineNotStartedByDevSh && /DOCKER_HOST is set/.test(err.message),
      );
      await assert.rejects(
        stopDockerEngine({ env: {}, dataDir: elsewhere }),
        (err: unknown) => err instanceof DockerEngineNotStartedByDevSh && /dockerd\.args/.test(err.message),
      );
      // A record whose pid runs something else (this test process) is not an engine to stop.
      const run = join(elsewhere, 'run');
      mkdirSync(run);
      writeFileSync(join(run, 'dockerd.args'), '/usr/sbin/dockerd\n--bridge=none\n');
      writeFileSync(join(run, 'dockerd.pid'), `${process.pid}\n`);
      await assert.rejects(
        stopDockerEngine({ env: {}, dataDir: elsewhere }),
        (err: unknown) =>
          err instanceof DockerEngineNotStartedByDevSh &&
          /not running the recorded dockerd/.test(err.message),
      );
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('stops the engine and starts it again as dev.sh does: containers are stopped, volumes and files stay', async function () {
    this.timeout(240_000);
    const docker = testDocker();
    const suffix = uniqueSuffix();
    const volume = `ffc-engine-test-${suffix}`;
    await docker.createVolume({ Name: volume });
    // A container that is running when the engine goes down; it exits promptly on SIGTERM.
    const running = await docker.createContainer({
      name: `ffc-engine-test-${suffix}`,
      Image: testConfig.vm.image,
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ["trap 'exit 0' TERM; while true; do sleep 0.2; done"],
      User: '0:0',
      HostConfig: { Binds: [`${volume}:/data`], NetworkMode: 'none' },
    });
    try {
      await runOnVolume(docker, volume, 'echo kept-across-restart > /data/file');
      await running.start();

      await stopDockerEngine();
      await assert.rejects(docker.ping(), 'the engine is down');
      await startDockerEngine();

      await docker.ping();
      assert.equal((await docker.getVolume(volume).inspect()).Name, volume, 'the volume survived');
      const state = (await running.inspect()).State;
      assert.equal(state.Running, false, 'an engine restart stops its containers');
      assert.match(await runOnVolume(docker, volume, 'cat /data/file'), /kept-across-restart/);
    } finally {
      await docker.ping().catch(() => startDockerEngine());
      await running.remove({ force: true }).catch(() => {});
      await docker
        .getVolume(volume)
        .remove()
        .catch(() => {});
    }
  });
});
