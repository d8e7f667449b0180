/**
 * API keys: POST /api/keys (the key is in this answer only), GET /api/keys, DELETE /api/keys/:id. Another
 * user's key answers 404, like one that does not exist. Creating and revoking are audited.
 */
import { type ApiKeyRow, insertApiKey, listApiKeys, revokeApiKey } from '../../db/api-keys.js';
import { recordAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { generateApiKey } from '../auth/api-keys.js';
import {
  ApiKeyAnswerSchema,
  ApiKeyIdParamsSchema,
  ApiKeyListSchema,
  CreateApiKeyRequestSchema,
  CreatedApiKeySchema,
} from '../contract/accounts.js';
import { ApiError } from '../errors.js';
import { type ApiRoute, actorOf, callerOf, defineRoute, errors, requestIdOf } from './table.js';

const keyView = (key: ApiKeyRow) => ({
  id: key.id,
  name: key.name,
  prefix: key.prefix,
  createdAt: key.createdAt.toISOString(),
  lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
  revokedAt: key.revokedAt?.toISOString() ?? null,
});

export function keyRouteTable(deps: {
  pool: Pool;
  /** Per-user rate limit on key creation (throws ApiError 429); none when not given. */
  limitKeyCreation?: (userId: string) => Promise<void>;
}): ApiRoute[] {
  const { pool } = deps;
  return [
    defineRoute({
      method: 'post',
      path: '/keys',
      tag: 'keys',
      summary: 'Create an API key; the key is in this answer only (`secret`), never again',
      description:
        'Keys look like `ffc_live_<16 id chars>_<40 secret chars>`; only a hash is kept. Send the key as ' +
        '`Authorization: Bearer <key>`.',
      auth: true,
      body: CreateApiKeyRequestSchema,
      responses: {
        201: { description: 'the key, with its secret shown this once', schema: CreatedApiKeySchema },
        ...errors({ 400: 'invalid body', 429: 'too many keys created recently' }),
      },
      handle: async (input) => {
        const caller = callerOf(input);
        await deps.limitKeyCreation?.(caller.userId);
        const made = generateApiKey();
        const key = await insertApiKey(pool, {
          id: made.id,
          userId: caller.userId,
          name: input.body.name,
          prefix: made.prefix,
          secretHash: made.secretHash,
        });
        const requestId = requestIdOf(input);
        await recordAudit(pool, {
          userId: caller.userId,
          actor: actorOf(caller),
          action: 'key.created',
          targetType: 'api_key',
          targetId: key.id,
          detail: { name: key.name, prefix: key.prefix },
          ...(requestId ? { requestId } : {}),
        });
        return { status: 201, body: { key: keyView(key), secret: made.key } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/keys',
      tag: 'keys',
      summary: 'My API keys, newest first, with when each was last used (revoked ones included)',
      auth: true,
      responses: { 200: { description: 'the keys (never their secrets)', schema: ApiKeyListSchema } },
      handle: async (input) => ({
        status: 200,
        body: { keys: (await listApiKeys(pool, callerOf(input).userId)).map(keyView) },
      }),
    }),
    defineRoute({
      method: 'delete',
      path: '/keys/:id',
      tag: 'keys',
      summary: 'Revoke one of my API keys: refused from the very next request on',
      auth: true,
      params: ApiKeyIdParamsSchema,
      responses: {
        200: { description: 'the key, revoked', schema: ApiKeyAnswerSchema },
        ...errors({ 400: 'invalid id', 404: 'no such key of yours' }),
      },
      handle: async (input) => {
        const caller = callerOf(input);
        const revoked = await revokeApiKey(pool, caller.userId, input.params.id);
        if (!revoked) throw new ApiError(404, 'key_not_found', 'you have no API key with this id');
        if (revoked.revokedNow) {
          const requestId = requestIdOf(input);
          await recordAudit(pool, {
            userId: caller.userId,
            actor: actorOf(caller),
            action: 'key.revoked',
            targetType: 'api_key',
            targetId: revoked.key.id,
            detail: { name: revoked.key.name, prefix: revoked.key.prefix },
            ...(requestId ? { requestId } : {}),
          });
        }
        return { status: 200, body: { key: keyView(revoked.key) } };
      },
    }),
  ];
}
