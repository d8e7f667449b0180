/**
 * Cloud workspaces and their sessions (issue 10). Thin over WorkspaceService: every route validates with
 * the contract's schemas (api/contract/workspaces.ts) and answers with them.
 */
import {
  CreateSessionRequestSchema,
  ListWorkspacesQuerySchema,
  PullResultSchema,
  SendWorkspaceRequestSchema,
  SessionAnswerSchema,
  SessionListSchema,
  SessionParamsSchema,
  SetRatchetRequestSchema,
  StopFixerAnswerSchema,
  WakeRatchetAnswerSchema,
  WorkspaceAnswerSchema,
  WorkspaceIdParamsSchema,
  WorkspaceListSchema,
} from '../contract/workspaces.js';
import type { RateLimits } from '../limits/rate-limits.js';
import type { WorkspaceService } from '../services/workspace-service.js';
import { type ApiRoute, callerOf, defineRoute, errors } from './table.js';

const sessionErrors = errors({
  400: 'invalid path or body',
  404: 'no such workspace or session of yours',
  409: 'the workspace is not READY in the cloud',
  503: 'the VM is not reachable right now',
});

export function workspaceRouteTable(deps: {
  workspaces: WorkspaceService;
  rateLimits?: RateLimits | undefined;
}): ApiRoute[] {
  const { workspaces, rateLimits } = deps;
  return [
    defineRoute({
      method: 'post',
      path: '/workspaces',
      tag: 'workspaces',
      summary: 'Send a workspace to the cloud (portable state, or a GitHub issue to start from)',
      description:
        'Answers at once with the workspace PROVISIONING in the CLOUD; GET it to follow the restore. ' +
        'Sending the same workspace id again is the same workspace.',
      auth: true,
      body: SendWorkspaceRequestSchema,
      responses: {
        202: { description: 'the send is recorded', schema: WorkspaceAnswerSchema },
        ...errors({
          400: 'invalid body or repository URL',
          402: 'quota_cloud_workspaces or quota_compute_minutes: a plan limit is reached (limit names it)',
          404: 'the workspace id is not yours',
          429: 'rate_limited: too many VM starts and workspace sends; see Retry-After',
        }),
      },
      handle: async (input) => {
        const { userId } = callerOf(input);
        await rateLimits?.consume('provision', userId);
        return { status: 202, body: { workspace: await workspaces.send(userId, input.body) } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/workspaces',
      tag: 'workspaces',
      summary: 'My workspaces, newest first, by location and status, one page at a time',
      auth: true,
      query: ListWorkspacesQuerySchema,
      responses: {
        200: { description: 'a page; pass nextCursor as cursor for the next', schema: WorkspaceListSchema },
        ...errors({ 400: 'invalid query' }),
      },
      handle: async (input) => ({
        status: 200,
        body: await workspaces.list(callerOf(input).userId, input.query),
      }),
    }),
    defineRoute({
      method: 'get',
      path: '/workspaces/:id',
      tag: 'workspaces',
      summary: 'One of my workspaces',
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: { description: 'the workspace', schema: WorkspaceAnswerSchema },
        ...errors({ 400: 'invalid id', 404: 'no such workspace of yours' }),
      },
      handle: async (input) => ({
        status: 200,
        body: { workspace: await workspaces.get(callerOf(input).userId, input.params.id) },
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/pull',
      tag: 'workspaces',
      summary: 'Pull a workspace back to the desktop: its portable state and a summary of its sessions',
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: {
          description: 'the portable state; the workspace is on the DESKTOP now',
          schema: PullResultSchema,
        },
        ...errors({
          404: 'no such workspace of yours',
          409: 'fixer_active while a ratchet fixer works; or the workspace is not in the cloud',
        }),
      },
      handle: async (input) => ({
        status: 200,
        body: await workspaces.pull(callerOf(input).userId, input.params.id),
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/archive',
      tag: 'workspaces',
      summary: 'Archive a workspace: stops its sessions and removes its worktree (the branch stays)',
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: { description: 'the workspace, ARCHIVED', schema: WorkspaceAnswerSchema },
        ...errors({ 404: 'no such workspace of yours', 409: 'fixer_active, or not in the cloud' }),
      },
      handle: async (input) => ({
        status: 200,
        body: { workspace: await workspaces.archive(callerOf(input).userId, input.params.id) },
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/retry',
      tag: 'workspaces',
      summary: 'Restore a FAILED workspace again',
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: { description: 'the workspace, PROVISIONING', schema: WorkspaceAnswerSchema },
        ...errors({ 404: 'no such workspace of yours', 409: 'the workspace is not FAILED' }),
      },
      handle: async (input) => ({
        status: 200,
        body: { workspace: await workspaces.retry(callerOf(input).userId, input.params.id) },
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/ratchet',
      tag: 'workspaces',
      summary: "Turn a cloud workspace's ratchet on or off; `ratchet` in the answer is its loop's view",
      description:
        'On: the ratchet polls the pull request and dispatches fixer sessions in the VM (started now if ' +
        'the workspace is READY, else once it is). Off: it stops polling; a working fixer finishes.',
      auth: true,
      params: WorkspaceIdParamsSchema,
      body: SetRatchetRequestSchema,
      responses: {
        200: { description: 'the workspace, with ratchetEnabled as asked', schema: WorkspaceAnswerSchema },
        ...errors({
          400: 'invalid body',
          404: 'no such workspace of yours',
          409: 'the workspace is not in the cloud (its ratchet runs on the desktop) or is archived',
          503: 'the setting is saved but the ratchet did not answer; it is tried again',
        }),
      },
      handle: async (input) => ({
        status: 200,
        body: {
          workspace: await workspaces.setRatchet(callerOf(input).userId, input.params.id, input.body.enabled),
        },
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/ratchet/stop-fixer',
      tag: 'workspaces',
      summary: "Stop the ratchet's working fixer session (it is not retried); a pull can go ahead then",
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: { description: 'whether a fixer was working and is stopped now', schema: StopFixerAnswerSchema },
        ...errors({ 404: 'no such workspace of yours', 409: 'the workspace is not in the cloud' }),
      },
      handle: async (input) => ({
        status: 200,
        body: await workspaces.stopFixer(callerOf(input).userId, input.params.id),
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/ratchet/wake',
      tag: 'workspaces',
      summary: "Make a cloud workspace's ratchet look at its pull request now (what a GitHub webhook calls)",
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        202: { description: 'the ratchet was told; it polls at once', schema: WakeRatchetAnswerSchema },
        ...errors({
          404: 'no such workspace of yours',
          409: 'ratchet_not_running: the ratchet is off or has ended, or the workspace is not in the cloud',
        }),
      },
      handle: async (input) => {
        await workspaces.wakeRatchet(callerOf(input).userId, input.params.id);
        return { status: 202, body: { woken: true } };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/sessions',
      tag: 'sessions',
      summary: 'Start a Claude session in a READY workspace; `prompt` is its first message',
      description:
        'Its CLI starts at once. Follow it live on ws /ws/workspaces/{id}/sessions/{sid}. ' +
        'Creating again with the same `id` returns the same session.',
      auth: true,
      params: WorkspaceIdParamsSchema,
      body: CreateSessionRequestSchema,
      responses: {
        201: { description: 'the session', schema: SessionAnswerSchema },
        ...sessionErrors,
        ...errors({ 429: 'rate_limited: too many new sessions; see Retry-After' }),
      },
      handle: async (input) => {
        const { userId } = callerOf(input);
        await rateLimits?.consume('sessionCreate', userId);
        return {
          status: 201,
          body: { session: await workspaces.createSession(userId, input.params.id, input.body) },
        };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/workspaces/:id/sessions',
      tag: 'sessions',
      summary: "A workspace's sessions",
      auth: true,
      params: WorkspaceIdParamsSchema,
      responses: {
        200: { description: 'the sessions', schema: SessionListSchema },
        ...sessionErrors,
      },
      handle: async (input) => ({
        status: 200,
        body: { sessions: await workspaces.listSessions(callerOf(input).userId, input.params.id) },
      }),
    }),
    defineRoute({
      method: 'get',
      path: '/workspaces/:id/sessions/:sid',
      tag: 'sessions',
      summary: 'One session of a workspace',
      auth: true,
      params: SessionParamsSchema,
      responses: {
        200: { description: 'the session', schema: SessionAnswerSchema },
        ...sessionErrors,
      },
      handle: async (input) => ({
        status: 200,
        body: {
          session: await workspaces.getSession(callerOf(input).userId, input.params.id, input.params.sid),
        },
      }),
    }),
    defineRoute({
      method: 'post',
      path: '/workspaces/:id/sessions/:sid/stop',
      tag: 'sessions',
      summary: "Stop a session's CLI (its transcript stays)",
      auth: true,
      params: SessionParamsSchema,
      responses: {
        200: { description: 'the session, stopped', schema: SessionAnswerSchema },
        ...sessionErrors,
      },
      handle: async (input) => ({
        status: 200,
        body: {
          session: await workspaces.stopSession(callerOf(input).userId, input.params.id, input.params.sid),
        },
      }),
    }),
  ];
}
