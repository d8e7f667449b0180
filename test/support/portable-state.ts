import {
  PORTABLE_WORKSPACE_STATE_VERSION,
  type PortableWorkspaceState,
} from '@factory-factory/core/protocol';

/**
 * A portable workspace state as `ffc send` would make it: a DESKTOP workspace on feature-x off main, no PR,
 * no issue, the ratchet off and never run. A test overrides only the fields it is about, so a field added
 * to the state is added here once.
 */
export function portableWorkspaceState(
  workspaceId: string,
  overrides: Partial<PortableWorkspaceState> = {},
): PortableWorkspaceState {
  return {
    version: PORTABLE_WORKSPACE_STATE_VERSION,
    workspaceId,
    name: `workspace ${workspaceId}`,
    repoUrl: 'https://github.com/acme/app.git',
    branchName: 'feature-x',
    baseBranch: 'main',
    location: 'DESKTOP',
    prUrl: null,
    prNumber: null,
    githubIssueNumber: null,
    githubIssueUrl: null,
    ratchetEnabled: false,
    ratchetState: 'IDLE',
    ratchetLastCiRunId: null,
    prReviewLastCheckedAt: null,
    ratchetDispatchKeys: [],
    exportedAt: new Date().toISOString(),
    ...overrides,
  };
}
