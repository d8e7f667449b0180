/**
 * The workspace:<workspaceId> actor against real Temporal, Postgres, Docker and the VM image: the VM's own
 * agent clones from a bare repository on the host, mounted read-only into the VM (VM_EXTRA_MOUNTS) and
 * allowed by VM_REPO_URL_SCHEMES=https,ssh,file, exactly as a test deployment is configured.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import { type Client, WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { createWorkspaceAgentActivities } from '../../activities/workspace/agent.js';
import { getWorkspaceView, listWorkspaceViews } from '../../db/workspaces.js';
import type { Config } from '../../platform/config.js';
import { workflowIds } from '../../workflows/ids.js';
import { type RatchetHandOff, ratchetViewQuery } from '../../workflows/ratchet/messages.js';
import { defaultVmSettings, vmContainerQuery } from '../../workflows/vm/messages.js';
import {
  archiveUpdate,
  defaultWorkspaceSettings,
  pullUpdate,
  retryUpdate,
  sendToCloudUpdate,
  setWorkspaceRatchetUpdate,
  WorkspaceErrorType,
  type WorkspaceSource,
  type WorkspaceView,
  workspaceViewQuery,
} from '../../workflows/workspace/messages.js';
import type { workspaceWorkflow } from '../../workflows/workspace/workflow.js';
import { childEnv } from '../support/env.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import { portableWorkspaceState } from '../support/portable-state.js';
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

/** Where the host's bare repositories appear inside every VM of this test. */
const GIT_MOUNT = '/srv/git';
const VM_UID = 1000;
/** Prints `clones=N worktrees=M` for the agent's repository cache and worktrees in a VM. */
const COUNT_CLONES_AND_WORKTREES =
  'echo "clones=$(find /home/ff/.ff-agent/repos -type d -name "*.git" -prune | wc -l) worktrees=$(ls /home/ff/.ff-agent/worktrees | wc -l)"';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: childEnv({
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@example.com',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@example.com',
    }),
  });
}

