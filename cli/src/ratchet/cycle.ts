/**
 * One desktop ratchet cycle over the local workspace store, with core's pure decision:
 *
 *   for each workspace: CLOUD → skipped, never polled (the cloud's ratchet owns it);
 *   DESKTOP with the ratchet on and a PR → snapshot with the local gh → under the store's lock, on the
 *   newest entry: decide(memory, snapshot, fixer, daily cap) → applyDecision → record the dispatch (key,
 *   session id, ownerPid) → then start the fixer; when it ends, settleFixer.
 *
 * The decision and the dispatch record happen under the lock on the entry as it is then, so a `ffc send`
 * that marked the workspace CLOUD while gh was answering wins: nothing is dispatched for it. The clock is
 * injected (`cycle(nowMs)`) so tests and the interleaving test drive time themselves.
 */
import { randomUUID } from 'node:crypto';
import { GitHubError } from '@factory-factory/core/github';
import type { PullRequestSnapshot } from '@factory-factory/core/protocol';
import {
  applyDecision,
  buildFixerPrompt,
  DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY,
  DEFAULT_REVIEW_TRUST_POLICY,
  decide,
  type RatchetDecision,
  type ReviewTrustPolicy,
  settleFixer,
} from '@factory-factory/core/ratchet';
import { isProcessAlive, type LocalWorkspace, type WorkspaceStore } from '../workspace-store.js';
import type { FixerEnd, FixerRunner } from './fixer.js';
import { memoryOf, storedRatchetOf } from './handoff.js';

/** Where PR snapshots come from: core's GitHubClient over the local gh, in production. */
export interface SnapshotSource {
  getPullRequestSnapshot(url: string, options: { trust: ReviewTrustPolicy }): Promise<PullRequestSnapshot>;
}

export type DesktopRatchetSettings = {
  trust: ReviewTrustPolicy;
  maxDispatchesPerDay: number;
};

export const defaultDesktopRatchetSettings: DesktopRatchetSettings = {
  trust: DEFAULT_REVIEW_TRUST_POLICY,
  maxDispatchesPerDay: DEFAULT_MAX_FIXER_DISPATCHES_PER_DAY,
};

export type DesktopRatchetDeps = {
  store: WorkspaceStore;
  github: SnapshotSource;
  fixers: FixerRunner;
  settings?: Partial<DesktopRatchetSettings>;
  /** This process, recorded as the fixer's owner (default process.pid). */
  ownerPid?: number;
  newSessionId?: () => string;
  /** Told when a fixer this process started has ended and its outcome is recorded. */
  onFixerEnded?: (ended: FixerEnded) => void;
};

export type FixerEnded = { workspaceId: string; sessionId: string } & FixerEnd;

type DecisionView = Pick<RatchetDecision, 'action' | 'reason' | 'key'>;

/** What one cycle did with one workspace. */
export type CycleReport = {
  workspaceId: string;
  name: string;
  outcome: 'skipped_cloud' | 'disabled' | 'no_pr' | 'decided' | 'poll_failed';
  decision: DecisionView | null;
  /** The fixer this cycle started. */
  dispatched: { sessionId: string; key: string } | null;
  /** Why the poll failed; with a retry hint when GitHub rate-limited us. */
  problem: { message: string; retryAfterMs: number | null } | null;
};

export class DesktopRatchet {
  private readonly settings: DesktopRatchetSettings;
  private readonly ownerPid: number;
  private readonly newSessionId: () => string;
  /** Fixers of this process whose end is being recorded, by session id. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(private readonly deps: DesktopRatchetDeps) {
    this.settings = { ...defaultDesktopRatchetSettings, ...deps.settings };
    this.ownerPid = deps.ownerPid ?? process.pid;
    this.newSessionId = deps.newSessionId ?? randomUUID;
  }

  /** One pass over every local workspace, in store order. */
  async cycle(nowMs: number): Promise<CycleReport[]> {
    const reports: CycleReport[] = [];
    for (const workspace of await this.deps.store.list()) {
      reports.push(await this.cycleOne(workspace, nowMs));
    }
    return reports;
  }

  /** Resolves once every fixer this process started has ended and its outcome is in the store. */
  async idle(): Promise<void> {
    while (this.settling.size > 0) await Promise.all([...this.settling.values()]);
  }

