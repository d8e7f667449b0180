import { ApiClient } from '../lib/api-client.js';
import { appDeps } from '../lib/deps.js';
import { useAuth } from './auth.js';

/** The REST client with the signed-in user's token; a 401 signs the user out (the session ended). */
export function api(): ApiClient {
  const deps = appDeps();
  const auth = useAuth();
  return new ApiClient({
    baseUrl: deps.baseUrl,
    fetch: deps.fetch,
    token: () => auth.token,
    onUnauthorized: () => auth.expire(),
  });
}
