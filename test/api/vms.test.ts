import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import WebSocket from 'ws';
import { createActivities } from '../../activities/index.js';
import { vmVolumeName } from '../../activities/vm/lifecycle.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { terminalRoute } from '../../api/ws/terminal.js';
import { createLogger } from '../../platform/logger.js';
import { userVmContainerName } from '../../workflows/ids.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { TerminalClient } from '../support/terminal-client.js';
import { removeUserVm } from '../support/vm.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

describe('VM api: routes and terminal (real Temporal, Docker, VM image)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-key-${suffix}`, userId: `alice-${suffix}` };
  const bob = { key: `bob-key-${suffix}`, userId: `bob-${suffix}` };
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let api: TestApi;
  const auth = (who: { key: string }) => ({ authorization: `Bearer ${who.key}` });

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm: testConfig.vm }));
    api = await startTestApi({
      databaseUrl: db.url,
      users: { [alice.key]: alice.userId, [bob.key]: bob.userId },
      taskQueue: worker.taskQueue,
      vmSettings: { agentTimeoutMs: 90_000 },
      wsRoutes: ({ vms, agents }) => [
        terminalRoute({
          // The production authenticator with alice's development key only: bob has no terminal here.
          authenticator: createDevKeyAuthenticator({ key: alice.key, userId: alice.userId }),
          pool: db.pool,
          vms,
          log: createLogger('terminal-test', 'silent'),
          agents,
        }),
      ],
    });
  });

  after(async () => {
    for (const userId of [alice.userId, bob.userId]) await removeUserVm(temporal, docker, userId);
    await api?.stop();
    await worker?.stop();
    await db?.drop();
    await temporal?.connection.close();
  });

  const terminalUrl = () => `${api.api.url.replace('http', 'ws')}/ws/vms/me/terminal`;

  it('answers 404 for a user without a VM, and 401 without credentials', async () => {
    const none = await request(`${api.api.url}/api/vms/me`, { headers: auth(bob) });
    assert.equal(none.status, 404);
    assert.equal(errorCode(none), 'vm_not_found');
    const anonymous = await request(`${api.api.url}/api/vms`, { method: 'POST' });
    assert.equal(anonymous.status, 401);
  });

  it('provisions the caller’s VM and refuses to act for another user', async () => {
    const forBob = await request(`${api.api.url}/api/vms`, {
      method: 'POST',
      headers: { ...auth(alice), 'content-type': 'application/json' },
      body: JSON.stringify({ userId: bob.userId }),
    });
    assert.equal(forBob.status, 404, 'another user is answered as nobody, never 403');
    assert.equal(errorCode(forBob), 'user_not_found');

    const created = await request(`${api.api.url}/api/vms`, { method: 'POST', headers: auth(alice) });
    assert.equal(created.status, 200, created.text);
    const vm = (created.json as { vm: { status: string; containerName: string } }).vm;
    assert.equal(vm.status, 'ONBOARDING');
    assert.equal((await docker.getContainer(vm.containerName).inspect()).State.Running, true);

    const mine = await request(`${api.api.url}/api/vms/me`, { headers: auth(alice) });
    assert.equal((mine.json as { vm: { status: string } }).vm.status, 'ONBOARDING');
    const bobs = await request(`${api.api.url}/api/vms/me`, { headers: auth(bob) });
    assert.equal(bobs.status, 404, "bob does not see alice's VM");
  });

  it('gives a terminal in the VM whose files survive suspend and resume, with scrollback on reattach', async () => {
    const first = await TerminalClient.open(terminalUrl(), alice.key);
    await first.waitFor('terminal_list');
    first.send({ type: 'create', requestId: 'r1', cols: 100, rows: 30 });
    const created = await first.waitFor('created');
    assert.equal(created.requestId, 'r1');
    first.send({
      type: 'input',
      terminalId: created.terminalId,
      data: 'echo onboarding-$((6*7)) | tee ~/onboarded.txt\r',
    });
    await first.waitUntil('the echo', () => first.output(created.terminalId).includes('onboarding-42'));

    // Bad input on the socket is answered, not fatal.
    first.send('{not json');
    await first.waitFor('error');
    first.send({ type: 'resize', terminalId: created.terminalId, cols: 0, rows: 5 });
    assert.equal(first.ws.readyState, WebSocket.OPEN);
    await first.close();

    // Reattach: the terminal is still there with what it printed.
    const second = await TerminalClient.open(terminalUrl(), alice.key);
    const list = await second.waitFor('terminal_list');
    const again = list.terminals.find((t) => t.id === created.terminalId);
    assert.ok(again, 'the terminal outlived the socket');
    assert.match(again.outputBuffer, /onboarding-42/);
    await second.close();

    const suspended = await request(`${api.api.url}/api/vms/me/suspend`, {
      method: 'POST',
      headers: auth(alice),
    });
    assert.equal((suspended.json as { vm: { status: string } }).vm.status, 'SUSPENDED');

    // Opening a terminal resumes the VM; the file written before the suspend is still there.
    const third = await TerminalClient.open(terminalUrl(), alice.key);
    third.send({ type: 'create', cols: 80, rows: 24 });
    const fresh = await third.waitFor('created');
    // The command's own echo contains `got:$(cat`, never `got:onboarding`, so only the output matches.
    third.send({ type: 'input', terminalId: fresh.terminalId, data: 'echo "got:$(cat ~/onboarded.txt)"\r' });
    await third.waitUntil('the file', () => third.output(fresh.terminalId).includes('got:onboarding-42'));
    await third.close();
  });

  it('refuses a terminal without valid credentials and caps frames at 1 MB', async () => {
    await assert.rejects(TerminalClient.open(terminalUrl(), 'not-a-key'), /401/);
    const client = await TerminalClient.open(terminalUrl(), alice.key);
    const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
    client.send('x'.repeat(1024 * 1024 + 1));
    assert.equal(await closed, 1009, 'message too big');
  });

  it('terminates the VM, removing its container and volume; a second delete says there is no VM', async () => {
    const deleted = await request(`${api.api.url}/api/vms/me`, { method: 'DELETE', headers: auth(alice) });
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal((deleted.json as { vm: { status: string } }).vm.status, 'TERMINATED');
    const name = userVmContainerName(alice.userId);
    await assert.rejects(docker.getContainer(name).inspect(), /no such container/i);
    await assert.rejects(docker.getVolume(vmVolumeName(name)).inspect(), /no such volume/i);
    const { rows } = await api.pool.query<{ actor: string }>(
      `SELECT actor FROM audit_log WHERE user_id = $1 AND action = 'vm.terminated'`,
      [alice.userId],
    );
    assert.deepEqual(rows, [{ actor: `user:${alice.userId}` }], 'the terminate is in her audit log, once');
    const again = await request(`${api.api.url}/api/vms/me`, { method: 'DELETE', headers: auth(alice) });
    assert.equal(again.status, 404);
    assert.equal(errorCode(again), 'vm_not_found');
    const suspend = await request(`${api.api.url}/api/vms/me/suspend`, {
      method: 'POST',
      headers: auth(alice),
    });
    assert.equal(suspend.status, 404);
  });
});
