/**
 * The workspaces table is the read model of the workspace:<id> actors: the api lists and shows workspaces
 * from it without asking Temporal (`view` holds the whole WorkspaceView it answers with). Writes are
 * idempotent upserts that never go over a newer write (updated_at) or over a row of another user; the
 * row's version is bumped by every accepted write and stays the one counter across the actor's runs.
 */
import type { Pool } from '../../db/pool.js';
import type { WorkspaceView } from '../../workflows/workspace/messages.js';
import type { RecordedView, WorkspaceActivities } from './types.js';

export function createWorkspaceReadModelActivities(deps: { pool: Pool }) {
  async function recordWorkspaceView(view: WorkspaceView): Promise<RecordedView> {
    const { rows } = await deps.pool.query<{ version: number; created_at: string }>(
      `INSERT INTO workspaces AS w (id, user_id, name, status, location, repo_url, branch_name, base_branch,
                                    github_issue_number, github_issue_url, pr_url, pr_number, ratchet_enabled,
                                    ratchet_state, failure_reason, step, version, created_at, updated_at, view)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1, $17, $18,
               $19::jsonb || jsonb_build_object('version', 1))
       ON CONFLICT (id) DO UPDATE SET
         name = EXCLUDED.name, status = EXCLUDED.status, location = EXCLUDED.location,
         repo_url = EXCLUDED.repo_url, branch_name = EXCLUDED.branch_name, base_branch = EXCLUDED.base_branch,
         github_issue_number = EXCLUDED.github_issue_number, github_issue_url = EXCLUDED.github_issue_url,
         pr_url = EXCLUDED.pr_url, pr_number = EXCLUDED.pr_number, ratchet_enabled = EXCLUDED.ratchet_enabled,
         ratchet_state = EXCLUDED.ratchet_state, failure_reason = EXCLUDED.failure_reason, step = EXCLUDED.step,
         version = w.version + 1, updated_at = EXCLUDED.updated_at,
         view = EXCLUDED.view || jsonb_build_object(
           'version', w.version + 1,
           'createdAt', COALESCE(w.view -> 'createdAt', EXCLUDED.view -> 'createdAt'))
       WHERE w.user_id = EXCLUDED.user_id AND w.updated_at <= EXCLUDED.updated_at
       RETURNING w.version, w.view ->> 'createdAt' AS created_at`,
      [
        view.id,
        view.userId,
        view.name,
        view.status,
        view.location,
        view.repoUrl,
        view.branchName,
        view.baseBranch,
        view.githubIssueNumber,
        view.githubIssueUrl,
        view.prUrl,
        view.prNumber,
        view.ratchetEnabled,
        view.ratchetState,
        view.failureReason,
        view.step,
        view.createdAt,
        view.updatedAt,
        JSON.stringify(view),
      ],
    );
    const row = rows[0];
    if (row) return { written: true, version: row.version, createdAt: row.created_at };
    const owner = await deps.pool.query<{ user_id: string }>('SELECT user_id FROM workspaces WHERE id = $1', [
      view.id,
    ]);
    return owner.rows[0]?.user_id === view.userId
      ? { written: false, reason: 'stale' }
      : { written: false, reason: 'notOwner' };
  }

  return { recordWorkspaceView } satisfies Pick<WorkspaceActivities, 'recordWorkspaceView'>;
}
