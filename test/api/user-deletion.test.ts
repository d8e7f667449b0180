/**
 * A user deleted mid-session, against the whole cloud as a test deployment runs it (test/support/cloud-rig:
 * the production api and worker processes, real Postgres, Temporal, Docker and VM image): the user has a
 * VM, a READY cloud workspace with its actor, a session relay and a terminal open, and an API key. Deleting
 * the account (DELETE /api/me, local sign-in mode, as the rig's api runs) closes both sockets at once,
 * removes the VM's container and home volume through its actor, ends the workspace actor, deletes the
 * workspace rows and keys, and leaves a tombstone and the audit records; nothing of the account signs in
 * again. A key put into a URL on the way is refused and never appears in the api's log.
 */
import assert from 'node:assert/strict';
import { vmVolumeName } from '../../activities/vm/lifecycle.js';
import { CreatedApiKeySchema } from '../../api/contract/accounts.js';
import { ACCOUNT_DELETED_CLOSE_CODE } from '../../api/ws/user-sockets.js';
import { workflowIds } from '../../workflows/ids.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import { errorCode, request } from '../support/http.js';
import { TerminalClient } from '../support/terminal-client.js';
import { SessionRelayClient } from './session-relay-client.js';

/** Docker's answer for a container or volume that does not exist. */
async function isGone(inspect: () => Promise<unknown>): Promise<boolean> {
  try {
    await inspect();
    return false;
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'statusCode' in err && err.statusCode === 404) return true;
    throw err;
  }
}

describe('a user deleted mid-session (real api and worker processes, Temporal, Docker, VM)', function () {
  this.timeout(8 * 60_000);
  let rig: CloudRig;
  let workspaceId: string;

  before(async () => {
    rig = await startCloudRig('deletion');
    workspaceId = `ws-del-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
  });

  after(async () => {
    await rig?.stop();
  });

  it('closes its sockets, removes its VM, actors, workspaces and keys, keeps the audit record, and never signs in again', async () => {
    const { userId } = rig.user;
    const wsBase = rig.api.url.replace(/^http/, 'ws');
    const created = await rig.http('/api/keys', { method: 'POST', body: { name: 'laptop' } });
    assert.equal(created.status, 201, created.text);
    const key = CreatedApiKeySchema.parse(created.json).secret;

    // Mid-session: a live session relay (development key) and a terminal (API key) on the VM.
    const sessionId = await rig.createSession(workspaceId);
    const relay = await SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId), rig.user.key);
    await relay.waitFor('session_snapshot');
    const terminal = await TerminalClient.open(`${wsBase}/ws/vms/me/terminal`, key);
    await terminal.waitFor('terminal_list');
    const { containerName } = await rig.vmRef();
    const volumeName = vmVolumeName(containerName);
    assert.equal((await rig.docker.getContainer(containerName).inspect()).State.Running, true);

    // A key in a URL is no credential (and must not be logged).
    const inQuery = await request(`${rig.api.url}/api/me?api_key=${key}`);
    assert.equal(inQuery.status, 401);
    const deleted = await rig.http('/api/me', { method: 'DELETE' });
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(deleted.json, { deleted: true, alreadyDeleted: false });

    // The sockets were closed by the deletion, with the code that says why.
    assert.equal((await relay.closed).code, ACCOUNT_DELETED_CLOSE_CODE);
    assert.equal((await terminal.closed).code, ACCOUNT_DELETED_CLOSE_CODE);

    // The VM is gone with its home volume; the actors have ended.
    assert.ok(await isGone(() => rig.docker.getContainer(containerName).inspect()), 'container removed');
    assert.ok(await isGone(() => rig.docker.getVolume(volumeName).inspect()), 'home volume removed');
    const workspaceActor = await rig.temporal.workflow
      .getHandle(workflowIds.workspace(workspaceId))
      .describe();
    assert.equal(workspaceActor.status.name, 'TERMINATED');
    const vmActor = await rig.temporal.workflow.getHandle(workflowIds.vm(userId)).describe();
    assert.notEqual(vmActor.status.name, 'RUNNING');

    // The data is gone; the tombstone and the audit records stay.
    const pool = rig.db.pool;
    const count = async (sql: string) => Number((await pool.query<{ n: string }>(sql, [userId])).rows[0]?.n);
    assert.equal(await count('SELECT count(*) AS n FROM workspaces WHERE user_id = $1'), 0);
    assert.equal(await count('SELECT count(*) AS n FROM api_keys WHERE user_id = $1'), 0);
    assert.equal(
      await count(`SELECT count(*) AS n FROM vms WHERE user_id = $1 AND status <> 'TERMINATED'`),
      0,
      'no live VM in the read model',
    );
    const user = (
      await pool.query<{ deleted_at: Date | null; email: string | null }>(
        'SELECT deleted_at, email FROM users WHERE id = $1',
        [userId],
      )
    ).rows[0];
    assert.ok(user?.deleted_at);
    assert.equal(user?.email, null);
    const audit = (
      await pool.query<{
        action: string;
        actor: string;
        detail: { workspaces?: number; socketsClosed?: number };
      }>(
        `SELECT action, actor, detail FROM audit_log WHERE user_id = $1 AND action IN ('vm.terminated', 'user.deleted') ORDER BY id`,
        [userId],
      )
    ).rows;
    assert.deepEqual(
      audit.map((r) => [r.action, r.actor]),
      [
        ['vm.terminated', `user:${userId}`],
        ['user.deleted', `user:${userId}`],
      ],
    );
    assert.equal(audit[1]?.detail.workspaces, 1);
    assert.equal(audit[1]?.detail.socketsClosed, 2);

    // Nothing of the account authenticates again: not the development key, the API key or a socket.
    const devKey = await rig.http('/api/vms/me');
    assert.equal(devKey.status, 401);
    assert.equal(errorCode(devKey), 'account_deleted');
    const apiKey = await request(`${rig.api.url}/api/me`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(apiKey.status, 401);
    await assert.rejects(
      SessionRelayClient.open(rig.relayUrl(workspaceId, sessionId), rig.user.key),
      /upgrade refused: 401/,
    );

    // The key never reached the api's log, not even from the URL it was put into.
    const secretPart = key.slice(-40);
    assert.match(rig.api.output(), /"path":"\/api\/me"/);
    assert.ok(!rig.api.output().includes(secretPart), 'the key is not in the api log');
  });
});
