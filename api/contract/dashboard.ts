/**
 * The REST contract of what the web dashboard needs beyond the rest of the API: how to sign in
 * (GET /api/auth/config, public) and a session's history one page at a time
 * (GET /api/workspaces/:id/sessions/:sid/messages). Pure zod, like the rest of api/contract/.
 */
import { ChatMessage } from '@factory-factory/core/protocol';
import { z } from 'zod';

/** GET /api/auth/config: what the dashboard's sign-in page does before anyone is signed in. */
export const AuthConfigAnswerSchema = z.object({
  /** `local`: POST /api/auth/local/sign-in; `clerk`: Clerk's hosted sign-in at `signInUrl`. */
  mode: z.enum(['local', 'clerk']),
  /** Clerk's hosted sign-in page (CLERK_SIGN_IN_URL); null in local mode or when not configured. */
  signInUrl: z.string().nullable(),
  /** The Clerk instance's publishable key (public by design); null in local mode or when not configured. */
  publishableKey: z.string().nullable(),
  /** Never told to an anonymous caller: operators get it from GET /api/me. */
  temporalUiUrl: z.null(),
});
export type AuthConfigAnswer = z.output<typeof AuthConfigAnswerSchema>;

/** The largest page of messages one request may ask for. */
export const MAX_SESSION_MESSAGES_PAGE = 200;

export const SessionMessagesQuerySchema = z
  .object({
    /**
     * Index (in the whole conversation, from 0) of the first message NOT wanted: the page ends just before
     * it. Absent: the newest page. Pass the previous page's `start` to go further back.
     */
    before: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_SESSION_MESSAGES_PAGE).default(50),
  })
  .strict();
export type SessionMessagesQuery = z.output<typeof SessionMessagesQuerySchema>;

export const SessionMessagesPageSchema = z.object({
  /**
   * The seq of the session snapshot this page was cut from: open the relay with `?after=<seq>` and it
   * continues exactly after it (nothing fetched twice, nothing missed).
   */
  seq: z.number().int().nonnegative(),
  /** Messages in the whole conversation at `seq`. */
  total: z.number().int().nonnegative(),
  /** Index of `messages[0]` in the conversation; 0 means this is the oldest page. */
  start: z.number().int().nonnegative(),
  /** Oldest first. */
  messages: z.array(ChatMessage),
});
export type SessionMessagesPage = z.output<typeof SessionMessagesPageSchema>;
