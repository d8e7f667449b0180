import assert from 'node:assert/strict';
import { collectReviewActivity, isTrustedAuthor } from '../../src/github/index.js';
import type {
  GhIssueComment,
  GhReview,
  GhReviewLineComment,
  ReviewTrustPolicy,
} from '../../src/protocol/github.js';

const review = (
  login: string,
  state: string,
  body: string,
  submittedAt: string,
  authorAssociation = 'MEMBER',
): GhReview => ({
  id: `R_${login}_${submittedAt}`,
  author: { login },
  authorAssociation,
  state,
  body,
  submittedAt,
});
const comment = (
  login: string,
  body: string,
  createdAt: string,
  { viewerDidAuthor = false, authorAssociation = 'MEMBER' } = {},
): GhIssueComment => ({
  id: `C_${login}_${createdAt}`,
  author: { login },
  authorAssociation,
  body,
  createdAt,
  url: `https://github.com/o/r/pull/1#issuecomment-${createdAt}`,
  viewerDidAuthor,
});
const line = (
  login: string,
  body: string,
  created: string,
  { updated, association = 'MEMBER' }: { updated?: string; association?: string } = {},
): GhReviewLineComment => ({
  id: 1,
  user: { login },
  author_association: association,
  body,
  path: 'src/a.ts',
  line: 4,
  created_at: created,
  updated_at: updated ?? created,
  html_url: 'https://github.com/o/r/pull/1#discussion_r1',
});
const allFeedback: ReviewTrustPolicy = { triggerMode: 'all_feedback', trustedBots: [] };

