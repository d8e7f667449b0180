import assert from 'node:assert/strict';
import {
  GitHubError,
  nextLink,
  parseIncludedResponse,
  parseIssueUrl,
  parsePullRequestUrl,
  repoArg,
  retryAfterSeconds,
  toPullRequestRef,
} from '../../src/github/index.js';

describe('github / refs and gh api --include output', () => {
  it('parses PR and issue URLs', () => {
    assert.deepEqual(parsePullRequestUrl('https://github.com/o/r/pull/12'), {
      host: 'github.com',
      owner: 'o',
      repo: 'r',
      number: 12,
    });
    assert.deepEqual(parseIssueUrl('https://ghe.example.com/team/app/issues/5/'), {
      host: 'ghe.example.com',
      owner: 'team',
      repo: 'app',
      number: 5,
    });
    assert.equal(repoArg({ host: 'github.com', owner: 'o', repo: 'r' }), 'o/r');
    assert.equal(repoArg({ host: 'ghe.example.com', owner: 'o', repo: 'r' }), 'ghe.example.com/o/r');
  });

  it('rejects anything that could smuggle a path or a flag', () => {
    for (const bad of [
      'https://github.com/o/r/issues/1',
      'file:///o/r/pull/1',
      'https://github.com/../r/pull/1',
      'not a url',
    ]) {
      assert.throws(() => parsePullRequestUrl(bad), GitHubError, bad);
    }
    assert.throws(
      () => toPullRequestRef({ host: 'github.com', owner: '--repo', repo: 'r/../x', number: 1 }),
      GitHubError,
    );
    assert.throws(
      () => toPullRequestRef({ host: 'github.com', owner: 'o', repo: 'r', number: 0 }),
      GitHubError,
    );
  });

  it('reads status, headers, retry hints and the next link', () => {
    const out = [
      'HTTP/1.1 403 Forbidden',
      'Link: <https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=3>; rel="last"',
      'X-Ratelimit-Remaining: 0',
      'X-Ratelimit-Reset: 1000',
      '',
      '{"message":"API rate limit exceeded"}',
    ].join('\n');
    const parsed = parseIncludedResponse(out);
    assert.ok(parsed);
    assert.equal(parsed.status, 403);
    assert.equal(parsed.body, '{"message":"API rate limit exceeded"}');
    assert.equal(nextLink(parsed.headers), 'https://api.github.com/x?page=2');
    assert.equal(retryAfterSeconds(parsed.headers, 940_000), 60);
    assert.equal(retryAfterSeconds(new Map([['retry-after', '7']]), 0), 7);
    assert.equal(retryAfterSeconds(new Map(), 0), null);
    assert.equal(parseIncludedResponse('not http'), null);
  });
});
