import assert from 'node:assert/strict';
import { collectReviewActivity } from '../../src/github/index.js';
import type { GhIssueComment, GhReview, GhReviewLineComment } from '../../src/protocol/github.js';

const review = (login: string, state: string, body: string, submittedAt: string): GhReview => ({
  id: `R_${login}_${submittedAt}`,
  author: { login },
  state,
  body,
  submittedAt,
});
const comment = (
  login: string,
  body: string,
  createdAt: string,
  viewerDidAuthor = false,
): GhIssueComment => ({
  id: `C_${login}_${createdAt}`,
  author: { login },
  body,
  createdAt,
  url: `https://github.com/o/r/pull/1#issuecomment-${createdAt}`,
  viewerDidAuthor,
});
const line = (login: string, body: string, created: string, updated?: string): GhReviewLineComment => ({
  id: 1,
  user: { login },
  body,
  path: 'src/a.ts',
  line: 4,
  created_at: created,
  updated_at: updated ?? created,
  html_url: 'https://github.com/o/r/pull/1#discussion_r1',
});

describe('github / review activity', () => {
  it("leaves out the gh user's own reviews and comments", () => {
    const activity = collectReviewActivity(
      'Me',
      [
        review('me', 'COMMENTED', 'self review', '2024-01-05T00:00:00Z'),
        review('bob', 'CHANGES_REQUESTED', 'rename', '2024-01-02T00:00:00Z'),
      ],
      [comment('me', 'done!', '2024-01-06T00:00:00Z', true), comment('dave', 'eta?', '2024-01-03T00:00:00Z')],
      [
        line('ME', 'reply', '2024-01-07T00:00:00Z'),
        line('carol', 'typo', '2024-01-01T00:00:00Z', '2024-01-04T00:00:00Z'),
      ],
    );
    assert.equal(
      activity.latestAt,
      '2024-01-04T00:00:00Z',
      'an edited line comment counts at its update time',
    );
    assert.deepEqual(
      activity.feedback.map((f) => [f.kind, f.author, f.body]),
      [
        ['line_comment', 'carol', 'typo'],
        ['review', 'bob', 'rename'],
        ['conversation', 'dave', 'eta?'],
      ],
    );
    const lineItem = activity.feedback[0];
    assert.equal(lineItem?.path, 'src/a.ts');
    assert.equal(lineItem?.line, 4);
  });

  it('drops a review superseded by a later approval from the same author, but still counts its time', () => {
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
    assert.equal(activity.latestAt, '2024-01-03T00:00:00Z');
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
    );
    assert.deepEqual(activity.feedback, []);
    assert.equal(activity.latestAt, '2024-01-01T00:00:00Z');
  });

  it('has no activity on a quiet PR', () => {
    assert.deepEqual(collectReviewActivity('me', [], [], []), { feedback: [], latestAt: null });
  });
});
