import assert from 'node:assert/strict';
import {
  branchCandidate,
  branchNameFor,
  isValidExistingBranchName,
  MAX_BRANCH_NAME_LENGTH,
  MAX_BRANCH_SLUG_LENGTH,
  slugify,
} from '../../src/workspace/index.js';

describe('workspace / branch names', () => {
  it('keeps only [a-z0-9-/], collapses and trims dashes', () => {
    assert.equal(
      branchNameFor('Octo_Tester', 'Fix: the Widget (again)!', 'id1'),
      'octo-tester/fix-the-widget-again',
    );
    assert.equal(branchNameFor(null, '  Émoji 🚀 support  ', 'id1'), 'emoji-support');
    assert.match(branchNameFor('u', 'x'.repeat(500), 'id1'), /^[a-z0-9\-/]+$/);
  });

  it('caps the name', () => {
    assert.equal(slugify('a-'.repeat(100)).length <= MAX_BRANCH_SLUG_LENGTH, true);
    assert.ok(!slugify('a-'.repeat(100)).endsWith('-'));
    assert.equal(
      branchNameFor('u', 'word '.repeat(40), 'id').length <= 39 + 1 + MAX_BRANCH_SLUG_LENGTH,
      true,
    );
  });

  it('falls back to a name from the seed when nothing survives', () => {
    assert.equal(branchNameFor('u', '!!!', 'AB12cd34-ef'), 'u/ws-ab12cd34-ef');
    assert.equal(branchNameFor(null, '日本語', ''), 'ws-workspace');
  });

  it('suffixes collisions within the length cap', () => {
    assert.equal(branchCandidate('u/fix', 1), 'u/fix');
    assert.equal(branchCandidate('u/fix', 2), 'u/fix-2');
    const long = `u/${'a'.repeat(200)}`;
    const c = branchCandidate(long, 12);
    assert.equal(c.length, MAX_BRANCH_NAME_LENGTH);
    assert.ok(c.endsWith('-12'));
  });

  it("validates existing branch names with git's rules and no leading dash", () => {
    for (const good of ['main', 'feature/widgets', 'release-1.2', 'user/ISSUE_5'])
      assert.ok(isValidExistingBranchName(good), good);
    for (const bad of [
      '-rf',
      '--upload-pack=x',
      'a..b',
      'a b',
      'a~1',
      'x^',
      'a:b',
      'a/',
      '/a',
      'a//b',
      'x.lock',
      '.hidden',
      'a@{1}',
      '@',
      'a\\b',
      'tab\tx',
      '',
    ]) {
      assert.ok(!isValidExistingBranchName(bad), bad);
    }
  });
});
