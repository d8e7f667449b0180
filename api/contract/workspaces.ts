/**
 * The REST contract of workspaces and sessions: the zod schemas the routes validate with, the OpenAPI
 * description is generated from (api/openapi.ts), and `ffc` parses answers with. Pure zod, no express:
 * anything that speaks to the api may import this folder.
 */
import {
  AgentSessionInfo,
  PermissionMode,
  PortableWorkspaceStateSchema,
  WorkspaceIdSchema,
} from '@factory-factory/core/protocol';
import { z } from 'zod';
import { RatchetViewSchema } from '../../workflows/ratchet/messages.js';
import {
  CloudWorkspaceStatusSchema,
  PullResultSchema,
  WorkspaceViewSchema,
} from '../../workflows/workspace/messages.js';

export { PullResultSchema, RatchetViewSchema, WorkspaceViewSchema };

/** Which limit was reached (quota errors, 402): current use, the most allowed, where to upgrade. */
export const LimitDetailSchema = z.object({
  name: z.string(),
  used: z.number(),
  max: z.number(),
  upgradeUrl: z.string(),
});

/** Every error: a code to branch on and a message a user can act on; a quota error names its limit. */
export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), limit: LimitDetailSchema.optional() }),
});

/** POST /api/workspaces: the desktop's portable state, or a GitHub issue to start from. */
export const SendWorkspaceRequestSchema = z.union([
  z.object({ state: PortableWorkspaceStateSchema }).strict(),
  z
    .object({
      issueUrl: z.string().min(1).max(2048),
      repoUrl: z.string().min(1).max(2048).optional(),
      baseBranch: z.string().min(1).max(255).optional(),
      name: z.string().min(1).max(200).optional(),
      ratchetEnabled: z.boolean().optional(),
      /** Client-chosen id: sending again with the same id is the same workspace (idempotent). */
      workspaceId: WorkspaceIdSchema.optional(),
    })
    .strict(),
]);
export type SendWorkspaceRequest = z.output<typeof SendWorkspaceRequestSchema>;

export const WorkspaceAnswerSchema = z.object({ workspace: WorkspaceViewSchema });

export const ListWorkspacesQuerySchema = z
  .object({
    location: z.enum(['DESKTOP', 'CLOUD']).optional(),
    status: CloudWorkspaceStatusSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(50),
    /** Opaque; from the previous page's `nextCursor`. */
    cursor: z.string().max(500).optional(),
  })
  .strict();

export const WorkspaceListSchema = z.object({
  workspaces: z.array(WorkspaceViewSchema),
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: z.string().nullable(),
});

export const WorkspaceIdParamsSchema = z.object({ id: WorkspaceIdSchema });
export const SessionParamsSchema = z.object({
  id: WorkspaceIdSchema,
  sid: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/, 'a session id is 1-100 of [A-Za-z0-9_-]'),
});

/** POST /api/workspaces/:id/sessions */
export const CreateSessionRequestSchema = z
  .object({
    /** The first message; the session starts working on it at once. */
    prompt: z
      .string()
      .min(1)
      .max(512 * 1024)
      .optional(),
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:[\]-]{0,99}$/, 'a model is a model name such as claude-sonnet-4-5')
      .optional(),
    permissionMode: PermissionMode.optional(),
    name: z.string().min(1).max(200).optional(),
    /** Client-chosen id (idempotent create). */
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/)
      .optional(),
  })
  .strict();

export const SessionInfoSchema = AgentSessionInfo;
export const SessionAnswerSchema = z.object({ session: SessionInfoSchema });
export const SessionListSchema = z.object({ sessions: z.array(SessionInfoSchema) });

/** POST /api/workspaces/:id/ratchet: turn the cloud ratchet on (started if it does not run) or off. */
export const SetRatchetRequestSchema = z.object({ enabled: z.boolean() }).strict();

/** POST /api/workspaces/:id/ratchet/stop-fixer: whether a working fixer was stopped, and which session. */
export const StopFixerAnswerSchema = z.object({
  stopped: z.boolean(),
  sessionId: z.string().nullable(),
});

/** POST /api/workspaces/:id/ratchet/wake: the ratchet polls now. */
export const WakeRatchetAnswerSchema = z.object({ woken: z.literal(true) });
