/**
 * A real Temporal worker for tests: the production workflow bundle and production activities, on a task queue
 * of its own so tests never steal tasks from a running `dev.sh up` worker (or from each other).
 */
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { workflowBundlerOptions, workflowsPath } from '../../worker/bundle.js';
import { testConfig, uniqueSuffix } from './services.js';

// Worker lifecycle chatter drowns test output; warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundled once per test process: webpack takes seconds, the bundle is the same for every test. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath,
    webpackConfigHook: workflowBundlerOptions,
    logger: quietLogger,
  });
  return bundle;
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

export type RunningTestWorker = { taskQueue: string; stop: () => Promise<void> };

export async function startTestWorker(activities: object): Promise<RunningTestWorker> {
  const taskQueue = `test-${uniqueSuffix()}`;
  const connection = await NativeConnection.connect({ address: testConfig.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: testConfig.temporal.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    shutdownGraceTime: '5s',
  });
  const running = worker.run();
  return {
    taskQueue,
    stop: async () => {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
