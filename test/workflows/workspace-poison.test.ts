/**
 * Poison inputs for the workspace:<workspaceId> actor: a malformed start (also through update-with-start,
 * the way the api starts it), a forged continue-as-new, or garbage update arguments must fail that run or
 * reject that update, and leave the shared worker process and every other actor on it running (see
 * poison-inputs.test.ts for why a bad value once took the whole worker down). Everything goes through a raw
 * client (string types, untyped arguments) to the production worker process on a task queue of its own.
 * The witness is a well-formed actor whose workspace was pulled: it waits, and does no VM work.
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
import { workflowIds } from '../../workflows/ids.js';
import { defaultWorkspaceSettings } from '../../workflows/workspace/messages.js';
import { portableWorkspaceState } from '../support/portable-state.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  uniqueSuffix,
} from '../support/services.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

const WAIT_MS = 20_000;

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

function portableState(workspaceId: string): Record<string, unknown> {
  return portableWorkspaceState(workspaceId, { name: 'poison' });
}

/** A state as continue-as-new carries it: READY, pulled to the desktop a moment ago. */
function carriedState(workspaceId: string, userId: string, override: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    workspaceId,
    userId,
    source: { kind: 'portable', state: portableState(workspaceId) },
    status: 'READY',
    location: 'DESKTOP',
    step: 'done',
    details: {
      name: 'poison',
      repoUrl: 'https://github.com/acme/app.git',
      branchName: 'feature-x',
      baseBranch: 'main',
      prUrl: null,
      prNumber: null,
      githubIssueUrl: null,
      githubIssueNumber: null,
      ratchetEnabled: false,
      ratchetState: 'IDLE',
    },
    failureReason: null,
    failureRetryable: false,
    autoRetries: 0,
    restoreSeq: 1,
    pendingRestore: null,
    recordedSeq: 1,
    createdAtMs: now,
    updatedAtMs: now,
    pulledAtMs: now,
    version: 3,
    problem: null,
    ...override,
  };
}

