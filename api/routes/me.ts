/**
 * GET /api/me: who the caller is and how it authenticated. DELETE /api/me (AUTH_MODE=local only; with
 * Clerk, accounts are deleted in Clerk and its user.deleted webhook does the rest): deletes the caller's
 * own account, as the webhook would.
 */
import type { Pool } from '../../db/pool.js';
import { getUser } from '../../db/users.js';
import { DeleteMeAnswerSchema, MeAnswerSchema } from '../contract/accounts.js';
import { ApiError } from '../errors.js';
import type { AccountService } from '../services/account-service.js';
import { type ApiRoute, actorOf, callerOf, defineRoute, errors, requestIdOf } from './table.js';

/** Who is an operator, and where their Temporal UI links point (config.operators, config.temporal). */
export type OperatorSettings = {
  userIds: readonly string[];
  temporalUiUrl: string;
  temporalNamespace: string;
};

export function meRouteTable(deps: {
  pool: Pool;
  accounts: AccountService;
  /** DELETE /api/me exists (local mode). */
  selfDeletion: boolean;
  /** Without it nobody is an operator. */
  operators?: OperatorSettings | undefined;
}): ApiRoute[] {
  const operatorIds = new Set(deps.operators?.userIds ?? []);
  const routes = [
    defineRoute({
      method: 'get',
      path: '/me',
      tag: 'account',
      summary: 'My account: id, email, name, plan, and how this request authenticated',
      auth: true,
      responses: {
        200: { description: 'the account', schema: MeAnswerSchema },
        ...errors({ 404: 'the account was deleted meanwhile' }),
      },
      handle: async (input) => {
        const caller = callerOf(input);
        const user = await getUser(deps.pool, caller.userId);
        if (!user) throw new ApiError(404, 'not_found', 'this account no longer exists');
        return {
          status: 200,
          body: {
            user: {
              id: user.id,
              email: user.email,
              name: user.name,
              plan: user.plan,
              createdAt: user.createdAt.toISOString(),
            },
            auth: { via: caller.via, keyId: caller.keyId ?? null },
            ...operatorFields(operatorIds.has(user.id) ? deps.operators : undefined),
          },
        };
      },
    }),
  ];
  if (deps.selfDeletion) {
    routes.push(
      defineRoute({
        method: 'delete',
        path: '/me',
        tag: 'account',
        summary:
          'Delete my account (local sign-in mode only): VM, workspaces and keys go; an audit record stays',
        auth: true,
        responses: { 200: { description: 'the account is deleted', schema: DeleteMeAnswerSchema } },
        handle: async (input) => {
          const caller = callerOf(input);
          const requestId = requestIdOf(input);
          const outcome = await deps.accounts.deleteAccount(caller.userId, {
            actor: actorOf(caller),
            ...(requestId ? { requestId } : {}),
          });
          return { status: 200, body: { deleted: true, alreadyDeleted: outcome.alreadyDeleted } };
        },
      }),
    );
  }
  return routes;
}

/** The operator fields of /api/me: the Temporal UI's whereabouts only for an operator. */
function operatorFields(operator: OperatorSettings | undefined) {
  return operator
    ? { operator: true, temporalUiUrl: operator.temporalUiUrl, temporalNamespace: operator.temporalNamespace }
    : { operator: false, temporalUiUrl: null, temporalNamespace: null };
}
