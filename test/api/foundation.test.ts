import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import { testConfig } from '../support/services.js';

describe('api foundation (real Postgres, Temporal)', () => {
  let running: TestApi;
  before(async () => {
    running = await startTestApi({ users: { 'dev-key-for-foundation-tests': 'foundation-user' } });
  });
  after(async () => {
    await running.stop();
  });

  it('/healthz answers while the process is up', async () => {
    const res = await request(`${running.api.url}/healthz`);
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-request-id'), 'every response carries a request id');
  });

  it('/readyz is green when Postgres and Temporal answer and the VM directories are reachable', async () => {
    const res = await request(`${running.api.url}/readyz`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      (res.json as { checks: { name: string; ok: boolean }[] }).checks.map((c) => [c.name, c.ok]),
      [
        ['postgres', true],
        ['temporal', true],
        ['vm-run-dir', true],
        ['vm-secrets-dir', true],
      ],
    );
  });

  it('keeps a caller-supplied request id and replaces a hostile one', async () => {
    const kept = await request(`${running.api.url}/healthz`, { headers: { 'x-request-id': 'desk-42' } });
    assert.equal(kept.headers.get('x-request-id'), 'desk-42');
    const replaced = await request(`${running.api.url}/healthz`, { headers: { 'x-request-id': 'a b\tc' } });
    assert.notEqual(replaced.headers.get('x-request-id'), 'a b\tc');
  });

  it('answers unknown routes with a JSON 404, and API routes ask for credentials first', async () => {
    const anonymous = await request(`${running.api.url}/api/nope`);
    assert.equal(anonymous.status, 401);
    assert.equal(errorCode(anonymous), 'unauthorized');
    const res = await request(`${running.api.url}/api/nope`, {
      headers: { authorization: 'Bearer dev-key-for-foundation-tests' },
    });
    assert.equal(res.status, 404);
    assert.equal(errorCode(res), 'not_found');
  });

  it('refuses a wrong key without telling which part was wrong', async () => {
    const res = await request(`${running.api.url}/api/vms/me`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    assert.equal(errorCode(res), 'unauthorized');
  });

  it('rejects malformed JSON with a clear 400', async () => {
    const res = await request(`${running.api.url}/api/anything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"unterminated": ',
    });
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'malformed_json');
  });

  it('rejects bodies over 1 MB with 413', async () => {
    const res = await request(`${running.api.url}/api/anything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(1024 * 1024 + 10) }),
    });
    assert.equal(res.status, 413);
    assert.equal(errorCode(res), 'payload_too_large');
  });

  it('refuses a WebSocket upgrade to an unknown path with 404', async () => {
    const wsUrl = `${running.api.url.replace('http', 'ws')}/ws/nowhere`;
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('upgrade should have been refused')));
      ws.on('error', () => {});
    });
    assert.equal(status, 404);
  });

  it('serves the dashboard at /', async () => {
    const res = await request(`${running.api.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.text, /Factory Factory Cloud|<div id="app">/);
  });
});

describe('api /readyz with a dependency down', () => {
  it('returns 503 naming each unreachable dependency', async () => {
    const unreachable = new URL(testConfig.database.url);
    unreachable.port = '9'; // discard port: nothing listens there
    const running = await startTestApi({
      databaseUrl: unreachable.toString(),
      vmDirs: { runDirRoot: '/nonexistent/vm-run', secretRoot: testConfig.vm.secretRoot },
    });
    try {
      const res = await request(`${running.api.url}/readyz`);
      assert.equal(res.status, 503);
      assert.equal(errorCode(res), 'not_ready');
      const checks = (res.json as { checks: { name: string; ok: boolean }[] }).checks;
      assert.deepEqual(
        checks.filter((c) => !c.ok).map((c) => c.name),
        ['postgres', 'vm-run-dir'],
      );
      assert.match((res.json as { error: { message: string } }).error.message, /postgres, vm-run-dir/);
    } finally {
      await running.stop();
    }
  });
});
