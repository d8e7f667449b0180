/**
 * The production authenticator chain, one factory for api/main.ts and the tests: a bearer credential is
 * an API key (`ffc_live_…`), a session JWT (Clerk's, or in AUTH_MODE=local one issued by this api), or, in
 * development only, the development key. Each credential goes to the one authenticator its shape names,
 * so a bad session token is refused with the reason (expired, wrong key, …), not tried as a key.
 */
import type { Pool } from '../../db/pool.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { createApiKeyAuthenticator, looksLikeApiKey } from './api-keys.js';
import { createDevKeyAuthenticator } from './dev-key.js';
import {
  createLocalSessionIssuer,
  type LocalSessionIssuer,
  loadOrCreateLocalKeyPair,
} from './local-sessions.js';
import { type Authenticator, firstOf } from './principal.js';
import { createSessionAuthenticator, looksLikeJwt } from './session.js';

export type AuthSettings = Pick<
  Config['auth'],
  'mode' | 'clerkJwtKey' | 'authorizedParties' | 'clockSkewMs' | 'localKeyDir'
>;

export type AuthSetup = {
  authenticator: Authenticator;
  /** Present in AUTH_MODE=local: what the sign-in page and POST /api/auth/local/sign-in issue tokens with. */
  localSessions: LocalSessionIssuer | null;
};

export function createAuthenticator(options: {
  auth: AuthSettings;
  pool: Pool;
  log: Logger;
  /** Development keys (DEV_API_KEY → DEV_USER_ID); config refuses them in production. */
  devKeys?: { key: string; userId: string }[];
  /** How often a key's last_used_at is written (default 60 s). */
  lastUsedThrottleSeconds?: number;
}): AuthSetup {
  const { auth, pool, log } = options;
  const firstParty = auth.authorizedParties[0];
  if (!firstParty) throw new Error('config.auth.authorizedParties must name at least one origin');
  let localSessions: LocalSessionIssuer | null = null;
  let jwtKey: string;
  if (auth.mode === 'clerk') {
    if (!auth.clerkJwtKey)
      throw new Error("AUTH_MODE=clerk needs CLERK_JWT_KEY (the instance's PEM public key)");
    jwtKey = auth.clerkJwtKey;
  } else {
    const pair = loadOrCreateLocalKeyPair(auth.localKeyDir);
    localSessions = createLocalSessionIssuer(pair, { authorizedParty: firstParty, issuer: 'ffc-local' });
    jwtKey = pair.publicKeyPem;
  }
  const sessions = createSessionAuthenticator(
    { jwtKey, authorizedParties: auth.authorizedParties, clockSkewMs: auth.clockSkewMs },
    { pool, log },
  );
  const apiKeys = createApiKeyAuthenticator({
    pool,
    log,
    ...(options.lastUsedThrottleSeconds !== undefined
      ? { lastUsedThrottleSeconds: options.lastUsedThrottleSeconds }
      : {}),
  });
  const devKeys = firstOf(...(options.devKeys ?? []).map((dev) => createDevKeyAuthenticator(dev)));
  const authenticator: Authenticator = {
    async authenticate(credential) {
      if (looksLikeApiKey(credential)) return apiKeys.authenticate(credential);
      if (looksLikeJwt(credential)) return sessions.authenticate(credential);
      return devKeys.authenticate(credential);
    },
  };
  return { authenticator, localSessions };
}
