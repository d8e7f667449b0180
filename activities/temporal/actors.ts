/**
 * Questions about our own actors, asked through the Temporal client: "is the workflow that owns this
 * resource still running?". Used by the reconciler; read-only, so retries are trivially safe.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';

export function createActorActivities(deps: { client: Client }) {
  const { client } = deps;
  return {
    /** The subset of `workflowIds` whose latest run is RUNNING. */
    async runningWorkflows(workflowIds: string[]): Promise<string[]> {
      const running: string[] = [];
      for (const id of new Set(workflowIds)) {
        try {
          const description = await client.workflow.getHandle(id).describe();
          if (description.status.name === 'RUNNING') running.push(id);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      return running;
    },
  };
}
