import {
  AGENT_PROTOCOL_VERSION,
  type AgentHealth,
  type AgentWorkspace,
  type SessionEvent,
  type TerminalEvent,
} from '../protocol/index.js';
import type { TerminalManager } from '../terminal/index.js';
import type { CredentialStatus } from './credentials.js';
import { AgentRequestError } from './errors.js';
import type { AgentHandlers } from './server.js';
import type { SessionRegistry } from './sessions.js';
import type { AgentWorkspaceBridge } from './workspaces.js';

export interface HandlerDependencies {
  agentVersion: string;
  startedAt: number;
  workspaces: AgentWorkspaceBridge;
  sessions: SessionRegistry;
  terminals: TerminalManager;
  credentials: () => Promise<CredentialStatus>;
  /** Environment and home directory for terminal shells. */
  terminalEnv: Readonly<Record<string, string>>;
  homeDir: string;
}

const ok = { ok: true } as const;

/** The agent protocol's methods, each a thin call into a domain. */
export function createAgentHandlers(deps: HandlerDependencies): AgentHandlers {
  const { workspaces, sessions, terminals } = deps;

  async function activeWorkspace(id: string): Promise<AgentWorkspace> {
    const workspace = await workspaces.get(id);
    if (!workspace) throw new AgentRequestError('not_found', `no workspace ${id}`);
    if (workspace.status === 'ARCHIVED') {
      throw new AgentRequestError('conflict', `workspace ${id} is archived`);
    }
    return workspace;
  }

  return {
    'health.ping': async (): Promise<AgentHealth> => ({
      agentVersion: deps.agentVersion,
      protocolVersion: AGENT_PROTOCOL_VERSION,
      uptimeMs: Date.now() - deps.startedAt,
      rssBytes: process.memoryUsage.rss(),
      liveSessions: sessions.liveCount,
      sessions: sessions.size,
      terminals: terminals.liveCount,
      credentials: await deps.credentials(),
    }),

    'workspace.create': (p) => workspaces.create(p),
    'workspace.list': async (p) => ({ workspaces: await workspaces.list(p) }),
    'workspace.get': async (p) => {
      const workspace = await workspaces.get(p.workspaceId);
      if (!workspace) throw new AgentRequestError('not_found', `no workspace ${p.workspaceId}`);
      return workspace;
    },
    'workspace.archive': async (p) => {
      // Nothing keeps running in an archived workspace.
      await Promise.all(sessions.inWorkspace(p.workspaceId).map((s) => s.stop()));
      return workspaces.archive(p.workspaceId);
    },

    'session.create': async (p) => {
      const workspace = await activeWorkspace(p.workspaceId);
      const entry = sessions.create({
        id: p.id,
        workspaceId: workspace.id,
        cwd: await workspaces.worktreePath(workspace.id),
        name: p.name,
        permissionMode: p.permissionMode,
        model: p.model,
        appendSystemPrompt: p.appendSystemPrompt,
      });
      return sessions.info(entry.record.id);
    },
    'session.list': (p) => ({ sessions: sessions.list(p.workspaceId) }),
    'session.get': (p) => ({
      session: sessions.info(p.sessionId),
      snapshot: sessions.get(p.sessionId).snapshot(),
    }),
    'session.send': (p) => {
      const sent = sessions.get(p.sessionId).send({ id: p.id, text: p.text, settings: p.settings });
      if (sent.state === 'REJECTED') {
        throw new AgentRequestError('queue_full', sent.errorMessage ?? 'the message queue is full');
      }
      return { messageId: sent.messageId, state: sent.state, queuePosition: sent.queuePosition };
    },
    'session.remove_queued': (p) => ({ removed: sessions.get(p.sessionId).removeQueued(p.messageId) }),
    'session.answer_question': (p) => {
      sessions.get(p.sessionId).answerQuestion(p.requestId, p.answers);
      return ok;
    },
    'session.answer_permission': (p) => {
      sessions.get(p.sessionId).answerPermission(p.requestId, {
        allow: p.allow,
        message: p.message,
        updatedInput: p.updatedInput,
      });
      return ok;
    },
    'session.interrupt': async (p) => {
      await sessions.get(p.sessionId).interrupt();
      return ok;
    },
    'session.stop': async (p) => {
      await sessions.get(p.sessionId).stop();
      return ok;
    },
    'session.subscribe': (p, context) => {
      const session = sessions.get(p.sessionId);
      return context.subscribe(p.subscriptionId, (send) => {
        const subscription = session.subscribe((event: SessionEvent) => send(event));
        return { result: { snapshot: subscription.snapshot }, close: subscription.unsubscribe };
      });
    },

    'terminal.create': async (p) => {
      const cwd = p.workspaceId
        ? await workspaces.worktreePath((await activeWorkspace(p.workspaceId)).id)
        : deps.homeDir;
      return terminals.create({
        cwd,
        env: deps.terminalEnv,
        cols: p.cols,
        rows: p.rows,
        workspaceId: p.workspaceId ?? null,
      });
    },
    'terminal.list': () => ({ terminals: terminals.list() }),
    'terminal.input': (p) => {
      terminals.input(p.terminalId, p.data);
      return ok;
    },
    'terminal.resize': (p) => {
      terminals.resize(p.terminalId, p.cols, p.rows);
      return ok;
    },
    'terminal.kill': (p) => {
      terminals.kill(p.terminalId);
      return ok;
    },
    'terminal.subscribe': (p, context) =>
      context.subscribe(p.subscriptionId, (send) => {
        const subscription = terminals.subscribe(p.terminalId, (event: TerminalEvent) => send(event));
        return {
          result: { terminal: subscription.terminal, scrollback: subscription.scrollback },
          close: subscription.unsubscribe,
        };
      }),

    unsubscribe: (p, context) => {
      if (!context.unsubscribe(p.subscriptionId)) {
        throw new AgentRequestError('not_found', `no subscription ${p.subscriptionId} on this connection`);
      }
      return ok;
    },
  };
}
