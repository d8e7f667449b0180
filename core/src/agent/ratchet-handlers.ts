// The agent's ratchet methods: what the cloud's ratchet actor calls to read the PR (gh inside the VM, so
// the user's GitHub credentials never leave it) and to run, watch and stop fixer sessions.
import type { GitHubClient } from '../github/client.js';
import { GitHubError } from '../github/errors.js';
import type { AgentSessionInfo, ReviewTrustPolicy, Workspace } from '../protocol/index.js';
import { AgentRequestError, gitHubUnavailable } from './errors.js';
import { fixerReport } from './fixer-status.js';
import type { RatchetDispatchLedger } from './ratchet-dispatches.js';
import type { AgentHandlers } from './server.js';
import type { SessionRegistry } from './sessions.js';

export type RatchetMethod =
  | 'ratchet.snapshot'
  | 'ratchet.dispatch'
  | 'ratchet.fixer_status'
  | 'ratchet.stop_fixer';
export type RatchetHandlers = Pick<AgentHandlers, RatchetMethod>;

/** The part of core/github the ratchet methods use. */
export interface RatchetGitHub {
  getPullRequestSnapshot: GitHubClient['getPullRequestSnapshot'];
}

export interface RatchetHandlerDependencies {
  sessions: SessionRegistry;
  dispatches: RatchetDispatchLedger;
  /** core/github's client over the VM's gh, loaded on first use. */
  github: () => Promise<RatchetGitHub>;
  existingWorkspace: (id: string) => Promise<Workspace>;
  readyWorkspace: (id: string) => Promise<Workspace>;
  worktreePath: (id: string) => Promise<string>;
}

export const FIXER_SESSION_NAME = 'Ratchet fixer';
const FIXER_ACTIVE = 'Fixer session active — wait or stop it first';

function isRatchet(info: AgentSessionInfo): boolean {
  return info.workflow === 'ratchet';
}

/** A ratchet session at work: in a turn, starting, or with prompts waiting. */
function isWorking(info: AgentSessionInfo): boolean {
  return info.sessionRuntime.activity === 'WORKING' || info.queuedCount > 0;
}

export function createRatchetHandlers(deps: RatchetHandlerDependencies): RatchetHandlers {
  const { sessions, dispatches } = deps;
  /** Dispatches of one workspace run one at a time: two must never both see "no fixer at work". */
  const dispatchChains = new Map<string, Promise<unknown>>();

  function serialized<T>(workspaceId: string, work: () => Promise<T>): Promise<T> {
    const previous = dispatchChains.get(workspaceId) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.catch(() => undefined);
    dispatchChains.set(workspaceId, settled);
    void settled.then(() => {
      if (dispatchChains.get(workspaceId) === settled) dispatchChains.delete(workspaceId);
    });
    return run;
  }

  /** A dispatch already made: from the ledger, or (crash right after the send) from the transcripts. */
  function knownDispatch(workspaceId: string, dispatchId: string): string | null {
    const recorded = dispatches.get(dispatchId);
    if (recorded !== null) {
      if (recorded.workspaceId !== workspaceId) {
        throw new AgentRequestError('conflict', `dispatch ${dispatchId} belongs to another workspace`);
      }
      return recorded.sessionId;
    }
    for (const info of sessions.list(workspaceId).filter(isRatchet)) {
      const snapshot = sessions.get(info.id).snapshot();
      const sent =
        snapshot.queuedMessages.some((m) => m.id === dispatchId) ||
        snapshot.messages.some((m) => m.source === 'user' && m.id === dispatchId);
      if (sent) {
        dispatches.record(dispatchId, workspaceId, info.id);
        return info.id;
      }
    }
    return null;
  }

  return {
    'ratchet.snapshot': async (p) => {
      const workspace = await deps.existingWorkspace(p.workspaceId);
      if (workspace.prUrl === null) return { snapshot: null, prUrl: null };
      const trust: ReviewTrustPolicy | undefined = p.trust;
      try {
        const github = await deps.github();
        const snapshot = await github.getPullRequestSnapshot(workspace.prUrl, trust ? { trust } : {});
        return { snapshot, prUrl: workspace.prUrl };
      } catch (error) {
        if (error instanceof GitHubError) throw gitHubUnavailable(error);
        throw error;
      }
    },

    'ratchet.dispatch': (p) =>
      serialized(p.workspaceId, async () => {
        const workspace = await deps.readyWorkspace(p.workspaceId);
        const known = knownDispatch(workspace.id, p.dispatchId);
        if (known !== null) return { sessionId: known, messageId: p.dispatchId, reused: true };

        const fixers = sessions.list(workspace.id).filter(isRatchet);
        const busy = fixers.find(isWorking);
        if (busy) throw new AgentRequestError('conflict', `${FIXER_ACTIVE} (session ${busy.id})`);
        // The newest idle fixer continues (its conversation already knows the PR); otherwise a new one.
        const idle = fixers
          .filter((info) => info.permissionMode === 'bypassPermissions')
          .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
        const sessionId =
          idle?.id ??
          (
            await sessions.create({
              workspaceId: workspace.id,
              cwd: await deps.worktreePath(workspace.id),
              name: FIXER_SESSION_NAME,
              workflow: 'ratchet',
              permissionMode: 'bypassPermissions',
              model: p.model,
            })
          ).record.id;
        // Queued and recorded in one synchronous step: a retry finds one or the other, never neither.
        const sent = sessions.get(sessionId).send({
          id: p.dispatchId,
          text: p.prompt,
          ...(p.model ? { settings: { model: p.model } } : {}),
        });
        if (sent.state === 'REJECTED') {
          throw new AgentRequestError('queue_full', sent.errorMessage ?? 'the message queue is full');
        }
        dispatches.record(p.dispatchId, workspace.id, sessionId);
        return { sessionId, messageId: sent.messageId, reused: false };
      }),

    'ratchet.fixer_status': async (p) => {
      await deps.existingWorkspace(p.workspaceId);
      if (!sessions.has(p.sessionId)) {
        return { outcome: 'DIED', detail: `the fixer session ${p.sessionId} is gone` };
      }
      if (sessions.workspaceOf(p.sessionId) !== p.workspaceId) {
        throw new AgentRequestError(
          'bad_request',
          `session ${p.sessionId} is not in workspace ${p.workspaceId}`,
        );
      }
      return fixerReport(sessions.get(p.sessionId).snapshot(), p.dispatchId);
    },

    'ratchet.stop_fixer': async (p) => {
      await deps.existingWorkspace(p.workspaceId);
      const working = sessions.list(p.workspaceId).filter((info) => isRatchet(info) && isWorking(info));
      // stop() cancels what is queued as well, so the stopped fixer does not start again.
      await Promise.all(working.map((info) => sessions.get(info.id).stop()));
      const first = working[0];
      return first === undefined
        ? { stopped: false, sessionId: null }
        : { stopped: true, sessionId: first.id };
    },
  };
}
