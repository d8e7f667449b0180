/**
 * A user's VM: POST /api/vms (ensure it runs), GET /api/vms/me, POST /api/vms/me/suspend, DELETE /api/vms/me.
 * The VM is always the caller's own: a body naming another user is refused, never honoured.
 */
import { z } from 'zod';
import { VmViewSchema } from '../../workflows/vm/messages.js';
import { ApiError } from '../errors.js';
import type { RateLimits } from '../limits/rate-limits.js';
import type { VmService } from '../services/vm-service.js';
import { type ApiRoute, actorOf, callerOf, defineRoute, errors, requestIdOf } from './table.js';

const EnsureVmBody = z.object({ userId: z.string().optional() }).strict();
const VmAnswerSchema = z.object({ vm: VmViewSchema });

export function vmRouteTable(deps: { vms: VmService; rateLimits?: RateLimits | undefined }): ApiRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/vms',
      tag: 'vms',
      summary: 'Provision or resume my VM; answers once its agent answers',
      auth: true,
      body: EnsureVmBody,
      responses: {
        200: { description: 'the VM, ONBOARDING or READY', schema: VmAnswerSchema },
        ...errors({
          400: 'invalid body',
          402: "quota_compute_minutes: this period's compute minutes are used up (limit names them)",
          404: 'the body names another user (answered as for a user that does not exist)',
          409: 'the VM is busy or terminating',
          429: 'rate_limited: too many VM starts and workspace sends; see Retry-After',
          503: 'the VM failed to start',
        }),
      },
      handle: async (input) => {
        const { userId } = callerOf(input);
        if (input.body.userId !== undefined && input.body.userId !== userId) {
          // Another user is answered as nobody: whether they exist is not the caller's to learn.
          throw new ApiError(
            404,
            'user_not_found',
            'no such user here; leave userId out to manage your own VM',
          );
        }
        await deps.rateLimits?.consume('provision', userId);
        return { status: 200, body: { vm: await deps.vms.ensureReady(userId) } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/vms/me',
      tag: 'vms',
      summary: 'My VM: its state and onboarding checklist',
      auth: true,
      responses: {
        200: { description: 'the VM', schema: VmAnswerSchema },
        ...errors({ 404: 'no VM yet' }),
      },
      handle: async (input) => ({ status: 200, body: { vm: await deps.vms.get(callerOf(input).userId) } }),
    }),
    defineRoute({
      method: 'post',
      path: '/vms/me/suspend',
      tag: 'vms',
      summary: 'Suspend my VM (its files stay)',
      auth: true,
      responses: {
        200: { description: 'the VM, SUSPENDED', schema: VmAnswerSchema },
        ...errors({ 404: 'no VM yet', 409: 'the VM is busy or terminating' }),
      },
      handle: async (input) => ({
        status: 200,
        body: { vm: await deps.vms.suspend(callerOf(input).userId) },
      }),
    }),
    defineRoute({
      method: 'delete',
      path: '/vms/me',
      tag: 'vms',
      summary: 'Terminate my VM: removes its container and home volume',
      auth: true,
      responses: {
        200: { description: 'the VM, TERMINATED', schema: VmAnswerSchema },
        ...errors({ 404: 'no VM yet', 409: 'the VM is busy' }),
      },
      handle: async (input) => {
        const caller = callerOf(input);
        const by = { actor: actorOf(caller), requestId: requestIdOf(input) };
        return { status: 200, body: { vm: await deps.vms.terminateAudited(caller.userId, by) } };
      },
    }),
  ];
}
