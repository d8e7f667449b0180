/**
 * The ratchet:<workspaceId> actor against real Temporal, Postgres, Docker and the VM image: the real gh in
 * the VM logged in to core's fake GitHub (its unix socket mounted into the VM, as vm-actor.test.ts does),
 * the real claude in the VM against the fake Anthropic API (host network, ANTHROPIC_BASE_URL), a workspace
 * imported into the VM with a PR url the fake GitHub serves with a failing check.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { AgentClient } from '@factory-factory/core/agent-client';
import { PORTABLE_WORKSPACE_STATE_VERSION } from '@factory-factory/core/protocol';
import { initialRatchetMemory } from '@factory-factory/core/ratchet';
import { type Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../../core/test/support/fake-anthropic.js';
import { checkRun, type FakeGitHub, startFakeGitHub } from '../../core/test/support/fake-github.js';
import { createGitSandbox, type GitSandbox } from '../../core/test/support/git-sandbox.js';
import { getRatchetView } from '../../db/ratchet.js';
import type { Config } from '../../platform/config.js';
import { ensureSearchAttributes } from '../../platform/temporal.js';
import { ensureVmReady } from '../../platform/vm-ready.js';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultRatchetSettings,
  endRatchetUpdate,
  handOffUpdate,
  RatchetErrorType,
  type RatchetSettings,
  type RatchetView,
  ratchetViewQuery,
  stopFixerUpdate,
} from '../../workflows/ratchet/messages.js';
import type { ratchetWorkflow } from '../../workflows/ratchet/workflow.js';
import { allSearchAttributes } from '../../workflows/search-attributes.js';
import {
  defaultVmSettings,
  suspendUpdate,
  terminateUpdate,
  type VmSettings,
  vmContainerQuery,
  vmStateQuery,
} from '../../workflows/vm/messages.js';
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
import { connectTestAgent, runInVm } from '../support/vm-terminal.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

const REMOTES_IN_VM = '/srv/remotes';
const GH_IN_VM = '/run/fake-github';
const FIXER_PROMPT = /You are the ratchet fixer for pull request #(\d+)/;
/** A VM resumed for a poll only sleeps again after this (the VM actor's background grace). */
const BACKGROUND_GRACE_MS = 3_000;

const vmSettings: VmSettings = {
  ...defaultVmSettings,
  healthIntervalMs: 1_000,
  idleTimeoutMs: 60 * 60 * 1000,
  agentTimeoutMs: 90_000,
  backgroundGraceMs: BACKGROUND_GRACE_MS,
};
const settings: RatchetSettings = {
  ...defaultRatchetSettings,
  pollIntervalMs: 1_000,
  fixerCheckIntervalMs: 500,
  suspendedPollIntervalMs: 8_000,
  // Quiet polls are reported every two seconds, so "polled again" shows in the view's last decision.
  watchMaxMs: 2_000,
};

function failureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

