// The agent owns its children: a CLI mid-turn (with the tool it runs) and a setup script live in process
// groups of their own, so they outlive an agent killed with SIGKILL; the next start must end them. A
// graceful stop must end them itself. Real agent, real claude against the fake Anthropic API, real git.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentClient } from '../../src/agent/client.js';
import { readProcStat } from '../../src/protocol/process-group.js';
import { type AgentProcess, createReadyWorkspace, startAgentProcess } from '../support/agent-process.js';
import { claudeBinPath, TempDirs } from '../support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../support/fake-anthropic.js';
import { createGitSandbox, type GitSandbox } from '../support/git-sandbox.js';

/** Live (not zombie) processes whose environment carries `marker`, with their command lines. */
function processesWithMarker(marker: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`ORPHAN_MARKER=${marker}`))
        continue;
      const stat = readProcStat(pid);
      if (!stat || stat.state === 'Z') continue;
      found.push({ pid, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

async function waitFor(what: string, condition: () => boolean, attempts = 600): Promise<void> {
  for (let attempt = 0; attempt < attempts && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(condition(), what);
}

describe('agent: no process outlives it', () => {
  if (!existsSync('/proc/self/stat')) return;
  const dirs = new TempDirs();
  let sandbox: GitSandbox;
  let anthropic: FakeAnthropic;
  let agent: AgentProcess | null = null;
  const clients: AgentClient[] = [];

  before(async () => {
    sandbox = createGitSandbox();
    anthropic = await startFakeAnthropic();
  });

  after(async () => {
    await anthropic.close();
    sandbox.cleanup();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await agent?.stop();
    agent = null;
    dirs.cleanup();
  });

  /** A fresh agent directory; every child of the agent carries ORPHAN_MARKER=<marker>. */
  function agentRig() {
    const marker = randomUUID();
    const dir = dirs.make('orphan-agent');
    const home = dirs.make('orphan-home');
    const start = async () => {
      agent = await startAgentProcess({
        dir,
        home,
        claudeBin: claudeBinPath(),
        fakeAnthropicUrl: anthropic.url,
        env: { FF_CHILD_ENV_ORPHAN_MARKER: marker },
      });
      const c = await agent.connect();
      clients.push(c);
      return { agent, client: c };
    };
    return { marker, start };
  }

  /** A repository whose setup script runs `sleep <seconds>` the first time only (then it succeeds). */
  async function slowSetupRepo(name: string, seconds: number): Promise<string> {
    const ranOnce = join(sandbox.dir, `${name}-ran`);
    return sandbox.createRemote(`o/${name}`, {
      'factory-factory.json': JSON.stringify({
        scripts: { setup: `if [ ! -e ${ranOnce} ]; then touch ${ranOnce}; sleep ${seconds}; fi` },
      }),
    });
  }

  it('after a SIGKILL mid-turn and mid-setup-script, the next start ends what the dead agent left', async () => {
    const rig = agentRig();
    const repoUrl = await sandbox.createRemote('o/plain', { 'README.md': '# plain\n' });
    const slowUrl = await slowSetupRepo('slow', 301);
    let { agent: running, client } = await rig.start();

    // Mid-turn: the CLI runs a Bash tool that takes minutes (bypassPermissions: no prompt to answer).
    const workspace = await createReadyWorkspace(client, { source: 'MANUAL', repoUrl, name: 'turn' });
    const session = await client.createSession({
      workspaceId: workspace.id,
      permissionMode: 'bypassPermissions',
    });
    anthropic.script(turns.bash('sleep 302', 'wait a while'), turns.text('done'));
    await client.sendMessage({ sessionId: session.id, text: 'sleep for a while' });
    // Mid-setup: a workspace whose setup script hangs.
    const slow = await client.createWorkspace({ source: 'MANUAL', repoUrl: slowUrl, name: 'slow' });
    const running2 = () => processesWithMarker(rig.marker).map((p) => p.cmdline);
    await waitFor('the Bash tool and the setup script are running', () => {
      const cmdlines = running2();
      return cmdlines.some((c) => c.includes('sleep 302')) && cmdlines.some((c) => c.includes('sleep 301'));
    });
    assert.equal((await client.getWorkspace(slow.id)).status, 'PROVISIONING');

    await running.crash();
    // They really outlive the agent (else this test would prove nothing).
    const orphans = running2();
    assert.ok(
      orphans.some((c) => c.includes('sleep 302')),
      `orphans: ${orphans.join(' | ')}`,
    );
    assert.ok(
      orphans.some((c) => c.includes('sleep 301')),
      `orphans: ${orphans.join(' | ')}`,
    );

    ({ agent: running, client } = await rig.start());
    // Reaping runs before the agent listens; SIGKILL lands at once, the exit shortly after.
    await waitFor('no process of the dead agent is left', () =>
      running2().every((c) => !/sleep 30[12]/.test(c)),
    );
    assert.deepEqual(
      running2().filter((c) => /sleep 30[12]/.test(c)),
      [],
    );
    // What the restart resumed is the agent's own: the interrupted provisioning runs again and succeeds.
    const resumed = await client.waitForWorkspace(slow.id, { timeoutMs: 60_000 });
    assert.equal(resumed.status, 'READY', resumed.initError ?? '');
    assert.equal(resumed.setup.status, 'SUCCEEDED');
  });

  it('a graceful stop ends a running setup script with everything it started', async () => {
    const rig = agentRig();
    const slowUrl = await slowSetupRepo('graceful', 303);
    const { agent: running, client } = await rig.start();
    const slow = await client.createWorkspace({ source: 'MANUAL', repoUrl: slowUrl, name: 'graceful' });
    await waitFor('the setup script is running', () =>
      processesWithMarker(rig.marker).some((p) => p.cmdline.includes('sleep 303')),
    );
    await running.stop();
    await waitFor('the setup script is gone', () =>
      processesWithMarker(rig.marker).every((p) => !p.cmdline.includes('sleep 303')),
    );

    // The workspace was left PROVISIONING (not FAILED) and is provisioned again at the next start.
    const again = await rig.start();
    const resumed = await again.client.waitForWorkspace(slow.id, { timeoutMs: 60_000 });
    assert.equal(resumed.status, 'READY', resumed.initError ?? '');
    assert.equal(resumed.initRetryCount, 1);
    assert.equal(resumed.setup.status, 'SUCCEEDED');
  });
});