/** A bare repository `<dir>/<name>.git` with main and `branches`, each with a file naming it. */
function makeBareRepo(dir: string, name: string, branches: Record<string, Record<string, string>>): void {
  const work = mkdtempSync(join(tmpdir(), 'ffc-ws-work-'));
  try {
    git(work, 'init', '-q', '-b', 'main');
    writeFileSync(join(work, 'README.md'), `# ${name}\n`);
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'initial');
    for (const [branch, files] of Object.entries(branches)) {
      git(work, 'checkout', '-q', '-b', branch, 'main');
      for (const [file, text] of Object.entries(files)) writeFileSync(join(work, file), text);
      git(work, 'add', '.');
      git(work, 'commit', '-q', '-m', `on ${branch}`);
    }
    git(dir, 'clone', '-q', '--bare', work, `${name}.git`);
    // The VM's user reads it; a repository owned by another user is refused by git ("dubious ownership").
    execFileSync('chown', ['-R', `${VM_UID}:${VM_UID}`, join(dir, `${name}.git`)]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function portableState(
  workspaceId: string,
  repoName: string,
  overrides: Partial<PortableWorkspaceState> = {},
): PortableWorkspaceState {
  return portableWorkspaceState(workspaceId, {
    repoUrl: `file://${GIT_MOUNT}/${repoName}.git`,
    ...overrides,
  });
}

function failureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

describe('workspace:<workspaceId> actor (real Temporal, Docker, VM image and agent)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const userId = `ws-user-${suffix}`;
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let gitDir: string;

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING', [userId]);
    gitDir = mkdtempSync(join(tmpdir(), 'ffc-ws-git-'));
    chownSync(gitDir, VM_UID, VM_UID);
    makeBareRepo(gitDir, 'app', {
      'feature-x': { 'feature.txt': 'feature x\n' },
      'feature-y': { 'other.txt': 'feature y\n' },
    });
    const vm: Config['vm'] = {
      ...testConfig.vm,
      networkMode: 'none',
      extraMounts: [{ hostPath: gitDir, containerPath: GIT_MOUNT, readOnly: true }],
      repoUrlSchemes: ['https', 'ssh', 'file'],
    };
    const vmSettings = { ...defaultVmSettings, agentTimeoutMs: 90_000 };
    worker = await startTestWorker({
      ...createActivities({ docker, temporal: client, pool: db.pool, vm, vmSettings }),
      // The production workspace activities, with ratchets that poll every second.
      ...createWorkspaceAgentActivities({
        temporal: client,
        vm,
        vmSettings,
        ratchetSettings: { pollIntervalMs: 1_000 },
      }),
    });
  });

  after(async () => {
    await removeUserVm(client, docker, userId);
    await worker?.stop();
    await db?.drop();
    await client?.connection.close();
    if (gitDir) rmSync(gitDir, { recursive: true, force: true });
  });

  const handle = (workspaceId: string) =>
    client.workflow.getHandle<typeof workspaceWorkflow>(workflowIds.workspace(workspaceId));

  /** What the api does for POST /api/workspaces. */
  function send(workspaceId: string, source: WorkspaceSource, as = userId): Promise<WorkspaceView> {
    return client.workflow.executeUpdateWithStart(sendToCloudUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation<typeof workspaceWorkflow>('workspaceWorkflow', {
        workflowId: workflowIds.workspace(workspaceId),
        taskQueue: worker.taskQueue,
        args: [
          {
            workspaceId,
            userId: as,
            source,
            settings: { ...defaultWorkspaceSettings, restoreTimeoutMs: 5 * 60_000 },
          },
        ],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
      args: [{ userId: as, source }],
    });
  }

  /** The read model, as the api reads it, once it shows `status`. */
  const readModelShows = (workspaceId: string, status: WorkspaceView['status']) =>
    eventually(
      `workspace ${workspaceId} ${status} in the read model`,
      async () => {
        const view = await getWorkspaceView(db.pool, userId, workspaceId);
        return view?.status === status ? view : undefined;
      },
      4 * 60_000,
    );

  async function vmRef(): Promise<VmContainerRef> {
    const ref = await client.workflow.getHandle(workflowIds.vm(userId)).query(vmContainerQuery);
    assert.ok(ref, 'the user has a usable VM');
    return ref;
  }

  const worktree = (workspaceId: string) => `/home/ff/.ff-agent/worktrees/workspace-${workspaceId}`;

  it('restores a portable state (READY on its branch), pulls it (DESKTOP), takes it back, and archives it', async () => {
    const workspaceId = `ws-main-${suffix}`;
    const sent = await send(workspaceId, { kind: 'portable', state: portableState(workspaceId, 'app') });
    assert.equal(sent.status, 'PROVISIONING', 'the send answers at once');
    assert.equal(sent.location, 'CLOUD');
    const recorded = await getWorkspaceView(db.pool, userId, workspaceId);
    assert.equal(recorded?.status, 'PROVISIONING', 'the read model is written before the send is answered');
    assert.equal(
      await getWorkspaceView(db.pool, 'someone-else', workspaceId),
      null,
      'another user sees nothing',
    );

    const ready = await readModelShows(workspaceId, 'READY');
    assert.equal(ready.branchName, 'feature-x');
    assert.equal(ready.step, 'done');
    assert.equal(ready.failureReason, null);
    const inVm = await runInVm(
      await vmRef(),
      `git -C ${worktree(workspaceId)} rev-parse --abbrev-ref HEAD; cat ${worktree(workspaceId)}/feature.txt`,
    );
    assert.match(inVm, /feature-x/, 'the worktree is on the branch');
    assert.match(inVm, /feature x/, "the branch's file is in the worktree");

    const again = await send(workspaceId, { kind: 'portable', state: portableState(workspaceId, 'app') });
    assert.equal(again.status, 'READY', 'a second send to a READY workspace answers its view');
    await assert.rejects(
      send(workspaceId, { kind: 'portable', state: portableState(workspaceId, 'app') }, `intruder-${suffix}`),
      (err: unknown) => failureOf(err)?.type === WorkspaceErrorType.notOwner,
      'a send from another user is refused',
    );

    const pulled = await handle(workspaceId).executeUpdate(pullUpdate);
    assert.equal(pulled.state.location, 'DESKTOP');
    assert.equal(pulled.state.branchName, 'feature-x');
    assert.equal(pulled.state.workspaceId, workspaceId);
    assert.deepEqual(pulled.sessions, []);
    assert.equal(pulled.workspace.location, 'DESKTOP');
    assert.equal((await getWorkspaceView(db.pool, userId, workspaceId))?.location, 'DESKTOP');
    const listed = await listWorkspaceViews(db.pool, userId, { location: 'DESKTOP', limit: 10 });
    assert.deepEqual(
      listed.workspaces.map((w) => w.id),
      [workspaceId],
    );

    // Back to the cloud with what the desktop did meanwhile: the actor restores again with the new state.
    const resent = await send(workspaceId, {
      kind: 'portable',
      state: {
        ...pulled.state,
        prUrl: 'https://github.com/acme/app/pull/7',
        prNumber: 7,
        ratchetEnabled: true,
      },
    });
    assert.equal(resent.status, 'PROVISIONING');
    assert.equal(resent.location, 'CLOUD');
    const back = await eventually('the workspace READY in the cloud again', async () => {
      const view = await getWorkspaceView(db.pool, userId, workspaceId);
      return view?.status === 'READY' && view.location === 'CLOUD' ? view : undefined;
    });
    assert.equal(back.prNumber, 7);
    assert.equal(back.ratchetEnabled, true);
    assert.ok(back.version > ready.version, 'every write bumps the version');
    const counts = await runInVm(await vmRef(), COUNT_CLONES_AND_WORKTREES);
    assert.match(counts, /clones=1 worktrees=1\b/, `one clone and one worktree: ${counts}`);

    const archived = await handle(workspaceId).executeUpdate(archiveUpdate);
    assert.equal(archived.status, 'ARCHIVED');
    const final = await handle(workspaceId).result();
    assert.equal(final.status, 'ARCHIVED', 'the actor ends once archived');
    assert.equal((await getWorkspaceView(db.pool, userId, workspaceId))?.status, 'ARCHIVED');
    const gone = await runInVm(
      await vmRef(),
      `test -e ${worktree(workspaceId)} && echo present || echo absent`,
    );
    assert.match(gone, /absent/, 'the worktree is removed in the VM');
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.workspace(workspaceId), 'workspace-lifecycle');
  });

  it('drives the cloud ratchet: started from the sent memory, told the setting, handed off on pull, ended on archive', async () => {
    const workspaceId = `ws-ratchet-${suffix}`;
    const sentKey = 'pr:7|head:abc123|ci:failed:build|review:none|merge:clean';
    const olderKey = 'pr:7|head:000000|ci:failed:build|review:none|merge:clean';
    const ratchet = client.workflow.getHandle(workflowIds.ratchet(workspaceId));
    await send(workspaceId, {
      kind: 'portable',
      state: portableState(workspaceId, 'app', {
        ratchetEnabled: true,
        ratchetState: 'CI_FAILED',
        ratchetLastCiRunId: sentKey,
        ratchetDispatchKeys: [olderKey],
        prReviewLastCheckedAt: '2026-01-01T09:00:00.000Z',
      }),
    });
    await readModelShows(workspaceId, 'READY');
    const started = await eventually('ratchet:<id> runs with the sent memory', async () => {
      const view = await ratchet.query(ratchetViewQuery).catch(() => undefined);
      return view?.enabled ? view : undefined;
    });
    assert.equal(started.lastDispatchKey, sentKey, "the desktop's dedup key is the cloud's");
    assert.equal(started.reviewLastCheckedAt, '2026-01-01T09:00:00.000Z');
    assert.equal(started.activeFixer, null, 'a handled key starts no fixer');
    const shown = await eventually('the ratchet in the workspace read model', async () => {
      const view = await getWorkspaceView(db.pool, userId, workspaceId);
      return view?.ratchet ? view.ratchet : undefined;
    });
    assert.equal(shown.lastDispatchKey, sentKey);

    const off = await handle(workspaceId).executeUpdate(setWorkspaceRatchetUpdate, {
      args: [{ enabled: false }],
    });
    assert.equal(off.ratchetEnabled, false, 'the setting is in the view');
    assert.equal((await ratchet.query(ratchetViewQuery)).enabled, false, 'and told to the loop');
    assert.equal((await getWorkspaceView(db.pool, userId, workspaceId))?.ratchetEnabled, false);
    const on = await handle(workspaceId).executeUpdate(setWorkspaceRatchetUpdate, {
      args: [{ enabled: true }],
    });
    assert.equal(on.ratchetEnabled, true);
    const runId = (await ratchet.describe()).runId;
    assert.equal((await ratchet.query(ratchetViewQuery)).enabled, true, 'the same loop, on again');
    await assert.rejects(
      handle(workspaceId).executeUpdate(setWorkspaceRatchetUpdate, {
        args: [{ enabled: 'yes' } as unknown as { enabled: boolean }],
      }),
      (err: unknown) => failureOf(err)?.type === WorkspaceErrorType.invalidInput,
      'a malformed setting is refused',
    );

    const pulled = await handle(workspaceId).executeUpdate(pullUpdate);
    assert.equal(pulled.state.ratchetLastCiRunId, sentKey, 'the dedup key comes back');
    assert.deepEqual(pulled.state.ratchetDispatchKeys, [olderKey, sentKey]);
    assert.equal(pulled.state.prReviewLastCheckedAt, '2026-01-01T09:00:00.000Z');
    assert.equal(pulled.state.ratchetEnabled, true);
    const ended = (await ratchet.result()) as RatchetHandOff;
    assert.equal(ended.view.endedReason, 'handed_off', 'the cloud loop ended before the pull answered');
    assert.equal((await ratchet.describe()).status.name, 'COMPLETED');

    await send(workspaceId, { kind: 'portable', state: pulled.state });
    await eventually('the workspace READY in the cloud again', async () => {
      const view = await getWorkspaceView(db.pool, userId, workspaceId);
      return view?.status === 'READY' && view.location === 'CLOUD' ? view : undefined;
    });
    const again = await eventually('a new ratchet run after the new send', async () => {
      const description = await ratchet.describe();
      return description.runId !== runId && description.status.name === 'RUNNING' ? description : undefined;
    });
    assert.ok(again);
    assert.equal(
      (await ratchet.query(ratchetViewQuery)).lastDispatchKey,
      sentKey,
      'from what the pull gave back',
    );
    await handle(workspaceId).executeUpdate(archiveUpdate);
    const archived = (await ratchet.result()) as RatchetHandOff;
    assert.equal(archived.view.endedReason, 'archived', 'archiving ends the loop');
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.workspace(workspaceId), 'workspace-ratchet-handoff');
  });

  it("a URL that is not a git URL ends FAILED with the agent's reason; a retry fails the same way, readably", async () => {
    const workspaceId = `ws-badurl-${suffix}`;
    await send(workspaceId, {
      kind: 'portable',
      state: portableState(workspaceId, 'app', { repoUrl: 'definitely not a repository' }),
    });
    const failed = await readModelShows(workspaceId, 'FAILED');
    assert.ok(failed.failureReason && failed.failureReason.length > 0, 'a reason is given');
    assert.match(
      failed.failureReason ?? '',
      /url|repositor/i,
      `the reason names the problem: ${failed.failureReason}`,
    );
    const retried = await handle(workspaceId).executeUpdate(retryUpdate);
    assert.equal(retried.status, 'PROVISIONING');
    const again = await readModelShows(workspaceId, 'FAILED');
    assert.equal(again.failureReason, failed.failureReason);
    await handle(workspaceId).executeUpdate(archiveUpdate);
  });

  it('a repository that does not exist yet ends FAILED with the clone error; once it exists, retry makes it READY', async () => {
    const workspaceId = `ws-missing-${suffix}`;
    await send(workspaceId, {
      kind: 'portable',
      state: portableState(workspaceId, 'later', { branchName: 'feature-z' }),
    });
    const failed = await readModelShows(workspaceId, 'FAILED');
    assert.match(
      failed.failureReason ?? '',
      /later\.git|repository|clone|fatal/i,
      `the reason is the clone's: ${failed.failureReason}`,
    );
    await assert.rejects(
      handle(workspaceId).executeUpdate(pullUpdate),
      (err: unknown) =>
        err instanceof WorkflowUpdateFailedError && failureOf(err)?.type === WorkspaceErrorType.notReady,
      'a FAILED workspace cannot be pulled',
    );

    makeBareRepo(gitDir, 'later', { 'feature-z': { 'z.txt': 'zed\n' } });
    const retried = await handle(workspaceId).executeUpdate(retryUpdate);
    assert.equal(retried.status, 'PROVISIONING');
    assert.equal(retried.failureReason, null);
    const ready = await readModelShows(workspaceId, 'READY');
    assert.equal(ready.branchName, 'feature-z');
    const inVm = await runInVm(await vmRef(), `cat ${worktree(workspaceId)}/z.txt`);
    assert.match(inVm, /zed/);
    const view = await handle(workspaceId).query(workspaceViewQuery);
    assert.equal(view.status, 'READY');
    await handle(workspaceId).executeUpdate(archiveUpdate);
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.workspace(workspaceId), 'workspace-failed-retry');
  });
});
