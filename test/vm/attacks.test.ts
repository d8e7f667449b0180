import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClientError } from '@factory-factory/core/agent-client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import {
  connectVmAgent,
  readVmAgentSecret,
  VM_RUN_DIR_IN_CONTAINER,
  vmAgentEndpoint,
} from '../../platform/vm-agent.js';
import { vmContainerQuery } from '../../workflows/vm/messages.js';
import { testConfig, testDocker } from '../support/services.js';
import { eventually } from '../support/vm.js';
import { startVmActorRig, type VmActorRig } from '../support/vm-actor-rig.js';
import { runInVm } from '../support/vm-terminal.js';
import { execIn, requireRuntime } from './helpers.js';

/**
 * A user attacks the host from inside their own VM, through its terminal, while a second user's VM runs.
 * The VM's user owns everything in its run dir and may plant anything there; each attempt must be refused
 * by the host, leave the other VM untouched, and leave the attacker's own VM working (repaired by the host
 * where the attacker broke it). `dev.sh test` runs this file under runc and again under runsc (VM_RUNTIME).
 */
describe(`attacks from inside a VM on the host and on another user’s VM (real Docker, Temporal, agent; runtime ${testConfig.vm.runtime})`, function () {
  this.timeout(10 * 60_000);
  let rig: VmActorRig;
  let mallory: string;
  let victim: string;
  let suffix: string;

  const endpointOf = (ref: VmContainerRef) => vmAgentEndpoint(ref, testConfig.vm.secretRoot);
  const refOf = (userId: string) => rig.containerOf(userId);
  /**
   * The victim's agent answers, soon sees only the connection asking, and still has the file we left.
   * Only a peer that knows the victim's secret counts as a connection, so any other is the host's: the VM
   * actor's own health check may be open for a moment (CI once caught one), but one left open by an
   * attack would stay, so the count must settle to 1 within a few seconds, not be 1 at one instant.
   */
  async function victimUntouched(): Promise<void> {
    const ref = await refOf(victim);
    const agent = await connectVmAgent(endpointOf(ref), { clientName: 'test-victim-check' });
    let seen = 0;
    try {
      const alone = await eventually(
        'the victim agent to have no connection but ours',
        async () => {
          seen = (await agent.health()).connections;
          return seen === 1 ? true : undefined;
        },
        15_000,
        250,
      ).catch(() => false);
      assert.ok(alone, `nobody else stays connected to the victim agent (last seen ${seen} connections)`);
    } finally {
      agent.close();
    }
    const read = await execIn(rig.docker, ref.containerId, ['cat', '/home/ff/private.txt']);
    assert.equal(read.stdout.trim(), `victim-private-${suffix}`);
  }
  /** The attacker's VM answers again: the host restarted it and the agent cleared its socket path. */
  async function repaired(): Promise<void> {
    await eventually(
      'the attacker VM to be repaired by the host',
      async () => {
        const ref = await rig
          .handle(mallory)
          .query(vmContainerQuery)
          .catch(() => null);
        if (!ref) return undefined;
        const agent = await connectVmAgent(endpointOf(ref)).catch(() => null);
        if (!agent) return undefined;
        agent.close();
        return true;
      },
      120_000,
      500,
    );
    const state = await rig.state(mallory);
    assert.ok(state.status === 'ONBOARDING' || state.status === 'READY', state.status);
  }

  before(async () => {
    await requireRuntime(testDocker(), testConfig.vm.runtime);
    rig = await startVmActorRig();
    suffix = rig.suffix;
    mallory = await rig.newUser('mallory');
    victim = await rig.newUser('victim');
    // Each attack that breaks the attacker's socket costs one restart: no crash-loop FAILED here.
    for (const userId of [mallory, victim]) await rig.ensureReady(userId, { maxCrashes: 20 });
    await runInVm(await refOf(victim), `echo victim-private-${suffix} > ~/private.txt`);
  });

  after(async () => {
    await rig?.stop();
  });

  it('a symlink to the other VM’s socket is refused; a connect that still reached it is refused by the handshake', async () => {
    const victimRef = await refOf(victim);
    const malloryRef = await refOf(mallory);
    const target = join(victimRef.runDir, 'agent.sock');
    await runInVm(
      malloryRef,
      `ln -s ${target} ${VM_RUN_DIR_IN_CONTAINER}/evil && mv -Tf ${VM_RUN_DIR_IN_CONTAINER}/evil ${VM_RUN_DIR_IN_CONTAINER}/agent.sock`,
    ).catch(() => ''); // the terminal's own connection may end with the socket swap

    // What the api's terminal relay and the worker's health check do: refused, nothing sent anywhere.
    await assert.rejects(
      connectVmAgent(endpointOf(malloryRef)),
      (err: unknown) => err instanceof AgentClientError && /not a socket/.test(err.message),
    );
    // Had the host lost the race between its check and connect(): the victim's agent cannot prove it knows
    // the attacker VM's secret, so the host stops after its hello.
    await assert.rejects(
      connectVmAgent({ socketPath: target, secretFile: endpointOf(malloryRef).secretFile }),
      (err: unknown) => err instanceof AgentClientError && err.code === 'unauthorized',
    );
    await victimUntouched();
    await repaired();
  });

  it('the secret cannot be replaced from inside (symlink, FIFO, directory, hard link, huge file); planting them where it used to live changes nothing', async () => {
    const ref = await refOf(mallory);
    const secretBefore = await readVmAgentSecret(endpointOf(ref).secretFile);
    const dir = '/run/ff-agent-secret';
    const out = await runInVm(
      ref,
      [
        `ln -sf /proc/1/environ ${dir}/secret 2>/dev/null && echo A-replaced || echo A-refused`,
        `rm -f ${dir}/secret 2>/dev/null && echo B-replaced || echo B-refused`,
        `mkfifo ${dir}/x 2>/dev/null && echo C-replaced || echo C-refused`,
        `mkdir ${dir}/y 2>/dev/null && echo D-replaced || echo D-refused`,
        `ln ${dir}/secret ${dir}/z 2>/dev/null && echo E-replaced || echo E-refused`,
        `head -c 100000000 /dev/zero > ${dir}/secret 2>/dev/null && echo F-replaced || echo F-refused`,
        // Where the secret used to live (the VM-writable run dir): a trap the host must never walk into.
        `ln -s /proc/1/environ ${VM_RUN_DIR_IN_CONTAINER}/secret && mkfifo ${VM_RUN_DIR_IN_CONTAINER}/secret.fifo && echo G-planted`,
      ].join('; '),
    );
    for (const step of 'ABCDEF') assert.match(out, new RegExp(`${step}-refused`), out);
    assert.match(out, /G-planted/);
    assert.equal(await readVmAgentSecret(endpointOf(ref).secretFile), secretBefore, 'secret unchanged');
    const agent = await connectVmAgent(endpointOf(ref));
    agent.close();
    await victimUntouched();
  });

  it('the host reads a secret without following links, blocking on a FIFO, or reading a huge file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ffc-secret-read-'));
    try {
      const real = join(dir, 'real');
      writeFileSync(real, 'r'.repeat(64));
      symlinkSync(real, join(dir, 'link'));
      mkdirSync(join(dir, 'directory'));
      writeFileSync(join(dir, 'huge'), Buffer.alloc(10 * 1024 * 1024, 0x61));
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      assert.equal(await readVmAgentSecret(real), 'r'.repeat(64));
      for (const name of ['link', 'directory', 'huge', 'fifo']) {
        await assert.rejects(readVmAgentSecret(join(dir, name)), `${name} refused`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a listener of the user’s own on the socket path captures only a fresh nonce', async () => {
    const ref = await refOf(mallory);
    const secret = readFileSync(endpointOf(ref).secretFile, 'utf8').trim();
    const listener = [
      "const net=require('net'),fs=require('fs');",
      "net.createServer(s=>s.on('data',d=>fs.appendFileSync('/tmp/captured',d)))",
      `.listen('${VM_RUN_DIR_IN_CONTAINER}/listener.sock',()=>fs.renameSync('${VM_RUN_DIR_IN_CONTAINER}/listener.sock','${VM_RUN_DIR_IN_CONTAINER}/agent.sock'))`,
    ].join('');
    await runInVm(ref, `(nohup node -e "${listener}" >/dev/null 2>&1 &) ; sleep 1`).catch(() => '');
    await assert.rejects(
      connectVmAgent(endpointOf(ref), { connectTimeoutMs: 1_500 }),
      (err: unknown) => err instanceof AgentClientError && err.code === 'timeout',
    );
    const captured = await execIn(rig.docker, ref.containerId, ['cat', '/tmp/captured']);
    assert.ok(captured.stdout.length > 0, 'the listener received the hello');
    assert.ok(!captured.stdout.includes(secret), 'the secret never crossed the socket');
    for (const line of captured.stdout.trim().split('\n')) {
      const frame = JSON.parse(line) as { type: string; clientNonce: string };
      assert.equal(frame.type, 'hello');
      assert.match(frame.clientNonce, /^[0-9a-f]{64}$/);
    }
    await victimUntouched();
    await repaired();
  });
});
