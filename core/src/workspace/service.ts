import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseGitHubWebUrl } from '../protocol/github-urls.js';
import type { ProcessGroupRecorder } from '../protocol/process-group.js';
import {
  type CreateWorkspaceInput,
  CreateWorkspaceInputSchema,
  PORTABLE_WORKSPACE_STATE_VERSION,
  type PortableWorkspaceState,
  type PortableWorkspaceStateInput,
  PortableWorkspaceStateSchema,
  type Workspace,
  WorkspaceIdSchema,
  type WorkspaceLocation,
} from '../protocol/workspace.js';
import { branchNameFor, isValidExistingBranchName } from './branch-name.js';
import { WorkspaceError } from './errors.js';
import type { GitRunner } from './git.js';
import { buildIssuePrompt } from './issue-prompt.js';
import { assertInside, assertWorktreePathSafe, resolveInside } from './path-safety.js';
import { parseRepoUrl, type RepoUrlScheme } from './repo-url.js';
import { RepositoryCache } from './repositories.js';
import { runSetupScript, SetupScriptCancelledError } from './setup-script.js';
import type { WorkspacePatch, WorkspaceStore } from './store.js';
import { ensureWorktree, removeWorktree } from './worktrees.js';

/** What the workspace domain needs from GitHub; the composition root wires core/github's GitHubClient. */
export interface WorkspaceGitHubBridge {
  getIssue(issueUrl: string): Promise<{ number: number; title: string; body: string; url: string }>;
  /** The gh user, used as the branch prefix when the caller gives none. */
  getViewerLogin?(): Promise<string>;
}

/** Whether a ratchet fixer session is working in a workspace; handoffs and archiving wait for it. */
export interface FixerActivity {
  isFixerActive(workspaceId: string): boolean | Promise<boolean>;
}

/** Structural subset of a pino logger. */
export interface WorkspaceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WorkspaceServiceDeps {
  store: WorkspaceStore;
  git: GitRunner;
  /** Needed for GITHUB_ISSUE creation (and for the default branch prefix). */
  github?: WorkspaceGitHubBridge;
  /** Absolute directory of the one-clone-per-repository cache (on the VM's volume). */
  reposRoot: string;
  /** Absolute directory holding one worktree per workspace. */
  worktreesRoot: string;
  /** The side this service runs on; imported workspaces must be handed to it. */
  location: WorkspaceLocation;
  clock?: () => Date;
  newId?: () => string;
  /** Clone URL schemes accepted (default https and ssh; tests add file). */
  allowedUrlSchemes?: readonly RepoUrlScheme[];
  setup?: { timeoutMs?: number; env?: Record<string, string | undefined>; maxOutputBytes?: number };
  /** Told of each setup script's process group (the agent reaps what a crashed predecessor left). */
  processGroups?: ProcessGroupRecorder;
  fixerActivity?: FixerActivity;
  /** ratchetEnabled for new workspaces when the input does not say (the desktop's user setting). */
  defaultRatchetEnabled?: boolean;
  logger?: WorkspaceLogger;
}

/**
 * A provisioning that has started: the workspace as it is now, and its outcome (READY or FAILED) later.
 * `done` rejects only when close() cut it short (SetupScriptCancelledError) or the store failed.
 */
export interface Provisioning {
  workspace: Workspace;
  done: Promise<Workspace>;
}

const MAX_CAS_ATTEMPTS = 8;
const silent: WorkspaceLogger = { info: () => undefined, warn: () => undefined };

/**
 * Workspaces on git worktrees: create (manual name, resume a branch, or a GitHub issue), provision (clone
 * once per repository, one worktree per workspace, setup script), archive, and hand off between desktop and
 * cloud through export/import of the portable state. Every state change is a compare-and-swap on the store.
 */
