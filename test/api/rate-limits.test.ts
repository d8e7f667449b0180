/**
 * Per-user rate limits counted in Postgres: two production api processes (api/main.ts, configured only by
 * environment variables) on one database share the counters, so a user alternating between them gets no
 * more than the limit; the refusal is a 429 with Retry-After and the code rate_limited, worded so it never
 * reads like a VM failure. A third api (in process, same database) shows the counters are per user.
 *
 * Nothing here starts a VM: the user's minutes are spent, so every provisioning request that passes the
 * rate limit is answered 402 by the quota check after it, and session creation names no workspace (404).
 * Either way the request was counted, which is what a rate limit is about.
 */
import assert from 'node:assert/strict';
import { ErrorBodySchema } from '../../api/contract/workspaces.js';
import { billingPeriodOf } from '../../workflows/usage/plans.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { type ApiProcess, freePort, startApiProcess } from '../support/api-process.js';
import { type HttpResult, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, testConfig, uniqueSuffix } from '../support/services.js';

const PROVISION_PER_MINUTE = 3;
const SESSIONS_PER_MINUTE = 2;

describe('rate limits shared by api processes (two api processes, one Postgres)', function () {
  this.timeout(3 * 60_000);
  const suffix = uniqueSuffix();
  const dev = { key: `dev-rate-${suffix}-0123456789`, userId: `dev-rate-${suffix}` };
  const other = { key: `other-rate-${suffix}-0123456789`, userId: `other-rate-${suffix}` };
  let db: TestDatabase;
  const apis: ApiProcess[] = [];
  let inProcess: TestApi;

  const call = (base: string, who: { key: string }, path: string, body: unknown = {}): Promise<HttpResult> =>
    request(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${who.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const codeOf = (result: HttpResult): string => ErrorBodySchema.parse(result.json).error.code;

  function assertRateLimited(result: HttpResult, limit: RegExp): void {
    assert.equal(result.status, 429, result.text);
    const { error } = ErrorBodySchema.parse(result.json);
    assert.equal(error.code, 'rate_limited');
    assert.match(error.message, limit);
    assert.doesNotMatch(
      error.message,
      /\bVM (failed|crashed|could not|is not|unavailable)|failed to start|not reachable/i,
      'a rate limit never reads like a VM failure',
    );
    assert.match(error.message, /nothing is wrong with your VM/);
    const retryAfter = Number(result.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After: ${retryAfter}`,
    );
    assert.match(error.message, new RegExp(`try again in ${retryAfter} s`, 'i'));
  }

  before(async () => {
    db = await createMigratedDatabase();
    for (const who of [dev, other]) await db.pool.query('INSERT INTO users (id) VALUES ($1)', [who.userId]);
    // Both users' minutes are spent: a provisioning request that passes the rate limit gets a 402.
    const { startMs } = billingPeriodOf(Date.now());
    for (const who of [dev, other]) {
      await db.pool.query(
        `INSERT INTO usage_records (user_id, period_start, period_end, compute_seconds, minutes, idempotency_key)
         VALUES ($1, to_timestamp($2 / 1000.0), to_timestamp($2 / 1000.0 + 1), 36000, 600, $3)`,
        [who.userId, startMs, `seed:${who.userId}`],
      );
    }
    for (let i = 0; i < 2; i++) {
      apis.push(
        await startApiProcess({
          DATABASE_URL: db.url,
          TEMPORAL_NAMESPACE: testConfig.temporal.namespace,
          TEMPORAL_TASK_QUEUE: `no-worker-rate-${suffix}`,
          FFC_DATA_DIR: testConfig.dataDir,
          NODE_ENV: 'test',
          API_PORT: String(await freePort()),
          DEV_API_KEY: dev.key,
          DEV_USER_ID: dev.userId,
          RATE_LIMIT_PROVISION_PER_MINUTE: String(PROVISION_PER_MINUTE),
          RATE_LIMIT_SESSIONS_PER_MINUTE: String(SESSIONS_PER_MINUTE),
        }),
      );
    }
    inProcess = await startTestApi({
      databaseUrl: db.url,
      users: { [dev.key]: dev.userId, [other.key]: other.userId },
      quotas: true,
      rateLimits: {
        ...testConfig.rateLimits,
        provisionPerMinute: PROVISION_PER_MINUTE,
        sessionsPerMinute: SESSIONS_PER_MINUTE,
      },
    });
  });

  after(async () => {
    for (const api of apis) await api.kill('SIGTERM');
    await inProcess?.stop();
    await db?.drop();
  });

  it('counts provisioning across both processes and answers 429 with Retry-After once the allowance is spent', async () => {
    const [a, b] = apis.map((api) => api.url);
    assert.ok(a && b);
    const answers: HttpResult[] = [];
    for (const base of [a, b, a]) answers.push(await call(base, dev, '/api/vms'));
    assert.deepEqual(
      answers.map((r) => [r.status, codeOf(r)]),
      [
        [402, 'quota_compute_minutes'],
        [402, 'quota_compute_minutes'],
        [402, 'quota_compute_minutes'],
      ],
      'three requests, on two processes, within the allowance',
    );
    assertRateLimited(await call(b, dev, '/api/vms'), /at most 3 VM starts and workspace sends per minute/);
    // A workspace send counts against the same allowance.
    assertRateLimited(
      await call(a, dev, '/api/workspaces', { issueUrl: 'https://github.com/o/r/issues/1' }),
      /at most 3 VM starts and workspace sends/,
    );
    // A third api on the same database sees the same counters.
    assertRateLimited(await call(inProcess.api.url, dev, '/api/vms'), /per minute/);
  });

  it('counts per user: another user is not limited by the first one', async () => {
    const answer = await call(inProcess.api.url, other, '/api/vms');
    assert.equal(answer.status, 402, answer.text);
    assert.equal(codeOf(answer), 'quota_compute_minutes');
  });

  it('limits session creation the same way', async () => {
    const [a, b] = apis.map((api) => api.url);
    assert.ok(a && b);
    const path = `/api/workspaces/ws-none-${suffix}/sessions`;
    const first = await call(a, dev, path);
    const second = await call(b, dev, path);
    assert.deepEqual([first.status, second.status], [404, 404], 'counted, then answered: no such workspace');
    assertRateLimited(await call(a, dev, path), /at most 2 new sessions per minute/);
  });
});
