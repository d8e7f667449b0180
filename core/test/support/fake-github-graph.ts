// Builds the object graph the fake's GraphQL executor walks, and the REST shapes, from plain fixtures.
// Web URLs use the host gh believes it talks to (github.com for api.github.com, else the GHES host).
import type {
  FakeCheck,
  FakeGitHubFixtures,
  FakeIssue,
  FakePullRequest,
  FakeRepository,
} from './fake-github-fixtures.js';
import { connection, type GraphArgs, GraphNotFound, type GraphObject } from './fake-github-graphql.js';

export interface GraphContext {
  fixtures: FakeGitHubFixtures;
  /** e.g. "github.com" */
  webHost: string;
}

export function findRepo(
  fixtures: FakeGitHubFixtures,
  owner: string,
  name: string,
): FakeRepository | undefined {
  return fixtures.repos[`${owner}/${name}`];
}

function user(login: string, viewerLogin: string): GraphObject {
  return { __typename: 'User', login, id: `U_${login}`, name: null, isViewer: login === viewerLogin };
}

const empty = (args: GraphArgs) => connection([], args);

export function rollupState(checks: readonly FakeCheck[]): string {
  const states = checks.map((c) => (c.kind === 'CheckRun' ? (c.conclusion ?? 'PENDING') : c.state));
  if (
    states.some((s) =>
      ['FAILURE', 'ERROR', 'TIMED_OUT', 'CANCELLED', 'ACTION_REQUIRED', 'STARTUP_FAILURE'].includes(s),
    )
  )
    return 'FAILURE';
  if (states.some((s) => ['PENDING', 'EXPECTED'].includes(s))) return 'PENDING';
  return 'SUCCESS';
}

function checkNode(check: FakeCheck): GraphObject {
  if (check.kind === 'StatusContext') {
    return {
      __typename: 'StatusContext',
      context: check.context,
      state: check.state,
      targetUrl: check.targetUrl,
      description: null,
      createdAt: check.createdAt,
      isRequired: () => false,
    };
  }
  return {
    __typename: 'CheckRun',
    name: check.name,
    status: check.status,
    conclusion: check.conclusion,
    startedAt: check.startedAt,
    completedAt: check.completedAt,
    detailsUrl: check.detailsUrl,
    checkSuite: {
      __typename: 'CheckSuite',
      workflowRun:
        check.workflowName === null
          ? null
          : { __typename: 'WorkflowRun', workflow: { __typename: 'Workflow', name: check.workflowName } },
    },
    isRequired: () => false,
  };
}

