/**
 * POST /api/webhooks/clerk: Clerk tells the api about users (user.created, user.updated, user.deleted).
 * Clerk signs deliveries with svix: the signature over the raw body, the svix-id and the svix-timestamp is
 * checked with the endpoint's secret (CLERK_WEBHOOK_SECRET) by svix itself, which also refuses timestamps
 * more than five minutes away. Anything that does not verify is answered 400 and changes nothing.
 *
 * Each delivery (svix-id) is applied once: a retry or a replay is acknowledged as a duplicate. Profile
 * events carry Clerk's updated_at, so an older one arriving late does not overwrite a newer one; no event
 * brings a deleted account back.
 */
import { Webhook } from 'svix';
import type { z } from 'zod';
import type { Pool } from '../../db/pool.js';
import { applyProfile, claimClerkEvent, isClerkEventProcessed } from '../../db/users.js';
import type { Logger } from '../../platform/logger.js';
import {
  ClerkDeletedUserSchema,
  ClerkEventEnvelopeSchema,
  type ClerkUser,
  ClerkUserSchema,
  ClerkWebhookAnswerSchema,
  ClerkWebhookBodySchema,
} from '../contract/accounts.js';
import { ErrorBodySchema } from '../contract/workspaces.js';
import { ApiError } from '../errors.js';
import type { AccountService } from '../services/account-service.js';
import type { WebhookRoute } from './raw-body.js';

export const CLERK_WEBHOOK_PATH = '/webhooks/clerk';

const forged = () =>
  new ApiError(
    400,
    'invalid_signature',
    'the webhook signature does not verify (wrong secret, altered body, or a timestamp too old or new)',
  );

function headerOf(value: string | string[] | undefined): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= 4096 ? value : null;
}

function emailOf(user: ClerkUser): string | null {
  const primary = user.email_addresses.find((e) => e.id === user.primary_email_address_id);
  return (primary ?? user.email_addresses[0])?.email_address ?? null;
}

function nameOf(user: ClerkUser): string | null {
  const full = [user.first_name, user.last_name].filter((part) => part?.trim()).join(' ');
  return full || user.username || null;
}

type Answer = { status: number; body: z.output<typeof ClerkWebhookAnswerSchema> };

const answer = (outcome: Answer['body']['outcome'], duplicate = false): Answer => ({
  status: 200,
  body: { received: true, duplicate, outcome },
});

export function clerkWebhookRoute(deps: {
  secret: string;
  pool: Pool;
  accounts: AccountService;
  log: Logger;
}): WebhookRoute {
  const webhook = new Webhook(deps.secret);

  async function applyUserEvent(eventId: string, type: string, user: ClerkUser): Promise<Answer> {
    const client = await deps.pool.connect();
    try {
      await client.query('BEGIN');
      if (!(await claimClerkEvent(client, eventId, type))) {
        await client.query('ROLLBACK');
        return answer('duplicate', true);
      }
      const outcome = await applyProfile(client, {
        id: user.id,
        email: emailOf(user),
        name: nameOf(user),
        updatedAt: new Date(user.updated_at),
      });
      await client.query('COMMIT');
      return answer(outcome === 'deleted' ? 'account_deleted' : outcome);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  return {
    path: CLERK_WEBHOOK_PATH,
    tag: 'webhooks',
    summary: 'Clerk user events (user.created, user.updated, user.deleted), signed with svix',
    description:
      'Called by Clerk, not by clients: verified with the endpoint secret over the raw body ' +
      '(svix-id, svix-timestamp, svix-signature headers). user.deleted deletes the account: its VM, ' +
      'workspaces and keys go, an audit record stays. Each svix-id is applied once.',
    bodyDescription: ClerkWebhookBodySchema,
    responses: {
      200: { description: 'received (or a duplicate, acknowledged)', schema: ClerkWebhookAnswerSchema },
      400: {
        description: 'the signature does not verify, or the event is malformed',
        schema: ErrorBodySchema,
      },
    },
    handle: async ({ rawBody, headers, requestId }) => {
      const svixId = headerOf(headers['svix-id']);
      const svixTimestamp = headerOf(headers['svix-timestamp']);
      const svixSignature = headerOf(headers['svix-signature']);
      if (!svixId || !svixTimestamp || !svixSignature) throw forged();
      let payload: unknown;
      try {
        payload = webhook.verify(rawBody, {
          'svix-id': svixId,
          'svix-timestamp': svixTimestamp,
          'svix-signature': svixSignature,
        });
      } catch {
        deps.log.warn({ svixId, requestId }, 'clerk webhook refused: signature does not verify');
        throw forged();
      }
      const envelope = ClerkEventEnvelopeSchema.safeParse(payload);
      if (!envelope.success) throw new ApiError(400, 'bad_request', 'the event has no type or data');
      const { type, data } = envelope.data;
      if (await isClerkEventProcessed(deps.pool, svixId)) return answer('duplicate', true);

      switch (type) {
        case 'user.created':
        case 'user.updated': {
          const user = ClerkUserSchema.safeParse(data);
          if (!user.success) throw new ApiError(400, 'bad_request', `${type}: the user in data is malformed`);
          return applyUserEvent(svixId, type, user.data);
        }
        case 'user.deleted': {
          const user = ClerkDeletedUserSchema.safeParse(data);
          if (!user.success)
            throw new ApiError(400, 'bad_request', 'user.deleted: data has no valid user id');
          // Deletion is idempotent, so a concurrent duplicate redoing it is harmless; it is marked after.
          await deps.accounts.deleteAccount(user.data.id, { actor: 'clerk', requestId });
          await claimClerkEvent(deps.pool, svixId, type);
          return answer('deleted');
        }
        default:
          await claimClerkEvent(deps.pool, svixId, type);
          return answer('ignored');
      }
    },
  };
}
