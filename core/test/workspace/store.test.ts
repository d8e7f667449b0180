import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { WorkspaceStatus } from '../../src/protocol/workspace.js';
import {
  checkTransition,
  InMemoryWorkspaceStore,
  MAX_INIT_RETRIES,
  SqliteWorkspaceStore,
} from '../../src/workspace/index.js';
import { describeStoreContract, workspaceFixture } from './store-contract.js';

describe('workspace / state machine', () => {
  const statuses: WorkspaceStatus[] = ['NEW', 'PROVISIONING', 'READY', 'FAILED', 'ARCHIVED'];
  const allowed = new Set([
    'NEW>PROVISIONING',
    'PROVISIONING>READY',
    'PROVISIONING>FAILED',
    'READY>ARCHIVED',
    'FAILED>PROVISIONING',
    'FAILED>ARCHIVED',
  ]);
  for (const from of statuses) {
    for (const to of statuses) {
      const expected = allowed.has(`${from}>${to}`);
      it(`${from} → ${to}: ${expected ? 'allowed' : 'refused'}`, () => {
        assert.equal(checkTransition(from, to, 0).ok, expected);
      });
    }
  }
  it(`retries from FAILED at most ${MAX_INIT_RETRIES} times`, () => {
    assert.ok(checkTransition('FAILED', 'PROVISIONING', MAX_INIT_RETRIES - 1).ok);
    const refused = checkTransition('FAILED', 'PROVISIONING', MAX_INIT_RETRIES);
    assert.ok(!refused.ok && refused.code === 'retry_limit');
    assert.ok(
      checkTransition('FAILED', 'ARCHIVED', MAX_INIT_RETRIES).ok,
      'a stuck workspace can still be archived',
    );
  });
});

describeStoreContract('InMemoryWorkspaceStore', () => new InMemoryWorkspaceStore());

const sqliteDirs: string[] = [];
describeStoreContract(
  'SqliteWorkspaceStore',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ff-ws-sqlite-'));
    sqliteDirs.push(dir);
    return new SqliteWorkspaceStore(new Database(join(dir, 'agent.db')));
  },
  () => {
    for (const dir of sqliteDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  },
);

describe('workspace / SqliteWorkspaceStore across connections', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ff-ws-sqlite-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps compare-and-swap between two connections to one file (two agent processes)', async () => {
    const file = join(dir, 'shared.db');
    const a = new SqliteWorkspaceStore(new Database(file));
    const b = new SqliteWorkspaceStore(new Database(file));
    await a.insert(workspaceFixture('w'));
    assert.equal((await b.transition('w', 'NEW', 'PROVISIONING', {}))?.status, 'PROVISIONING');
    assert.equal(await a.transition('w', 'NEW', 'PROVISIONING', {}), null);
    assert.equal((await a.get('w'))?.version, 1);
  });
});
