/**
 * Poison inputs: a malformed start, signal or update of one actor must fail that run (or reject that update,
 * or be ignored for a signal) and leave the shared worker, and every other actor on it, running.
 *
 * Why the worker died (issue 8, §7): a vm actor started with settings lacking idleTimeoutMs/healthIntervalMs
 * computes a NaN deadline; `wakeAt > now` is false for NaN, so its main loop spins without ever awaiting.
 * The spin runs as a promise reaction inside the workflow sandbox, and once any AsyncLocalStorage is enabled
 * in the workflow thread (the SDK runs every signal and update handler in one, and cancellable scopes use
 * another) Node's async_hooks push an async id before each reaction and pop it after. The SDK's 5 s
 * deadlock timeout (vm `timeout`) terminates the reaction between the two, the id is never popped, and
 * the next callback the worker thread closes fails Node's check: "async hook stack has become corrupted",
 * which exits the whole process, not just that run. A NaN that reaches a timer or a condition is not the
 * crash (it fails the workflow task with "Invalid millis NaN"); a busy loop is. So every input and message
 * is checked before any of it reaches a loop, a timer or the state.
 *
 * Everything goes through a raw Temporal client (string workflow types, untyped args), as an operator with
 * the CLI would, to the production worker process (worker/main.ts) on a task queue of this test's own.
 * Witnesses, well-formed actors on the same worker, must keep answering: a warm pool of size 0 (query and
 * update) and a vm actor that was never asked to provision (query), so no Docker work is needed for them.
 */
import assert from 'node:assert/strict';
import {
  ApplicationFailure,
  type Client,
  WithStartWorkflowOperation,
  WorkflowFailedError,
  type WorkflowHandle,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type Docker from 'dockerode';
import { workflowIds } from '../../workflows/ids.js';
import { defaultRatchetSettings } from '../../workflows/ratchet/messages.js';
import { defaultVmSettings } from '../../workflows/vm/messages.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { removeUserVm } from '../support/vm.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

/** Bounds on waiting, so a dead or stuck worker fails the case with a reason instead of hanging it. */
const OUTCOME_WAIT_MS = 20_000;
const WITNESS_WAIT_MS = 15_000;

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` <- ${err.cause.name}: ${err.cause.message}` : '';
  return `${err.name}: ${err.message}${cause}`;
}

/** The innermost ApplicationFailure of an error, where a workflow's own message is. */
function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

/** A valid VM state as a run carries it into the next (continue-as-new), with one field overridden. */
function carriedVmState(userId: string, override: Record<string, unknown>): Record<string, unknown> {
  const now = Date.now();
  return {
    userId,
    vmId: `vm-${userId}`,
    status: 'READY',
    operation: null,
    container: null,
    onboarding: { githubCli: true, claude: true },
    failureReason: null,
    restarts: 0,
    recentCrashesAtMs: [],
    createdAtMs: now,
    updatedAtMs: now,
    lastActiveAtMs: now,
    lastHealthAtMs: now,
    readyAtMs: now,
    suspendedAtMs: null,
    ...override,
  };
}

/** Settings without idleTimeoutMs and healthIntervalMs: the input that took the worker down. */
function settingsWithoutTimers(): Record<string, unknown> {
  const { idleTimeoutMs: _idle, healthIntervalMs: _health, ...rest } = defaultVmSettings;
  return rest;
}