export function pullRequestNode(
  ctx: GraphContext,
  owner: string,
  repo: string,
  pr: FakePullRequest,
): GraphObject {
  const viewer = ctx.fixtures.viewer.login;
  const base = `https://${ctx.webHost}/${owner}/${repo}`;
  const commit = {
    __typename: 'PullRequestCommit',
    commit: {
      __typename: 'Commit',
      oid: pr.headSha,
      statusCheckRollup:
        pr.checks.length === 0
          ? null
          : {
              __typename: 'StatusCheckRollup',
              state: rollupState(pr.checks),
              contexts: (args: GraphArgs) => connection(pr.checks.map(checkNode), args),
            },
    },
  };
  return {
    __typename: 'PullRequest',
    id: `PR_${owner}/${repo}_${pr.number}`,
    number: pr.number,
    title: pr.title,
    body: pr.body,
    url: `${base}/pull/${pr.number}`,
    state: pr.state,
    closed: pr.state !== 'OPEN',
    isDraft: pr.isDraft,
    author: user(pr.author, viewer),
    createdAt: pr.createdAt,
    updatedAt: pr.createdAt,
    mergedAt: pr.mergedAt,
    headRefName: pr.headRefName,
    headRefOid: pr.headSha,
    baseRefName: pr.baseRefName,
    reviewDecision: pr.reviewDecision,
    mergeStateStatus: pr.mergeStateStatus,
    mergeable: pr.mergeStateStatus === 'DIRTY' ? 'CONFLICTING' : 'MERGEABLE',
    isCrossRepository: false,
    maintainerCanModify: false,
    additions: 0,
    deletions: 0,
    changedFiles: 0,
    headRepositoryOwner: { __typename: 'User', id: `U_${owner}`, login: owner, name: null },
    headRepository: { __typename: 'Repository', id: `R_${owner}/${repo}`, name: repo },
    commits: (args: GraphArgs) => connection([commit], args),
    reviews: (args: GraphArgs) =>
      connection(
        pr.reviews.map((r, i) => ({
          __typename: 'PullRequestReview',
          id: r.id ?? `PRR_${pr.number}_${i}`,
          author: user(r.author, viewer),
          authorAssociation: r.authorAssociation,
          submittedAt: r.submittedAt,
          body: r.body,
          state: r.state,
          commit: { __typename: 'Commit', oid: r.commitOid },
          reactionGroups: [],
          includesCreatedEdit: false,
          url: `${base}/pull/${pr.number}#pullrequestreview-${i + 1}`,
        })),
        args,
      ),
    comments: (args: GraphArgs) =>
      connection(
        pr.comments.map((c, i) => ({
          __typename: 'IssueComment',
          id: c.id ?? `IC_${pr.number}_${i}`,
          author: user(c.author, viewer),
          authorAssociation: c.authorAssociation,
          body: c.body,
          createdAt: c.createdAt,
          includesCreatedEdit: false,
          isMinimized: false,
          minimizedReason: null,
          reactionGroups: [],
          url: `${base}/pull/${pr.number}#issuecomment-${3001 + i}`,
          viewerDidAuthor: c.author === viewer,
        })),
        args,
      ),
    reviewRequests: empty,
    assignees: empty,
    labels: empty,
    projectCards: empty,
    milestone: null,
    reactionGroups: [],
  };
}

export function issueNode(ctx: GraphContext, owner: string, repo: string, issue: FakeIssue): GraphObject {
  return {
    __typename: 'Issue',
    id: `I_${owner}/${repo}_${issue.number}`,
    number: issue.number,
    title: issue.title,
    body: issue.body,
    url: `https://${ctx.webHost}/${owner}/${repo}/issues/${issue.number}`,
    state: issue.state,
    stateReason: null,
    createdAt: issue.createdAt,
    author: user(issue.author, ctx.fixtures.viewer.login),
    comments: empty,
    assignees: empty,
    labels: empty,
    projectCards: empty,
    milestone: null,
    reactionGroups: [],
  };
}

function repositoryNode(ctx: GraphContext, owner: string, name: string, repo: FakeRepository): GraphObject {
  const pull = (n: unknown) => repo.pulls.find((p) => p.number === n);
  const issue = (n: unknown) => repo.issues.find((i) => i.number === n);
  return {
    __typename: 'Repository',
    id: `R_${owner}/${name}`,
    name,
    nameWithOwner: `${owner}/${name}`,
    owner: { __typename: 'User', login: owner, id: `U_${owner}` },
    hasIssuesEnabled: true,
    viewerPermission: 'WRITE',
    defaultBranchRef: { __typename: 'Ref', name: repo.defaultBranch },
    pullRequest: (args: GraphArgs) => {
      const pr = pull(args.number);
      if (!pr)
        throw new GraphNotFound(`Could not resolve to a PullRequest with the number of ${args.number}.`);
      return pullRequestNode(ctx, owner, name, pr);
    },
    issue: (args: GraphArgs) => {
      const found = issue(args.number);
      if (!found) throw new GraphNotFound(`Could not resolve to an Issue with the number of ${args.number}.`);
      return issueNode(ctx, owner, name, found);
    },
    issueOrPullRequest: (args: GraphArgs) => {
      const found = issue(args.number);
      if (found) return issueNode(ctx, owner, name, found);
      const pr = pull(args.number);
      if (pr) return pullRequestNode(ctx, owner, name, pr);
      throw new GraphNotFound(
        `Could not resolve to an issue or pull request with the number of ${args.number}.`,
      );
    },
    pullRequests: (args: GraphArgs) => {
      const states = Array.isArray(args.states) ? args.states : null;
      const matches = repo.pulls
        .filter((p) => (typeof args.headRefName === 'string' ? p.headRefName === args.headRefName : true))
        .filter((p) => (typeof args.baseRefName === 'string' ? p.baseRefName === args.baseRefName : true))
        .filter((p) => (states === null ? true : states.includes(p.state)))
        .sort((a, b) => b.number - a.number)
        .map((p) => pullRequestNode(ctx, owner, name, p));
      return connection(matches, args);
    },
  };
}

