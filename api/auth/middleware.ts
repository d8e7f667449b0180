/**
 * Bearer authentication for REST routes and WebSocket upgrades. Browsers cannot set headers on a
 * WebSocket, so sockets may also carry the credential as a `bearer.<token>` subprotocol.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import type { Pool } from '../../db/pool.js';
import { ensureUser, UserDeletedError } from '../../db/users.js';
import { ApiError } from '../errors.js';
import type { Authenticator, Principal } from './principal.js';

export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';

export function bearerFromHeaders(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    return match?.[1] ?? null;
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols) {
    const bearer = protocols
      .split(',')
      .map((p) => p.trim())
      .find((p) => p.startsWith(BEARER_SUBPROTOCOL_PREFIX));
    if (bearer) return bearer.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  }
  return null;
}

/**
 * Resolves the principal of a request, recording the user on first sight; throws 401 ApiError if none.
 * Credentials come from headers only, never from the URL: URLs end up in logs, proxies and browser history.
 * A deleted account is refused whatever it presents.
 */
export async function authenticateRequest(
  req: IncomingMessage,
  deps: { authenticator: Authenticator; pool: Pool },
): Promise<Principal> {
  const credential = bearerFromHeaders(req);
  if (!credential) {
    throw new ApiError(
      401,
      'unauthorized',
      'missing credentials: send "Authorization: Bearer <API key or session token>"',
    );
  }
  const principal = await deps.authenticator.authenticate(credential);
  if (!principal) throw new ApiError(401, 'unauthorized', 'invalid or expired credentials');
  try {
    await ensureUser(deps.pool, { id: principal.userId });
  } catch (err) {
    if (err instanceof UserDeletedError) {
      throw new ApiError(401, 'account_deleted', 'this account has been deleted; it can no longer sign in');
    }
    throw err;
  }
  return principal;
}

export function requireAuth(deps: { authenticator: Authenticator; pool: Pool }): RequestHandler {
  return (req, res, next) => {
    authenticateRequest(req, deps).then(
      (principal) => {
        res.locals.principal = principal;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

export function principalOf(locals: Record<string, unknown>): Principal {
  const principal = locals.principal as Principal | undefined;
  if (!principal) throw new ApiError(401, 'unauthorized', 'not authenticated');
  return principal;
}
