/**
 * Who is calling. Every route and socket works with a Principal only, never with the credential, so the
 * way callers prove who they are (a development key today; Clerk sessions and API keys next) can change
 * without touching routes.
 */
export type Principal = { userId: string; via: 'dev-key' | 'api-key' | 'session' };

export interface Authenticator {
  /** The principal a bearer credential stands for, or null when it is not valid. */
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
