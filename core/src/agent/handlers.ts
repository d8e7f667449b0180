import {
  AGENT_PROTOCOL_VERSION,
  type AgentHealth,
  type SessionEvent,
  type TerminalEvent,
  type Workspace,
} from '../protocol/index.js';
import type { TerminalManager } from '../terminal/index.js';
import type { CredentialStatus } from './credentials.js';
import { AgentRequestError } from './errors.js';
import type { RatchetHandlers } from './ratchet-handlers.js';
import type { AgentHandlers } from './server.js';
import type { SessionRegistry } from './sessions.js';
import type { AgentWorkspaceBridge } from './workspaces.js';

export interface HandlerDependencies {
  agentVersion: string;
  startedAt: number;
  workspaces: AgentWorkspaceBridge;
  sessions: SessionRegistry;
  terminals: TerminalManager;
  /** Authenticated connections to the agent right now (health reports it, so leaks are visible). */
  connections: () => number;
  credentials: () => Promise<CredentialStatus>;
  /** Environment and home directory for terminal shells. */
  terminalEnv: Readonly<Record<string, string>>;
  homeDir: string;
  /** The ratchet's methods (ratchet-handlers.ts), built by the composition root beside these. */
  ratchet: RatchetHandlers;
}

const ok = { ok: true } as const;

/** The agent protocol's methods, each a thin call into a domain. */
export function createAgentHandlers(deps: HandlerDependencies): AgentHandlers {
  const { workspaces, sessions, terminals } = deps;

  async function existingWorkspace(id: string): Promise<Workspace> {
    const workspace = await workspaces.get(id);
    if (!workspace) throw new AgentRequestError('not_found', `no workspace ${id}`);
    return workspace;
  }

  /** Sessions and terminals run only in a READY workspace; anything else says what to do about it. */
  async function readyWorkspace(id: string): Promise<Workspace> {
    const workspace = await existingWorkspace(id);
    switch (workspace.status) {
      case 'READY':
        return workspace;
      case 'NEW':
      case 'PROVISIONING':
        throw new AgentRequestError(
          'conflict',
          `workspace ${id} is still being set up; wait until it is READY`,
        );
      case 'FAILED':
        throw new AgentRequestError(
          'conflict',
          `workspace ${id} failed to set up (${workspace.initError ?? 'no reason recorded'}); retry or archive it`,
        );
      case 'ARCHIVED':
        throw new AgentRequestError('conflict', `workspace ${id} is archived`);
    }
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
      connections: deps.connections(),
      credentials: await deps.credentials(),
    }),

    'workspace.create': (p) => workspaces.create(p),
    'workspace.list': async (p) => ({ workspaces: await workspaces.list(p) }),
    'workspace.get': (p) => existingWorkspace(p.workspaceId),
    'workspace.archive': async (p) => {
      const workspace = await existingWorkspace(p.workspaceId);
      if (workspace.status === 'ARCHIVED') return workspace;
      // Checked before stopping anything: archiving must not kill a fixer the ratchet is waiting on.
      if (sessions.isFixerActive(workspace.id)) {
        throw new AgentRequestError('conflict', 'Fixer session active — wait or stop it first');
      }
      // Nothing keeps running in a worktree that is about to be removed.
      await Promise.all(sessions.inWorkspace(workspace.id).map((s) => s.stop()));
      return workspaces.archive(workspace.id);
    },
    'workspace.retry': (p) => workspaces.retry(p.workspaceId),
    'workspace.export': (p) =>
      workspaces.exportState(p.workspaceId, p.handoffTo === undefined ? {} : { handoffTo: p.handoffTo }),
    'workspace.import': (p) => workspaces.importState(p.state),

    'session.create': async (p) => {
      const workspace = await readyWorkspace(p.workspaceId);
      const isNew = p.id === undefined || !sessions.has(p.id);
      const entry = await sessions.create({
        id: p.id,
        workspaceId: workspace.id,
        cwd: await workspaces.worktreePath(workspace.id),
        name: p.name,
        workflow: p.workflow,
        permissionMode: p.permissionMode,
        model: p.model,
        appendSystemPrompt: p.appendSystemPrompt,
      });
      if (isNew && workspace.queuedPrompt !== null) {
        // The workspace's first prompt (the issue to work on) starts its first session; taken once.
        const prompt = await workspaces.takeQueuedPrompt(workspace.id);
        if (prompt !== null) entry.session.send({ text: prompt });
      }
      if (p.startNow) {
        // Not awaited: the caller gets the session now and the CLI's half second of start-up overlaps
        // with the user typing. A failed start is a session_error on the feed and leaves it idle.
        entry.session.start().catch(() => undefined);
      }
      return sessions.info(entry.record.id);
    },
    'session.list': (p) => ({ sessions: sessions.list(p.workspaceId) }),
    'session.get': (p) => ({
      session: sessions.info(p.sessionId),
      snapshot: sessions.get(p.sessionId).snapshot(),
    }),
    'session.send': async (p) => {
      // The CLI would start in a worktree that is gone or not there yet.
      await readyWorkspace(sessions.workspaceOf(p.sessionId));
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
        const listener = (event: SessionEvent) => send(event);
        if (p.afterSeq === undefined) {
          const subscription = session.subscribe(listener);
          return { result: { snapshot: subscription.snapshot }, close: subscription.unsubscribe };
        }
        const subscription = session.subscribeAfter(p.afterSeq, listener);
        const { start } = subscription;
        return {
          result:
            start.kind === 'snapshot'
              ? { snapshot: start.snapshot }
              : { replay: start.events, seq: start.seq },
          close: subscription.unsubscribe,
        };
      });
    },

    'terminal.create': async (p) => {
      const cwd = p.workspaceId
        ? await workspaces.worktreePath((await readyWorkspace(p.workspaceId)).id)
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

    ...deps.ratchet,

    unsubscribe: (p, context) => {
      if (!context.unsubscribe(p.subscriptionId)) {
        throw new AgentRequestError('not_found', `no subscription ${p.subscriptionId} on this connection`);
      }
      return ok;
    },
  };
}
