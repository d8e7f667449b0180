/** GET /api/audit: the caller's own audit records, newest first, a page at a time. */
import { InvalidCursorError, listAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { AuditPageSchema, ListAuditQuerySchema } from '../contract/accounts.js';
import { ApiError } from '../errors.js';
import { type ApiRoute, callerOf, defineRoute, errors } from './table.js';

export function auditRouteTable(deps: { pool: Pool }): ApiRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/audit',
      tag: 'account',
      summary: 'My audit log: keys created, revoked and first used, sign-ins, VM terminated, plan changes',
      auth: true,
      query: ListAuditQuerySchema,
      responses: {
        200: { description: 'a page; pass nextCursor as cursor for the next', schema: AuditPageSchema },
        ...errors({ 400: 'invalid query or cursor' }),
      },
      handle: async (input) => {
        try {
          return { status: 200, body: await listAudit(deps.pool, callerOf(input).userId, input.query) };
        } catch (err) {
          if (err instanceof InvalidCursorError) throw new ApiError(400, 'bad_request', err.message);
          throw err;
        }
      },
    }),
  ];
}
