import assert from 'node:assert/strict';
import { parseRepoUrl, WorkspaceError } from '../../src/workspace/index.js';

describe('workspace / repository URLs', () => {
  const all = ['https', 'ssh', 'file', 'http'] as const;

  it('derives one clone directory per repository', () => {
    assert.deepEqual(parseRepoUrl('https://github.com/o/r.git', all).cacheKey, ['github.com', 'o', 'r']);
    assert.deepEqual(parseRepoUrl('https://github.com/o/r', all).cacheKey, ['github.com', 'o', 'r']);
    assert.deepEqual(parseRepoUrl('https://github.com/o/.github', all).cacheKey, [
      'github.com',
      'o',
      '.github',
    ]);
    assert.deepEqual(parseRepoUrl('git@github.com:o/r.git', all).cacheKey, ['github.com', 'o', 'r']);
    assert.deepEqual(parseRepoUrl('ssh://git@ghe.example.com:2222/o/r.git', all).cacheKey, [
      'ghe.example.com_2222',
      'o',
      'r',
    ]);
    assert.deepEqual(parseRepoUrl('file:///tmp/x/remotes/o/r.git', all).cacheKey, [
      'local',
      'tmp',
      'x',
      'remotes',
      'o',
      'r',
    ]);
  });

  it('rejects option injection, transport helpers, credentials and disallowed schemes', () => {
    const bad = [
      '--upload-pack=touch /tmp/pwned',
      'ext::sh -c touch% /tmp/pwned',
      'https://user:token@github.com/o/r.git',
      'https://x-access-token@github.com/o/r.git',
      'https://github.com/o/../../etc',
      'https://github.com/o/..',
      'https://github.com/o/r.git\n--foo',
      'ftp://example.com/o/r.git',
    ];
    for (const url of bad) assert.throws(() => parseRepoUrl(url, all), WorkspaceError, url);
    assert.throws(() => parseRepoUrl('file:///tmp/r.git', ['https', 'ssh']), /scheme "file" is not allowed/);
  });
});
