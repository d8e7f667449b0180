/**
 * A whole cloud for the benchmarks, as the tests set it up (test/api/session-relay.test.ts): real Temporal,
 * Postgres, Docker and VM image, a worker in this process, the api in a process of its own (api-main.ts),
 * one user whose VM is running (warm) with the real `claude` talking to the fake Anthropic API on the host's
 * loopback, and a bare repository on the host mounted into the VM (file:// clone URLs, a test deployment's
 * VM_REPO_URL_SCHEMES) with `branches` spare branches for workspaces to import.
 *
 * `agent` is this process's own connection to the VM's agent, through connectVmAgent like every caller.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentClient } from '@factory-factory/core/agent-client';
import { safeParseJson } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { z } from 'zod';
import { createActivities } from '../../activities/index.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { createWorkspaceReadModelActivities } from '../../activities/workspace/read-model.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../core/test/support/fake-anthropic.js';
import type { Config } from '../../platform/config.js';
import { connectVmAgent, vmAgentEndpoint } from '../../platform/vm-agent.js';
import { childEnv } from '../../test/support/env.js';
import { type HttpResult, request } from '../../test/support/http.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../../test/support/services.js';
import { removeUserVm } from '../../test/support/vm.js';
import { type RunningTestWorker, startTestWorker } from '../../test/support/worker.js';
import { workflowIds } from '../../workflows/ids.js';
import { vmContainerQuery } from '../../workflows/vm/messages.js';
import type { ApiProcessArgs } from './api-main.js';

/** Where the host's bare repositories appear inside the VM. */
export const GIT_IN_VM = '/srv/git';
const VM_UID = 1000;
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

const ApiStats = z.object({
  relay: z
    .object({ relays: z.number(), subscriptions: z.number(), ended: z.record(z.string(), z.number()) })
    .loose()
    .optional(),
  agents: z.object({ connections: z.number(), leases: z.number() }).loose(),
  rssBytes: z.number(),
});
export type ApiStats = z.output<typeof ApiStats>;

export type BenchCloud = {
  temporal: Client;
  docker: Docker;
  db: TestDatabase;
  fake: FakeAnthropic;
  worker: RunningTestWorker;
  userId: string;
  key: string;
  apiUrl: string;
  apiPid: number;
  /** The api's RSS from /proc, bytes. */
  apiRss: () => number;
  /** The relay's and the agent connections' counters, and the api's RSS, from the api process. */
  apiStats: () => Promise<ApiStats>;
  vm: VmContainerRef;
  agent: AgentClient;
  /** file:// URL of the bench repository as the VM sees it. */
  repoUrl: string;
  /** Spare branches of the repository (one per imported workspace: a branch is one workspace's). */
  branches: string[];
  http: (path: string, init?: { method?: string; body?: unknown }) => Promise<HttpResult>;
  relayUrl: (workspaceId: string, sessionId: string, after?: number) => string;
  /** A READY workspace made through the agent, with the read-model row the actor would write. */
  readyWorkspace: (workspaceId: string) => Promise<void>;
  close: () => Promise<void>;
};

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', args, {
    cwd,
    stdio: 'ignore',
    env: childEnv({
      GIT_AUTHOR_NAME: 'b',
      GIT_AUTHOR_EMAIL: 'b@example.com',
      GIT_COMMITTER_NAME: 'b',
      GIT_COMMITTER_EMAIL: 'b@example.com',
    }),
  });
}

