/**
 * The cloud rig (test/support/cloud-rig.ts) with what the ratchet needs on top: core's fake GitHub on a unix
 * socket, mounted into the VM, with the real `gh` inside the VM logged in to it (the VM's own credentials,
 * as a user's onboarding leaves them); the bare repository mounted writable so a fixer in the VM can push
 * (and be refused); and helpers to set a PR's fixtures (checks with GitHub Actions run ids, head sha,
 * reviews and comments with an author association), to push a "human" commit from the host, and to read
 * the ratchet's view through the api and the prompts the fake Anthropic API received.
 *
 * One fake GitHub serves every workspace of the rig: repository FAKE_REPO, one PR number per workspace.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { AgentSessionInfo, PortableWorkspaceState } from '@factory-factory/core/protocol';
import { z } from 'zod';
import {
  checkRun,
  type FakeCheckInput,
  type FakeGitHub,
  type FakePullRequestInput,
  startFakeGitHub,
} from '../../core/test/support/fake-github.js';
import { workflowIds } from '../../workflows/ids.js';
import { type RatchetView, RatchetViewSchema, ratchetViewQuery } from '../../workflows/ratchet/messages.js';
import type { WorkspaceView } from '../../workflows/workspace/messages.js';
import { type CloudRig, type CloudRigOptions, startCloudRig } from './cloud-rig.js';
import { childEnv } from './env.js';
import type { HttpResult } from './http.js';
import { eventually } from './vm.js';

/** The repository every PR of the rig belongs to. */
export const FAKE_REPO = 'acme/app';
/** Where the fake GitHub's socket directory appears inside the VM. */
const GITHUB_MOUNT_IN_VM = '/run/fake-github';
const VM_UID = 1000;
const HUMAN = {
  GIT_AUTHOR_NAME: 'Human Dev',
  GIT_AUTHOR_EMAIL: 'human@example.invalid',
  GIT_COMMITTER_NAME: 'Human Dev',
  GIT_COMMITTER_EMAIL: 'human@example.invalid',
};

export const prUrl = (prNumber: number): string => `https://github.com/${FAKE_REPO}/pull/${prNumber}`;

/** A GitHub Actions check that failed in run `runId` (the run id is read off the details URL). */
export function failingCheck(name: string, runId: number): FakeCheckInput {
  return checkRun(name, 'FAILURE', {
    detailsUrl: `https://github.com/${FAKE_REPO}/actions/runs/${runId}/job/${runId * 10}`,
  });
}

export function passingCheck(name: string, runId: number): FakeCheckInput {
  return checkRun(name, 'SUCCESS', {
    detailsUrl: `https://github.com/${FAKE_REPO}/actions/runs/${runId}/job/${runId * 10}`,
  });
}

/** The ratchet field of GET /api/workspaces/:id (null until the ratchet wrote its first view). */
const RatchetAnswerSchema = z.object({
  workspace: z.looseObject({ ratchet: RatchetViewSchema.nullable().optional() }),
});

export type RatchetRig = {
  cloud: CloudRig;
  github: FakeGitHub;
  /** The VM's gh login (its own token in the fake's fixtures). */
  ghToken: string;
  /** A new branch `name` off main in the bare repository, with one commit; returns its head sha. */
  newBranch(name: string): string;
  /** The branch's head sha in the bare repository (the remote a fixer pushes to). */
  branchHead(branch: string): string;
  /** Commit messages of the branch in the bare repository, newest first. */
  branchLog(branch: string): string[];
  /** A commit by a human pushed to `branch` from a host clone; returns the new head sha. */
  pushHumanCommit(branch: string, file: string, content: string): string;
  /** Adds or replaces PR `number` of FAKE_REPO (open, on `headRefName`, with the given fixtures). */
  setPullRequest(pr: FakePullRequestInput): void;
  /** Sends a workspace on `branch` whose PR is `prNumber`, and waits until READY. */
  sendWithPr(
    workspaceId: string,
    branch: string,
    prNumber: number,
    overrides?: Partial<PortableWorkspaceState>,
  ): Promise<WorkspaceView>;
  /** POST /api/workspaces/:id/ratchet/wake (poll now). */
  wake(workspaceId: string): Promise<HttpResult>;
  /** The ratchet view of GET /api/workspaces/:id. */
  ratchetView(workspaceId: string): Promise<RatchetView | null>;
  /**
   * The running actor's own view (its `view` query): it moves on every poll, while the read model is written
   * only when something a user would see changed. Null once the actor has ended.
   */
  liveView(workspaceId: string): Promise<RatchetView | null>;
  /** Polls the actor's live view (the api's once it has ended) until `accept` holds; returns that view. */
  waitForView(
    workspaceId: string,
    what: string,
    accept: (view: RatchetView) => boolean,
    timeoutMs?: number,
  ): Promise<RatchetView>;
  /** The workspace's sessions in the VM with workflow 'ratchet'. */
  fixerSessions(workspaceId: string): Promise<AgentSessionInfo[]>;
  /** Every message text of every main-loop request the fake Anthropic API received, in order. */
  promptTexts(): string[];
  stop(): Promise<void>;
};