export class WorkspaceService {
  private readonly store: WorkspaceStore;
  private readonly git: GitRunner;
  private readonly repos: RepositoryCache;
  private readonly clock: () => Date;
  private readonly newId: () => string;
  private readonly schemes: readonly RepoUrlScheme[];
  private readonly log: WorkspaceLogger;
  private rootsReady: Promise<void> | null = null;
  /** Aborted by close(): running setup scripts are killed, with everything they started. */
  private readonly lifetime = new AbortController();
  /** Setup scripts running now; close() waits for them to be gone. */
  private readonly runningScripts = new Set<Promise<unknown>>();

  constructor(private readonly deps: WorkspaceServiceDeps) {
    this.store = deps.store;
    this.git = deps.git;
    this.clock = deps.clock ?? (() => new Date());
    this.newId = deps.newId ?? randomUUID;
    this.schemes = deps.allowedUrlSchemes ?? ['https', 'ssh'];
    this.repos = new RepositoryCache(deps.git, deps.reposRoot, this.schemes);
    this.log = deps.logger ?? silent;
  }

  /** Creates and provisions a workspace; resolves with it READY or FAILED (see initError). */
  async create(rawInput: CreateWorkspaceInput): Promise<Workspace> {
    const workspace = await this.register(rawInput);
    return workspace.status === 'NEW' ? this.provision(workspace.id) : workspace;
  }

  /**
   * The first half of create: validates the input, reads the issue, and stores the workspace as NEW without
   * provisioning it (beginProvision does that), so a caller can answer at once and provision in the
   * background. With an input `id` that already exists, returns that workspace (idempotent retry).
   */
  async register(rawInput: CreateWorkspaceInput): Promise<Workspace> {
    const parsed = CreateWorkspaceInputSchema.safeParse(rawInput);
    if (!parsed.success) {
      throw new WorkspaceError('invalid_input', parsed.error.issues[0]?.message ?? 'invalid workspace input');
    }
    const input = parsed.data;
    if (input.id !== undefined) {
      const existing = await this.store.get(input.id);
      if (existing) return this.sameCreation(existing, input);
    }
    const id = this.checkedId(input.id ?? this.newId());
    const now = this.clock().toISOString();
    const base = {
      id,
      status: 'NEW' as const,
      baseBranch: null,
      worktreePath: null,
      initRetryCount: 0,
      initError: null,
      setup: { status: 'NOT_RUN' as const, exitCode: null, output: '' },
      prUrl: null,
      prNumber: null,
      githubIssueNumber: null,
      githubIssueUrl: null,
      ratchetEnabled: input.ratchetEnabled ?? this.deps.defaultRatchetEnabled ?? false,
      ratchetState: 'IDLE' as const,
      ratchetLastCiRunId: null,
      prReviewLastCheckedAt: null,
      ratchetDispatchKeys: [],
      location: this.deps.location,
      queuedPrompt: null,
      createdAt: now,
      updatedAt: now,
      version: 0,
    };

    let record: Workspace;
    if (input.source === 'MANUAL') {
      parseRepoUrl(input.repoUrl, this.schemes);
      const user = input.user ?? (await this.viewerLogin());
      record = {
        ...base,
        name: input.name,
        creationSource: 'MANUAL',
        repoUrl: input.repoUrl,
        branchMode: 'NEW',
        branchName: branchNameFor(user, input.name, id),
        baseBranch: this.checkedBaseBranch(input.baseBranch),
      };
    } else if (input.source === 'RESUME_BRANCH') {
      parseRepoUrl(input.repoUrl, this.schemes);
      if (!isValidExistingBranchName(input.branchName)) {
        throw new WorkspaceError('invalid_input', `Not a valid branch name: ${input.branchName}`);
      }
      await this.assertBranchFree(input.repoUrl, input.branchName, id);
      record = {
        ...base,
        name: input.name ?? input.branchName,
        creationSource: 'RESUME_BRANCH',
        repoUrl: input.repoUrl,
        branchMode: 'EXISTING',
        branchName: input.branchName,
      };
    } else {
      const ref = parseGitHubWebUrl(input.issueUrl, 'issues');
      if (!ref)
        throw new WorkspaceError('invalid_input', `Not a GitHub issue URL: ${input.issueUrl.slice(0, 200)}`);
      const repoUrl = input.repoUrl ?? `https://${ref.host}/${ref.owner}/${ref.repo}.git`;
      parseRepoUrl(repoUrl, this.schemes);
      if (!this.deps.github)
        throw new WorkspaceError('invalid_input', 'GitHub is not available to read the issue');
      let issue: Awaited<ReturnType<WorkspaceGitHubBridge['getIssue']>>;
      try {
        issue = await this.deps.github.getIssue(input.issueUrl);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new WorkspaceError('issue_fetch_failed', `Could not read ${input.issueUrl}: ${why}`, {
          cause: err,
        });
      }
      const user = input.user ?? (await this.viewerLogin());
      record = {
        ...base,
        name: `Issue #${issue.number}: ${issue.title}`.slice(0, 200),
        creationSource: 'GITHUB_ISSUE',
        repoUrl,
        branchMode: 'NEW',
        branchName: branchNameFor(user, `issue-${issue.number}-${issue.title}`, id),
        baseBranch: this.checkedBaseBranch(input.baseBranch),
        githubIssueNumber: issue.number,
        githubIssueUrl: issue.url,
        queuedPrompt: buildIssuePrompt(issue),
      };
    }
    try {
      await this.store.insert(record);
    } catch (err) {
      // A concurrent create with the same id won the insert: answer as the retry it is.
      const winner = input.id === undefined ? null : await this.store.get(input.id);
      if (winner === null) throw err;
      return this.sameCreation(winner, input);
    }
    this.log.info({ workspaceId: id, source: record.creationSource }, 'workspace created');
    return record;
  }

