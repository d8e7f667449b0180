/**
 * GET /api/auth/config (public): how the dashboard signs people in, read before anyone is signed in. Only
 * what is public by design: the mode, Clerk's hosted sign-in URL and the instance's publishable key.
 */
import { type AuthConfigAnswer, AuthConfigAnswerSchema } from '../contract/dashboard.js';
import { type ApiRoute, defineRoute } from './table.js';

export function authConfigRouteTable(config: AuthConfigAnswer): ApiRoute[] {
  const body = AuthConfigAnswerSchema.parse(config);
  return [
    defineRoute({
      method: 'get',
      path: '/auth/config',
      tag: 'account',
      summary: 'How to sign in: local or Clerk, with Clerk’s hosted sign-in URL and publishable key',
      auth: false,
      responses: { 200: { description: 'the sign-in settings', schema: AuthConfigAnswerSchema } },
      handle: async () => ({ status: 200, body }),
    }),
  ];
}

/** The settings of a deployment from its auth config (config.auth); Clerk's values only in clerk mode. */
export function authConfigOf(auth: {
  mode: 'local' | 'clerk';
  clerkSignInUrl?: string | undefined;
  clerkPublishableKey?: string | undefined;
}): AuthConfigAnswer {
  const clerk = auth.mode === 'clerk';
  return {
    mode: auth.mode,
    signInUrl: clerk ? (auth.clerkSignInUrl ?? null) : null,
    publishableKey: clerk ? (auth.clerkPublishableKey ?? null) : null,
    temporalUiUrl: null,
  };
}
