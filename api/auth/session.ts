/**
 * Session JWTs, verified on every request with @clerk/backend's verifyToken, networkless: the PEM public
 * key is given (`jwtKey`), so no call to Clerk is ever made. Authorized parties (the `azp` claim: which
 * frontend origin the token was issued to) and the clock skew come from config.auth.
 *
 * Local sign-in (AUTH_MODE=local) issues tokens of the same shape signed with a local key pair
 * (api/auth/local-sessions.ts); they are verified by this very code with that key's PEM, so the path a
 * Clerk token takes is the one every development and test sign-in takes.
 */
import { verifyToken } from '@clerk/backend';
import { TokenVerificationErrorReason } from '@clerk/backend/errors';
import { recordAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { ensureUser, markFirstSession, UserDeletedError } from '../../db/users.js';
import type { Logger } from '../../platform/logger.js';
import { ApiError } from '../errors.js';
import type { Authenticator } from './principal.js';

/** What our workflow ids accept as a user id (workflows/ids.ts); Clerk's `user_…` ids are of it. */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.@-]{1,128}$/;

/** Three base64url parts, the first a JSON header (`{"` → `eyJ`). */
export const looksLikeJwt = (credential: string): boolean =>
  /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);

export type SessionVerification = {
  /** The PEM public key: Clerk's instance key (CLERK_JWT_KEY), or the local key pair's. */
  jwtKey: string;
  authorizedParties: string[];
  clockSkewMs: number;
};

/**
 * Clerk's TokenVerificationError's reason. Read by shape, not instanceof: the package ships both ESM and
 * CJS builds, and a process that loads both has two classes of the same name.
 */
function reasonOf(err: unknown): string | null {
  if (typeof err !== 'object' || err === null || !('reason' in err)) return null;
  return typeof err.reason === 'string' ? err.reason : null;
}

/** A verification failure as a 401 a client can act on (refresh, sign in again, fix the clock). */
function refusal(reason: string | null): ApiError {
  if (reason === null) {
    return new ApiError(401, 'invalid_token', 'the session token could not be verified; sign in again');
  }
  switch (reason) {
    case TokenVerificationErrorReason.TokenExpired:
      return new ApiError(401, 'token_expired', 'the session token has expired: refresh it or sign in again');
    case TokenVerificationErrorReason.TokenNotActiveYet:
      return new ApiError(
        401,
        'token_not_yet_valid',
        'the session token is not valid yet (nbf is in the future): check the clock of the machine that signed in',
      );
    case TokenVerificationErrorReason.TokenIatInTheFuture:
      return new ApiError(
        401,
        'token_not_yet_valid',
        'the session token was issued in the future (iat): check the clock of the machine that signed in',
      );
    case TokenVerificationErrorReason.TokenInvalidSignature:
    case TokenVerificationErrorReason.TokenVerificationFailed:
      return new ApiError(
        401,
        'invalid_token',
        'the session token was not signed by this deployment’s identity provider; sign in again',
      );
    case TokenVerificationErrorReason.TokenInvalidAuthorizedParties:
      return new ApiError(
        401,
        'invalid_token',
        'the session token was issued to an application (azp) this api does not accept; sign in through the dashboard',
      );
    default:
      return new ApiError(401, 'invalid_token', 'the session token is not valid; sign in again');
  }
}

export function createSessionAuthenticator(
  verification: SessionVerification,
  deps: { pool: Pool; log: Logger },
): Authenticator {
  // Users whose first sign-in is known to be recorded, so only a user's first token in this process writes.
  const signedIn = new Set<string>();

  async function noteSignIn(userId: string, sessionId: string | undefined): Promise<void> {
    if (signedIn.has(userId)) return;
    await ensureUser(deps.pool, { id: userId });
    if (await markFirstSession(deps.pool, userId)) {
      await recordAudit(deps.pool, {
        userId,
        actor: `user:${userId}`,
        action: 'session.first_sign_in',
        ...(sessionId ? { targetType: 'session', targetId: sessionId } : {}),
      });
    }
    if (signedIn.size > 100_000) signedIn.clear();
    signedIn.add(userId);
  }

  return {
    async authenticate(credential) {
      if (!looksLikeJwt(credential)) return null;
      let claims: Awaited<ReturnType<typeof verifyToken>>;
      try {
        // Throws TokenVerificationError (with a reason) for every token it does not accept.
        claims = await verifyToken(credential, {
          jwtKey: verification.jwtKey,
          authorizedParties: verification.authorizedParties,
          clockSkewInMs: verification.clockSkewMs,
        });
      } catch (err) {
        const reason = reasonOf(err);
        deps.log.debug({ reason }, 'session token refused');
        throw refusal(reason);
      }
      const { sub, sid } = claims;
      if (!USER_ID_PATTERN.test(sub)) {
        throw new ApiError(401, 'invalid_token', 'the session token names a user id this api cannot serve');
      }
      try {
        await noteSignIn(sub, typeof sid === 'string' ? sid : undefined);
      } catch (err) {
        if (err instanceof UserDeletedError) throw accountDeleted();
        throw err;
      }
      return { userId: sub, via: 'session' };
    },
  };
}

export const accountDeleted = () =>
  new ApiError(401, 'account_deleted', 'this account has been deleted; it can no longer sign in');
