/**
 * The user's workspaces and their sessions: the list, the board (derived), one workspace's detail, and
 * the actions on them. Sessions are fetched only for READY cloud workspaces (the others have none running).
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { boardOf, workspaceState } from '../composables/board.js';
import { isRecord, isUnknown } from '../lib/guards.js';
import {
  isSessionAnswer,
  isSessionList,
  isWorkspaceAnswer,
  isWorkspaceList,
  type SessionInfo,
  type Workspace,
} from '../lib/types.js';
import { api } from './api.js';

export type CreateWorkspaceInput = { issueUrl: string; repoUrl?: string };

const hasSessions = (w: Workspace) => w.status === 'READY' && w.location === 'CLOUD';

export const useWorkspaces = defineStore('workspaces', () => {
  const workspaces = ref<Workspace[]>([]);
  const sessions = ref<Record<string, SessionInfo[]>>({});
  const loaded = ref(false);

  const board = computed(() => boardOf(workspaces.value, (id) => sessions.value[id]));
  const byId = (id: string) => workspaces.value.find((w) => w.id === id);
  const stateOf = (w: Workspace) => workspaceState(w, sessions.value[w.id]);

  function upsert(workspace: Workspace): void {
    const index = workspaces.value.findIndex((w) => w.id === workspace.id);
    if (index >= 0) workspaces.value.splice(index, 1, workspace);
    else workspaces.value.unshift(workspace);
  }

  async function loadSessions(id: string): Promise<SessionInfo[]> {
    const answer = await api().get(`/api/workspaces/${encodeURIComponent(id)}/sessions`, isSessionList);
    sessions.value = { ...sessions.value, [id]: answer.sessions };
    return answer.sessions;
  }

  /** The list and, for each READY cloud workspace, its sessions (a VM that does not answer is skipped). */
  async function refresh(): Promise<void> {
    const answer = await api().get('/api/workspaces?limit=100', isWorkspaceList);
    workspaces.value = answer.workspaces;
    loaded.value = true;
    await Promise.all(
      answer.workspaces.filter(hasSessions).map((w) => loadSessions(w.id).catch(() => undefined)),
    );
  }

  async function load(id: string): Promise<Workspace> {
    const answer = await api().get(`/api/workspaces/${encodeURIComponent(id)}`, isWorkspaceAnswer);
    upsert(answer.workspace);
    if (hasSessions(answer.workspace)) await loadSessions(id).catch(() => undefined);
    return answer.workspace;
  }

  async function create(input: CreateWorkspaceInput): Promise<Workspace> {
    const body: Record<string, string> = { issueUrl: input.issueUrl.trim() };
    if (input.repoUrl?.trim()) body.repoUrl = input.repoUrl.trim();
    const answer = await api().post('/api/workspaces', body, isWorkspaceAnswer);
    upsert(answer.workspace);
    return answer.workspace;
  }

  async function act(id: string, action: 'archive' | 'retry'): Promise<Workspace> {
    const answer = await api().post(
      `/api/workspaces/${encodeURIComponent(id)}/${action}`,
      {},
      isWorkspaceAnswer,
    );
    upsert(answer.workspace);
    return answer.workspace;
  }

  /** Pull back to the desktop; answers with the portable state, so the view is fetched again. */
  async function pull(id: string): Promise<Workspace> {
    await api().post(`/api/workspaces/${encodeURIComponent(id)}/pull`, {}, isRecord);
    return load(id);
  }

  async function setRatchet(id: string, enabled: boolean): Promise<Workspace> {
    await api().post(`/api/workspaces/${encodeURIComponent(id)}/ratchet`, { enabled }, isUnknown);
    return load(id);
  }

  async function createSession(id: string, prompt?: string): Promise<SessionInfo> {
    const body = prompt?.trim() ? { prompt: prompt.trim() } : {};
    const answer = await api().post(
      `/api/workspaces/${encodeURIComponent(id)}/sessions`,
      body,
      isSessionAnswer,
    );
    await loadSessions(id).catch(() => undefined);
    return answer.session;
  }

  return {
    workspaces,
    sessions,
    loaded,
    board,
    byId,
    stateOf,
    refresh,
    load,
    loadSessions,
    create,
    archive: (id: string) => act(id, 'archive'),
    retry: (id: string) => act(id, 'retry'),
    pull,
    setRatchet,
    createSession,
  };
});
