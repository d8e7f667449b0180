/**
 * The whole cloud as a test deployment runs it, for end-to-end tests (test/e2e/): the fake Anthropic API
 * on the host's loopback, a host directory with a bare git repository (main plus `feature-x`, one commit
 * each), the production worker (worker/main.ts) and the production api (api/main.ts) as child processes
 * configured only by environment variables, against the real Postgres, Temporal, Docker and VM image.
 *
 * The deployment's test settings are the ones a user of a test deployment would set: VM_REPO_URL_SCHEMES
 * adds `file`, VM_EXTRA_MOUNTS mounts the repository directory read-only into every VM, VM_NETWORK_MODE=host
 * lets the real `claude` in the VM reach the fake, VM_EXTRA_ENV points it there. One development key
 * (DEV_API_KEY) stands for the rig's one user.
 *
 * The api is a child process so a test can SIGKILL it mid-stream and start another (`restartApi`), on the
 * same port so clients reconnect to the same URL.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { AgentClient } from '@factory-factory/core/agent-client';
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { SessionAnswerSchema, WorkspaceAnswerSchema } from '../../api/contract/workspaces.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../core/test/support/fake-anthropic.js';
import { workflowIds } from '../../workflows/ids.js';
import { vmContainerQuery } from '../../workflows/vm/messages.js';
import type { WorkspaceView } from '../../workflows/workspace/messages.js';
import { type ApiProcess, freePort, startApiProcess } from './api-process.js';
import { childEnv } from './env.js';
import { type HttpResult, request } from './http.js';
import { portableWorkspaceState } from './portable-state.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from './services.js';
import { eventually, removeUserVm } from './vm.js';
import { connectTestAgent } from './vm-terminal.js';
import { startWorkerProcess, type WorkerProcess } from './worker-process.js';

const execFileAsync = promisify(execFile);

/** Where the host's repository directory appears inside every VM of the rig. */
export const GIT_MOUNT_IN_VM = '/srv/git';
/** The VM's user: git refuses a repository owned by someone else ("dubious ownership"). */
const VM_UID = 1000;
const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'FF Test',
  GIT_AUTHOR_EMAIL: 'ff-test@example.invalid',
  GIT_COMMITTER_NAME: 'FF Test',
  GIT_COMMITTER_EMAIL: 'ff-test@example.invalid',
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: childEnv(GIT_IDENTITY) });
}

/** What a test deployment adds to the rig's (test/support/ratchet-rig.ts: a fake GitHub, a writable repo). */
export type CloudRigOptions = {
  /** More VM mounts, `/host/path:/vm/path[:ro]` (VM_EXTRA_MOUNTS items), e.g. a fake GitHub's socket dir. */
  extraVmMounts?: string[];
  /** More VM environment (merged into VM_EXTRA_ENV). */
  extraVmEnv?: Record<string, string>;
  /** More worker settings (e.g. VM_IDLE_TIMEOUT_MS). */
  workerEnv?: Record<string, string>;
  /** Mount the repository directory writable, so a session in the VM can push to the bare repository. */
  writableGit?: boolean;
};

export type CloudRig = {
  suffix: string;
  /** The worker's task queue (workflows a test starts itself run there). */
  taskQueue: string;
  fake: FakeAnthropic;
  temporal: Client;
  docker: Docker;
  db: TestDatabase;
  user: { key: string; userId: string };
  /** The current api process (replaced by restartApi). */
  readonly api: ApiProcess;
  /** The host directory holding `app.git` (mounted at GIT_MOUNT_IN_VM). */
  gitDir: string;
  /** The bare repository on the host. */
  bareRepoPath: string;
  /** Its clone URL as a VM sees it. */
  repoUrlInVm: string;
  /** A clone of the bare repository on the host at `dest`, on `branch` (a desktop's local checkout). */
  cloneOnHost(dest: string, branch: string): void;
  /** SIGKILLs the api (if it still runs) and starts another on the same port. */
  restartApi(options?: { signal?: NodeJS.Signals }): Promise<ApiProcess>;
  /** A request to the current api as the rig's user. */
  http(path: string, init?: { method?: string; body?: unknown }): Promise<HttpResult>;
  /** ws URL of a session's relay on the current api. */
  relayUrl(workspaceId: string, sessionId: string, after?: number): string;
  /** A portable state of the bare repository on `feature-x`, as the desktop exports it. */
  portableState(workspaceId: string, overrides?: Partial<PortableWorkspaceState>): PortableWorkspaceState;
  /** POST /api/workspaces, then GET until READY; returns the 202's view and the READY one. */
  sendAndWaitReady(
    workspaceId: string,
    overrides?: Partial<PortableWorkspaceState>,
  ): Promise<{ sent: WorkspaceView; ready: WorkspaceView }>;
  /** POST …/sessions; returns the session id. */
  createSession(workspaceId: string, body?: Record<string, unknown>): Promise<string>;
  /** The user's VM container (asserts it runs). */
  vmRef(): Promise<VmContainerRef>;
  /** Runs `sh -c script` in the VM as its user (docker exec) and returns stdout. */
  execInVm(script: string): Promise<string>;
  /** The worktree of a workspace inside the VM. */
  worktreeInVm(workspaceId: string): string;
  /** An authenticated client of the VM's agent (the door the api and worker use); close it yourself. */
  agent(clientName: string): Promise<AgentClient>;
  stop(): Promise<void>;
};