describe('poison inputs of the workspace actor (production worker process, raw client)', function () {
  this.timeout(5 * 60_000);
  const suffix = uniqueSuffix();
  const taskQueue = `ws-poison-${suffix}`;
  const userId = `ws-poison-${suffix}`;
  const witnessId = `ws-poison-witness-${suffix}`;
  const settings = { ...defaultWorkspaceSettings, desktopLingerMs: 24 * 3600 * 1000 };
  let client: Client;
  let db: TestDatabase;
  let worker: WorkerProcess;
  let witness: WorkflowHandle;
  const started: WorkflowHandle[] = [];
  let seq = 0;

  before(async () => {
    client = await connectTestTemporal();
    db = await createMigratedDatabase();
    worker = await startWorkerProcess({ DATABASE_URL: db.url, TEMPORAL_TASK_QUEUE: taskQueue });
    witness = await client.workflow.start('workspaceWorkflow', {
      taskQueue,
      workflowId: workflowIds.workspace(witnessId),
      args: [
        {
          workspaceId: witnessId,
          userId,
          source: { kind: 'portable', state: portableState(witnessId) },
          settings,
          carried: { state: carriedState(witnessId, userId) },
        },
      ],
    });
    started.push(witness);
  });

  after(async () => {
    for (const handle of started) await handle.terminate('test over').catch(() => {});
    await worker?.kill('SIGKILL');
    await db?.drop();
    await client?.connection.close();
  });

  /** The worker process lives and the witness answers its query with its own, unchanged state. */
  async function assertWorkerAndWitness(): Promise<void> {
    assert.equal(worker.child.exitCode, null, `the worker process died:\n${worker.output().slice(-2000)}`);
    assert.equal(worker.child.signalCode, null, 'the worker process was killed');
    const view = await within(
      WAIT_MS,
      'the witness query',
      witness.query<{ id: string; status: string; location: string; version: number }>('view'),
    );
    assert.deepEqual(
      [view.id, view.status, view.location, view.version],
      [witnessId, 'READY', 'DESKTOP', 3],
      'the witness answers with its own state, unchanged',
    );
  }

  async function malformedStart(input: Record<string, unknown>, fields: string[]): Promise<void> {
    const workspaceId = `ws-poison-${suffix}-${++seq}`;
    const workflowId = workflowIds.workspace(workspaceId);
    const update = settle(
      within(
        WAIT_MS,
        'sendToCloud with start',
        client.workflow.executeUpdateWithStart('sendToCloud', {
          startWorkflowOperation: new WithStartWorkflowOperation('workspaceWorkflow', {
            workflowId,
            taskQueue,
            args: [{ workspaceId, userId, ...input }],
            workflowIdConflictPolicy: 'FAIL',
          }),
          args: [{ userId, source: input.source }],
        }),
      ),
    );
    const handle = client.workflow.getHandle(workflowId);
    started.push(handle);
    const updated = await update;
    const outcome = await settle(within(WAIT_MS, 'the malformed run to end', handle.result()));
    await assertWorkerAndWitness();
    assert.equal(updated.ok, false, 'the send of a malformed actor is not answered as recorded');
    if (outcome.ok) assert.fail(`the malformed run completed: ${JSON.stringify(outcome.value)}`);
    assert.ok(outcome.error instanceof WorkflowFailedError, `the run failed: ${String(outcome.error)}`);
    const failure = applicationFailureOf(outcome.error);
    assert.match(failure?.message ?? '', /^invalid input/, `says the input is invalid: ${failure?.message}`);
    assert.ok(
      fields.some((field) => failure?.message.includes(field)),
      `names ${fields.join(' or ')}: ${failure?.message}`,
    );
  }

  it('a start without settings.restoreTimeoutMs fails that run', async () => {
    const { restoreTimeoutMs: _omitted, ...rest } = settings;
    await malformedStart(
      {
        source: { kind: 'portable', state: portableState(`ws-poison-${suffix}-${seq + 1}`) },
        settings: rest,
      },
      ['settings.restoreTimeoutMs'],
    );
  });

  it('a start with a negative restore deadline fails that run', async () => {
    await malformedStart(
      {
        source: { kind: 'portable', state: portableState(`ws-poison-${suffix}-${seq + 1}`) },
        settings: { ...settings, restoreTimeoutMs: -5 },
      },
      ['settings.restoreTimeoutMs'],
    );
  });

  it('a start whose state is of another workspace fails that run', async () => {
    await malformedStart({ source: { kind: 'portable', state: portableState('someone-elses') }, settings }, [
      'source.state.workspaceId',
    ]);
  });

  it('a continue-as-new carrying garbage fails that run', async () => {
    const workspaceId = `ws-poison-${suffix}-${seq + 1}`;
    await malformedStart(
      {
        source: { kind: 'portable', state: portableState(workspaceId) },
        settings,
        carried: { state: carriedState(workspaceId, userId, { pulledAtMs: 'yesterday' }) },
      },
      ['carried.state.pulledAtMs'],
    );
  });

  it('updates with garbage arguments are rejected and change nothing', async () => {
    const cases: [string, unknown[]][] = [
      ['sendToCloud', [42]],
      ['sendToCloud', [{ userId, source: { kind: 'nonsense' } }]],
      ['sendToCloud', [{ userId: 'x y z', source: { kind: 'portable', state: portableState(witnessId) } }]],
      ['sendToCloud', []],
      ['pull', ['now']],
      ['archive', [{ force: true }]],
      ['retry', [1]],
    ];
    for (const [name, args] of cases) {
      const outcome = await settle(
        within(
          WAIT_MS,
          `${name} with garbage`,
          args.length === 0
            ? witness.executeUpdate(name)
            : witness.executeUpdate(name, { args: [args[0], ...args.slice(1)] }),
        ),
      );
      if (outcome.ok)
        assert.fail(`${name}(${JSON.stringify(args)}) was accepted: ${JSON.stringify(outcome.value)}`);
      assert.ok(outcome.error instanceof WorkflowUpdateFailedError, `${name} was rejected as an update`);
      assert.match(
        applicationFailureOf(outcome.error)?.message ?? '',
        /invalid/i,
        `${name}: says what is invalid`,
      );
    }
    const other = await settle(
      witness.executeUpdate('sendToCloud', {
        args: [{ userId: `other-${suffix}`, source: { kind: 'portable', state: portableState(witnessId) } }],
      }),
    );
    assert.equal(other.ok ? undefined : applicationFailureOf(other.error)?.type, 'WorkspaceNotOwner');
    await assertWorkerAndWitness();
    const description = await witness.describe();
    assert.equal(description.status.name, 'RUNNING', 'the witness keeps running');
  });
});