describe('ratchet:<workspaceId> actor (real Temporal, VM, gh against the fake GitHub, claude against the fake Anthropic)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const userId = `ratchet-user-${suffix}`;
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let fakeGitHub: FakeGitHub;
  let fake: FakeAnthropic;
  let sandbox: GitSandbox;

  const handle = (workspaceId: string) =>
    client.workflow.getHandle<typeof ratchetWorkflow>(workflowIds.ratchet(workspaceId));
  const vmHandle = () => client.workflow.getHandle(workflowIds.vm(userId));
  const view = (workspaceId: string) => handle(workspaceId).query(ratchetViewQuery);

  async function agent(): Promise<AgentClient> {
    const ref = await vmHandle().query(vmContainerQuery);
    assert.ok(ref, 'the VM is usable');
    return connectTestAgent(ref, 'ratchet-test');
  }

  /** The workspace's fixer sessions in the VM, as its agent lists them. */
  async function fixerSessions(workspaceId: string) {
    const a = await agent();
    try {
      return (await a.listSessions({ workspaceId })).filter((s) => s.workflow === 'ratchet');
    } finally {
      a.close();
    }
  }

  /** The `result` lines of the workspace's fixer turns, for a failure message. */
  async function fixerResults(workspaceId: string): Promise<string> {
    const a = await agent();
    try {
      const results: string[] = [];
      for (const info of (await a.listSessions({ workspaceId })).filter((s) => s.workflow === 'ratchet')) {
        const { snapshot } = await a.getSession(info.id);
        for (const m of snapshot.messages)
          if (m.message?.type === 'result') results.push(JSON.stringify(m.message).slice(0, 1500));
      }
      return results.join(' | ');
    } finally {
      a.close();
    }
  }

  /** Main-loop requests the VM's claude made with a fixer prompt for `pr` as its first message. */
  const promptsFor = (pr: number) =>
    fake.requests.filter((r) => {
      const first = r.messages.find((m) => m.role === 'user')?.text ?? '';
      return FIXER_PROMPT.exec(first)?.[1] === String(pr);
    });

  function start(
    workspaceId: string,
    overrides: Partial<RatchetSettings> = {},
    memory = initialRatchetMemory({ enabled: true }),
  ) {
    return client.workflow.start('ratchetWorkflow', {
      workflowId: workflowIds.ratchet(workspaceId),
      taskQueue: worker.taskQueue,
      args: [{ workspaceId, userId, memory, settings: { ...settings, ...overrides } }],
    });
  }

  /** Imports a workspace on `branch` of o/r with the PR url of `pr` into the VM, and waits for READY. */
  async function workspaceWithPr(workspaceId: string, pr: number): Promise<void> {
    const a = await agent();
    try {
      await a.importWorkspace({
        version: PORTABLE_WORKSPACE_STATE_VERSION,
        workspaceId,
        name: `ratchet ${pr}`,
        repoUrl: `file://${REMOTES_IN_VM}/o/r.git`,
        branchName: `feature/pr-${pr}`,
        baseBranch: 'main',
        location: 'CLOUD',
        prUrl: `https://github.com/o/r/pull/${pr}`,
        prNumber: pr,
        githubIssueNumber: null,
        githubIssueUrl: null,
        ratchetEnabled: true,
        ratchetState: 'IDLE',
        ratchetLastCiRunId: null,
        prReviewLastCheckedAt: null,
        exportedAt: new Date().toISOString(),
      });
      const ready = await a.waitForWorkspace(workspaceId, { timeoutMs: 120_000 });
      assert.equal(ready.status, 'READY', ready.initError ?? '');
    } finally {
      a.close();
    }
  }

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [userId]);
    // What scripts/setup.ts registers on a deployment's namespace, FfcRatchetState included.
    const operator = await Connection.connect({ address: testConfig.temporal.address });
    try {
      await ensureSearchAttributes(operator, testConfig.temporal.namespace, allSearchAttributes);
    } finally {
      await operator.close();
    }
    fake = await startFakeAnthropic();
    fakeGitHub = await startFakeGitHub({
      fixtures: {
        repos: {
          'o/r': {
            pulls: [7, 8].map((number) => ({
              number,
              headRefName: `feature/pr-${number}`,
              headSha: `${number}`.repeat(40),
              checks: [
                checkRun('build', 'SUCCESS'),
                checkRun('test', 'FAILURE', {
                  detailsUrl: `https://github.com/o/r/actions/runs/${900 + number}/job/1`,
                }),
              ],
            })),
          },
        },
      },
    });
    chmodSync(dirname(fakeGitHub.socketPath), 0o755);
    chmodSync(fakeGitHub.socketPath, 0o666);
    sandbox = createGitSandbox();
    await sandbox.createRemote(
      'o/r',
      { 'README.md': 'ratchet\n' },
      { 'feature/pr-7': { 'w.txt': '7\n' }, 'feature/pr-8': { 'w.txt': '8\n' } },
    );
    chmodSync(sandbox.dir, 0o755);
    execFileSync('chown', ['-R', '1000:1000', join(sandbox.dir, 'remotes')]);
    const vm: Config['vm'] = {
      ...testConfig.vm,
      networkMode: 'host',
      repoUrlSchemes: ['https', 'ssh', 'file'],
      extraMounts: [
        { hostPath: dirname(fakeGitHub.socketPath), containerPath: GH_IN_VM, readOnly: false },
        { hostPath: join(sandbox.dir, 'remotes'), containerPath: REMOTES_IN_VM, readOnly: true },
      ],
      extraEnv: {
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: `sk-fake-ratchet-${suffix}`,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
        // gh reaches the fake through its unix socket; anything https that escapes it fails at once.
        HTTPS_PROXY: 'http://127.0.0.1:9',
        // claude honours HTTPS_PROXY for the fake's http:// URL too: only the loopback goes direct.
        NO_PROXY: '127.0.0.1,localhost',
        GH_NO_UPDATE_NOTIFIER: '1',
      },
    };
    worker = await startTestWorker(
      createActivities({ docker, temporal: client, pool: db.pool, vm, vmSettings }),
    );
    await ensureVmReady(client, { userId, taskQueue: worker.taskQueue, settings: vmSettings });
    const ref = await vmHandle().query(vmContainerQuery);
    assert.ok(ref);
    const login = await runInVm(
      ref,
      [
        'mkdir -p ~/.config/gh',
        `printf "http_unix_socket: ${GH_IN_VM}/${basename(fakeGitHub.socketPath)}\\n" > ~/.config/gh/config.yml`,
        `echo ${fakeGitHub.fixtures().token} | gh auth login --hostname github.com --with-token && echo GH-LOGIN-$((40+2))`,
      ].join(' && '),
    );
    assert.match(login, /GH-LOGIN-42/);
  });

  // A failed case must not leave its actor running into the next one (its fixer retries would keep the VM
  // busy and the suspended-VM case would wait forever for a result).
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const id of [`rws-ci-${suffix}`, `rws-stop-${suffix}`])
      await handle(id)
        .terminate('the case failed')
        .catch(() => undefined);
  });

  after(async () => {
    for (const id of [`rws-ci-${suffix}`, `rws-stop-${suffix}`])
      await handle(id)
        .terminate('test over')
        .catch(() => undefined);
    if (client && docker) await removeUserVm(client, docker, userId);
    await worker?.stop();
    await fakeGitHub?.close();
    await fake?.close();
    sandbox?.cleanup();
    await db?.drop();
    await client?.connection.close();
  });

  it('dispatches exactly one fixer for a CI failure (its prompt reaches claude in the VM), none when polled again, and hands the memory off', async () => {
    const workspaceId = `rws-ci-${suffix}`;
    await workspaceWithPr(workspaceId, 7);
    await start(workspaceId);

    const settled = await eventually(
      'the fixer dispatched and its turn over',
      async () => {
        const v = await view(workspaceId);
        return v.lastDispatchKey !== null && v.phase === 'polling' ? v : undefined;
      },
      4 * 60_000,
    );
    assert.match(settled.lastDispatchKey ?? '', /^pr:7\|head:7{40}\|/, 'keyed on the PR head commit');
    assert.equal(
      settled.dispatchesToday,
      1,
      `one dispatch (last fixer: ${JSON.stringify(settled.lastFixerOutcome)})`,
    );
    assert.equal(
      settled.lastFixerOutcome?.outcome,
      'COMPLETED',
      `the fixer's turn ended normally: ${settled.lastFixerOutcome?.detail} (${await fixerResults(workspaceId)})`,
    );
    const sessions = await fixerSessions(workspaceId);
    assert.equal(sessions.length, 1, 'one fixer session in the VM');
    assert.equal(promptsFor(7).length >= 1, true, "the fixer prompt reached the VM's claude");
    assert.match(promptsFor(7)[0]?.messages[0]?.text ?? '', /test/, 'it names the failing check');

    // The same failure, polled again and again: nothing more.
    const settledAt = settled.lastDecision?.atMs ?? 0;
    const later = await eventually('three more polls', async () => {
      const v = await view(workspaceId);
      return (v.lastDecision?.atMs ?? 0) >= settledAt + 3 * settings.pollIntervalMs ? v : undefined;
    });
    assert.equal(later.lastDecision?.action, 'WAITING');
    assert.equal(later.dispatchesToday, 1, 'no second dispatch for the same key');
    assert.equal(later.state, 'CI_FAILED');
    assert.equal((await fixerSessions(workspaceId)).length, 1);
    const prompts = promptsFor(7).length;

    const stored = await eventually('the read model', async () => {
      const v = await getRatchetView(db.pool, userId, workspaceId);
      return v?.lastDispatchKey === settled.lastDispatchKey ? v : undefined;
    });
    assert.equal(stored.workspaceId, workspaceId);
    assert.equal(
      await getRatchetView(db.pool, 'someone-else', workspaceId),
      null,
      'another user sees nothing',
    );

    const handedOff = await handle(workspaceId).executeUpdate(handOffUpdate);
    assert.equal(handedOff.memory.lastDispatchKey, settled.lastDispatchKey);
    assert.deepEqual(handedOff.memory.dispatchKeys, [settled.lastDispatchKey]);
    assert.equal(handedOff.view.phase, 'ended');
    assert.equal(handedOff.view.endedReason, 'handed_off');
    const result = await handle(workspaceId).result();
    assert.deepEqual(result.memory, handedOff.memory, 'the workflow completes with the memory handed off');
    const final = await getRatchetView(db.pool, userId, workspaceId);
    assert.equal(final?.phase, 'ended');
    assert.equal(promptsFor(7).length, prompts, 'nothing was sent to a fixer after the handoff');
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.ratchet(workspaceId), 'ratchet-ci-failure');
  });

  it('refuses a handoff while the fixer works, stops it on request (not retried), and ends when archived', async () => {
    const workspaceId = `rws-stop-${suffix}`;
    await workspaceWithPr(workspaceId, 8);
    // A fixer that talks for a long time: it is still working when the test asks for the handoff.
    fake.script(
      turns.deltas(
        Array.from({ length: 600 }, (_, i) => `word ${i} `),
        200,
      ),
    );
    await start(workspaceId);
    const working = await eventually(
      'the fixer working in the VM',
      async () => {
        const v = await view(workspaceId);
        return v.activeFixer?.sessionId ? v : undefined;
      },
      4 * 60_000,
    );
    await assert.rejects(
      handle(workspaceId).executeUpdate(handOffUpdate),
      (err: unknown) => failureOf(err)?.type === RatchetErrorType.fixerActive,
      'a handoff while a fixer works is refused',
    );
    const stopped = await handle(workspaceId).executeUpdate(stopFixerUpdate);
    assert.equal(stopped.sessionId, working.activeFixer?.sessionId);
    assert.equal(stopped.view.activeFixer, null);
    const afterStop = stopped.view.lastDecision?.atMs ?? 0;
    const polled: RatchetView = await eventually('polls after the stop', async () => {
      const v = await view(workspaceId);
      return (v.lastDecision?.atMs ?? 0) > afterStop + 2 * settings.pollIntervalMs ? v : undefined;
    });
    assert.equal(polled.dispatchesToday, 1, 'a stopped fixer is not retried');
    assert.equal(polled.activeFixer, null);

    const ended = await handle(workspaceId).executeUpdate(endRatchetUpdate, {
      args: [{ reason: 'archived' }],
    });
    assert.equal(ended.phase, 'ended');
    assert.equal((await handle(workspaceId).result()).view.endedReason, 'archived');
  });

  it('resumes a suspended VM for a poll without keeping it awake: the VM suspends again after its grace', async () => {
    const workspaceId = `rws-ci-${suffix}`;
    const asleep = await vmHandle().executeUpdate(suspendUpdate);
    assert.equal(asleep.status, 'SUSPENDED');
    const firstSuspendedAt = Date.parse(asleep.suspendedAt ?? '');
    // Started again as a send would: with the memory the handoff returned, so nothing is dispatched again.
    const memory = (await handle(workspaceId).result()).memory;
    await start(workspaceId, {}, memory);

    const polledAwake = await eventually(
      'a poll through the resumed VM',
      async () => {
        const v = await view(workspaceId);
        return (v.lastDecision?.atMs ?? 0) > firstSuspendedAt ? v : undefined;
      },
      3 * 60_000,
    );
    assert.equal(polledAwake.dispatchesToday, 1, 'the handled key is not dispatched again');
    const asleepAgain = await eventually(
      'the VM suspended again without anyone using it',
      async () => {
        const vm = await vmHandle().query(vmStateQuery);
        return vm.status === 'SUSPENDED' &&
          Date.parse(vm.suspendedAt ?? '') > (polledAwake.lastDecision?.atMs ?? 0)
          ? vm
          : undefined;
      },
      2 * 60_000,
    );
    assert.equal(asleepAgain.suspendReason, null, 'idle after the poll, not a quota');

    await handle(workspaceId).executeUpdate(handOffUpdate);
    await handle(workspaceId).result();
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.ratchet(workspaceId), 'ratchet-suspended-vm-poll');
    await vmHandle().executeUpdate(terminateUpdate);
    if (shouldRecordHistories()) await recordHistory(client, workflowIds.vm(userId), 'vm-background-wake');
  });
});
