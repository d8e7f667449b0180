/**
 * Where a workspace stands, from its view and its sessions (there is no board route): the status label a
 * user reads and the board column it sits in.
 */
import type { SessionInfo, Workspace } from '../lib/types.js';

export type BoardColumn = 'working' | 'waiting' | 'done';

export const BOARD_COLUMNS: { id: BoardColumn; title: string; empty: string }[] = [
  { id: 'working', title: 'Working', empty: 'Nothing is running right now.' },
  { id: 'waiting', title: 'Waiting for input', empty: 'No workspace needs you.' },
  { id: 'done', title: 'Done', empty: 'Finished and pulled-back workspaces land here.' },
];

export type WorkspaceState =
  | 'provisioning'
  | 'working'
  | 'waiting'
  | 'ready'
  | 'error'
  | 'archived'
  | 'desktop';

export const STATE_LABELS: Record<WorkspaceState, string> = {
  provisioning: 'Provisioning',
  working: 'Working',
  waiting: 'Waiting for input',
  ready: 'Ready',
  error: 'Error',
  archived: 'Archived',
  desktop: 'On your desktop',
};

const isWorking = (s: SessionInfo) =>
  s.sessionRuntime.activity === 'WORKING' ||
  s.sessionRuntime.phase === 'running' ||
  s.sessionRuntime.phase === 'starting';

export function workspaceState(
  workspace: Workspace,
  sessions: readonly SessionInfo[] | undefined,
): WorkspaceState {
  if (workspace.status === 'ARCHIVED') return 'archived';
  if (workspace.location === 'DESKTOP') return 'desktop';
  if (workspace.status === 'PROVISIONING') return 'provisioning';
  if (workspace.status === 'FAILED') return 'error';
  const list = sessions ?? [];
  if (list.some((s) => (s.pendingRequestCount ?? 0) > 0)) return 'waiting';
  if (list.some(isWorking)) return 'working';
  // A ready workspace whose sessions are idle waits for the user's next message.
  return list.length > 0 ? 'waiting' : 'ready';
}

export function boardColumnOf(state: WorkspaceState): BoardColumn {
  switch (state) {
    case 'provisioning':
    case 'working':
      return 'working';
    case 'waiting':
    case 'ready':
    case 'error':
      return 'waiting';
    case 'archived':
    case 'desktop':
      return 'done';
  }
}

export type BoardCard = { workspace: Workspace; state: WorkspaceState };

export function boardOf(
  workspaces: readonly Workspace[],
  sessionsOf: (id: string) => readonly SessionInfo[] | undefined,
): Record<BoardColumn, BoardCard[]> {
  const board: Record<BoardColumn, BoardCard[]> = { working: [], waiting: [], done: [] };
  for (const workspace of workspaces) {
    const state = workspaceState(workspace, sessionsOf(workspace.id));
    board[boardColumnOf(state)].push({ workspace, state });
  }
  return board;
}
