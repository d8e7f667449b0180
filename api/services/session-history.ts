/**
 * A session's history one page at a time, for the dashboard: a long session opens on its newest messages
 * instead of shipping the whole transcript, and older pages come on demand ("Load earlier").
 *
 * Pages are cut from the agent's session snapshot (session.get), whose conversation only grows at its
 * end, so an index names the same message on every later page. Each page carries the snapshot's `seq`:
 * the relay opened with `?after=<seq>` continues exactly after it, so nothing is fetched twice.
 *
 * Tenancy as everywhere: the read model says the workspace is the caller's and READY before the VM is
 * reached, and another workspace's session is "not found".
 */

import type { SessionSnapshot } from '@factory-factory/core/protocol';
import type { AgentConnections } from '../agents/connections.js';
import type { SessionMessagesPage, SessionMessagesQuery } from '../contract/dashboard.js';
import { ApiError } from '../errors.js';
import { agentErrorCode, sessionNotFound, type WorkspaceService } from './workspace-service.js';

/** The page of `messages` that ends just before `before` (the newest page without it). */
export function pageOfSnapshot(
  snapshot: Pick<SessionSnapshot, 'seq' | 'messages'>,
  query: SessionMessagesQuery,
): SessionMessagesPage {
  const total = snapshot.messages.length;
  const end = Math.min(query.before ?? total, total);
  const start = Math.max(0, end - query.limit);
  return { seq: snapshot.seq, total, start, messages: snapshot.messages.slice(start, end) };
}

/** The agent's failures as answers a user can act on (as the other session routes answer them). */
function historyError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  switch (agentErrorCode(err)) {
    case null:
      return err;
    case 'not_found':
      return sessionNotFound();
    case 'timeout':
      return new ApiError(504, 'vm_timeout', 'your VM did not answer in time; try again');
    case 'unavailable':
    case 'disconnected':
    case 'unauthorized':
      return new ApiError(503, 'vm_unavailable', 'your VM is not reachable right now; try again in a moment');
    default:
      return new ApiError(502, 'vm_error', 'your VM could not do that; try again');
  }
}

export class SessionHistoryService {
  constructor(private readonly deps: { workspaces: WorkspaceService; agents: AgentConnections }) {}

  async page(
    userId: string,
    workspaceId: string,
    sessionId: string,
    query: SessionMessagesQuery,
  ): Promise<SessionMessagesPage> {
    await this.deps.workspaces.readyWorkspace(userId, workspaceId);
    try {
      const { session, snapshot } = await this.deps.agents.withAgent(userId, (agent) =>
        agent.getSession(sessionId),
      );
      if (session.workspaceId !== workspaceId) throw sessionNotFound();
      return pageOfSnapshot(snapshot, query);
    } catch (err) {
      throw historyError(err);
    }
  }
}
