import assert from 'node:assert/strict';
import type { WorkspaceSource } from '../../workflows/workspace/messages.js';
import { CarriedWorkspaceStateSchema, WorkspaceViewSchema } from '../../workflows/workspace/messages.js';
import {
  applyWorkspaceEvent,
  InvalidWorkspaceTransition,
  newWorkspaceState,
  nextWorkspaceStep,
  portableWithRatchet,
  ratchetLinkOf,
  ratchetMemoryFromSource,
  sendDisposition,
  toWorkspaceView,
  type WorkspaceEvent,
  type WorkspaceState,
} from '../../workflows/workspace/state.js';
import { portableWorkspaceState } from '../support/portable-state.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

function portable(overrides: Record<string, unknown> = {}): WorkspaceSource {
  const state = portableWorkspaceState('ws-1', {
    name: 'Fix the thing',
    branchName: 'fix-thing',
    exportedAt: '2026-01-01T00:00:00.000Z',
  });
  return { kind: 'portable', state: { ...state, ...overrides } } as WorkspaceSource;
}

const details = {
  name: 'Fix the thing',
  repoUrl: 'https://github.com/acme/app.git',
  branchName: 'fix-thing',
  baseBranch: 'main',
  prUrl: null,
  prNumber: null,
  githubIssueUrl: null,
  githubIssueNumber: null,
  ratchetEnabled: false,
  ratchetState: 'IDLE',
};

function run(state: WorkspaceState, ...events: WorkspaceEvent[]): WorkspaceState {
  return events.reduce((s, e, i) => applyWorkspaceEvent(s, e, T0 + 1000 * (i + 1)), state);
}

const fresh = () => newWorkspaceState({ workspaceId: 'ws-1', userId: 'u1', source: portable(), nowMs: T0 });
const ready = () =>
  run(
    fresh(),
    { type: 'RESTORE_TAKEN' },
    { type: 'RECORDED' },
    { type: 'VM_READY' },
    { type: 'RESTORED', details },
  );

const step = (state: WorkspaceState, overrides: Partial<Parameters<typeof nextWorkspaceStep>[0]> = {}) =>
  nextWorkspaceStep({
    state,
    pending: { pull: false, archive: false },
    nowMs: state.updatedAtMs,
    maxAutoRetries: 0,
    desktopLingerMs: 60_000,
    historyIsLong: false,
    ...overrides,
  });