export function rootNode(ctx: GraphContext): GraphObject {
  const { fixtures } = ctx;
  return {
    __typename: 'Query',
    viewer: user(fixtures.viewer.login, fixtures.viewer.login),
    repository: (args: GraphArgs) => {
      const owner = String(args.owner);
      const name = String(args.name);
      const repo = findRepo(fixtures, owner, name);
      if (!repo)
        throw new GraphNotFound(`Could not resolve to a Repository with the name '${owner}/${name}'.`);
      return repositoryNode(ctx, owner, name, repo);
    },
    node: (args: GraphArgs) => {
      const m = /^(PR|I)_([^/]+)\/(.+)_(\d+)$/.exec(String(args.id));
      if (!m)
        throw new GraphNotFound(`Could not resolve to a node with the global id of '${String(args.id)}'.`);
      const [, kind, owner = '', name = '', num] = m;
      const repo = findRepo(fixtures, owner, name);
      const n = Number(num);
      const pr = kind === 'PR' ? repo?.pulls.find((p) => p.number === n) : undefined;
      if (pr) return pullRequestNode(ctx, owner, name, pr);
      const issue = kind === 'I' ? repo?.issues.find((i) => i.number === n) : undefined;
      if (issue) return issueNode(ctx, owner, name, issue);
      throw new GraphNotFound(`Could not resolve to a node with the global id of '${String(args.id)}'.`);
    },
  };
}

// ------------------------------------------------------------------------------------------------------
// REST shapes (v3, snake_case)

export function restLineComment(
  ctx: GraphContext,
  owner: string,
  repo: string,
  pr: FakePullRequest,
  index: number,
): Record<string, unknown> {
  const c = pr.lineComments[index];
  if (!c) throw new Error('no such line comment');
  const id = c.id ?? 5000 + index;
  return {
    id,
    node_id: `PRRC_${id}`,
    pull_request_review_id: 1,
    user: { login: c.author, id: 1, type: c.author.endsWith('[bot]') ? 'Bot' : 'User' },
    author_association: c.authorAssociation,
    body: c.body,
    path: c.path,
    line: c.line,
    original_line: c.line,
    side: 'RIGHT',
    diff_hunk: '@@ -1,1 +1,1 @@',
    commit_id: pr.headSha,
    created_at: c.createdAt,
    updated_at: c.updatedAt ?? c.createdAt,
    html_url: `https://${ctx.webHost}/${owner}/${repo}/pull/${pr.number}#discussion_r${id}`,
    pull_request_url: `https://api.${ctx.webHost}/repos/${owner}/${repo}/pulls/${pr.number}`,
  };
}

export function restPullRequest(
  ctx: GraphContext,
  owner: string,
  repo: string,
  pr: FakePullRequest,
): Record<string, unknown> {
  return {
    number: pr.number,
    title: pr.title,
    body: pr.body,
    state: pr.state === 'OPEN' ? 'open' : 'closed',
    merged: pr.state === 'MERGED',
    merged_at: pr.mergedAt,
    draft: pr.isDraft,
    html_url: `https://${ctx.webHost}/${owner}/${repo}/pull/${pr.number}`,
    user: { login: pr.author },
    head: { ref: pr.headRefName, sha: pr.headSha },
    base: { ref: pr.baseRefName },
    mergeable_state: pr.mergeStateStatus.toLowerCase(),
  };
}