export async function startRatchetRig(name: string, options: CloudRigOptions = {}): Promise<RatchetRig> {
  // The fake's socket directory must be reachable by the VM's user (uid 1000) through the mount.
  const github = await startFakeGitHub({ fixtures: { repos: { [FAKE_REPO]: { pulls: [] } } } });
  chmodSync(dirname(github.socketPath), 0o755);
  chmodSync(github.socketPath, 0o666);
  let cloud: CloudRig;
  try {
    cloud = await startCloudRig(name, {
      ...options,
      writableGit: true,
      extraVmMounts: [
        `${dirname(github.socketPath)}:${GITHUB_MOUNT_IN_VM}`,
        ...(options.extraVmMounts ?? []),
      ],
      extraVmEnv: { GH_NO_UPDATE_NOTIFIER: '1', GH_PROMPT_DISABLED: '1', ...options.extraVmEnv },
    });
  } catch (err) {
    await github.close();
    throw err;
  }
  const ghToken = github.fixtures().token ?? 'fake-token';
  const safeConfigDir = mkdtempSync(join(tmpdir(), 'ffc-ratchet-gitconfig-'));
  const safeConfig = join(safeConfigDir, 'gitconfig');
  writeFileSync(safeConfig, `[safe]\n\tdirectory = *\n`);
  const hostGit = (cwd: string, ...args: string[]) =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      env: childEnv({ ...HUMAN, GIT_CONFIG_GLOBAL: safeConfig }),
    });
  // Host-side writes leave root-owned objects; the VM's user must be able to push on top of them.
  const giveBackToVm = () => execFileSync('chown', ['-R', `${VM_UID}:${VM_UID}`, cloud.bareRepoPath]);

  const withHostClone = <T>(branch: string, fn: (dir: string) => T): T => {
    const dir = mkdtempSync(join(tmpdir(), 'ffc-ratchet-clone-'));
    try {
      hostGit(dir, 'clone', '-q', '--branch', branch, cloud.bareRepoPath, 'c');
      return fn(join(dir, 'c'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
      giveBackToVm();
    }
  };

  const rig: RatchetRig = {
    cloud,
    github,
    ghToken,
    newBranch(branch) {
      return withHostClone('main', (dir) => {
        hostGit(dir, 'checkout', '-q', '-b', branch);
        writeFileSync(join(dir, `${branch}.txt`), `${branch}\n`);
        hostGit(dir, 'add', '.');
        hostGit(dir, 'commit', '-q', '-m', `start ${branch}`);
        hostGit(dir, 'push', '-q', 'origin', branch);
        return hostGit(dir, 'rev-parse', 'HEAD').trim();
      });
    },
    branchHead: (branch) => hostGit(cloud.bareRepoPath, 'rev-parse', `refs/heads/${branch}`).trim(),
    branchLog: (branch) =>
      hostGit(cloud.bareRepoPath, 'log', '--format=%s', `refs/heads/${branch}`).trim().split('\n'),
    pushHumanCommit(branch, file, content) {
      return withHostClone(branch, (dir) => {
        writeFileSync(join(dir, file), content);
        hostGit(dir, 'add', '.');
        hostGit(dir, 'commit', '-q', '-m', `human: ${file}`);
        hostGit(dir, 'push', '-q', 'origin', branch);
        return hostGit(dir, 'rev-parse', 'HEAD').trim();
      });
    },
    setPullRequest(pr) {
      github.upsertPullRequest(FAKE_REPO, pr);
    },
    async sendWithPr(workspaceId, branch, prNumber, overrides = {}) {
      const { ready } = await cloud.sendAndWaitReady(workspaceId, {
        branchName: branch,
        prUrl: prUrl(prNumber),
        prNumber,
        ...overrides,
      });
      return ready;
    },
    wake: (workspaceId) => cloud.http(`/api/workspaces/${workspaceId}/ratchet/wake`, { method: 'POST' }),
    async ratchetView(workspaceId) {
      const got = await cloud.http(`/api/workspaces/${workspaceId}`);
      assert.equal(got.status, 200, got.text);
      return RatchetAnswerSchema.parse(got.json).workspace.ratchet ?? null;
    },
    async liveView(workspaceId) {
      const handle = cloud.temporal.workflow.getHandle(workflowIds.ratchet(workspaceId));
      const { status } = await handle.describe().catch(() => ({ status: { name: 'NOT_FOUND' } }));
      if (status.name !== 'RUNNING') return null;
      return RatchetViewSchema.parse(await handle.query(ratchetViewQuery));
    },
    waitForView(workspaceId, what, accept, timeoutMs = 3 * 60_000) {
      let last: RatchetView | null = null;
      return eventually(
        what,
        async () => {
          last = (await rig.liveView(workspaceId).catch(() => null)) ?? (await rig.ratchetView(workspaceId));
          return last !== null && accept(last) ? last : undefined;
        },
        timeoutMs,
        250,
      ).catch((err: unknown) => {
        throw new Error(
          `${err instanceof Error ? err.message : String(err)}; last view: ${JSON.stringify(last)}`,
        );
      });
    },
    async fixerSessions(workspaceId) {
      const agent = await cloud.agent('ratchet-rig');
      try {
        return (await agent.listSessions({ workspaceId })).filter((s) => s.workflow === 'ratchet');
      } finally {
        agent.close();
      }
    },
    promptTexts: () => cloud.fake.requests.flatMap((r) => r.messages.map((m) => m.text)),
    async stop() {
      await cloud.stop();
      await github.close();
      rmSync(safeConfigDir, { recursive: true, force: true });
    },
  };

  // The VM exists once a first workspace is in it; then its user logs in to gh, as onboarding does.
  try {
    rig.newBranch('warmup');
    await cloud.sendAndWaitReady(`ws-warm-${cloud.suffix}`, { branchName: 'warmup' });
    // Every scenario sends a workspace of its own: more than the Free plan's one cloud workspace.
    await cloud.db.pool.query("UPDATE users SET plan = 'TEAM' WHERE id = $1", [cloud.user.userId]);
    const login = await cloud.execInVm(
      [
        'mkdir -p ~/.config/gh',
        `printf "http_unix_socket: ${GITHUB_MOUNT_IN_VM}/${basename(github.socketPath)}\\n" > ~/.config/gh/config.yml`,
        `echo ${ghToken} | gh auth login --hostname github.com --with-token`,
        'gh api user --jq .login',
        // The fixer commits in the VM: an identity of its own, like a user's git setup.
        'git config --global user.name "FF Fixer"',
        'git config --global user.email fixer@example.invalid',
      ].join(' && '),
    );
    assert.equal(login.trim(), github.fixtures().viewer.login, 'gh in the VM reaches the fake GitHub');
  } catch (err) {
    await rig.stop().catch(() => undefined);
    throw err;
  }
  return rig;
}

/** Waits until the fake Anthropic API saw a request whose messages contain `marker`; returns its text. */
export async function promptContaining(
  rig: RatchetRig,
  marker: string,
  timeoutMs = 120_000,
): Promise<string> {
  return eventually(
    `a prompt containing ${JSON.stringify(marker)}`,
    async () => rig.promptTexts().find((text) => text.includes(marker)),
    timeoutMs,
    250,
  );
}