  /**
   * Provisions a NEW workspace or retries a FAILED one (at most MAX_INIT_RETRIES times): clone or fetch,
   * worktree, setup script. Resolves with the workspace READY or FAILED; a concurrent caller that lost the
   * compare-and-swap gets `conflict`.
   */
  async provision(id: string): Promise<Workspace> {
    return (await this.beginProvision(id)).done;
  }

  /**
   * Starts provisioning and resolves as soon as the workspace is PROVISIONING; `done` settles with it READY
   * or FAILED (it never rejects for a provisioning failure, which is recorded in initError).
   */
  async beginProvision(id: string): Promise<Provisioning> {
    const current = await this.require(id);
    if (current.status !== 'NEW' && current.status !== 'FAILED') {
      throw new WorkspaceError(
        'invalid_transition',
        `Workspace ${id} is ${current.status}; only NEW or FAILED can be provisioned`,
      );
    }
    const retry = current.status === 'FAILED';
    const started = await this.store.transition(id, current.status, 'PROVISIONING', {
      initRetryCount: retry ? current.initRetryCount + 1 : current.initRetryCount,
      initError: null,
    });
    if (!started) throw new WorkspaceError('conflict', `Workspace ${id} changed while starting to provision`);
    return { workspace: started, done: this.runProvisioning(started) };
  }

  /**
   * Stops running setup scripts (their whole process groups) and waits until they are gone, and no new
   * one starts. Those workspaces stay PROVISIONING, which recoverInterrupted() takes up at the next start.
   */
  async close(): Promise<void> {
    this.lifetime.abort();
    await Promise.allSettled([...this.runningScripts]);
  }

