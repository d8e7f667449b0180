// The same compare-and-swap contract, run against every WorkspaceStore implementation.
import assert from 'node:assert/strict';
import type { Workspace } from '../../src/protocol/workspace.js';
import type { WorkspaceError, WorkspaceStore } from '../../src/workspace/index.js';

export function workspaceFixture(id: string, overrides: Partial<Workspace> = {}): Workspace {
  return {
    id,
    name: `Workspace ${id}`,
    status: 'NEW',
    creationSource: 'MANUAL',
    repoUrl: 'https://github.com/o/r.git',
    branchMode: 'NEW',
    branchName: `u/${id}`,
    baseBranch: null,
    worktreePath: null,
    initRetryCount: 0,
    initError: null,
    setup: { status: 'NOT_RUN', exitCode: null, output: '' },
    prUrl: null,
    prNumber: null,
    githubIssueNumber: null,
    githubIssueUrl: null,
    ratchetEnabled: false,
    ratchetState: 'IDLE',
    ratchetLastCiRunId: null,
    prReviewLastCheckedAt: null,
    ratchetDispatchKeys: [],
    location: 'CLOUD',
    queuedPrompt: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    version: 0,
    ...overrides,
  };
}

export function describeStoreContract(
  name: string,
  makeStore: () => WorkspaceStore,
  cleanup: () => void = () => undefined,
) {
  describe(`workspace / ${name} (compare-and-swap contract)`, () => {
    let store: WorkspaceStore;
    beforeEach(() => {
      store = makeStore();
    });
    afterEach(cleanup);

    it('inserts, reads and lists oldest first', async () => {
      await store.insert(workspaceFixture('b', { createdAt: '2024-01-02T00:00:00.000Z' }));
      await store.insert(workspaceFixture('a'));
      assert.equal((await store.get('a'))?.name, 'Workspace a');
      assert.equal(await store.get('zz'), null);
      assert.deepEqual(
        (await store.list()).map((w) => w.id),
        ['a', 'b'],
      );
      await assert.rejects(store.insert(workspaceFixture('a')), (e: WorkspaceError) => e.code === 'conflict');
    });

    it('moves NEW → PROVISIONING → READY → ARCHIVED and bumps the version each time', async () => {
      await store.insert(workspaceFixture('w'));
      const p = await store.transition('w', 'NEW', 'PROVISIONING', {});
      assert.equal(p?.status, 'PROVISIONING');
      assert.equal(p?.version, 1);
      const r = await store.transition('w', 'PROVISIONING', 'READY', {
        worktreePath: '/wt/w',
        branchName: 'u/w-2',
      });
      assert.equal(r?.worktreePath, '/wt/w');
      assert.equal(r?.branchName, 'u/w-2');
      assert.equal((await store.transition('w', 'READY', 'ARCHIVED', {}))?.version, 3);
    });

    it('lets exactly one of two racing transitions win', async () => {
      await store.insert(workspaceFixture('w'));
      const results = await Promise.all([
        store.transition('w', 'NEW', 'PROVISIONING', { initError: 'first' }),
        store.transition('w', 'NEW', 'PROVISIONING', { initError: 'second' }),
      ]);
      assert.equal(results.filter((r) => r !== null).length, 1);
      assert.equal(await store.transition('w', 'NEW', 'PROVISIONING', {}), null, 'stale "from" loses');
      assert.equal(await store.transition('nope', 'NEW', 'PROVISIONING', {}), null);
    });

    it('refuses moves the state machine does not allow', async () => {
      await store.insert(workspaceFixture('w'));
      await assert.rejects(
        store.transition('w', 'NEW', 'READY', {}),
        (e: WorkspaceError) => e.code === 'invalid_transition',
      );
      await store.insert(workspaceFixture('f', { status: 'FAILED', initRetryCount: 3 }));
      await assert.rejects(
        store.transition('f', 'FAILED', 'PROVISIONING', {}),
        (e: WorkspaceError) => e.code === 'retry_limit',
      );
      assert.equal((await store.transition('f', 'FAILED', 'ARCHIVED', {}))?.status, 'ARCHIVED');
      await assert.rejects(
        store.transition('f', 'ARCHIVED', 'PROVISIONING', {}),
        (e: WorkspaceError) => e.code === 'invalid_transition',
      );
    });

    it('updates other fields only at the expected version', async () => {
      await store.insert(workspaceFixture('w'));
      const u = await store.update('w', 0, { prUrl: 'https://github.com/o/r/pull/1', prNumber: 1 });
      assert.equal(u?.prNumber, 1);
      assert.equal(u?.status, 'NEW');
      assert.equal(await store.update('w', 0, { prNumber: 2 }), null);
      assert.equal((await store.get('w'))?.prNumber, 1);
    });

    it('replaces an archived workspace only when asked to', async () => {
      await store.insert(workspaceFixture('w', { status: 'ARCHIVED' }));
      await assert.rejects(store.insert(workspaceFixture('w')), (e: WorkspaceError) => e.code === 'conflict');
      await store.insert(workspaceFixture('w', { name: 'again' }), { replaceArchived: true });
      assert.equal((await store.get('w'))?.name, 'again');
      await assert.rejects(
        store.insert(workspaceFixture('w'), { replaceArchived: true }),
        (e: WorkspaceError) => e.code === 'conflict',
      );
    });

    it('hands out copies, never its own records', async () => {
      await store.insert(workspaceFixture('w'));
      const copy = await store.get('w');
      assert.ok(copy);
      copy.name = 'mutated';
      copy.ratchetDispatchKeys.push('x');
      assert.equal((await store.get('w'))?.name, 'Workspace w');
      assert.deepEqual((await store.get('w'))?.ratchetDispatchKeys, []);
    });
  });
}
