import assert from 'node:assert/strict';
import { createVmReadModelActivities } from '../../activities/vm/read-model.js';
import type { VmView } from '../../workflows/vm/messages.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { errorCode, request } from '../support/http.js';
import { createMigratedDatabase, type TestDatabase, uniqueSuffix } from '../support/services.js';

/**
 * GET /api/vms/me reads the read model the actor writes, so it answers while no worker runs: this api's
 * task queue has no worker at all, so anything that asked the actor would hang until it timed out.
 */
describe('GET /api/vms/me from the Postgres read model (no worker running)', () => {
  const suffix = uniqueSuffix();
  const user = { key: `rm-key-${suffix}-0123456789`, userId: `rm-${suffix}` };
  let db: TestDatabase;
  let api: TestApi;
  const view = (status: VmView['status'], at: string): VmView => ({
    userId: user.userId,
    vmId: `vm-${suffix}`,
    status,
    operation: null,
    containerName: `ffc-vm-${user.userId}`,
    containerId: 'c0ffee',
    onboarding: { githubCli: true, claude: false },
    failureReason: null,
    problem: null,
    restarts: 0,
    createdAt: '2026-12-01T10:00:00.000Z',
    updatedAt: at,
    lastActiveAt: at,
    lastHealthAt: at,
    readyAt: at,
    suspendedAt: null,
  });

  before(async () => {
    db = await createMigratedDatabase();
    await db.pool.query('INSERT INTO users (id) VALUES ($1)', [user.userId]);
    api = await startTestApi({ databaseUrl: db.url, users: { [user.key]: user.userId } });
  });
  after(async () => {
    await api?.stop();
    await db?.drop();
  });

  it('answers with the view the actor last wrote, at once, and 404 once it is terminated', async function () {
    this.timeout(10_000);
    const record = createVmReadModelActivities({ pool: db.pool }).recordVmState;
    await record(view('ONBOARDING', '2026-12-01T10:01:00.000Z'));
    // A late, older write never overwrites a newer one.
    await record(view('READY', '2026-12-01T10:02:00.000Z'));
    await record(view('PROVISIONING', '2026-12-01T10:00:30.000Z'));

    const mine = await request(`${api.api.url}/api/vms/me`, {
      headers: { authorization: `Bearer ${user.key}` },
    });
    assert.equal(mine.status, 200, mine.text);
    const vm = (mine.json as { vm: VmView }).vm;
    assert.equal(vm.status, 'READY');
    assert.deepEqual(vm.onboarding, { githubCli: true, claude: false });

    await record(view('TERMINATED', '2026-12-01T10:03:00.000Z'));
    const gone = await request(`${api.api.url}/api/vms/me`, {
      headers: { authorization: `Bearer ${user.key}` },
    });
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone), 'vm_not_found');
  });
});
