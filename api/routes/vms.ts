/**
 * A user's VM: POST /api/vms (ensure it runs), GET /api/vms/me, POST /api/vms/me/suspend, DELETE /api/vms/me.
 * The VM is always the caller's own: a body naming another user is refused, never honoured.
 */
import { Router } from 'express';
import { z } from 'zod';
import { principalOf } from '../auth/middleware.js';
import { ApiError } from '../errors.js';
import type { VmService } from '../services/vm-service.js';

const EnsureVmBody = z.object({ userId: z.string().optional() }).strict();

export function vmRoutes(deps: { vms: VmService }): Router {
  const router = Router();

  router.post('/vms', async (req, res) => {
    const { userId } = principalOf(res.locals);
    const body = EnsureVmBody.safeParse(req.body ?? {});
    if (!body.success)
      throw new ApiError(400, 'bad_request', `invalid body: ${body.error.issues[0]?.message}`);
    if (body.data.userId !== undefined && body.data.userId !== userId) {
      throw new ApiError(403, 'forbidden', 'you can only manage your own VM');
    }
    res.status(200).json({ vm: await deps.vms.ensureReady(userId) });
  });

  router.get('/vms/me', async (_req, res) => {
    res.json({ vm: await deps.vms.get(principalOf(res.locals).userId) });
  });

  router.post('/vms/me/suspend', async (_req, res) => {
    res.json({ vm: await deps.vms.suspend(principalOf(res.locals).userId) });
  });

  router.delete('/vms/me', async (_req, res) => {
    res.json({ vm: await deps.vms.terminate(principalOf(res.locals).userId) });
  });

  return router;
}
