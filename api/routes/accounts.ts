/** Every account route (me, keys, audit, local sign-in), as one table for api/app.ts. */
import type { Pool } from '../../db/pool.js';
import type { LocalSessionIssuer } from '../auth/local-sessions.js';
import type { AccountService } from '../services/account-service.js';
import { auditRouteTable } from './audit.js';
import { localAuthRouteTable } from './auth-local.js';
import { keyRouteTable } from './keys.js';
import { meRouteTable, type OperatorSettings } from './me.js';
import type { ApiRoute } from './table.js';

export type AccountRouteDependencies = {
  pool: Pool;
  accounts: AccountService;
  /** AUTH_MODE=local: the sign-in route and page, and DELETE /api/me. Null with Clerk. */
  localSessions: LocalSessionIssuer | null;
  /** Per-user rate limit on key creation (throws ApiError 429). */
  limitKeyCreation?: (userId: string) => Promise<void>;
  /** Who sees the dashboard's Temporal UI links (GET /api/me); nobody without it. */
  operators?: OperatorSettings;
};

export function accountRouteTable(deps: AccountRouteDependencies): ApiRoute[] {
  const { pool, accounts, localSessions } = deps;
  return [
    ...meRouteTable({ pool, accounts, selfDeletion: localSessions !== null, operators: deps.operators }),
    ...keyRouteTable({
      pool,
      ...(deps.limitKeyCreation ? { limitKeyCreation: deps.limitKeyCreation } : {}),
    }),
    ...auditRouteTable({ pool }),
    ...(localSessions ? localAuthRouteTable({ pool, localSessions }) : []),
  ];
}
