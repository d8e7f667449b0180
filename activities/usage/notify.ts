/**
 * How vm:<userId> tells usage:<userId> that its VM started or stopped running. A workflow cannot
 * signal-with-start another (only signal one that exists), and the usage actor ends when it has nothing
 * to do, so the VM actor does it through this activity. A retry may deliver the same transition twice;
 * the usage actor applies a transition once (same VM and time, or older than the last one: ignored).
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { workflowIds } from '../../workflows/ids.js';
import {
  defaultUsageSettings,
  type UsageSettings,
  type UsageWorkflowInput,
  vmTransitionSignal,
} from '../../workflows/usage/messages.js';
import type { UsageNotifyActivities } from './types.js';

/** The usage actor's workflow type, by name (workflows/index.ts exports a function of this name). */
export const USAGE_WORKFLOW_TYPE = 'usageWorkflow';

export function createUsageNotifyActivities(deps: {
  temporal: Client;
  /** Settings a usage actor is started with (config.billing.gracePeriodMs among them). */
  settings?: UsageSettings;
  /** Task queue of the usage actors; this activity's own unless given (a single-host deployment). */
  taskQueue?: string;
}) {
  return {
    async notifyUsageOfVm(report) {
      const taskQueue = deps.taskQueue ?? Context.current().info.taskQueue;
      const input: UsageWorkflowInput = {
        userId: report.userId,
        settings: deps.settings ?? defaultUsageSettings,
      };
      await deps.temporal.workflow.signalWithStart(USAGE_WORKFLOW_TYPE, {
        workflowId: workflowIds.usage(report.userId),
        taskQueue,
        args: [input],
        signal: vmTransitionSignal,
        signalArgs: [{ vmId: report.vmId, running: report.running, atMs: report.atMs }],
      });
    },
  } satisfies UsageNotifyActivities;
}