describe('poison inputs (production worker process, raw Temporal client)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const taskQueue = `poison-${suffix}`;
  const witnessPoolId = `poison-witness-pool-${suffix}`;
  const witnessUser = `poison-witness-${suffix}`;
  /** The user of the reported case: before the fix its actor provisions a real container, removed after. */
  const reportedUser = `poison-reported-${suffix}`;
  const ratchetUser = `poison-ratchet-${suffix}`;
  const users = [witnessUser, reportedUser, `poison-vm-${suffix}`, ratchetUser];
  let client: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: WorkerProcess | undefined;
  const workers: WorkerProcess[] = [];
  /** Runs started by the current case, terminated after it so a poisoned run never reaches the next case. */
  let started: WorkflowHandle[] = [];
  let claimSeq = 0;
  let caseSeq = 0;

  const workerEnv = () => ({ DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue });
  const alive = (w: WorkerProcess | undefined): w is WorkerProcess =>
    w !== undefined && w.child.exitCode === null && w.child.signalCode === null;
  const outputTail = (w: WorkerProcess): string => {
    const lines = w.output().split('\n');
    const fatal = lines.findIndex((l) => /corrupted|FATAL|Fatal|fatal error/.test(l));
    const from = fatal >= 0 ? fatal : Math.max(0, lines.length - 12);
    return lines
      .slice(from, from + 12)
      .join('\n')
      .slice(0, 2500);
  };

  async function startWorker(): Promise<void> {
    worker = await startWorkerProcess(workerEnv());
    workers.push(worker);
  }

  const uniqueId = (what: string) => `poison-${what}-${suffix}-${++caseSeq}`;

  async function start(workflowType: string, workflowId: string, args: unknown[]): Promise<WorkflowHandle> {
    const handle = await client.workflow.start(workflowType, { taskQueue, workflowId, args });
    started.push(handle);
    return handle;
  }

  /** The message of the last failed workflow task of a run: what the worker ran into instead of ending it. */
  async function lastTaskFailure(handle: WorkflowHandle): Promise<string> {
    const history = await within(WITNESS_WAIT_MS, 'history', handle.fetchHistory()).catch(() => undefined);
    const failures = (history?.events ?? [])
      .map((e) => e.workflowTaskFailedEventAttributes?.failure?.message)
      .filter((m): m is string => typeof m === 'string');
    return failures.length > 0 ? `last workflow task failure: "${failures[failures.length - 1]}"` : '';
  }

  /** Both witnesses answer: the pool its query and an update, the never-provisioned vm actor its query. */
  async function witnessesAnswer(): Promise<Outcome<void>> {
    return settle(
      within(
        WITNESS_WAIT_MS,
        'the well-formed actors on the same worker',
        (async () => {
          const pool = client.workflow.getHandle(witnessPoolId);
          const [poolState, claimed, vmView] = await Promise.all([
            pool.query<{ size: number }>('poolState'),
            pool.executeUpdate<unknown, [{ claimId: string }]>('claimWarmVm', {
              args: [{ claimId: `witness-${++claimSeq}` }],
            }),
            client.workflow.getHandle(workflowIds.vm(witnessUser)).query<{ userId: string }>('state'),
          ]);
          assert.equal(poolState.size, 0, 'the witness pool keeps its size');
          assert.equal(claimed, null, 'an empty pool answers a claim with null');
          assert.equal(vmView.userId, witnessUser, 'the witness vm actor answers with its own state');
        })(),
      ),
    );
  }

  /** (a) the worker process is alive, (c) the witnesses answer: checked after every case. */
  function assertWorkerAndWitnesses(witnesses: Outcome<void>): void {
    assert.ok(worker, 'a worker was started');
    assert.ok(
      alive(worker),
      `(a) the worker process died (exit code ${worker.child.exitCode}, signal ${worker.child.signalCode}):\n${outputTail(worker)}`,
    );
    if (!witnesses.ok) {
      assert.fail(
        `(c) a well-formed actor on the same worker stopped answering: ${describeError(witnesses.error)}`,
      );
    }
  }

  /** (b) for a start: the run fails with an ApplicationFailure "invalid input …" naming one of `fields`. */
  async function assertInvalidStart(
    handle: WorkflowHandle,
    outcome: Outcome<unknown>,
    fields: string[],
  ): Promise<void> {
    if (outcome.ok) {
      assert.fail(`(b) the malformed run completed instead of failing: ${JSON.stringify(outcome.value)}`);
    }
    const failure = applicationFailureOf(outcome.error);
    if (!(outcome.error instanceof WorkflowFailedError) || !failure) {
      assert.fail(
        `(b) the malformed run did not fail with an ApplicationFailure: ${describeError(outcome.error)} ${await lastTaskFailure(handle)}`,
      );
    }
    assert.match(
      failure.message,
      /^invalid input/,
      `(b) the failure says the input is invalid: ${failure.message}`,
    );
    assert.ok(
      fields.some((field) => failure.message.includes(field)),
      `(b) the failure names ${fields.join(' or ')}: "${failure.message}"`,
    );
  }

  /** (b) for an update: rejected (WorkflowUpdateFailedError) with a message naming one of `fields`. */
  function assertRejectedUpdate(outcome: Outcome<unknown>, what: string, fields: string[]): void {
    if (outcome.ok) assert.fail(`(b) ${what} was accepted: ${JSON.stringify(outcome.value)}`);
    assert.ok(
      outcome.error instanceof WorkflowUpdateFailedError,
      `(b) ${what} was not rejected as an update: ${describeError(outcome.error)}`,
    );
    const failure = applicationFailureOf(outcome.error);
    assert.ok(
      failure,
      `(b) ${what} was rejected without an ApplicationFailure: ${describeError(outcome.error)}`,
    );
    if (fields.length > 0) {
      assert.ok(
        fields.some((field) => failure.message.includes(field)),
        `(b) the rejection of ${what} names ${fields.join(' or ')}: "${failure.message}"`,
      );
    }
  }

  /** One malformed start: wait for the run's end, then check the worker and the witnesses, then the run. */
  async function malformedStart(workflowType: string, workflowId: string, input: unknown, fields: string[]) {
    const handle = await start(workflowType, workflowId, [input]);
    const outcome = await settle(
      within(OUTCOME_WAIT_MS, `the malformed ${workflowType} run to end`, handle.result()),
    );
    const witnesses = await witnessesAnswer();
    assertWorkerAndWitnesses(witnesses);
    await assertInvalidStart(handle, outcome, fields);
  }

  before(async () => {
    client = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    for (const user of users) await db.pool.query('INSERT INTO users (id) VALUES ($1)', [user]);
    await startWorker();
    await client.workflow.start('vmPoolWorkflow', {
      taskQueue,
      workflowId: witnessPoolId,
      args: [{ size: 0, agentTimeoutMs: 60_000 }],
    });
    await client.workflow.start('vmWorkflow', {
      taskQueue,
      workflowId: workflowIds.vm(witnessUser),
      args: [{ userId: witnessUser, settings: defaultVmSettings }],
    });
    const witnesses = await witnessesAnswer();
    if (!witnesses.ok)
      throw new Error(`the witnesses do not answer before any poison: ${describeError(witnesses.error)}`);
  });

  // Each case starts from a live, answering worker: one that a previous case killed or hung is replaced, so
  // every case reports on its own input.
  beforeEach(async () => {
    if (alive(worker) && (await witnessesAnswer()).ok) return;
    if (worker) await worker.kill('SIGKILL');
    await startWorker();
  });

  afterEach(async () => {
    for (const handle of started) await handle.terminate('poison case over').catch(() => {});
    started = [];
  });

  after(async () => {
    for (const id of [witnessPoolId, workflowIds.vm(witnessUser)]) {
      await client?.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => {});
    }
    for (const w of workers) await w.kill('SIGKILL');
    if (client && docker) await removeUserVm(client, docker, reportedUser);
    await db?.drop();
    await client?.connection.close();
  });

  describe('vmWorkflow', () => {
    it('the reported case: settings without idleTimeoutMs/healthIntervalMs, then ensureReady (update-with-start)', async () => {
      const workflowId = workflowIds.vm(reportedUser);
      const ready = settle(
        within(
          OUTCOME_WAIT_MS,
          'ensureReady of the malformed vm actor',
          client.workflow.executeUpdateWithStart('ensureReady', {
            startWorkflowOperation: new WithStartWorkflowOperation('vmWorkflow', {
              workflowId,
              taskQueue,
              args: [{ userId: reportedUser, settings: settingsWithoutTimers() }],
              workflowIdConflictPolicy: 'FAIL',
            }),
          }),
        ),
      );
      const handle = client.workflow.getHandle(workflowId);
      started.push(handle);
      const readyOutcome = await ready;
      const outcome = await settle(within(OUTCOME_WAIT_MS, 'the malformed vm run to end', handle.result()));
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      await assertInvalidStart(handle, outcome, ['settings.idleTimeoutMs', 'settings.healthIntervalMs']);
      assert.equal(
        readyOutcome.ok,
        false,
        '(b) ensureReady of an actor with invalid input is not answered as ready',
      );
    });

    it('a start without settings', async () => {
      const userId = `poison-vm-${suffix}`;
      await malformedStart('vmWorkflow', workflowIds.vm(userId), { userId }, ['settings']);
    });

    it('a start whose userId is not a string', async () => {
      await malformedStart('vmWorkflow', uniqueId('vm-userid'), { userId: 42, settings: defaultVmSettings }, [
        'userId',
      ]);
    });

    it('a continue-as-new carrying garbage (carried.state.lastActiveAtMs is not a number)', async () => {
      const userId = `poison-vm-${suffix}`;
      await malformedStart(
        'vmWorkflow',
        workflowIds.vm(userId),
        {
          userId,
          settings: defaultVmSettings,
          carried: {
            state: carriedVmState(userId, { lastActiveAtMs: 'yesterday' }),
            pending: { ready: false, suspend: false, terminate: false },
          },
        },
        ['carried.state.lastActiveAtMs'],
      );
    });

    it('a touch signal with garbage is ignored and an update with garbage arguments is rejected', async () => {
      const userId = `poison-vm-${suffix}`;
      const handle = await start('vmWorkflow', workflowIds.vm(userId), [
        { userId, settings: defaultVmSettings },
      ]);
      type View = { status: string; lastActiveAt: string; updatedAt: string };
      const before = await settle(within(OUTCOME_WAIT_MS, 'the vm actor state', handle.query<View>('state')));
      await handle.signal('touch', { lastActiveAtMs: 'garbage' });
      // suspend is refused without Docker work whatever the state; an update after the signal also means
      // the signal has been handled by the time it answers.
      const suspend = await settle(
        within(
          OUTCOME_WAIT_MS,
          'suspend with garbage',
          handle.executeUpdate('suspend', { args: [{ now: 'x' }] }),
        ),
      );
      const after = await settle(within(OUTCOME_WAIT_MS, 'the vm actor state', handle.query<View>('state')));
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      if (!before.ok || !after.ok) assert.fail('(b) the vm actor stopped answering its state query');
      assert.deepEqual(
        [after.value.status, after.value.lastActiveAt, after.value.updatedAt],
        [before.value.status, before.value.lastActiveAt, before.value.updatedAt],
        '(b) a touch with garbage arguments leaves the state unchanged',
      );
      assertRejectedUpdate(suspend, 'suspend with garbage arguments', []);
      const failure = applicationFailureOf(suspend.ok ? undefined : suspend.error);
      assert.match(failure?.message ?? '', /invalid/i, '(b) the rejection says the arguments are invalid');
    });
  });

  describe('vmPoolWorkflow', () => {
    it('a start whose size is a string', async () => {
      await malformedStart(
        'vmPoolWorkflow',
        uniqueId('pool-string'),
        { size: 'three', agentTimeoutMs: 60_000 },
        ['size'],
      );
    });

    it('a start with a negative size', async () => {
      await malformedStart(
        'vmPoolWorkflow',
        uniqueId('pool-negative'),
        { size: -1, agentTimeoutMs: 60_000 },
        ['size'],
      );
    });

    it('a continue-as-new carrying garbage (carried.size is negative)', async () => {
      await malformedStart(
        'vmPoolWorkflow',
        uniqueId('pool-carried'),
        {
          size: 0,
          agentTimeoutMs: 60_000,
          carried: { size: -2, ready: [], claims: [], created: 0, claimed: 0 },
        },
        ['carried.size'],
      );
    });

    it('a resize signal with a string is ignored', async () => {
      const handle = await start('vmPoolWorkflow', uniqueId('pool-resize'), [
        { size: 0, agentTimeoutMs: 60_000 },
      ]);
      await handle.signal('resize', 'ten');
      // An update after the signal answers only once the signal has been handled.
      const claimed = await settle(
        within(
          OUTCOME_WAIT_MS,
          'a claim after the resize',
          handle.executeUpdate('claimWarmVm', { args: [{ claimId: 'after' }] }),
        ),
      );
      const state = await settle(
        within(
          OUTCOME_WAIT_MS,
          'the pool state',
          handle.query<{ size: number; ready: unknown[] }>('poolState'),
        ),
      );
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      if (!claimed.ok) assert.fail(`(b) the pool stopped answering updates: ${describeError(claimed.error)}`);
      assert.equal(claimed.value, null);
      if (!state.ok) assert.fail(`(b) the pool stopped answering its query: ${describeError(state.error)}`);
      assert.equal(state.value.size, 0, '(b) the malformed resize left the size unchanged');
      const description = await handle.describe();
      assert.equal(description.status.name, 'RUNNING', '(b) the pool keeps running');
    });

    it('claimWarmVm without arguments, without claimId, and with a numeric claimId is rejected', async () => {
      const handle = await start('vmPoolWorkflow', uniqueId('pool-claim'), [
        { size: 0, agentTimeoutMs: 60_000 },
      ]);
      const update = (what: string, call: Promise<unknown>) => settle(within(OUTCOME_WAIT_MS, what, call));
      const noArgs = await update('claimWarmVm()', handle.executeUpdate('claimWarmVm'));
      const noClaimId = await update('claimWarmVm({})', handle.executeUpdate('claimWarmVm', { args: [{}] }));
      const numeric = await update(
        'claimWarmVm({claimId: 42})',
        handle.executeUpdate('claimWarmVm', { args: [{ claimId: 42 }] }),
      );
      const state = await settle(
        within(
          OUTCOME_WAIT_MS,
          'the pool state',
          handle.query<{ claims: unknown[]; claimed: number }>('poolState'),
        ),
      );
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      assertRejectedUpdate(noArgs, 'claimWarmVm without arguments', []);
      assertRejectedUpdate(noClaimId, 'claimWarmVm without claimId', ['claimId']);
      assertRejectedUpdate(numeric, 'claimWarmVm with a numeric claimId', ['claimId']);
      if (!state.ok) assert.fail(`(b) the pool stopped answering its query: ${describeError(state.error)}`);
      assert.deepEqual(state.value.claims, [], '(b) a rejected claim is not remembered');
      const description = await handle.describe();
      assert.equal(description.status.name, 'RUNNING', '(b) the pool keeps running');
    });
  });

  describe('ratchetWorkflow', () => {
    const memory = {
      enabled: false,
      lastDispatchKey: null,
      dispatchKeys: [],
      reviewLastCheckedAt: null,
      dispatchOutcome: null,
      dispatchRetryCount: 0,
      dispatchStalled: false,
      dispatchTimesMs: [],
    };
    const input = (workspaceId: string, override: Record<string, unknown> = {}) => ({
      workspaceId,
      userId: ratchetUser,
      memory,
      settings: defaultRatchetSettings,
      ...override,
    });

    it('a start whose pollIntervalMs is a string', async () => {
      const id = `poison-rs-${suffix}-${++caseSeq}`;
      await malformedStart(
        'ratchetWorkflow',
        workflowIds.ratchet(id),
        input(id, { settings: { ...defaultRatchetSettings, pollIntervalMs: 'often' } }),
        ['settings.pollIntervalMs'],
      );
    });

    it('a start without memory', async () => {
      const id = `poison-rm-${suffix}-${++caseSeq}`;
      const { memory: _memory, ...rest } = input(id);
      await malformedStart('ratchetWorkflow', workflowIds.ratchet(id), rest, ['memory']);
    });

    it('a continue-as-new carrying garbage (carried.state.nextPollAtMs is not a number)', async () => {
      const id = `poison-rc-${suffix}-${++caseSeq}`;
      await malformedStart(
        'ratchetWorkflow',
        workflowIds.ratchet(id),
        input(id, {
          carried: {
            state: {
              workspaceId: id,
              userId: ratchetUser,
              memory,
              ratchetState: 'IDLE',
              lastDecision: null,
              activeFixer: null,
              lastFixerCheckAtMs: null,
              nextPollAtMs: 'soon',
              backoffMultiplier: 1,
              vmSuspended: false,
              problem: null,
              endedReason: null,
              updatedAtMs: Date.now(),
              version: 0,
            },
          },
        }),
        ['carried.state.nextPollAtMs'],
      );
    });

    it('garbage signals are ignored and garbage updates rejected; the loop keeps answering and hands off', async () => {
      const id = `poison-rok-${suffix}-${++caseSeq}`;
      const handle = await start('ratchetWorkflow', workflowIds.ratchet(id), [input(id)]);
      const update = (what: string, call: Promise<unknown>) => settle(within(OUTCOME_WAIT_MS, what, call));
      await handle.signal('wake', { now: 'please' });
      const enabledString = await update(
        'setEnabled({enabled: "yes"})',
        handle.executeUpdate('setEnabled', { args: [{ enabled: 'yes' }] }),
      );
      const noArgs = await update('setEnabled()', handle.executeUpdate('setEnabled'));
      const badReason = await update(
        'end({reason: "bored"})',
        handle.executeUpdate('end', { args: [{ reason: 'bored' }] }),
      );
      const handOffArgs = await update('handOff(1)', handle.executeUpdate('handOff', { args: [1] }));
      const view = await settle(
        within(
          OUTCOME_WAIT_MS,
          'the ratchet view',
          handle.query<{ phase: string; enabled: boolean }>('view'),
        ),
      );
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      assertRejectedUpdate(enabledString, 'setEnabled with a string', ['enabled']);
      assertRejectedUpdate(noArgs, 'setEnabled without arguments', ['setEnabled']);
      assertRejectedUpdate(badReason, 'end with an unknown reason', ['reason']);
      assertRejectedUpdate(handOffArgs, 'handOff with arguments', ['handOff']);
      if (!view.ok) assert.fail(`(b) the ratchet stopped answering its query: ${describeError(view.error)}`);
      assert.deepEqual([view.value.phase, view.value.enabled], ['disabled', false], '(b) nothing changed');
      const handedOff = await update('handOff()', handle.executeUpdate('handOff'));
      if (!handedOff.ok) assert.fail(`(b) a valid handOff was refused: ${describeError(handedOff.error)}`);
      const result = await settle(within(OUTCOME_WAIT_MS, 'the ratchet run to end', handle.result()));
      assert.ok(result.ok, '(b) the well-formed ratchet completes after its handoff');
    });
  });

  describe('reconcileStrayContainers', () => {
    // Every input here is a dry run or removes nothing even where it is (wrongly) accepted, so a reconciler
    // that does not validate cannot remove another test's containers.
    it('a start whose graceMs is a string', async () => {
      await malformedStart(
        'reconcileStrayContainers',
        uniqueId('reconciler-grace-string'),
        { graceMs: 'five minutes', dryRun: true },
        ['graceMs'],
      );
    });

    it('a start with a negative graceMs', async () => {
      await malformedStart(
        'reconcileStrayContainers',
        uniqueId('reconciler-grace-negative'),
        { graceMs: -1, dryRun: true },
        ['graceMs'],
      );
    });

    it('a start whose dryRun is a string', async () => {
      await malformedStart('reconcileStrayContainers', uniqueId('reconciler-dryrun'), { dryRun: 'yes' }, [
        'dryRun',
      ]);
    });

    it('a well-formed dry run still completes on the same worker', async () => {
      const handle = await start('reconcileStrayContainers', uniqueId('reconciler-witness'), [
        { dryRun: true },
      ]);
      const outcome = await settle(
        within(OUTCOME_WAIT_MS, 'the dry run', handle.result() as Promise<{ removed: unknown[] }>),
      );
      const witnesses = await witnessesAnswer();
      assertWorkerAndWitnesses(witnesses);
      if (!outcome.ok)
        assert.fail(`the well-formed dry run did not complete: ${describeError(outcome.error)}`);
      assert.deepEqual(outcome.value.removed, [], 'a dry run removes nothing');
    });
  });
});
