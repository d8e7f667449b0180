/**
 * GET /api/workspaces/:id/sessions/:sid/messages?before=&limit=: a session's history one page at a time
 * (api/services/session-history.ts), for the dashboard's session view.
 */
import { SessionMessagesPageSchema, SessionMessagesQuerySchema } from '../contract/dashboard.js';
import { SessionParamsSchema } from '../contract/workspaces.js';
import type { SessionHistoryService } from '../services/session-history.js';
import { type ApiRoute, callerOf, defineRoute, errors } from './table.js';

export function sessionHistoryRouteTable(history: SessionHistoryService): ApiRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/workspaces/:id/sessions/:sid/messages',
      tag: 'sessions',
      summary:
        "A session's messages one page at a time, newest page first; `seq` is where the relay continues",
      description:
        'Without `before`, the newest `limit` messages; with it, the ones just before that index (pass the ' +
        'previous page’s `start`). Open ws /ws/workspaces/{id}/sessions/{sid}?after={seq} to follow on ' +
        'from this page with nothing fetched twice.',
      auth: true,
      params: SessionParamsSchema,
      query: SessionMessagesQuerySchema,
      responses: {
        200: { description: 'a page of messages, oldest first', schema: SessionMessagesPageSchema },
        ...errors({
          400: 'invalid query',
          401: 'not signed in',
          404: 'no such workspace or session of yours',
          409: 'the workspace is not READY in the cloud',
          503: 'the VM is not reachable right now',
          504: 'the VM did not answer in time',
        }),
      },
      handle: async (input) => ({
        status: 200,
        body: await history.page(callerOf(input).userId, input.params.id, input.params.sid, input.query),
      }),
    }),
  ];
}
