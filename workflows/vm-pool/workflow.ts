/**
 * vm-pool — keeps `size` started VM containers, each with an answering agent and a fresh volume, so a
 * first-time user's ensureReady claims one (a rename) instead of creating one. Refills in the background,
 * one container at a time; shrinks by removing the oldest extras.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { VmContainerActivities } from '../../activities/vm/types.js';
import { parseOrFail } from '../validation.js';
import {
  ClaimWarmVmArgsSchema,
  claimWarmVmUpdate,
  PoolSizeSchema,
  poolStateQuery,
  resizePoolSignal,
  type WarmPoolInput,
  WarmPoolInputSchema,
} from './messages.js';
import { claim, newPoolState, type PoolState, shortfall } from './state.js';

const docker = proxyActivities<VmContainerActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const agentWait = proxyActivities<Pick<VmContainerActivities, 'waitForVmAgent'>>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 2 },
});

const INVALID = 'WarmPoolInvalidInput';

export async function vmPoolWorkflow(rawInput: unknown): Promise<void> {
  // Checked first: a malformed start fails this run, and no bad number reaches a timer or the pool size.
  const input: WarmPoolInput = parseOrFail(WarmPoolInputSchema, rawInput, 'input of the warm pool', INVALID);
  let state: PoolState = input.carried ?? newPoolState(input.size);

  setHandler(poolStateQuery, () => state);
  setHandler(resizePoolSignal, (size: unknown) => {
    // A signal cannot be refused: a size that is not a small whole number is ignored.
    const checked = PoolSizeSchema.safeParse(size);
    if (checked.success) state = { ...state, size: checked.data };
  });
  setHandler(
    claimWarmVmUpdate,
    (args) => {
      const result = claim(state, args.claimId);
      state = result.state;
      return result.container;
    },
    {
      validator: (args: unknown) => {
        parseOrFail(ClaimWarmVmArgsSchema, args, 'claimWarmVm', INVALID);
      },
    },
  );

  for (;;) {
    if (
      workflowInfo().continueAsNewSuggested ||
      workflowInfo().historyLength >= (input.maxHistoryEvents ?? 2000)
    ) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof vmPoolWorkflow>({ ...input, carried: state });
    }
    const missing = shortfall(state);
    if (missing > 0) {
      const ref = await docker.createVmContainer({
        containerName: `ffc-pool-${uuid4()}`,
        role: 'pool',
        owner: workflowInfo().workflowId,
      });
      try {
        await docker.startVmContainer(ref);
        await agentWait.waitForVmAgent(ref, { timeoutMs: input.agentTimeoutMs });
        state = { ...state, ready: [...state.ready, ref], created: state.created + 1 };
      } catch (err) {
        // A container that will not come up is not worth keeping; the next round makes another.
        log.warn('warm-pool container did not come up; replacing it', { container: ref.containerName, err });
        await docker.removeVmContainer(ref);
      }
    } else if (missing < 0) {
      const [oldest, ...rest] = state.ready;
      if (oldest) {
        state = { ...state, ready: rest };
        await docker.removeVmContainer(oldest);
      }
    } else {
      await condition(() => shortfall(state) !== 0);
    }
  }
}