describe('workspace actor state (pure)', () => {
  it('starts PROVISIONING in the cloud with its first restore owed and not yet recorded', () => {
    const s = fresh();
    assert.equal(s.status, 'PROVISIONING');
    assert.equal(s.location, 'CLOUD');
    assert.equal(s.pendingRestore, 'send');
    assert.ok(s.recordedSeq < s.restoreSeq);
    assert.deepEqual(step(s), { kind: 'restore' });
    assert.equal(
      toWorkspaceView(s).branchName,
      'fix-thing',
      'the view shows the sent state before the agent has it',
    );
  });

  it('goes PROVISIONING → READY through the vm and restore steps', () => {
    const s = ready();
    const view = toWorkspaceView(s);
    assert.equal(view.status, 'READY');
    assert.equal(view.step, 'done');
    assert.equal(s.recordedSeq, s.restoreSeq);
    assert.deepEqual(
      step(s),
      { kind: 'wait', untilMs: null },
      'READY in the cloud waits for requests, no deadline',
    );
    assert.ok(WorkspaceViewSchema.safeParse(view).success, 'the view matches its schema');
    assert.ok(
      CarriedWorkspaceStateSchema.safeParse(s).success,
      'the state can be carried by continue-as-new',
    );
  });

  it('a send to a workspace in the cloud changes nothing; after a pull it restores with the new state', () => {
    assert.equal(sendDisposition(fresh()), 'current');
    assert.equal(sendDisposition(ready()), 'current');
    const pulled = run(ready(), { type: 'PULLED', details });
    assert.equal(pulled.location, 'DESKTOP');
    assert.equal(pulled.status, 'READY');
    assert.equal(sendDisposition(pulled), 'restore');
    const resent = run(pulled, {
      type: 'SENT',
      source: portable({ prUrl: 'https://github.com/acme/app/pull/7', prNumber: 7 }),
    });
    assert.equal(resent.status, 'PROVISIONING');
    assert.equal(resent.location, 'CLOUD');
    assert.equal(resent.details.prNumber, 7);
    assert.equal(resent.restoreSeq, pulled.restoreSeq + 1);
    assert.deepEqual(step(resent), { kind: 'restore' });
    assert.throws(() => run(ready(), { type: 'SENT', source: portable() }), InvalidWorkspaceTransition);
  });

  it('FAILED keeps the reason, retries on request, and retries automatically only what retrying can fix', () => {
    const failed = run(
      fresh(),
      { type: 'RESTORE_TAKEN' },
      { type: 'RESTORE_FAILED', reason: 'clone failed', retryable: true },
    );
    assert.equal(toWorkspaceView(failed).failureReason, 'clone failed');
    assert.equal(toWorkspaceView(failed).step, null);
    assert.deepEqual(step(failed), { kind: 'wait', untilMs: null }, 'no automatic retries by default');
    assert.deepEqual(step(failed, { maxAutoRetries: 1 }), { kind: 'auto-retry' });
    const userCaused = run(
      fresh(),
      { type: 'RESTORE_TAKEN' },
      { type: 'RESTORE_FAILED', reason: 'not a git URL', retryable: false },
    );
    assert.deepEqual(step(userCaused, { maxAutoRetries: 1 }), { kind: 'wait', untilMs: null });
    const auto = run(failed, { type: 'RETRY_REQUESTED', automatic: true });
    assert.equal(auto.autoRetries, 1);
    assert.deepEqual(
      step(
        run(auto, { type: 'RESTORE_TAKEN' }, { type: 'RESTORE_FAILED', reason: 'again', retryable: true }),
        { maxAutoRetries: 1 },
      ),
      { kind: 'wait', untilMs: null },
      'automatic retries are capped',
    );
    const retried = run(failed, { type: 'RETRY_REQUESTED', automatic: false });
    assert.equal(retried.status, 'PROVISIONING');
    assert.equal(retried.pendingRestore, 'retry');
    assert.equal(retried.failureReason, null);
    assert.equal(
      sendDisposition(failed),
      'restore',
      'a send to a FAILED workspace restores with the new state',
    );
  });

  it('archive ends the actor; nothing but read-model bookkeeping happens after it', () => {
    const archived = run(ready(), { type: 'ARCHIVED' });
    assert.equal(archived.status, 'ARCHIVED');
    assert.deepEqual(step(archived), { kind: 'complete' });
    assert.equal(sendDisposition(archived), 'archived');
    assert.throws(
      () => run(archived, { type: 'RETRY_REQUESTED', automatic: false }),
      InvalidWorkspaceTransition,
    );
    assert.throws(
      () => run(fresh(), { type: 'ARCHIVED' }),
      InvalidWorkspaceTransition,
      'not while restoring',
    );
  });

  it('requests come before timers; a pulled workspace ends after the linger unless the read model is behind', () => {
    const pulled = run(ready(), { type: 'PULLED', details });
    assert.deepEqual(step(pulled, { pending: { pull: true, archive: true } }), { kind: 'archive' });
    assert.deepEqual(step(pulled, { pending: { pull: true, archive: false } }), { kind: 'pull' });
    assert.deepEqual(step(pulled), { kind: 'wait', untilMs: pulled.updatedAtMs + 60_000 });
    assert.deepEqual(step(pulled, { nowMs: pulled.updatedAtMs + 60_000 }), { kind: 'complete' });
    const behind = run(pulled, { type: 'PROBLEM', message: 'db down' });
    const retryAt = behind.updatedAtMs + 1_000;
    assert.deepEqual(step(behind, { nowMs: behind.updatedAtMs }), { kind: 'wait', untilMs: retryAt });
    assert.deepEqual(step(behind, { nowMs: pulled.updatedAtMs + 60_000 }), { kind: 'retry-read-model' });
    assert.deepEqual(step(ready(), { historyIsLong: true }), { kind: 'continue-as-new' });
  });

  it('adopts the read model version and the earliest creation time', () => {
    const s = run(ready(), { type: 'PERSISTED', version: 7, createdAtMs: T0 - 5000 });
    assert.equal(s.version, 7);
    assert.equal(toWorkspaceView(s).createdAt, new Date(T0 - 5000).toISOString());
    const view = toWorkspaceView(run(s, { type: 'PROBLEM', message: 'db down' }));
    assert.equal(view.problem?.message, 'db down');
  });

  it('an issue source shows the issue before the agent has read it', () => {
    const s = newWorkspaceState({
      workspaceId: 'ws-2',
      userId: 'u1',
      source: { kind: 'issue', issueUrl: 'https://github.com/acme/app/issues/42' },
      nowMs: T0,
    });
    const view = toWorkspaceView(s);
    assert.equal(view.githubIssueNumber, 42);
    assert.equal(view.githubIssueUrl, 'https://github.com/acme/app/issues/42');
    assert.equal(view.branchName, null);
  });

  describe('the cloud ratchet link', () => {
    const sentWithMemory = () =>
      portable({
        ratchetEnabled: true,
        ratchetState: 'CI_FAILED',
        ratchetLastCiRunId: 'pr:7|head:abc|ci:failed|review:none|merge:clean',
        ratchetDispatchKeys: ['pr:7|head:000|ci:failed|review:none|merge:clean'],
        prReviewLastCheckedAt: '2026-01-01T09:00:00.000Z',
      });
    const readyWith = (source: WorkspaceSource) =>
      run(
        newWorkspaceState({ workspaceId: 'ws-1', userId: 'u1', source, nowMs: T0 }),
        { type: 'RESTORE_TAKEN' },
        { type: 'RECORDED' },
        { type: 'VM_READY' },
        {
          type: 'RESTORED',
          details: { ...details, ratchetEnabled: source.kind === 'portable' && source.state.ratchetEnabled },
        },
      );

    it("seeds the ratchet's memory from the desktop's fields, so a handled key is never handed out again", () => {
      const memory = ratchetMemoryFromSource(sentWithMemory());
      assert.equal(memory.enabled, true);
      assert.equal(memory.lastDispatchKey, 'pr:7|head:abc|ci:failed|review:none|merge:clean');
      assert.deepEqual(memory.dispatchKeys, [
        'pr:7|head:000|ci:failed|review:none|merge:clean',
        'pr:7|head:abc|ci:failed|review:none|merge:clean',
      ]);
      assert.equal(memory.reviewLastCheckedAt, '2026-01-01T09:00:00.000Z');
      assert.equal(memory.dispatchRetryCount, 0);
      const issue = ratchetMemoryFromSource({ kind: 'issue', issueUrl: 'https://github.com/a/b/issues/1' });
      assert.equal(issue.enabled, false);
      assert.equal(issue.lastDispatchKey, null);
    });

    it('starts the ratchet once READY in the cloud with it enabled, and only in runs that drive one', () => {
      const enabled = readyWith(sentWithMemory());
      assert.deepEqual(step(enabled, { ratchet: true }), { kind: 'sync-ratchet' });
      assert.deepEqual(
        step(enabled),
        { kind: 'wait', untilMs: null },
        'a run from before the patch never does',
      );
      assert.deepEqual(step(ready(), { ratchet: true }), { kind: 'wait', untilMs: null }, 'disabled: none');
      const provisioning = newWorkspaceState({
        workspaceId: 'ws-1',
        userId: 'u1',
        source: sentWithMemory(),
        nowMs: T0,
      });
      assert.deepEqual(step(provisioning, { ratchet: true }), { kind: 'restore' }, 'not before READY');
      const synced = run(enabled, { type: 'RATCHET_SYNCED', enabled: true });
      assert.deepEqual(step(synced, { ratchet: true }), { kind: 'wait', untilMs: null }, 'started once');
    });

    it('tells a running ratchet every change of the setting; a failed try waits and backs off', () => {
      const running = run(readyWith(sentWithMemory()), { type: 'RATCHET_SYNCED', enabled: true });
      const off = run(running, { type: 'RATCHET_ENABLED', enabled: false });
      assert.equal(toWorkspaceView(off).ratchetEnabled, false);
      assert.equal(ratchetLinkOf(off).memory.enabled, false);
      assert.deepEqual(step(off, { ratchet: true }), { kind: 'sync-ratchet' });
      const failed = run(off, { type: 'RATCHET_SYNC_FAILED' });
      const retryAt = ratchetLinkOf(failed).retryAtMs;
      assert.ok(retryAt !== null && retryAt > failed.updatedAtMs);
      assert.deepEqual(step(failed, { ratchet: true, nowMs: failed.updatedAtMs }), {
        kind: 'wait',
        untilMs: retryAt,
      });
      assert.deepEqual(step(failed, { ratchet: true, nowMs: retryAt }), { kind: 'sync-ratchet' });
      const twice = run(failed, { type: 'RATCHET_SYNC_FAILED' });
      assert.ok(
        (ratchetLinkOf(twice).retryAtMs ?? 0) - twice.updatedAtMs > retryAt - failed.updatedAtMs,
        'backs off',
      );
      const toldOff = run(off, { type: 'RATCHET_SYNCED', enabled: false });
      assert.deepEqual(step(toldOff, { ratchet: true }), { kind: 'wait', untilMs: null });
      assert.deepEqual(
        step(toldOff, { ratchet: true, pending: { pull: false, archive: false, ratchet: true } }),
        {
          kind: 'set-ratchet',
        },
      );
      assert.throws(
        () => run(run(ready(), { type: 'PULLED', details }), { type: 'RATCHET_ENABLED', enabled: true }),
        InvalidWorkspaceTransition,
        'a workspace on the desktop has its ratchet there',
      );
    });

    it('a handoff keeps the memory it returned; a pull that fails afterwards starts the ratchet again from it', () => {
      const running = run(readyWith(sentWithMemory()), { type: 'RATCHET_SYNCED', enabled: true });
      const returned = {
        ...ratchetLinkOf(running).memory,
        lastDispatchKey: 'pr:7|head:def|ci:failed|review:none|merge:clean',
        dispatchKeys: ['pr:7|head:def|ci:failed|review:none|merge:clean'],
        dispatchTimesMs: [T0],
      };
      const handedOff = run(running, {
        type: 'RATCHET_HANDED_OFF',
        memory: returned,
        ratchetState: 'CI_RUNNING',
      });
      assert.equal(ratchetLinkOf(handedOff).memory.lastDispatchKey, returned.lastDispatchKey);
      assert.equal(ratchetLinkOf(handedOff).actorEnabled, null, 'the actor has ended');
      assert.equal(handedOff.details.ratchetState, 'CI_RUNNING');
      assert.deepEqual(
        step(handedOff, { ratchet: true }),
        { kind: 'sync-ratchet' },
        'export failed: start again',
      );
      assert.ok(CarriedWorkspaceStateSchema.safeParse(handedOff).success, 'carried across continue-as-new');
      const pulled = run(handedOff, { type: 'PULLED', details });
      assert.deepEqual(step(pulled, { ratchet: true }), {
        kind: 'wait',
        untilMs: pulled.updatedAtMs + 60_000,
      });
      const resent = run(pulled, { type: 'SENT', source: portable({ ratchetLastCiRunId: 'desktop-key' }) });
      assert.equal(
        ratchetLinkOf(resent).memory.lastDispatchKey,
        'desktop-key',
        "a new send brings the desktop's memory",
      );
    });

    it("the pulled state carries the cloud ratchet's memory and setting back", () => {
      const source = sentWithMemory();
      assert.equal(source.kind, 'portable');
      if (source.kind !== 'portable') return;
      const memory = {
        ...ratchetMemoryFromSource(source),
        lastDispatchKey: 'k2',
        dispatchKeys: Array.from({ length: 60 }, (_, i) => `k${i}`),
        reviewLastCheckedAt: '2026-01-02T00:00:00Z',
      };
      const pulled = portableWithRatchet(source.state, {
        enabled: false,
        memory,
        ratchetState: 'REVIEW_PENDING',
      });
      assert.equal(pulled.ratchetLastCiRunId, 'k2');
      assert.equal(pulled.ratchetDispatchKeys.length, 50, 'the newest 50 keys (the portable limit)');
      assert.equal(pulled.ratchetDispatchKeys.at(-1), 'k59');
      assert.equal(pulled.prReviewLastCheckedAt, '2026-01-02T00:00:00Z');
      assert.equal(pulled.ratchetState, 'REVIEW_PENDING');
      assert.equal(pulled.ratchetEnabled, false);
      const untouched = portableWithRatchet(source.state, {
        enabled: true,
        memory: null,
        ratchetState: null,
      });
      assert.equal(untouched.ratchetLastCiRunId, source.state.ratchetLastCiRunId, 'no handoff: as exported');
    });

    it('archiving forgets the running ratchet (it was ended)', () => {
      const running = run(readyWith(sentWithMemory()), { type: 'RATCHET_SYNCED', enabled: true });
      const archived = run(running, { type: 'ARCHIVED' });
      assert.equal(ratchetLinkOf(archived).actorEnabled, null);
      assert.deepEqual(step(archived, { ratchet: true }), { kind: 'complete' });
    });
  });
});
