/**
 * Local sign-in (AUTH_MODE=local: development and tests; config refuses it in production). GET /auth/local
 * is a small self-contained page; POST /api/auth/local/sign-in {userId, email?, name?} answers a session
 * JWT signed with the api's local key pair, verified afterwards by the same code as Clerk's tokens.
 * Neither exists in clerk mode: the routes are not mounted at all.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Pool } from '../../db/pool.js';
import { ensureUser, UserDeletedError } from '../../db/users.js';
import type { LocalSessionIssuer } from '../auth/local-sessions.js';
import { LocalSignInAnswerSchema, LocalSignInRequestSchema } from '../contract/accounts.js';
import { ApiError } from '../errors.js';
import { type ApiRoute, defineRoute, errors } from './table.js';

export const LOCAL_SIGN_IN_PAGE_PATH = '/auth/local';

export function localAuthRouteTable(deps: { pool: Pool; localSessions: LocalSessionIssuer }): ApiRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/auth/local/sign-in',
      tag: 'account',
      summary: 'Local sign-in (AUTH_MODE=local only): a session token for any user id, for development',
      description:
        'The token is a session JWT like Clerk’s (sub, sid, azp, iat, nbf, exp; an hour), verified by the ' +
        'same code; send it as `Authorization: Bearer <token>`.',
      auth: false,
      body: LocalSignInRequestSchema,
      responses: {
        200: { description: 'a session token', schema: LocalSignInAnswerSchema },
        ...errors({ 400: 'invalid body', 401: 'the account was deleted' }),
      },
      handle: async (input) => {
        const { userId, email, name } = input.body;
        try {
          await ensureUser(deps.pool, { id: userId, email: email ?? null, name: name ?? null });
        } catch (err) {
          if (err instanceof UserDeletedError) {
            throw new ApiError(
              401,
              'account_deleted',
              'this account has been deleted; it can no longer sign in',
            );
          }
          throw err;
        }
        const session = deps.localSessions.issue(userId);
        return { status: 200, body: { token: session.token, expiresAt: session.expiresAt, userId } };
      },
    }),
  ];
}

// The page's one script; the CSP below allows exactly it (by hash) and nothing else.
const SCRIPT = `
const form = document.getElementById('sign-in');
const out = document.getElementById('out');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== ''));
  out.textContent = 'signing in…';
  const res = await fetch('/api/auth/local/sign-in', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(data),
  });
  const body = await res.json();
  if (!res.ok) { out.textContent = body.error ? body.error.message : 'sign-in failed'; return; }
  sessionStorage.setItem('ffc.sessionToken', body.token);
  out.textContent = 'Signed in as ' + body.userId + ' until ' + body.expiresAt +
    '. Send this as "Authorization: Bearer <token>":\\n\\n' + body.token;
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Factory Factory Cloud: local sign-in</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
label { display: block; margin: .75rem 0 .25rem; }
input { width: 100%; padding: .4rem; box-sizing: border-box; }
button { margin-top: 1rem; padding: .5rem 1rem; }
pre { white-space: pre-wrap; word-break: break-all; background: #f4f4f4; padding: .75rem; }
</style>
</head>
<body>
<h1>Local sign-in</h1>
<p>Development mode (AUTH_MODE=local): any user id signs in. Production deployments sign in with Clerk.</p>
<form id="sign-in">
<label for="userId">User id</label>
<input id="userId" name="userId" required pattern="[A-Za-z0-9_.@-]{1,128}" value="dev-user">
<label for="email">Email (optional)</label>
<input id="email" name="email" type="email">
<label for="name">Name (optional)</label>
<input id="name" name="name">
<button type="submit">Sign in</button>
</form>
<pre id="out"></pre>
<script>${SCRIPT}</script>
</body>
</html>
`;

const SCRIPT_HASH = createHash('sha256').update(SCRIPT).digest('base64');

/** GET /auth/local: the sign-in page. */
export const localSignInPage: RequestHandler = (_req, res) => {
  res
    .status(200)
    .set({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'`,
      'x-frame-options': 'DENY',
    })
    .send(PAGE);
};
