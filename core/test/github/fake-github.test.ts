// The fake GitHub is shared with the VM and ratchet tests, so its answers are checked against gh
// commands beyond the product's own, including ones whose strict decoder rejects any extra field.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { checkRun, type FakeGitHub, startFakeGitHub, statusContext } from '../support/fake-github.js';
import { GH_BINARY } from '../support/gh-harness.js';

const exec = promisify(execFile);

describe('github / fake GitHub answers the real gh', () => {
  let fake: FakeGitHub;
  const gh = (...args: string[]) => exec(GH_BINARY, args, { env: fake.ghEnv() });

  before(async () => {
    fake = await startFakeGitHub({
      fixtures: {
        viewer: { login: 'octo-tester' },
        repos: {
          'o/r': {
            pulls: [
              {
                number: 1,
                checks: [checkRun('test', 'FAILURE'), statusContext('ci/legacy', 'SUCCESS')],
                reviews: Array.from({ length: 130 }, (_, i) => ({
                  author: `r${i}`,
                  state: 'COMMENTED',
                  body: `r${i}`,
                })),
                comments: Array.from({ length: 120 }, (_, i) => ({ author: `c${i}`, body: `c${i}` })),
              },
            ],
            issues: [{ number: 5, title: 'Widgets' }],
          },
        },
      },
    });
  });
  after(async () => {
    await fake.close();
  });

  it('gh auth status (strict UserCurrent decoder)', async () => {
    const { stdout, stderr } = await gh('auth', 'status');
    assert.match(stdout + stderr, /Logged in to github\.com as octo-tester/);
  });

  it('gh pr view --json follows review and comment pages (strict decoders)', async () => {
    const { stdout } = await gh('pr', 'view', '1', '--repo', 'o/r', '--json', 'reviews,comments');
    const out = JSON.parse(stdout) as { reviews: unknown[]; comments: unknown[] };
    assert.equal(out.reviews.length, 130);
    assert.equal(out.comments.length, 120);
    const ops = fake.requests.map((r) => r.operationName);
    assert.ok(ops.includes('ReviewsForPullRequest') && ops.includes('CommentsForPullRequest'));
  });

  it('gh pr checks (node(id) with isRequired) exits 1 on a failing check, as gh 2.23 does', async () => {
    await assert.rejects(
      gh('pr', 'checks', '1', '--repo', 'o/r'),
      (err: { code?: number; stdout?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stdout ?? '', /test\s+fail/);
        return true;
      },
    );
  });

  it('gh pr view and gh issue view (human output, big queries)', async () => {
    assert.match((await gh('pr', 'view', '1', '--repo', 'o/r')).stdout, /title:\s+Add widgets/);
    assert.match((await gh('issue', 'view', '5', '--repo', 'o/r')).stdout, /title:\s+Widgets/);
  });

  it('answers exactly the requested selection and reports unknown fields', async () => {
    await gh(
      'api',
      'graphql',
      '-f',
      'query=query{viewer{login} repository(owner:"o",name:"r"){pr: pullRequest(number:1){title bogusField}}}',
    );
    assert.deepEqual(fake.unknownFields(), ['PullRequest.bogusField']);
    const last = fake.requests.at(-1);
    assert.equal(last?.path, '/graphql');
  });

  it('exposes and replaces fixtures over HTTP', async () => {
    const get = await new Promise<string>((resolve, reject) => {
      request({ socketPath: fake.socketPath, path: '/__fixtures' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve(body));
      })
        .on('error', reject)
        .end();
    });
    assert.equal((JSON.parse(get) as { viewer: { login: string } }).viewer.login, 'octo-tester');
  });
});
