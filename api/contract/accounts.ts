/**
 * The REST contract of accounts: who am I, API keys, the audit log, local sign-in, and the Clerk webhook's
 * payloads. Pure zod, no express: what the routes validate with and /api/openapi.json describes.
 */
import { z } from 'zod';

/** As workflows/ids.ts accepts them; Clerk's `user_…` ids are of this form. */
export const UserIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a user id is 1-128 of [A-Za-z0-9_.@-]');

export const MeAnswerSchema = z.object({
  user: z.object({
    id: z.string(),
    email: z.string().nullable(),
    name: z.string().nullable(),
    plan: z.enum(['FREE', 'PRO', 'TEAM']),
    createdAt: z.string(),
  }),
  /** How this request authenticated. */
  auth: z.object({
    via: z.enum(['dev-key', 'api-key', 'session']),
    /** The API key's id when via is api-key. */
    keyId: z.string().nullable(),
  }),
  /** An operator (OPERATOR_USER_IDS) sees links to the Temporal UI in the dashboard. */
  operator: z.boolean(),
  /**
   * Operators only (null for everyone else): the Temporal UI, and the namespace the actors run in; a
   * workspace's actor is `${temporalUiUrl}/namespaces/${temporalNamespace}/workflows/workspace:<id>`, a VM's
   * `…/workflows/vm:<userId>`.
   */
  temporalUiUrl: z.string().nullable(),
  temporalNamespace: z.string().nullable(),
});

export const DeleteMeAnswerSchema = z.object({
  deleted: z.literal(true),
  /** True when the account had been deleted before: nothing was done. */
  alreadyDeleted: z.boolean(),
});

/** POST /api/keys */
export const CreateApiKeyRequestSchema = z
  .object({
    /** What the key is for, e.g. "laptop ffc": shown in the list. */
    name: z.string().trim().min(1).max(100),
  })
  .strict();

export const ApiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  /** `ffc_live_<id>`: recognizes the key (and a leaked one in a scanner's report); cannot sign in. */
  prefix: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

export const CreatedApiKeySchema = z.object({
  key: ApiKeySchema,
  /** The key itself (`ffc_live_<id>_<secret>`): shown this once, never again. */
  secret: z.string(),
});

export const ApiKeyAnswerSchema = z.object({ key: ApiKeySchema });
export const ApiKeyListSchema = z.object({ keys: z.array(ApiKeySchema) });

export const ApiKeyIdParamsSchema = z.object({
  id: z.string().regex(/^[0-9A-Za-z]{16}$/, 'a key id is 16 characters of [0-9A-Za-z]'),
});

/** GET /api/audit */
export const ListAuditQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(50),
    /** Opaque; from the previous page's `nextCursor`. */
    cursor: z.string().max(500).optional(),
  })
  .strict();

export const AuditRecordSchema = z.object({
  id: z.string(),
  /** Who did it: `user:<id>`, `api-key:<id>`, `clerk`, `stripe`, `system`. */
  actor: z.string(),
  /** key.created, key.revoked, key.first_use, session.first_sign_in, vm.terminated, user.deleted, plan.changed */
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
  requestId: z.string().nullable(),
  createdAt: z.string(),
});

export const AuditPageSchema = z.object({
  records: z.array(AuditRecordSchema),
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: z.string().nullable(),
});

/** POST /api/auth/local/sign-in (AUTH_MODE=local only) */
export const LocalSignInRequestSchema = z
  .object({
    userId: UserIdSchema,
    email: z.email().max(320).optional(),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict();

export const LocalSignInAnswerSchema = z.object({
  /** A session JWT: send it as `Authorization: Bearer <token>`. */
  token: z.string(),
  expiresAt: z.string(),
  userId: z.string(),
});

// Clerk's webhook payloads (https://clerk.com/docs/webhooks): only what the api reads; the rest is ignored.

export const ClerkEventEnvelopeSchema = z.looseObject({
  type: z.string().min(1).max(200),
  data: z.unknown(),
});

const ClerkEmailSchema = z.looseObject({ id: z.string(), email_address: z.string() });

export const ClerkUserSchema = z.looseObject({
  id: UserIdSchema,
  email_addresses: z.array(ClerkEmailSchema).default([]),
  primary_email_address_id: z.string().nullable().optional(),
  first_name: z.string().nullable().optional(),
  last_name: z.string().nullable().optional(),
  username: z.string().nullable().optional(),
  /** Epoch milliseconds; orders deliveries that arrive out of order. */
  updated_at: z.number().int().nonnegative(),
});
export type ClerkUser = z.output<typeof ClerkUserSchema>;

export const ClerkDeletedUserSchema = z.looseObject({ id: UserIdSchema, deleted: z.boolean().optional() });

/** What the description shows the webhook's body to be (the route verifies and parses it itself). */
export const ClerkWebhookBodySchema = z.object({
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  object: z.string().optional(),
  timestamp: z.number().optional(),
});

export const ClerkWebhookAnswerSchema = z.object({
  received: z.literal(true),
  /** This delivery's svix-id was processed before: acknowledged, not applied again. */
  duplicate: z.boolean(),
  /** What it did: applied, stale (an older profile than the stored one), deleted, ignored (other types). */
  outcome: z.enum(['applied', 'stale', 'account_deleted', 'deleted', 'ignored', 'duplicate']),
});