  private async cycleOne(workspace: LocalWorkspace, nowMs: number): Promise<CycleReport> {
    const report = (
      outcome: CycleReport['outcome'],
      extra: Partial<Pick<CycleReport, 'decision' | 'dispatched' | 'problem'>> = {},
    ): CycleReport => ({
      workspaceId: workspace.id,
      name: workspace.name,
      outcome,
      decision: null,
      dispatched: null,
      problem: null,
      ...extra,
    });
    if (workspace.location !== 'DESKTOP') return report('skipped_cloud');
    if (!workspace.ratchet.enabled) return report('disabled');
    await this.settleOrphan(workspace);
    if (workspace.prUrl === null) return report('no_pr');

    let snapshot: PullRequestSnapshot;
    try {
      snapshot = await this.deps.github.getPullRequestSnapshot(workspace.prUrl, {
        trust: this.settings.trust,
      });
    } catch (err) {
      const problem = {
        message: err instanceof Error ? err.message : String(err),
        retryAfterMs: retryAfterMsOf(err),
      };
      await this.deps.store.update((all) => {
        const fresh = all.get(workspace.id);
        if (fresh) all.set(workspace.id, { ...fresh, problem: problem.message });
      });
      return report('poll_failed', { problem });
    }

    const step = await this.deps.store.update((all) => {
      const fresh = all.get(workspace.id);
      // Sent to the cloud (or disabled, or forgotten) while gh was answering: the cloud owns it now.
      if (fresh?.location !== 'DESKTOP') return { outcome: 'skipped_cloud' as const };
      if (!fresh.ratchet.enabled) return { outcome: 'disabled' as const };
      const memory = memoryOf(fresh);
      const decision = decide(
        memory,
        snapshot,
        { active: fresh.activeFixer !== null },
        { nowMs, maxDispatchesPerDay: this.settings.maxDispatchesPerDay },
      );
      const next = applyDecision(memory, decision, snapshot, nowMs);
      const dispatch =
        decision.action === 'TRIGGER_FIXER' && decision.key !== null
          ? { sessionId: this.newSessionId(), key: decision.key }
          : null;
      all.set(workspace.id, {
        ...fresh,
        prUrl: snapshot.url,
        ratchet: storedRatchetOf(next, decision.state),
        activeFixer: dispatch
          ? {
              sessionId: dispatch.sessionId,
              dispatchKey: dispatch.key,
              ownerPid: this.ownerPid,
              startedAtMs: nowMs,
            }
          : fresh.activeFixer,
        lastDecision: { action: decision.action, reason: decision.reason, key: decision.key, atMs: nowMs },
        problem: null,
      });
      return {
        outcome: 'decided' as const,
        decision: { action: decision.action, reason: decision.reason, key: decision.key },
        dispatch,
        checkoutDir: fresh.checkoutDir,
      };
    });
    if (step.outcome !== 'decided') return report(step.outcome);
    if (step.dispatch) this.startFixer(workspace.id, step.checkoutDir, step.dispatch.sessionId, snapshot);
    return report('decided', { decision: step.decision, dispatched: step.dispatch });
  }

  private startFixer(workspaceId: string, cwd: string, sessionId: string, snapshot: PullRequestSnapshot) {
    const prompt = buildFixerPrompt(snapshot);
    const settled = this.deps.fixers
      .start({ sessionId, workspaceId, cwd, prompt })
      .then(async (end) => {
        await this.recordEnd(workspaceId, sessionId, end);
        this.deps.onFixerEnded?.({ workspaceId, sessionId, ...end });
      })
      .finally(() => this.settling.delete(sessionId));
    this.settling.set(sessionId, settled);
  }

  /** The fixer's outcome into the memory, and the active marker cleared (only if it is still this one). */
  private recordEnd(workspaceId: string, sessionId: string, end: FixerEnd): Promise<void> {
    return this.deps.store.update((all) => {
      const fresh = all.get(workspaceId);
      if (!fresh || fresh.activeFixer?.sessionId !== sessionId) return;
      const memory = settleFixer(memoryOf(fresh), end.outcome);
      all.set(workspaceId, {
        ...fresh,
        ratchet: storedRatchetOf(memory, fresh.ratchet.state),
        activeFixer: null,
      });
    });
  }

  /**
   * A fixer recorded as active whose owner is gone (that ffc was killed, or this process restarted) will
   * never report: it died with its owner. A fixer another live ffc runs stays active (FIXER_ACTIVE).
   */
  private async settleOrphan(workspace: LocalWorkspace): Promise<void> {
    const fixer = workspace.activeFixer;
    if (fixer === null || this.deps.fixers.isRunning(fixer.sessionId)) return;
    if (this.settling.has(fixer.sessionId)) return;
    // Our own pid but not ours to run: a previous ffc that had this pid.
    const ownerGone = fixer.ownerPid === this.ownerPid || !isProcessAlive(fixer.ownerPid);
    if (!ownerGone) return;
    await this.recordEnd(workspace.id, fixer.sessionId, {
      outcome: 'DIED',
      detail: 'the ffc process running it is gone',
    });
  }
}

function retryAfterMsOf(err: unknown): number | null {
  if (!(err instanceof GitHubError) || err.code !== 'rate_limited') return null;
  return (err.retryAfterSeconds ?? 60) * 1000;
}
