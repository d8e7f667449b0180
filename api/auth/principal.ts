/**
 * Who is calling. Every route and socket works with a Principal only, never with the credential, so the
 * way callers prove who they are (Clerk or local session JWTs, API keys, the development key) can change
 * without touching routes.
 */
export type Principal = {
  userId: string;
  via: 'dev-key' | 'api-key' | 'session';
  /** The API key's id when via is 'api-key' (never the key itself). */
  keyId?: string;
};

export interface Authenticator {
  /**
   * The principal a bearer credential stands for, or null when it is not valid. May instead throw
   * ApiError(401, …) to tell the caller why (an expired session token, a revoked key).
   */
  authenticate(credential: string): Promise<Principal | null>;
}

/** Tries each authenticator in turn (e.g. session JWT, then API key). */
export function firstOf(...authenticators: Authenticator[]): Authenticator {
  return {
    async authenticate(credential) {
      for (const authenticator of authenticators) {
        const principal = await authenticator.authenticate(credential);
        if (principal) return principal;
      }
      return null;
    },
  };
}
