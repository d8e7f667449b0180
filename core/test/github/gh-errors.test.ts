// The stderr texts below are what the real gh 2.23 printed against the fake GitHub (and, for the proxy
// and socket lines, with the server gone); gh-client.test.ts exercises the same cases end to end.
import assert from 'node:assert/strict';
import { classifyGhFailure, GitHubError } from '../../src/github/index.js';
import type { GitHubErrorCode } from '../../src/protocol/github.js';

describe('github / recognising gh failures', () => {
  const table: Array<
    [string, number | null, string, GitHubErrorCode, 'pr_not_found' | 'issue_not_found' | undefined]
  > = [
    [
      'GraphQL 401',
      1,
      'HTTP 401: Bad credentials (https://api.github.com/graphql)\nTry authenticating with:  gh auth login\n',
      'auth_required',
      undefined,
    ],
    ['REST 401', 1, 'gh: Bad credentials (HTTP 401)\n', 'auth_required', undefined],
    [
      'no credentials at all',
      4,
      'To get started with GitHub CLI, please run:  gh auth login\nAlternatively, populate the GH_TOKEN environment variable with a GitHub API authentication token.\n',
      'auth_required',
      undefined,
    ],
    ['GraphQL rate limit', 1, 'GraphQL: API rate limit exceeded for user ID 1.\n', 'rate_limited', undefined],
    [
      'REST rate limit',
      1,
      'gh: API rate limit exceeded for user ID 1. (HTTP 403)\n',
      'rate_limited',
      undefined,
    ],
    [
      'secondary rate limit',
      1,
      'gh: You have exceeded a secondary rate limit. Please wait a few minutes before you try again. (HTTP 403)\n',
      'rate_limited',
      undefined,
    ],
    ['HTTP 429', 1, 'gh: Too Many Requests (HTTP 429)\n', 'rate_limited', undefined],
    [
      'PR missing',
      1,
      'GraphQL: Could not resolve to a PullRequest with the number of 2. (repository.pullRequest)\n',
      'pr_not_found',
      undefined,
    ],
    [
      'issue missing',
      1,
      'GraphQL: Could not resolve to an issue or pull request with the number of 9. (repository.issue)\n',
      'issue_not_found',
      undefined,
    ],
    [
      'repository missing while reading a PR',
      1,
      "GraphQL: Could not resolve to a Repository with the name 'o/x'. (repository)\n",
      'pr_not_found',
      'pr_not_found',
    ],
    ['REST 404 while listing PR comments', 1, 'gh: Not Found (HTTP 404)\n', 'pr_not_found', 'pr_not_found'],
    ['REST 404 without context', 1, 'gh: Not Found (HTTP 404)\n', 'unknown', undefined],
    [
      'leak guard proxy',
      1,
      'Post "https://api.github.com/graphql": proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused\n',
      'network_error',
      undefined,
    ],
    [
      'socket gone',
      1,
      'Post "https://api.github.com/graphql": dial unix /tmp/x/gh.sock: connect: no such file or directory\n',
      'network_error',
      undefined,
    ],
    [
      'server error',
      1,
      'HTTP 500: Server Error (https://api.github.com/graphql)\n',
      'network_error',
      undefined,
    ],
    ['something else', 2, 'unknown flag: --bogus\n', 'unknown', undefined],
  ];
  for (const [label, exitCode, stderr, code, notFound] of table) {
    it(`${label} → ${code}`, () => {
      const error = classifyGhFailure({ exitCode, stderr, ...(notFound ? { notFound } : {}) });
      assert.ok(error instanceof GitHubError);
      assert.equal(error.code, code);
      assert.ok(error.message.length > 0);
    });
  }

  it('carries a retry hint into the error and its wire body', () => {
    const error = classifyGhFailure({
      exitCode: 1,
      stderr: 'gh: API rate limit exceeded (HTTP 403)',
      retryAfterSeconds: 42,
    });
    assert.equal(error.retryAfterSeconds, 42);
    assert.deepEqual(error.toBody().error.retryAfterSeconds, 42);
    assert.match(error.message, /in 42 s/);
  });

  it('tells the user how to fix missing auth', () => {
    assert.match(classifyGhFailure({ exitCode: 4, stderr: '' }).message, /gh auth login/);
  });
});
