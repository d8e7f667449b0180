import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentClient } from '@factory-factory/core/agent-client';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createVmContainerActivities } from '../../activities/vm/lifecycle.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { EventRecorder } from '../../core/test/support/session-events.js';
import type { Config } from '../../platform/config.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { ensureVmImage } from '../../scripts/build-vm-image.js';
import { toolResults, toolUses } from '../e2e/events.js';
import { git } from '../support/cloud-rig.js';
import { connectTestTemporal, testConfig, testDocker, uniqueSuffix } from '../support/services.js';
import { execIn, requireRuntime } from './helpers.js';

/** Where the host's repository directory appears inside the VM. */
const GIT_MOUNT_IN_VM = '/srv/git';

/**
 * The real `claude` in a VM of the configured VM_RUNTIME (`dev.sh test` runs this file under runc and
 * again under runsc), driven through the VM's agent exactly as the api drives it: a workspace cloned from
 * a repository the host mounts in, a session whose scripted turns (the fake Anthropic API on the host's
 * loopback, reached with host networking) make claude run Write and then Bash inside the VM.
 */
describe(`claude in a VM answers through the agent (real Docker, agent, claude; runtime ${testConfig.vm.runtime})`, function () {
  this.timeout(5 * 60_000);
  const suffix = uniqueSuffix();
  const testLabel = { 'ffc.test': `vm-claude-${suffix}` };
  /** A workflow that stays RUNNING (its queue has no worker): a live owner, so no reconciler reaps ours. */
  const owner = `test-vm-claude-owner-${suffix}`;
  let docker: Docker;
  let temporal: Client;
  let fake: FakeAnthropic;
  let vm: Config['vm'];
  let gitDir: string;
  let ref: VmContainerRef;
  let agent: AgentClient;

  before(async function () {
    this.timeout(20 * 60_000);
    docker = testDocker();
    await requireRuntime(docker, testConfig.vm.runtime);
    const { tag } = await ensureVmImage({ docker });
    temporal = await connectTestTemporal();
    await temporal.workflow.start('ownerThatNeverRuns', { taskQueue: `idle-${suffix}`, workflowId: owner });
    fake = await startFakeAnthropic();

    // A bare repository with `main` and `feature-x`, owned by the VM's user (git refuses others').
    gitDir = mkdtempSync(join(tmpdir(), 'ffc-vm-claude-git-'));
    const work = mkdtempSync(join(tmpdir(), 'ffc-vm-claude-seed-'));
    try {
      git(work, 'init', '-q', '-b', 'main');
      writeFileSync(join(work, 'README.md'), '# app\n');
      git(work, 'add', '.');
      git(work, 'commit', '-q', '-m', 'initial');
      git(work, 'checkout', '-q', '-b', 'feature-x');
      git(gitDir, 'clone', '-q', '--bare', work, 'app.git');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    chownSync(gitDir, 1000, 1000);
    execFileSync('chown', ['-R', '1000:1000', join(gitDir, 'app.git')]);

    vm = {
      ...testConfig.vm,
      image: tag,
      networkMode: 'host',
      memoryBytes: 1024 * 1024 * 1024,
      runDirRoot: mkdtempSync(join(tmpdir(), 'ffc-vm-claude-run-')),
      secretRoot: mkdtempSync(join(tmpdir(), 'ffc-vm-claude-secrets-')),
      extraEnv: {
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: `sk-fake-vm-${suffix}`,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
      },
      extraMounts: [{ hostPath: gitDir, containerPath: GIT_MOUNT_IN_VM, readOnly: true }],
      repoUrlSchemes: ['https', 'ssh', 'file'],
    };
    const activities = createVmContainerActivities({ docker, vm, labels: testLabel });
    ref = await activities.createVmContainer({
      containerName: `ffc-test-claude-${suffix}`,
      role: 'vm',
      owner,
    });
    await activities.startVmContainer(ref);
    await activities.waitForVmAgent(ref, { timeoutMs: 90_000 });
    agent = await connectVmAgent(vmAgentEndpoint(ref, vm.secretRoot), { clientName: 'test-claude' });
  });

  after(async () => {
    agent?.close();
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
    await fake?.close();
    for (const dir of [gitDir, vm?.runDirRoot, vm?.secretRoot])
      if (dir) rmSync(dir, { recursive: true, force: true });
    await temporal?.workflow
      .getHandle(owner)
      .terminate('test over')
      .catch(() => undefined);
    await temporal?.connection.close();
  });

  it('runs the VM under the configured runtime', async () => {
    const info = await docker.getContainer(ref.containerId).inspect();
    assert.equal(info.HostConfig.Runtime, testConfig.vm.runtime);
  });

  it('clones a workspace, then claude writes a file with Write and runs Bash on it, both inside the VM', async () => {
    const created = await agent.createWorkspace({
      source: 'RESUME_BRANCH',
      repoUrl: `file://${GIT_MOUNT_IN_VM}/app.git`,
      branchName: 'feature-x',
      id: `claude-${suffix}`,
    });
    const workspace = await agent.waitForWorkspace(created.id);
    assert.equal(workspace.status, 'READY', workspace.initError ?? '');
    const worktree = workspace.worktreePath ?? '';
    assert.ok(worktree.startsWith('/home/ff/'), worktree);

    const session = await agent.createSession({ workspaceId: workspace.id, permissionMode: 'default' });
    const events = new EventRecorder();
    // Every tool asks first (permission mode `default`); the test allows each through the agent, as the
    // dashboard does when its user clicks Allow.
    const asked: string[] = [];
    (await agent.subscribeSession(session.id)).on((event) => {
      events.listener(event);
      if (event.payload.type !== 'permission_request') return;
      asked.push(event.payload.toolName);
      agent
        .answerPermission({ sessionId: session.id, requestId: event.payload.requestId, allow: true })
        .catch(() => undefined);
    });
    fake.script(
      turns.write('notes.txt', `written by claude under ${testConfig.vm.runtime}\n`),
      turns.bash('uname -r > kernel.txt && wc -c < notes.txt > size.txt', 'Record kernel and size'),
      turns.text('Done.'),
    );
    await agent.sendMessage({ sessionId: session.id, text: 'write the notes, then measure them' });
    await events.nextResult(180_000);
    assert.deepEqual(asked, ['Write', 'Bash'], 'each tool asked for permission through the agent');

    const uses = toolUses(events.events);
    assert.deepEqual(
      uses.map((u) => u.name),
      ['Write', 'Bash'],
    );
    const results = toolResults(events.events);
    for (const use of uses) {
      const result = results.find((r) => r.toolUseId === use.id);
      assert.ok(result, `a result for ${use.name}`);
      assert.equal(result.isError, false, `${use.name}: ${result.text}`);
    }
    assert.ok(fake.requests.length >= 3, 'claude asked the fake for each turn');

    const files = await execIn(docker, ref.containerId, [
      'sh',
      '-c',
      `cd ${worktree} && cat notes.txt && cat size.txt && cat kernel.txt && uname -r`,
    ]);
    assert.equal(files.exitCode, 0, files.stderr);
    const [notes, size, kernelSeenByBash, kernel] = files.stdout.trim().split('\n');
    assert.equal(notes, `written by claude under ${testConfig.vm.runtime}`);
    assert.equal(Number(size), Buffer.byteLength(`${notes}\n`));
    assert.equal(kernelSeenByBash, kernel, "claude's Bash ran in the VM, on the VM's kernel");
    await agent.stopSession(session.id);
  });
});
