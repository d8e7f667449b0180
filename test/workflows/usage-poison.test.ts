/**
 * Poison inputs of the usage actor and of the VM actor's quota signals: a malformed start fails that run
 * with a clear "invalid input" error; a malformed signal is ignored and changes nothing; the production
 * worker process (worker/main.ts) stays alive and a well-formed actor on it keeps answering. Everything
 * goes through a raw Temporal client (string workflow and signal names, untyped arguments), as an
 * operator with the CLI would. See test/workflows/poison-inputs.test.ts for why this matters.
 */
import assert from 'node:assert/strict';
import {
  ApplicationFailure,
  type Client,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { workflowIds } from '../../workflows/ids.js';
import { defaultUsageSettings } from '../../workflows/usage/messages.js';
import { defaultVmSettings } from '../../workflows/vm/messages.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  uniqueSuffix,
} from '../support/services.js';
import { eventually } from '../support/vm.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

const WAIT_MS = 20_000;

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

type UsageViewLike = {
  userId: string;
  plan: string | null;
  running: unknown;
  minutes: { used: number; limit: number | null };
  unreportedSlices: number;
};

describe('usage actor poison inputs (production worker process, raw Temporal client)', function () {
  this.timeout(5 * 60_000);
  const suffix = uniqueSuffix();
  const taskQueue = `usage-poison-${suffix}`;
  const witness = `usage-witness-${suffix}`;
  const target = `usage-target-${suffix}`;
  const vmUser = `usage-vm-${suffix}`;
  let client: Client;
  let db: TestDatabase;
  let worker: WorkerProcess;
  const started: WorkflowHandle[] = [];
  let seq = 0;

  const alive = () => worker.child.exitCode === null && worker.child.signalCode === null;
  const usageOf = (userId: string) =>
    within(
      WAIT_MS,
      `usage state of ${userId}`,
      client.workflow.getHandle(workflowIds.usage(userId)).query<UsageViewLike>('usageState'),
    );

  async function start(workflowId: string, input: unknown): Promise<WorkflowHandle> {
    const handle = await client.workflow.start('usageWorkflow', { taskQueue, workflowId, args: [input] });
    started.push(handle);
    return handle;
  }

  /** The worker lives and the witness answers its query: checked after every case. */
  async function assertWorkerAndWitness(): Promise<void> {
    assert.ok(alive(), `the worker process died:\n${worker.output().slice(-2500)}`);
    const view = await usageOf(witness);
    assert.equal(view.userId, witness, 'the witness answers with its own state');
  }

  async function malformedStart(input: unknown, field: string): Promise<void> {
    const handle = await start(`usage:poison-${suffix}-${++seq}`, input);
    const outcome = await within(WAIT_MS, 'the malformed run to end', handle.result()).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await assertWorkerAndWitness();
    if (outcome.ok) assert.fail(`the malformed run completed: ${JSON.stringify(outcome.value)}`);
    assert.ok(outcome.error instanceof WorkflowFailedError, String(outcome.error));
    const failure = applicationFailureOf(outcome.error);
    assert.match(failure?.message ?? '', /^invalid input of usage workflow/);
    assert.ok(failure?.message.includes(field), `the failure names ${field}: ${failure?.message}`);
  }

  before(async () => {
    client = await connectTestTemporal();
    db = await createMigratedDatabase();
    for (const user of [witness, target, vmUser])
      await db.pool.query('INSERT INTO users (id) VALUES ($1)', [user]);
    worker = await startWorkerProcess({ DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue });
    await start(workflowIds.usage(witness), { userId: witness, settings: defaultUsageSettings });
    await assertWorkerAndWitness();
  });

  after(async () => {
    for (const handle of started) await handle.terminate('test over').catch(() => {});
    await client?.workflow
      .getHandle(workflowIds.vm(vmUser))
      .terminate('test over')
      .catch(() => {});
    await worker?.kill('SIGKILL');
    await db?.drop();
    await client?.connection.close();
  });

  it('fails a start whose userId is not a string', async () => {
    await malformedStart({ userId: 42, settings: defaultUsageSettings }, 'userId');
  });

  it('fails a start without settings, or with a string for a duration', async () => {
    await malformedStart({ userId: `p-${suffix}` }, 'settings');
    await malformedStart(
      { userId: `p-${suffix}`, settings: { ...defaultUsageSettings, lingerMs: 'a while' } },
      'settings.lingerMs',
    );
  });

  it("fails a continue-as-new carrying garbage, or another user's state", async () => {
    const now = Date.now();
    const state = {
      userId: `p-${suffix}`,
      loaded: true,
      account: null,
      period: { startMs: now, endMs: 'later' },
      usedMinutes: 0,
      running: null,
      lastTransitionAtMs: null,
      slices: [],
      hold: null,
      lastChangeAtMs: now,
    };
    await malformedStart(
      { userId: `p-${suffix}`, settings: defaultUsageSettings, carried: { state, inbox: [] } },
      'carried.state.period.endMs',
    );
    await malformedStart(
      {
        userId: `p-${suffix}`,
        settings: defaultUsageSettings,
        carried: {
          state: { ...state, userId: 'someone-else', period: { startMs: now, endMs: now + 1 } },
          inbox: [],
        },
      },
      'carried.state.userId',
    );
  });

  it('ignores vmTransition and planChanged signals with garbage, and keeps applying well-formed ones', async () => {
    const handle = await start(workflowIds.usage(target), { userId: target, settings: defaultUsageSettings });
    const now = Date.now();
    for (const args of [
      [{ vmId: 'vm-x', running: 'yes', atMs: now }],
      [{ vmId: 'vm-x', running: true, atMs: 'now' }],
      [{ vmId: 'vm-x', running: true, atMs: -5 }],
      [{ vmId: 'vm-x', running: true, atMs: now }, 'extra'],
      ['running'],
      [],
    ]) {
      await handle.signal('vmTransition', ...args);
    }
    // Signals are applied in order: once this one shows, every one before it was handled.
    await handle.signal('planChanged', { plan: 'TEAM', paymentFailedAtMs: null, changedAtMs: 2 });
    await eventually('the well-formed plan change', async () =>
      (await usageOf(target)).plan === 'TEAM' ? true : undefined,
    );
    assert.equal((await usageOf(target)).running, null, 'no garbage transition started metering');
    for (const args of [
      [{ plan: 'GOLD', paymentFailedAtMs: null, changedAtMs: 3 }],
      [{ plan: 'PRO', paymentFailedAtMs: 'yesterday', changedAtMs: 3 }],
      [{ plan: 'PRO' }],
    ]) {
      await handle.signal('planChanged', ...args);
    }
    await handle.signal('vmTransition', { vmId: 'vm-marker', running: true, atMs: Date.now() });
    const view = await eventually('the well-formed transition', async () => {
      const state = await usageOf(target);
      return state.running ? state : undefined;
    });
    await assertWorkerAndWitness();
    assert.equal(view.plan, 'TEAM', 'no garbage plan change was applied');
    assert.equal(view.minutes.limit, 30_000);
  });

  it('ignores suspendForQuota and quotaRestored signals with garbage on the VM actor', async () => {
    const handle = await client.workflow.start('vmWorkflow', {
      taskQueue,
      workflowId: workflowIds.vm(vmUser),
      args: [{ userId: vmUser, settings: defaultVmSettings }],
    });
    type View = { status: string; suspendReason?: string | null; updatedAt: string; lastActiveAt: string };
    const before = await within(WAIT_MS, 'vm state', handle.query<View>('state'));
    for (const args of [
      [{ usedMinutes: 'all', limitMinutes: 600, periodEndMs: Date.now(), message: 'x' }],
      [{ usedMinutes: 600, limitMinutes: 600, periodEndMs: Date.now(), message: '' }],
      [{ usedMinutes: 600, limitMinutes: 600, periodEndMs: Date.now() }],
      ['stop'],
    ]) {
      await handle.signal('suspendForQuota', ...args);
    }
    await handle.signal('quotaRestored', { usedMinutes: -1 });
    // A touch after them: once it shows, every signal before it was handled.
    await handle.signal('touch');
    const after = await eventually('the touch after the garbage', async () => {
      const state = await within(WAIT_MS, 'vm state', handle.query<View>('state'));
      return state.lastActiveAt !== before.lastActiveAt ? state : undefined;
    });
    await assertWorkerAndWitness();
    assert.deepEqual(
      [after.status, after.suspendReason, after.updatedAt],
      [before.status, null, before.updatedAt],
      'nothing was held',
    );
  });
});