/** `<dir>/app.git`, bare, with main and `branches`, readable by the VM's user. */
function makeBareRepo(dir: string, branches: string[]): void {
  const work = mkdtempSync(join(tmpdir(), 'ffc-bench-work-'));
  try {
    git(work, 'init', '-q', '-b', 'main');
    writeFileSync(join(work, 'README.md'), '# bench\n');
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'initial');
    for (const branch of branches) git(work, 'branch', branch);
    git(dir, 'clone', '-q', '--bare', work, 'app.git');
    // git refuses a repository owned by another user ("dubious ownership").
    execFileSync('chown', ['-R', `${VM_UID}:${VM_UID}`, join(dir, 'app.git')]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb ? Number(kb) * 1024 : Number.NaN;
}

/** Starts api-main.ts and resolves with its URL once it listens. */
async function startApiProcess(args: ApiProcessArgs): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(here, 'api-main.ts'), JSON.stringify(args)],
    { cwd: root, env: childEnv({ LOG_LEVEL: 'warn' }), stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const start = out.indexOf('{"benchUrl"');
      const nl = start < 0 ? -1 : out.indexOf('\n', start);
      if (nl < 0) return;
      child.stdout?.off('data', onData);
      const parsed = safeParseJson(z.object({ benchUrl: z.string() }), out.slice(start, nl));
      if (parsed.ok) resolveUrl(parsed.value.benchUrl);
      else reject(new Error(`the api process said: ${out}`));
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the api process exited with ${code}`)));
  });
  return { child, url };
}

export async function startBenchCloud(options: { branches?: number } = {}): Promise<BenchCloud> {
  const suffix = uniqueSuffix();
  const userId = `bench-${suffix}`;
  const key = `bench-key-${suffix}-0123456789`;
  const temporal = await connectTestTemporal();
  const docker = testDocker();
  const db = await createMigratedDatabase();
  const fake = await startFakeAnthropic();
  const gitDir = mkdtempSync(join(tmpdir(), 'ffc-bench-git-'));
  chownSync(gitDir, VM_UID, VM_UID);
  const branches = Array.from({ length: options.branches ?? 0 }, (_, i) => `bench-${i}`);
  makeBareRepo(gitDir, branches);
  const vmConfig: Config['vm'] = {
    ...testConfig.vm,
    networkMode: 'host',
    repoUrlSchemes: ['https', 'ssh', 'file'],
    extraMounts: [{ hostPath: gitDir, containerPath: GIT_IN_VM, readOnly: true }],
    extraEnv: {
      ANTHROPIC_BASE_URL: fake.url,
      ANTHROPIC_API_KEY: 'sk-fake-bench',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_MAX_RETRIES: '0',
    },
  };
  const worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm: vmConfig }));
  const { child, url: apiUrl } = await startApiProcess({
    databaseUrl: db.url,
    users: { [key]: userId },
    taskQueue: worker.taskQueue,
    repoUrlSchemes: vmConfig.repoUrlSchemes,
  });
  const apiPid = child.pid ?? 0;

  const http = (path: string, init: { method?: string; body?: unknown } = {}) =>
    request(`${apiUrl}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  let statsWaiter: ((line: string) => void) | null = null;
  let statsOut = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    statsOut += chunk.toString('utf8');
    for (let nl = statsOut.indexOf('\n'); nl >= 0; nl = statsOut.indexOf('\n')) {
      const line = statsOut.slice(0, nl);
      statsOut = statsOut.slice(nl + 1);
      // The api's own log lines (warnings) share its stdout.
      if (!line.startsWith('{"benchStats"')) {
        process.stderr.write(`[api process] ${line}\n`);
        continue;
      }
      const wake = statsWaiter;
      statsWaiter = null;
      wake?.(line);
    }
  });
  const apiStats = () =>
    new Promise<ApiStats>((resolveStats, reject) => {
      statsWaiter = (line) => {
        const parsed = safeParseJson(z.object({ benchStats: ApiStats }), line);
        if (parsed.ok) resolveStats(parsed.value.benchStats);
        else reject(parsed.error);
      };
      child.stdin?.write('stats\n');
    });

  const close = async () => {
    await removeUserVm(temporal, docker, userId);
    child.stdin?.end();
    await new Promise((done) => {
      if (child.exitCode !== null) done(undefined);
      else {
        child.once('exit', done);
        child.kill('SIGTERM');
      }
    });
    await worker.stop();
    await fake.close();
    await db.drop();
    await temporal.connection.close();
    rmSync(gitDir, { recursive: true, force: true });
  };

  try {
    const created = await http('/api/vms', { method: 'POST' });
    if (created.status !== 200) throw new Error(`POST /api/vms: ${created.status} ${created.text}`);
    const vm = await temporal.workflow.getHandle(workflowIds.vm(userId)).query(vmContainerQuery);
    if (!vm) throw new Error('the VM is READY but has no container');
    const agent = await connectVmAgent(vmAgentEndpoint(vm, testConfig.vm.secretRoot), {
      clientName: 'bench',
    });
    const repoUrl = `file://${GIT_IN_VM}/app.git`;
    const readModel = createWorkspaceReadModelActivities({ pool: db.pool });
    const readyWorkspace = async (workspaceId: string) => {
      await agent.createWorkspace({ source: 'MANUAL', id: workspaceId, repoUrl, name: workspaceId });
      const ready = await agent.waitForWorkspace(workspaceId, { timeoutMs: 120_000, intervalMs: 50 });
      if (ready.status !== 'READY') throw new Error(`workspace ${workspaceId}: ${ready.initError}`);
      const now = new Date().toISOString();
      await readModel.recordWorkspaceView({
        id: workspaceId,
        userId,
        name: ready.name,
        status: 'READY',
        location: 'CLOUD',
        repoUrl: ready.repoUrl,
        branchName: ready.branchName,
        baseBranch: ready.baseBranch,
        prUrl: null,
        prNumber: null,
        githubIssueUrl: null,
        githubIssueNumber: null,
        ratchetEnabled: false,
        ratchetState: 'IDLE',
        failureReason: null,
        step: 'done',
        createdAt: now,
        updatedAt: now,
        version: 0,
      });
    };
    return {
      temporal,
      docker,
      db,
      fake,
      worker,
      userId,
      key,
      apiUrl,
      apiPid,
      apiRss: () => rssOf(apiPid),
      apiStats,
      vm,
      agent,
      repoUrl,
      branches,
      http,
      relayUrl: (workspaceId, sessionId, after) =>
        `${apiUrl.replace('http', 'ws')}/ws/workspaces/${workspaceId}/sessions/${sessionId}${
          after !== undefined ? `?after=${after}` : ''
        }`,
      readyWorkspace,
      close: async () => {
        agent.close();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The VM container's memory use now (docker stats, one shot), bytes, less the inactive page cache as
 * `docker stats` shows it.
 */
export async function containerMemory(docker: Docker, containerName: string): Promise<number> {
  const { memory_stats: memory } = await docker.getContainer(containerName).stats({ stream: false });
  const cache = memory.stats?.inactive_file ?? memory.stats?.total_inactive_file ?? 0;
  return (memory.usage ?? Number.NaN) - cache;
}
