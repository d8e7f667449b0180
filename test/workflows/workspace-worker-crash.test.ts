/**
 * A worker killed with SIGKILL in the middle of a workspace restore (the agent is cloning or running the
 * setup script), then a new worker: the restore finishes and the VM holds exactly one clone and one
 * worktree. The worker is the production entry (worker/main.ts) configured the way a test deployment is:
 * VM_EXTRA_MOUNTS mounts a host directory of bare repositories into VMs, VM_REPO_URL_SCHEMES allows file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentClientError } from '@factory-factory/core/agent-client';
import { type Client, WithStartWorkflowOperation } from '@temporalio/client';
import type Docker from 'dockerode';
import { getWorkspaceView } from '../../db/workspaces.js';
import { workflowIds } from '../../workflows/ids.js';
import { vmContainerQuery } from '../../workflows/vm/messages.js';
import {
  archiveUpdate,
  defaultWorkspaceSettings,
  sendToCloudUpdate,
  type WorkspaceSource,
} from '../../workflows/workspace/messages.js';
import type { workspaceWorkflow } from '../../workflows/workspace/workflow.js';
import { childEnv } from '../support/env.js';
import { recordHistory, shouldRecordHistories } from '../support/histories.js';
import { portableWorkspaceState } from '../support/portable-state.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { eventually, removeUserVm } from '../support/vm.js';
import { connectTestAgent, runInVm } from '../support/vm-terminal.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

const GIT_MOUNT = '/srv/git';
const VM_UID = 1000;

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

describe('a worker killed with SIGKILL in the middle of a workspace restore', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const userId = `ws-crash-${suffix}`;
  const workspaceId = `ws-crash-${suffix}`;
  const taskQueue = `ws-crash-${suffix}`;
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let gitDir: string;
  const workers: WorkerProcess[] = [];

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING', [userId]);
    // A branch whose setup script takes a few seconds: the restore is certainly under way when the kill lands.
    gitDir = mkdtempSync(join(tmpdir(), 'ffc-ws-crash-'));
    const work = join(gitDir, 'work');
    execFileSync('mkdir', [work]);
    git(work, 'init', '-q', '-b', 'main');
    writeFileSync(join(work, 'README.md'), '# app\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'initial');
    git(work, 'checkout', '-q', '-b', 'slow-setup');
    writeFileSync(join(work, 'factory-factory.json'), JSON.stringify({ scripts: { setup: 'sleep 6' } }));
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'slow setup');
    git(gitDir, 'clone', '-q', '--bare', work, 'repos/app.git');
    rmSync(work, { recursive: true, force: true });
    execFileSync('chown', ['-R', `${VM_UID}:${VM_UID}`, join(gitDir, 'repos')]);
    chownSync(gitDir, VM_UID, VM_UID);
  });

  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await client?.workflow
      .getHandle(workflowIds.workspace(workspaceId))
      .terminate('test over')
      .catch(() => {});
    if (client && docker) await removeUserVm(client, docker, userId);
    await db?.drop();
    await client?.connection.close();
    if (gitDir) rmSync(gitDir, { recursive: true, force: true });
  });

  it('finishes the restore on a new worker with exactly one clone and one worktree', async () => {
    const env = {
      DATABASE_URL: db.url,
      TEMPORAL_TASK_QUEUE: taskQueue,
      VM_EXTRA_MOUNTS: `${join(gitDir, 'repos')}:${GIT_MOUNT}:ro`,
      VM_REPO_URL_SCHEMES: 'https,ssh,file',
    };
    const first = await startWorkerProcess(env);
    workers.push(first);

    const source: WorkspaceSource = {
      kind: 'portable',
      state: portableWorkspaceState(workspaceId, {
        name: 'crash test',
        repoUrl: `file://${GIT_MOUNT}/app.git`,
        branchName: 'slow-setup',
      }),
    };
    const sent = await client.workflow.executeUpdateWithStart(sendToCloudUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation<typeof workspaceWorkflow>('workspaceWorkflow', {
        workflowId: workflowIds.workspace(workspaceId),
        taskQueue,
        args: [{ workspaceId, userId, source, settings: defaultWorkspaceSettings }],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
      args: [{ userId, source }],
    });
    assert.equal(sent.status, 'PROVISIONING');

    // Kill the worker once the agent has the workspace and is still provisioning it (clone or setup script).
    const ref = await eventually(
      'the VM to be usable',
      async () =>
        (await client.workflow
          .getHandle(workflowIds.vm(userId))
          .query(vmContainerQuery)
          .catch(() => null)) ?? undefined,
      120_000,
      50,
    );
    const agent = await connectTestAgent(ref, 'crash-test');
    try {
      await eventually(
        'the agent to be provisioning the workspace',
        async () => {
          try {
            const ws = await agent.getWorkspace(workspaceId);
            return ws.status === 'PROVISIONING' ? ws : undefined;
          } catch (err) {
            if (err instanceof AgentClientError && err.code === 'not_found') return undefined;
            throw err;
          }
        },
        120_000,
        20,
      );
    } finally {
      agent.close();
    }
    await first.kill('SIGKILL');

    const second = await startWorkerProcess(env);
    workers.push(second);
    const ready = await eventually(
      'the workspace READY after the restart',
      async () => {
        const view = await getWorkspaceView(db.pool, userId, workspaceId);
        return view?.status === 'READY' || view?.status === 'FAILED' ? view : undefined;
      },
      4 * 60_000,
    );
    assert.equal(ready.status, 'READY', `restored after the crash (failure: ${ready.failureReason})`);
    assert.equal(ready.branchName, 'slow-setup');

    const counts = await runInVm(
      ref,
      'echo "clones=$(find /home/ff/.ff-agent/repos -type d -name "*.git" -prune | wc -l) worktrees=$(ls /home/ff/.ff-agent/worktrees | wc -l) registered=$(git -C "$(find /home/ff/.ff-agent/repos -type d -name "*.git" -prune | head -1)" worktree list | wc -l)"',
    );
    // git lists the bare clone itself first, then each worktree.
    assert.match(counts, /clones=1 worktrees=1 registered=2\b/, `one clone and one worktree: ${counts}`);

    const archived = await client.workflow
      .getHandle<typeof workspaceWorkflow>(workflowIds.workspace(workspaceId))
      .executeUpdate(archiveUpdate);
    assert.equal(archived.status, 'ARCHIVED');
    if (shouldRecordHistories())
      await recordHistory(client, workflowIds.workspace(workspaceId), 'workspace-worker-crash');
    await second.kill('SIGTERM');
  });
});
