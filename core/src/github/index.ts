// core/github: GitHub through the `gh` binary only (execFile, injected binary path, env and timeout), so
// the user's credentials stay on the machine (the VM) where gh is logged in.
//
//   const github = new GitHubClient({ runner: createGhRunner({ env, ghPath: '/usr/bin/gh' }) });
//   await github.getPullRequestSnapshot('https://github.com/o/r/pull/1', { trust });   // → PullRequestSnapshot
//   await github.getIssue('https://github.com/o/r/issues/5');                // → GitHubIssue
//   await github.getViewerLogin();                                            // cached 5 min
//
// gh commands the product depends on (gh 2.23 and later):
//   gh pr view <n> --repo [host/]o/r --json number,state,isDraft,reviewDecision,mergedAt,mergeStateStatus,
//        statusCheckRollup,headRefName,headRefOid,baseRefName,reviews,comments,url
//   gh api [--hostname h] --include repos/o/r/pulls/<n>/comments?per_page=100&page=<p>
//   gh api [--hostname h] user --jq .login
//   gh issue view <n> --repo [host/]o/r --json number,title,body,url
//   gh --version
// Failures are GitHubError with code cli_not_installed | auth_required | pr_not_found | issue_not_found |
// rate_limited (retryAfterSeconds when GitHub sent one) | network_error | invalid_response | unknown.
export {
  actionsRunId,
  computeCiStatus,
  effectiveResult,
  latestAttempts,
  summarizeChecks,
} from './ci-status.js';
export { GitHubClient, type GitHubClientOptions } from './client.js';
export { classifyGhFailure, type GhFailure, GitHubError } from './errors.js';
export { createGhRunner, type GhRunner, type GhRunnerOptions, type GhRunResult } from './gh-runner.js';
export { nextLink, parseIncludedResponse, retryAfterSeconds } from './http-response.js';
export { derivePrDisplayState, hasMergeConflict } from './pr-state.js';
export {
  hostnameArgs,
  type IssueRef,
  type PullRequestRef,
  parseIssueUrl,
  parsePullRequestUrl,
  type RepoRef,
  repoArg,
  toIssueRef,
  toPullRequestRef,
} from './refs.js';
export { collectReviewActivity, isTrustedAuthor, type ReviewActivity } from './review-activity.js';
export { buildPullRequestSnapshot } from './snapshot.js';