/**
 * The bare repo `<dir>/app.git`: main with README.md; feature-x one commit on top with feature.txt; feature-y
 * and feature-z likewise, for more workspaces than one.
 */
function makeBareRepo(dir: string): string {
  const work = mkdtempSync(join(tmpdir(), 'ffc-e2e-seed-'));
  try {
    git(work, 'init', '-q', '-b', 'main');
    writeFileSync(join(work, 'README.md'), '# app\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'initial');
    git(work, 'checkout', '-q', '-b', 'feature-x');
    writeFileSync(join(work, 'feature.txt'), 'feature x\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'feature x');
    // A branch for each further workspace of a test: a branch is checked out in one worktree at a time.
    for (const branch of ['feature-y', 'feature-z']) {
      git(work, 'checkout', '-q', '-b', branch, 'main');
      writeFileSync(join(work, `${branch}.txt`), `${branch}\n`);
      git(work, 'add', '.');
      git(work, 'commit', '-q', '-m', branch);
    }
    // The bare clone's HEAD (what a clone of it calls the default branch) is the seed's current branch.
    git(work, 'checkout', '-q', 'main');
    git(dir, 'clone', '-q', '--bare', work, 'app.git');
    execFileSync('chown', ['-R', `${VM_UID}:${VM_UID}`, join(dir, 'app.git')]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return join(dir, 'app.git');
}

/** Kills a child with `signal`, then with SIGKILL if it has not exited after `graceMs`. */
async function ended(proc: { kill: (signal: NodeJS.Signals) => Promise<void> }, signal: NodeJS.Signals) {
  let timer: NodeJS.Timeout | undefined;
  const graceMs = 15_000;
  await Promise.race([
    proc.kill(signal),
    new Promise<void>((resolveLater) => {
      timer = setTimeout(resolveLater, graceMs);
    }),
  ]);
  clearTimeout(timer);
  await proc.kill('SIGKILL');
}

export async function startCloudRig(name: string, options: CloudRigOptions = {}): Promise<CloudRig> {
  // Whatever was made so far is undone if a later step of the start fails.
  const undo: (() => Promise<void>)[] = [];
  try {
    return await makeCloudRig(name, options, undo);
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw err;
  }
}

async function makeCloudRig(
  name: string,
  options: CloudRigOptions,
  undo: (() => Promise<void>)[],
): Promise<CloudRig> {
  const suffix = uniqueSuffix();
  const user = { key: `e2e-${name}-${suffix}-key-0123456789`, userId: `e2e-${name}-${suffix}` };
  const temporal = await connectTestTemporal();
  undo.push(() => temporal.connection.close());
  const docker = testDocker();
  const db = await createMigratedDatabase();
  undo.push(() => db.drop());
  const fake = await startFakeAnthropic();
  undo.push(() => fake.close());
  const gitDir = mkdtempSync(join(tmpdir(), 'ffc-e2e-git-'));
  undo.push(async () => rmSync(gitDir, { recursive: true, force: true }));
  chownSync(gitDir, VM_UID, VM_UID);
  const bareRepoPath = makeBareRepo(gitDir);
  const taskQueue = `e2e-${suffix}`;

  const shared = {
    DATABASE_URL: db.url,
    TEMPORAL_TASK_QUEUE: taskQueue,
    TEMPORAL_NAMESPACE: testConfig.temporal.namespace,
    FFC_DATA_DIR: testConfig.dataDir,
    NODE_ENV: 'test',
    VM_REPO_URL_SCHEMES: 'https,ssh,file',
  };
  const worker: WorkerProcess = await startWorkerProcess({
    ...shared,
    VM_NETWORK_MODE: 'host',
    VM_EXTRA_MOUNTS: [
      `${gitDir}:${GIT_MOUNT_IN_VM}${options.writableGit ? '' : ':ro'}`,
      ...(options.extraVmMounts ?? []),
    ].join(','),
    VM_EXTRA_ENV: JSON.stringify({
      ANTHROPIC_BASE_URL: fake.url,
      ANTHROPIC_API_KEY: `sk-fake-e2e-${suffix}`,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_MAX_RETRIES: '0',
      ...options.extraVmEnv,
    }),
    ...options.workerEnv,
  });
  undo.push(() => ended(worker, 'SIGTERM'));
  // The VM is made by the first workspace; removing it (and its actor) must come before the worker goes.
  undo.push(() => removeUserVm(temporal, docker, user.userId));
  const apiPort = await freePort();
  const apiEnv = {
    ...shared,
    API_HOST: '127.0.0.1',
    API_PORT: String(apiPort),
    DEV_API_KEY: user.key,
    DEV_USER_ID: user.userId,
    // Pings several times while a test sits idle, so keepalive is part of every test.
    API_WS_PING_INTERVAL_MS: '2000',
  };
  let api = await startApiProcess(apiEnv);
  undo.push(() => ended(api, 'SIGTERM'));
  const oldApis: ApiProcess[] = [];

  const repoUrlInVm = `file://${GIT_MOUNT_IN_VM}/app.git`;
  const auth = { authorization: `Bearer ${user.key}`, 'content-type': 'application/json' };

  const rig: CloudRig = {
    suffix,
    taskQueue,
    fake,
    temporal,
    docker,
    db,
    user,
    get api() {
      return api;
    },
    gitDir,
    bareRepoPath,
    repoUrlInVm,
    cloneOnHost(dest, branch) {
      // The repository belongs to the VM's user: this clone, by the test's user, needs it named safe, in
      // global config (git reads safe.directory nowhere else that its upload-pack child also sees).
      const config = join(mkdtempSync(join(tmpdir(), 'ffc-e2e-gitconfig-')), 'gitconfig');
      writeFileSync(config, `[safe]\n\tdirectory = ${bareRepoPath}\n`);
      try {
        execFileSync('git', ['clone', '-q', '--branch', branch, bareRepoPath, dest], {
          env: childEnv({ ...GIT_IDENTITY, GIT_CONFIG_GLOBAL: config }),
        });
      } finally {
        rmSync(dirname(config), { recursive: true, force: true });
      }
    },
    async restartApi(options = {}) {
      await api.kill(options.signal ?? 'SIGKILL');
      oldApis.push(api);
      api = await startApiProcess(apiEnv);
      return api;
    },
    http: (path, init = {}) =>
      request(`${api.url}${path}`, {
        method: init.method ?? 'GET',
        headers: auth,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      }),
    relayUrl: (workspaceId, sessionId, after) =>
      `${api.url.replace(/^http/, 'ws')}/ws/workspaces/${workspaceId}/sessions/${sessionId}${
        after !== undefined ? `?after=${after}` : ''
      }`,
    portableState: (workspaceId, overrides = {}) =>
      portableWorkspaceState(workspaceId, { name: `e2e ${workspaceId}`, repoUrl: repoUrlInVm, ...overrides }),
    async sendAndWaitReady(workspaceId, overrides = {}) {
      const sent = await rig.http('/api/workspaces', {
        method: 'POST',
        body: { state: rig.portableState(workspaceId, overrides) },
      });
      assert.equal(sent.status, 202, sent.text);
      const sentView = WorkspaceAnswerSchema.parse(sent.json).workspace;
      const ready = await eventually(
        `workspace ${workspaceId} READY`,
        async () => {
          const got = await rig.http(`/api/workspaces/${workspaceId}`);
          assert.equal(got.status, 200, got.text);
          const view = WorkspaceAnswerSchema.parse(got.json).workspace;
          assert.notEqual(view.status, 'FAILED', `the restore failed: ${view.failureReason}`);
          return view.status === 'READY' ? view : undefined;
        },
        3 * 60_000,
        250,
      );
      return { sent: sentView, ready };
    },
    async createSession(workspaceId, body = {}) {
      const created = await rig.http(`/api/workspaces/${workspaceId}/sessions`, { method: 'POST', body });
      assert.equal(created.status, 201, created.text);
      return SessionAnswerSchema.parse(created.json).session.id;
    },
    async vmRef() {
      const ref = await temporal.workflow.getHandle(workflowIds.vm(user.userId)).query(vmContainerQuery);
      assert.ok(ref, 'the user has a running VM');
      return ref;
    },
    async execInVm(script) {
      const ref = await rig.vmRef();
      // Asynchronous: a fake served by this very process (GitHub, Anthropic) must keep answering while the
      // script runs, or a script that calls it waits forever.
      const { stdout } = await execFileAsync('docker', ['exec', ref.containerName, 'sh', '-c', script], {
        encoding: 'utf8',
        env: childEnv(),
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    },
    worktreeInVm: (workspaceId) => `/home/ff/.ff-agent/worktrees/workspace-${workspaceId}`,
    async agent(clientName) {
      return connectTestAgent(await rig.vmRef(), clientName);
    },
    async stop() {
      // Workspace actors of this rig (its own task queue), then the VM and its actor, then the processes.
      try {
        for await (const execution of temporal.workflow.list({
          query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`,
        })) {
          if (execution.workflowId.startsWith('workspace:') || execution.workflowId.startsWith('ratchet:'))
            await temporal.workflow
              .getHandle(execution.workflowId)
              .terminate('e2e test over')
              .catch(() => {});
        }
      } catch {
        // Visibility lagging or down: the VM removal below still ends what matters.
      }
      await removeUserVm(temporal, docker, user.userId);
      for (const old of oldApis) await old.kill('SIGKILL');
      await ended(api, 'SIGTERM');
      await ended(worker, 'SIGTERM');
      await fake.close();
      await db.drop();
      await temporal.connection.close();
      rmSync(gitDir, { recursive: true, force: true });
    },
  };
  return rig;
}
