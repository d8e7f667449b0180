/**
 * The desktop's side of the handoff: how a local workspace's ratchet memory becomes core's RatchetMemory,
 * what `ffc send` carries to the cloud and what `ffc pull` writes back. `location` is the handoff: the
 * desktop ratchet works on DESKTOP workspaces only, so after a send nothing here dispatches until a pull
 * brings the cloud's memory back, and the keys the cloud already handled stay handled.
 */
import type { PortableWorkspaceState, RatchetStateName } from '@factory-factory/core/protocol';
import { initialRatchetMemory, type RatchetMemory } from '@factory-factory/core/ratchet';
import type { LocalWorkspace, StoredRatchet } from '../workspace-store.js';

/** The api's 409 message for a send or pull while a fixer works; ffc refuses a send locally with the same. */
export const FIXER_ACTIVE_MESSAGE = 'Fixer session active — wait or stop it first';

/** At most this many dispatch keys travel (PortableWorkspaceStateSchema's limit). */
const MAX_SENT_KEYS = 50;

export function memoryOf(workspace: LocalWorkspace): RatchetMemory {
  const r = workspace.ratchet;
  return initialRatchetMemory({
    enabled: r.enabled,
    lastDispatchKey: r.lastDispatchKey,
    dispatchKeys: r.dispatchKeys,
    reviewLastCheckedAt: r.reviewLastCheckedAt,
    dispatchOutcome: r.dispatchOutcome,
    dispatchRetryCount: r.dispatchRetryCount,
    dispatchStalled: r.dispatchStalled,
    dispatchTimesMs: r.dispatchTimesMs,
  });
}

export function storedRatchetOf(memory: RatchetMemory, state: RatchetStateName): StoredRatchet {
  return {
    enabled: memory.enabled,
    state,
    lastDispatchKey: memory.lastDispatchKey,
    dispatchKeys: [...memory.dispatchKeys],
    reviewLastCheckedAt: memory.reviewLastCheckedAt,
    dispatchOutcome: memory.dispatchOutcome,
    dispatchRetryCount: memory.dispatchRetryCount,
    dispatchStalled: memory.dispatchStalled,
    dispatchTimesMs: [...memory.dispatchTimesMs],
  };
}

/** The portable state's ratchet fields for a send (the defaults for a workspace this machine never ran). */
export type SentRatchetFields = Pick<
  PortableWorkspaceState,
  'ratchetEnabled' | 'ratchetState' | 'ratchetLastCiRunId' | 'prReviewLastCheckedAt' | 'ratchetDispatchKeys'
> & { ratchetActiveSessionId: string | null };

export function sentRatchetFields(workspace: LocalWorkspace | null, enable: boolean): SentRatchetFields {
  if (workspace === null) {
    return {
      ratchetEnabled: enable,
      ratchetState: 'IDLE',
      ratchetLastCiRunId: null,
      prReviewLastCheckedAt: null,
      ratchetDispatchKeys: [],
      ratchetActiveSessionId: null,
    };
  }
  const r = workspace.ratchet;
  return {
    ratchetEnabled: enable || r.enabled,
    ratchetState: r.state,
    ratchetLastCiRunId: r.lastDispatchKey,
    prReviewLastCheckedAt: r.reviewLastCheckedAt,
    ratchetDispatchKeys: r.dispatchKeys.slice(-MAX_SENT_KEYS),
    ratchetActiveSessionId: workspace.activeFixer?.sessionId ?? null,
  };
}

/**
 * The local workspace after a pull: DESKTOP again, with the cloud's memory. Keys either side dispatched
 * stay remembered (the cloud's last key last: it is the dedup key now); a last key the cloud moved counts
 * as handled (COMPLETED), so the desktop never re-runs the cloud's fixer for it. Dispatch times stay local
 * (the portable state does not carry the cloud's), so the daily cap counts this machine's own runs.
 */
export function pulledWorkspace(
  existing: LocalWorkspace | null,
  state: PortableWorkspaceState,
  checkoutDir: string,
): LocalWorkspace {
  const local = existing?.ratchet ?? null;
  const lastKey = state.ratchetLastCiRunId;
  const sameKey = local !== null && local.lastDispatchKey === lastKey;
  const keys = [...(local?.dispatchKeys ?? []), ...state.ratchetDispatchKeys].filter((k) => k !== lastKey);
  if (lastKey !== null) keys.push(lastKey);
  const unique = keys.filter((k, i) => keys.lastIndexOf(k) === i).slice(-MAX_SENT_KEYS);
  const ratchet: StoredRatchet = {
    enabled: state.ratchetEnabled,
    state: state.ratchetState,
    lastDispatchKey: lastKey,
    dispatchKeys: unique,
    reviewLastCheckedAt: laterIso(local?.reviewLastCheckedAt ?? null, state.prReviewLastCheckedAt),
    dispatchOutcome:
      sameKey && local.dispatchOutcome !== 'RUNNING'
        ? local.dispatchOutcome
        : lastKey === null
          ? null
          : 'COMPLETED',
    dispatchRetryCount: sameKey ? local.dispatchRetryCount : 0,
    dispatchStalled: sameKey ? local.dispatchStalled : false,
    dispatchTimesMs: local?.dispatchTimesMs ?? [],
  };
  return {
    id: state.workspaceId,
    name: state.name,
    checkoutDir,
    repoUrl: state.repoUrl,
    branchName: state.branchName,
    location: 'DESKTOP',
    prUrl: state.prUrl ?? existing?.prUrl ?? null,
    ratchet,
    activeFixer: null,
    lastDecision: existing?.lastDecision ?? null,
    problem: null,
  };
}

function laterIso(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}
