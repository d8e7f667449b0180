import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentStore } from '../../src/agent/store.js';
import { TempDirs } from '../support/claude-cli.js';

/** The agent's database holds transcripts (the user's code and prompts): owner-only whatever the umask. */
describe('agent store files', () => {
  const dirs = new TempDirs();
  let umask: number;

  beforeEach(() => {
    umask = process.umask(0o000);
  });

  afterEach(() => {
    process.umask(umask);
    dirs.cleanup();
  });

  const modeOf = (path: string) => statSync(path).mode & 0o777;

  it('creates agent.db and its WAL and SHM files 0600 under a umask of 000', () => {
    const path = join(dirs.make('store'), 'agent.db');
    const store = AgentStore.open(path);
    store.reserveSeq('nobody', 1);
    store.insertSession({
      id: 's',
      workspaceId: 'w',
      name: 'n',
      workflow: 'followup',
      permissionMode: 'default',
      model: null,
      appendSystemPrompt: null,
      claudeSessionId: null,
      createdAt: new Date().toISOString(),
      seqReserved: 0,
    });
    try {
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(file), `${file} exists`);
        assert.equal(modeOf(file).toString(8), '600', file);
      }
    } finally {
      store.close();
    }
  });

  it('narrows a database file an earlier run left world-readable', () => {
    const path = join(dirs.make('store'), 'agent.db');
    writeFileSync(path, '', { mode: 0o666 });
    assert.equal(modeOf(path).toString(8), '666');
    AgentStore.open(path).close();
    assert.equal(modeOf(path).toString(8), '600');
  });
});
