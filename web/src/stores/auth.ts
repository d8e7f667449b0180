/**
 * Who is signed in. Local mode (development): a form posts to /api/auth/local/sign-in and the session token
 * is kept in sessionStorage (the same key the api's /auth/local page uses). Clerk mode (production): the
 * user signs in on Clerk's hosted page, which sets Clerk's `__session` cookie (a short-lived session JWT
 * that Clerk's frontend keeps fresh, the value `getToken()` returns); the app sends that token as the bearer
 * and goes back to the hosted page when it is missing or rejected.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { ApiClient, ApiError } from '../lib/api-client.js';
import { appDeps } from '../lib/deps.js';
import { type AuthConfig, isAuthConfig, isLocalSignInAnswer, isMe, type Me } from '../lib/types.js';

export const TOKEN_KEY = 'ffc.sessionToken';

/** A local user id (1-128 of [A-Za-z0-9_.@-]) from an email address. */
export function userIdFromEmail(email: string): string {
  return (
    email
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9_.@-]/g, '-')
      .slice(0, 128) || 'user'
  );
}

const LOCAL_CONFIG: AuthConfig = { mode: 'local', signInUrl: null, publishableKey: null };

export const useAuth = defineStore('auth', () => {
  const deps = appDeps();
  const token = ref<string | null>(deps.storage.getItem(TOKEN_KEY));
  const config = ref<AuthConfig | null>(null);
  const me = ref<Me | null>(null);
  /** Why the user was sent back to sign in (an expired session), shown on the sign-in page. */
  const notice = ref<string | null>(null);

  const signedIn = computed(() => token.value !== null);

  const anonymous = () => new ApiClient({ baseUrl: deps.baseUrl, fetch: deps.fetch, token: () => null });

  function setToken(value: string | null): void {
    token.value = value;
    if (value === null) deps.storage.removeItem(TOKEN_KEY);
    else deps.storage.setItem(TOKEN_KEY, value);
  }

  async function loadConfig(): Promise<AuthConfig> {
    if (config.value) return config.value;
    try {
      config.value = await anonymous().get('/api/auth/config', isAuthConfig);
    } catch (err) {
      // An api without the route (older deployments) is a local-mode development api.
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      config.value = LOCAL_CONFIG;
    }
    if (config.value.mode === 'clerk' && token.value === null) {
      const clerkToken = deps.clerkSessionToken();
      if (clerkToken) setToken(clerkToken);
    }
    return config.value;
  }

  async function signInLocal(input: { email: string; name?: string }): Promise<void> {
    const email = input.email.trim();
    const body: Record<string, string> = { userId: userIdFromEmail(email), email };
    if (input.name?.trim()) body.name = input.name.trim();
    const answer = await anonymous().post('/api/auth/local/sign-in', body, isLocalSignInAnswer);
    notice.value = null;
    setToken(answer.token);
  }

  /** Clerk mode: off to the hosted sign-in, which sends the browser back to `returnTo` afterwards. */
  function startHostedSignIn(returnTo: string): void {
    const url = config.value?.signInUrl;
    if (!url) throw new Error('This deployment has no sign-in page configured.');
    const back = `${deps.pageOrigin}${returnTo}`;
    deps.navigateAway(`${url}${url.includes('?') ? '&' : '?'}redirect_url=${encodeURIComponent(back)}`);
  }

  async function loadMe(): Promise<Me> {
    const client = new ApiClient({
      baseUrl: deps.baseUrl,
      fetch: deps.fetch,
      token: () => token.value,
      onUnauthorized: () => expire(),
    });
    me.value = await client.get('/api/me', isMe);
    return me.value;
  }

  function signOut(): void {
    setToken(null);
    me.value = null;
  }

  /** The api refused the token: back to sign in, saying why. */
  function expire(): void {
    if (token.value === null) return;
    signOut();
    notice.value = 'Your session ended. Sign in again to continue.';
  }

  return {
    token,
    config,
    me,
    notice,
    signedIn,
    loadConfig,
    signInLocal,
    startHostedSignIn,
    loadMe,
    signOut,
    expire,
  };
});
