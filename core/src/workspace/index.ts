// core/workspace: workspaces on git worktrees, for the in-VM agent (and any other host of core).
//
// Wiring (the composition root, e.g. core/src/agent):
//   const service = new WorkspaceService({
//     store: new SqliteWorkspaceStore(db),                       // or InMemoryWorkspaceStore, or your own
//     git: createGitRunner({ env }),                             // env: HOME with the git credential helper
//     github: githubClient,                                      // core/github GitHubClient fits WorkspaceGitHubBridge
//     reposRoot: '/home/ff/repos', worktreesRoot: '/home/ff/worktrees',
//     location: 'CLOUD',                                         // the side this process runs on
//     fixerActivity: { isFixerActive: (id) => sessions.hasActiveFixer(id) },
//     setup: { timeoutMs: 300_000, env }, logger,
//   });
//   await service.recoverInterrupted();                          // once at start-up
//
// API (all async; failures are WorkspaceError {code, message}, paths that escape are PathEscapeError):
//   create(input: CreateWorkspaceInput)  MANUAL {repoUrl, name} | RESUME_BRANCH {repoUrl, branchName} |
//                                        GITHUB_ISSUE {issueUrl, repoUrl?}, optional id (idempotent);
//                                        resolves READY or FAILED
//   register(input) + beginProvision(id) the same in two steps, for callers that answer before the clone:
//                                        NEW, then {workspace: PROVISIONING, done: READY | FAILED}
//   retry(id)                            FAILED → PROVISIONING → READY | FAILED, at most MAX_INIT_RETRIES times
//   list() / get(id)
//   archive(id)                          READY | FAILED → ARCHIVED, worktree removed, branch kept
//   worktreePath(id) / resolvePath(id, relativePath)
//   takeQueuedPrompt(id)                 the first prompt (issue workspaces), handed out once
//   setPullRequest(id, {prUrl, prNumber}) / updateRatchet(id, fields)
//   exportState(id, {handoffTo?})        PortableWorkspaceState (protocol/workspace.ts); handoffTo flips location
//   importState(payload)                 takes ownership of a workspace handed to this side
//                                        (beginImport: the same, answering once provisioning started)
//   recoverInterrupted()                 PROVISIONING left by a crash → FAILED
export {
  branchCandidate,
  branchNameFor,
  isValidExistingBranchName,
  MAX_BRANCH_NAME_LENGTH,
  MAX_BRANCH_SLUG_LENGTH,
  slugify,
} from './branch-name.js';
export { PathEscapeError, WorkspaceError, type WorkspaceErrorCode } from './errors.js';
export {
  createGitRunner,
  GitCommandError,
  type GitResult,
  type GitRunner,
  type GitRunnerOptions,
} from './git.js';
export { buildIssuePrompt, type IssueForPrompt } from './issue-prompt.js';
export { assertInside, assertWorktreePathSafe, resolveInside } from './path-safety.js';
export { type ParsedRepoUrl, parseRepoUrl, type RepoUrlScheme } from './repo-url.js';
export { RepositoryCache } from './repositories.js';
export {
  type FixerActivity,
  type Provisioning,
  type WorkspaceGitHubBridge,
  type WorkspaceLogger,
  WorkspaceService,
  type WorkspaceServiceDeps,
} from './service.js';
export {
  PROJECT_CONFIG_FILE,
  type ProjectConfig,
  ProjectConfigSchema,
  readProjectConfig,
  runSetupScript,
  SetupScriptCancelledError,
  type SetupScriptOptions,
} from './setup-script.js';
export { SqliteWorkspaceStore } from './sqlite-store.js';
export {
  allowedTransitions,
  checkTransition,
  MAX_INIT_RETRIES,
  type TransitionCheck,
} from './state-machine.js';
export { InMemoryWorkspaceStore, type WorkspacePatch, type WorkspaceStore } from './store.js';