  private async runProvisioning(started: Workspace): Promise<Workspace> {
    const id = started.id;
    try {
      await this.ensureRoots();
      const repoDir = await this.repos.ensure(started.repoUrl);
      const baseBranch = started.baseBranch ?? (await this.repos.defaultBranch(repoDir));
      const worktreePath = join(this.deps.worktreesRoot, `workspace-${id}`);
      await assertWorktreePathSafe(this.deps.worktreesRoot, worktreePath);
      const branchName = await this.repos.exclusive(repoDir, async () =>
        ensureWorktree(this.git, this.repos, {
          repoDir,
          worktreePath,
          mode: started.branchMode,
          branchName: started.branchName,
          baseBranch,
          reserved: await this.heldBranches(started.repoUrl, id),
        }),
      );
      await assertWorktreePathSafe(this.deps.worktreesRoot, worktreePath);
      const script = runSetupScript(worktreePath, {
        timeoutMs: this.deps.setup?.timeoutMs ?? 300_000,
        env: this.deps.setup?.env ?? { PATH: '/usr/local/bin:/usr/bin:/bin' },
        ...(this.deps.setup?.maxOutputBytes ? { maxOutputBytes: this.deps.setup.maxOutputBytes } : {}),
        signal: this.lifetime.signal,
        ...(this.deps.processGroups ? { processGroups: this.deps.processGroups } : {}),
      });
      this.runningScripts.add(script);
      const setup = await script.finally(() => this.runningScripts.delete(script));
      const patch: WorkspacePatch = { branchName, baseBranch, worktreePath, setup, initError: null };
      const ready = await this.store.transition(id, 'PROVISIONING', 'READY', patch);
      if (!ready) throw new WorkspaceError('conflict', `Workspace ${id} changed while provisioning`);
      this.log.info({ workspaceId: id, branchName, setup: setup.status }, 'workspace ready');
      return ready;
    } catch (err) {
      // Cut short by close(): no outcome to record; the workspace stays PROVISIONING for the next start.
      if (err instanceof SetupScriptCancelledError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      this.log.warn({ workspaceId: id, err: message }, 'workspace provisioning failed');
      const failed = await this.store.transition(id, 'PROVISIONING', 'FAILED', { initError: message });
      return failed ?? this.require(id);
    }
  }

  /** Retries provisioning of a FAILED workspace. */
  retry(id: string): Promise<Workspace> {
    return this.provision(id);
  }

  /** Oldest first, archived included. */
  list(): Promise<Workspace[]> {
    return this.store.list();
  }

  get(id: string): Promise<Workspace | null> {
    return this.store.get(id);
  }

  /**
   * READY or FAILED → ARCHIVED, then the worktree is removed (its branch is kept). Idempotent; refused while a
   * fixer works in it.
   */
  async archive(id: string): Promise<Workspace> {
    const current = await this.require(id);
    if (current.status === 'ARCHIVED') return current;
    await this.assertNoFixer(id);
    if (current.status !== 'READY' && current.status !== 'FAILED') {
      throw new WorkspaceError(
        'invalid_transition',
        `Workspace ${id} is ${current.status} and cannot be archived yet`,
      );
    }
    const archived = await this.store.transition(id, current.status, 'ARCHIVED', {});
    if (!archived) throw new WorkspaceError('conflict', `Workspace ${id} changed while archiving; try again`);
    if (current.worktreePath !== null) {
      try {
        await assertWorktreePathSafe(this.deps.worktreesRoot, current.worktreePath);
        const repoDir = await this.repos.directoryFor(current.repoUrl);
        const worktreePath = current.worktreePath;
        await this.repos.exclusive(repoDir, () => removeWorktree(this.git, repoDir, worktreePath));
      } catch (err) {
        this.log.warn({ workspaceId: id, err: String(err) }, 'worktree of archived workspace not removed');
      }
    }
    return archived;
  }

  /** The workspace's worktree directory, re-checked against symlink swaps on every call. */
  async worktreePath(id: string): Promise<string> {
    const workspace = await this.require(id);
    if (workspace.status !== 'READY' || workspace.worktreePath === null) {
      throw new WorkspaceError(
        'invalid_transition',
        `Workspace ${id} is ${workspace.status} and has no worktree`,
      );
    }
    return assertWorktreePathSafe(this.deps.worktreesRoot, workspace.worktreePath);
  }

  /** A path inside the workspace's worktree from a caller-supplied relative path; PathEscapeError otherwise. */
  async resolvePath(id: string, relativePath: string): Promise<string> {
    return resolveInside(await this.worktreePath(id), relativePath);
  }

  /** Hands the workspace's queued first prompt to exactly one caller (the first session), then clears it. */
  async takeQueuedPrompt(id: string): Promise<string | null> {
    return this.casUpdate(id, (w) => (w.queuedPrompt === null ? null : { queuedPrompt: null })).then(
      ({ before }) => before.queuedPrompt,
    );
  }

  /** Records the PR a session opened for this workspace. */
  async setPullRequest(id: string, pr: { prUrl: string; prNumber: number }): Promise<Workspace> {
    return (await this.casUpdate(id, () => ({ prUrl: pr.prUrl, prNumber: pr.prNumber }))).after;
  }

  /** Persists the ratchet's fields (its dedup key above all) after a poll. */
  async updateRatchet(
    id: string,
    fields: Partial<
      Pick<
        Workspace,
        | 'ratchetEnabled'
        | 'ratchetState'
        | 'ratchetLastCiRunId'
        | 'prReviewLastCheckedAt'
        | 'ratchetDispatchKeys'
      >
    >,
  ): Promise<Workspace> {
    return (await this.casUpdate(id, () => fields)).after;
  }

  /**
   * The portable state (send-to-cloud / pull-from-cloud payload). With `handoffTo`, the workspace's location
   * changes in the same compare-and-swap, which is the handoff itself: this side's ratchet stops polling it.
   * Refused while a fixer is active.
   */
  async exportState(
    id: string,
    options: { handoffTo?: WorkspaceLocation } = {},
  ): Promise<PortableWorkspaceState> {
    const current = await this.require(id);
    if (current.status === 'ARCHIVED')
      throw new WorkspaceError('invalid_transition', `Workspace ${id} is archived`);
    await this.assertNoFixer(id);
    const handoffTo = options.handoffTo;
    const { after } =
      handoffTo === undefined
        ? { after: current }
        : await this.casUpdate(id, (w) => (w.location === handoffTo ? null : { location: handoffTo }));
    return {
      version: PORTABLE_WORKSPACE_STATE_VERSION,
      workspaceId: after.id,
      name: after.name,
      repoUrl: after.repoUrl,
      branchName: after.branchName,
      baseBranch: after.baseBranch,
      location: after.location,
      prUrl: after.prUrl,
      prNumber: after.prNumber,
      githubIssueNumber: after.githubIssueNumber,
      githubIssueUrl: after.githubIssueUrl,
      ratchetEnabled: after.ratchetEnabled,
      ratchetState: after.ratchetState,
      ratchetLastCiRunId: after.ratchetLastCiRunId,
      prReviewLastCheckedAt: after.prReviewLastCheckedAt,
      ratchetDispatchKeys: after.ratchetDispatchKeys,
      exportedAt: this.clock().toISOString(),
    };
  }

  /**
   * Takes ownership of a workspace handed to this side (payload.location must be this side's location).
   * Unknown or archived id: created on the payload's branch and provisioned. Known id: its portable fields
   * are updated; a FAILED one is re-provisioned, a READY one fast-forwards to origin's branch when it can.
   */
  async importState(payload: PortableWorkspaceStateInput): Promise<Workspace> {
    return (await this.beginImport(payload)).done;
  }

  /**
   * importState answering early: resolves once the payload is stored and provisioning (if any) has started;
   * `done` settles with the outcome. A READY workspace is fast-forwarded before this resolves.
   */
  async beginImport(payload: PortableWorkspaceStateInput): Promise<Provisioning> {
    const parsed = PortableWorkspaceStateSchema.safeParse(payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new WorkspaceError(
        'invalid_input',
        `Invalid workspace state${issue ? ` at ${issue.path.join('.')}: ${issue.message}` : ''}`,
      );
    }
    const state = parsed.data;
    if (state.location !== this.deps.location) {
      throw new WorkspaceError(
        'invalid_input',
        `This workspace is handed to ${state.location}, not ${this.deps.location}; export it with handoff to ${this.deps.location}`,
      );
    }
    parseRepoUrl(state.repoUrl, this.schemes);
    if (!isValidExistingBranchName(state.branchName)) {
      throw new WorkspaceError('invalid_input', `Not a valid branch name: ${state.branchName}`);
    }
    await this.assertNoFixer(state.workspaceId);
    const portable: WorkspacePatch = {
      name: state.name,
      baseBranch: state.baseBranch,
      location: state.location,
      prUrl: state.prUrl,
      prNumber: state.prNumber,
      githubIssueNumber: state.githubIssueNumber,
      githubIssueUrl: state.githubIssueUrl,
      ratchetEnabled: state.ratchetEnabled,
      ratchetState: state.ratchetState,
      ratchetLastCiRunId: state.ratchetLastCiRunId,
      prReviewLastCheckedAt: state.prReviewLastCheckedAt,
      ratchetDispatchKeys:
        state.ratchetDispatchKeys.length > 0 || state.ratchetLastCiRunId === null
          ? state.ratchetDispatchKeys
          : [state.ratchetLastCiRunId],
    };
    const existing = await this.store.get(state.workspaceId);
    if (existing && existing.status !== 'ARCHIVED') {
      if (existing.repoUrl !== state.repoUrl || existing.branchName !== state.branchName) {
        throw new WorkspaceError(
          'conflict',
          `Workspace ${state.workspaceId} exists here with another repository or branch`,
        );
      }
      const { after } = await this.casUpdate(state.workspaceId, () => portable);
      if (after.status === 'FAILED') return this.beginProvision(after.id);
      if (after.status === 'READY') await this.fastForward(after);
      return { workspace: after, done: Promise.resolve(after) };
    }
    await this.assertBranchFree(state.repoUrl, state.branchName, state.workspaceId);
    const now = this.clock().toISOString();
    await this.store.insert(
      {
        id: state.workspaceId,
        name: state.name,
        status: 'NEW',
        creationSource: 'IMPORT',
        repoUrl: state.repoUrl,
        branchMode: 'EXISTING',
        branchName: state.branchName,
        baseBranch: state.baseBranch,
        worktreePath: null,
        initRetryCount: 0,
        initError: null,
        setup: { status: 'NOT_RUN', exitCode: null, output: '' },
        prUrl: null,
        prNumber: null,
        githubIssueNumber: null,
        githubIssueUrl: null,
        ratchetEnabled: false,
        ratchetState: 'IDLE',
        ratchetLastCiRunId: null,
        prReviewLastCheckedAt: null,
        ratchetDispatchKeys: [],
        location: state.location,
        queuedPrompt: null,
        createdAt: now,
        updatedAt: now,
        version: 0,
        ...portable,
      },
      { replaceArchived: true },
    );
    return this.beginProvision(state.workspaceId);
  }

  /** After a restart, workspaces left PROVISIONING by a crash become FAILED so they can be retried. */
  async recoverInterrupted(): Promise<Workspace[]> {
    const recovered: Workspace[] = [];
    for (const w of await this.store.list()) {
      if (w.status !== 'PROVISIONING') continue;
      const failed = await this.store.transition(w.id, 'PROVISIONING', 'FAILED', {
        initError: 'Provisioning was interrupted (agent restarted)',
      });
      if (failed) recovered.push(failed);
    }
    return recovered;
  }

  // ---------------------------------------------------------------------------------------------------

  private async fastForward(workspace: Workspace): Promise<void> {
    if (workspace.worktreePath === null) return;
    try {
      const repoDir = await this.repos.directoryFor(workspace.repoUrl);
      const worktreePath = workspace.worktreePath;
      await this.repos.exclusive(repoDir, async () => {
        await this.repos.fetchBranch(repoDir, workspace.branchName);
        await this.git.run([
          '-C',
          worktreePath,
          'merge',
          '--ff-only',
          `refs/remotes/origin/${workspace.branchName}`,
        ]);
      });
    } catch (err) {
      // Local commits that origin lacks (or a dirty tree) stay as they are; the agent merges when it works.
      this.log.warn({ workspaceId: workspace.id, err: String(err) }, 'imported workspace not fast-forwarded');
    }
  }

  /** Read-modify-write with compare-and-swap on the version; `change` returning null means nothing to do. */
  private async casUpdate(
    id: string,
    change: (current: Workspace) => WorkspacePatch | null,
  ): Promise<{ before: Workspace; after: Workspace }> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const before = await this.require(id);
      const patch = change(before);
      if (patch === null) return { before, after: before };
      const after = await this.store.update(id, before.version, patch);
      if (after) return { before, after };
    }
    throw new WorkspaceError('conflict', `Workspace ${id} kept changing; try again`);
  }

  private async require(id: string): Promise<Workspace> {
    const workspace = await this.store.get(id);
    if (!workspace) throw new WorkspaceError('not_found', `No workspace ${id}`);
    return workspace;
  }

  /** A repeated create with the same id must describe the same workspace; anything else is a mistake. */
  private sameCreation(
    existing: Workspace,
    input: { source: string; repoUrl?: string | undefined },
  ): Workspace {
    const otherRepo = input.repoUrl !== undefined && input.repoUrl !== existing.repoUrl;
    if (existing.creationSource !== input.source || otherRepo) {
      throw new WorkspaceError(
        'conflict',
        `Workspace ${existing.id} already exists for another ${otherRepo ? 'repository' : 'source'}; pick another id`,
      );
    }
    return existing;
  }

  private checkedId(id: string): string {
    if (!WorkspaceIdSchema.safeParse(id).success)
      throw new WorkspaceError('invalid_input', `Unusable workspace id: ${id}`);
    return id;
  }

  private checkedBaseBranch(name: string | undefined): string | null {
    if (name === undefined) return null;
    if (!isValidExistingBranchName(name))
      throw new WorkspaceError('invalid_input', `Not a valid branch name: ${name}`);
    return name;
  }

  private async viewerLogin(): Promise<string | null> {
    if (!this.deps.github?.getViewerLogin) return null;
    try {
      return await this.deps.github.getViewerLogin();
    } catch (err) {
      this.log.warn({ err: String(err) }, 'gh login unavailable; branch gets no user prefix');
      return null;
    }
  }

  /**
   * Branch names other live workspaces of the repository hold: resumed branches (even before their worktree
   * exists) and the final names of ready ones. A still-provisioning NEW workspace holds nothing yet: its
   * name is only a wish until git creates the branch, which happens under the clone's lock and is then
   * visible as a ref.
   */
  private async heldBranches(repoUrl: string, exceptId: string): Promise<Set<string>> {
    const held = (await this.store.list()).filter(
      (w) =>
        w.id !== exceptId &&
        w.repoUrl === repoUrl &&
        w.status !== 'ARCHIVED' &&
        (w.branchMode === 'EXISTING' || w.status === 'READY'),
    );
    return new Set(held.map((w) => w.branchName));
  }

  private async assertBranchFree(repoUrl: string, branchName: string, exceptId: string): Promise<void> {
    if ((await this.heldBranches(repoUrl, exceptId)).has(branchName)) {
      throw new WorkspaceError(
        'branch_in_use',
        `Branch "${branchName}" is already used by another workspace`,
      );
    }
  }

  private async assertNoFixer(id: string): Promise<void> {
    if (this.deps.fixerActivity && (await this.deps.fixerActivity.isFixerActive(id))) {
      throw new WorkspaceError('fixer_active', 'Fixer session active — wait or stop it first');
    }
  }

  private ensureRoots(): Promise<void> {
    this.rootsReady ??= (async () => {
      await mkdir(this.deps.reposRoot, { recursive: true });
      await mkdir(this.deps.worktreesRoot, { recursive: true });
      await assertInside(this.deps.worktreesRoot, this.deps.worktreesRoot, true);
    })().catch((err: unknown) => {
      this.rootsReady = null;
      throw err;
    });
    return this.rootsReady;
  }
}
