import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCredentialProbe } from '../../src/agent/credentials.js';
import { TempDirs } from '../support/claude-cli.js';

describe('credential probe', () => {
  const dirs = new TempDirs();
  after(() => dirs.cleanup());

  it('sees the gh and Claude logins appear on the volume', async () => {
    const home = dirs.make('cred-home');
    // The real gh, asked with no login on a fresh HOME, says no.
    const probe = createCredentialProbe({
      home,
      ghBin: 'gh',
      childEnv: { PATH: '/usr/bin:/bin', HOME: home },
      cacheMs: 0,
    });
    assert.deepEqual(await probe(), { gh: false, claude: false });

    mkdirSync(join(home, '.config', 'gh'), { recursive: true });
    writeFileSync(join(home, '.config', 'gh', 'hosts.yml'), 'github.com:\n  user: octocat\n');
    writeFileSync(join(home, '.claude.json'), JSON.stringify({ userID: 'x' }));
    assert.deepEqual(await probe(), { gh: true, claude: false });

    writeFileSync(join(home, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: 'a@b.c' } }));
    assert.deepEqual(await probe(), { gh: true, claude: true });
  });

  it('counts an API key as a Claude login', async () => {
    const home = dirs.make('cred-key');
    const probe = createCredentialProbe({
      home,
      ghBin: '/bin/false',
      childEnv: { HOME: home, ANTHROPIC_API_KEY: 'sk-test' },
      cacheMs: 0,
    });
    assert.deepEqual(await probe(), { gh: false, claude: true });
  });
});