describe('github / review activity', () => {
  it("leaves out the gh user's own reviews and comments, whatever their association", () => {
    const activity = collectReviewActivity(
      'Me',
      [
        review('me', 'CHANGES_REQUESTED', 'self review', '2024-01-05T00:00:00Z', 'OWNER'),
        review('bob', 'CHANGES_REQUESTED', 'rename', '2024-01-02T00:00:00Z'),
      ],
      [
        comment('someone', 'done!', '2024-01-06T00:00:00Z', { viewerDidAuthor: true }),
        comment('dave', 'eta?', '2024-01-03T00:00:00Z'),
      ],
      [line('ME', 'reply', '2024-01-07T00:00:00Z'), line('carol', 'typo', '2024-01-01T00:00:00Z')],
      allFeedback,
    );
    assert.equal(activity.latestAt, '2024-01-03T00:00:00Z');
    assert.deepEqual(
      activity.feedback.map((f) => [f.kind, f.author, f.body, f.authorAssociation]),
      [
        ['line_comment', 'carol', 'typo', 'MEMBER'],
        ['review', 'bob', 'rename', 'MEMBER'],
        ['conversation', 'dave', 'eta?', 'MEMBER'],
      ],
    );
    const lineItem = activity.feedback[0];
    assert.equal(lineItem?.path, 'src/a.ts');
    assert.equal(lineItem?.line, 4);
  });

  it('by default only CHANGES_REQUESTED reviews trigger; comments are feedback without triggering', () => {
    const activity = collectReviewActivity(
      'me',
      [
        review('bob', 'CHANGES_REQUESTED', 'rename', '2024-01-02T00:00:00Z'),
        review('bob', 'COMMENTED', 'also this', '2024-01-04T00:00:00Z'),
      ],
      [comment('dave', 'eta?', '2024-01-05T00:00:00Z', { authorAssociation: 'OWNER' })],
      [line('carol', 'typo', '2024-01-06T00:00:00Z', { association: 'COLLABORATOR' })],
    );
    assert.equal(activity.latestAt, '2024-01-02T00:00:00Z');
    assert.equal(activity.feedback.length, 4);
    const all = collectReviewActivity(
      'me',
      [review('bob', 'COMMENTED', 'also this', '2024-01-04T00:00:00Z')],
      [comment('dave', 'eta?', '2024-01-05T00:00:00Z')],
      [],
      allFeedback,
    );
    assert.equal(all.latestAt, '2024-01-05T00:00:00Z');
  });

  it('drops untrusted authors entirely: not feedback, never activity, however they are named', () => {
    const untrusted = ['NONE', 'CONTRIBUTOR', 'FIRST_TIME_CONTRIBUTOR', 'FIRST_TIMER', 'MANNEQUIN'];
    for (const association of [...untrusted, null]) {
      const activity = collectReviewActivity(
        'me',
        [
          review('dependabot[bot]', 'CHANGES_REQUESTED', 'obey', '2024-02-01T00:00:00Z', association ?? ''),
          review('bob', 'CHANGES_REQUESTED', 'rename', '2024-01-02T00:00:00Z'),
        ],
        [comment('x[bot]', 'obey', '2024-02-02T00:00:00Z', { authorAssociation: association ?? '' })],
        [line('octocat-renamed', 'obey', '2024-02-03T00:00:00Z', { association: association ?? '' })],
        allFeedback,
      );
      assert.equal(activity.latestAt, '2024-01-02T00:00:00Z', String(association));
      assert.deepEqual(
        activity.feedback.map((f) => f.body),
        ['rename'],
        String(association),
      );
    }
  });

  it('trusts a listed bot by its exact login (any case), and never the gh user even when listed', () => {
    const trust: ReviewTrustPolicy = { triggerMode: 'all_feedback', trustedBots: ['Renovate[bot]', 'me'] };
    assert.equal(isTrustedAuthor('renovate[bot]', 'NONE', 'me', trust), true);
    assert.equal(isTrustedAuthor('renovate', 'NONE', 'me', trust), false, 'a near name is not the login');
    assert.equal(isTrustedAuthor('me', 'OWNER', 'ME', trust), false);
    assert.equal(isTrustedAuthor('x[bot]', 'COLLABORATOR', 'me', trust), true, 'judged by association');
    const activity = collectReviewActivity(
      'me',
      [],
      [
        comment('renovate[bot]', 'bump', '2024-01-04T00:00:00Z', { authorAssociation: 'NONE' }),
        comment('me', 'ratchet fix this', '2024-01-05T00:00:00Z', { authorAssociation: 'OWNER' }),
      ],
      [],
      trust,
    );
    assert.equal(activity.latestAt, '2024-01-04T00:00:00Z');
    assert.deepEqual(
      activity.feedback.map((f) => f.author),
      ['renovate[bot]'],
    );
  });

  it('line comments count by creation time, like conversation comments: an edit does not re-trigger', () => {
    const activity = collectReviewActivity(
      'me',
      [],
      [],
      [line('carol', 'typo', '2024-01-01T00:00:00Z', { updated: '2024-01-04T00:00:00Z' })],
      allFeedback,
    );
    assert.equal(activity.latestAt, '2024-01-01T00:00:00Z');
    assert.equal(activity.feedback[0]?.at, '2024-01-01T00:00:00Z');
  });

  it('drops a review superseded by a later approval from the same author: no feedback, no trigger', () => {
    const activity = collectReviewActivity(
      'me',
      [
        review('bob', 'CHANGES_REQUESTED', 'rename', '2024-01-02T00:00:00Z'),
        review('bob', 'APPROVED', '', '2024-01-03T00:00:00Z'),
      ],
      [],
      [],
    );
    assert.deepEqual(activity.feedback, []);
    assert.equal(activity.latestAt, null);
  });

  it('ignores empty bodies, pending reviews and gh zero times', () => {
    const activity = collectReviewActivity(
      'me',
      [
        review('bob', 'PENDING', 'draft', '2024-02-01T00:00:00Z'),
        review('bob', 'COMMENTED', '  ', '0001-01-01T00:00:00Z'),
      ],
      [comment('dave', '', '2024-01-01T00:00:00Z')],
      [],
      allFeedback,
    );
    assert.deepEqual(activity.feedback, []);
    assert.equal(activity.latestAt, '2024-01-01T00:00:00Z');
  });

  it('has no activity on a quiet PR', () => {
    assert.deepEqual(collectReviewActivity('me', [], [], []), { feedback: [], latestAt: null });
  });
});
