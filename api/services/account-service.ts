/**
 * Deleting an account (Clerk's user.deleted, or DELETE /api/me in local mode): everything the user had
 * goes, and an audit record stays.
 *
 * Order matters. The account is marked deleted first, so from that moment no credential of it
 * authenticates and nothing new can be made for it; its sockets here are closed and its keys deleted.
 * Then its actors end: the workspace actors (and their ratchets) first, so none of them brings the VM back
 * while it goes; the VM through its actor's terminate update (removes container and home volume); the
 * usage actor last, after the VM's final transition. Then the workspace and ratchet rows go and the deletion is
 * marked finished (purged) together with its audit record.
 *
 * Idempotent: every step tolerates what is already gone, an interrupted deletion is redone in full (the
 * tombstone stays unpurged until it finishes), and a finished one makes a repeated delete a no-op.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { deleteUserKeys } from '../../db/api-keys.js';
import { recordAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { markUserDeleted, markUserPurged } from '../../db/users.js';
import type { Logger } from '../../platform/logger.js';
import { workflowIds } from '../../workflows/ids.js';
import { ApiError } from '../errors.js';
import type { UserSockets } from '../ws/user-sockets.js';
import type { VmService } from './vm-service.js';

export type DeletionRequest = {
  /** Who asked: `clerk` (webhook) or `user:<id>` (the account itself). */
  actor: string;
  requestId?: string;
};

export type DeletionOutcome = {
  /** True when an earlier deletion had already finished: nothing was done. */
  alreadyDeleted: boolean;
  vmTerminated: boolean;
  workspaces: number;
  keys: number;
  socketsClosed: number;
};

const gone = (err: unknown): boolean =>
  err instanceof WorkflowNotFoundError ||
  (err instanceof Error && /workflow execution already completed/i.test(err.message));

export class AccountService {
  constructor(
    private readonly deps: {
      pool: Pool;
      temporal: Client;
      vms: VmService;
      /** This process's live sockets; null where there are none (a process without ws routes). */
      sockets: UserSockets | null;
      log: Logger;
    },
  ) {}

  /** Ends a workflow if it runs; one that never existed or has finished is fine. */
  private async endActor(workflowId: string, reason: string): Promise<boolean> {
    try {
      await this.deps.temporal.workflow.getHandle(workflowId).terminate(reason);
      return true;
    } catch (err) {
      if (gone(err)) return false;
      throw err;
    }
  }

  /** Terminates the VM through its actor (container and home volume removed); false when there is none. */
  private async terminateVm(userId: string): Promise<boolean> {
    try {
      await this.deps.vms.terminate(userId);
      return true;
    } catch (err) {
      // No VM, or one already terminated; 'vm_terminating' is a terminate already on its way.
      if (err instanceof ApiError && (err.code === 'vm_not_found' || err.code === 'vm_terminating')) {
        return false;
      }
      throw err;
    }
  }

  async deleteAccount(userId: string, request: DeletionRequest): Promise<DeletionOutcome> {
    const { pool, log } = this.deps;
    const { purged } = await markUserDeleted(pool, userId);
    if (purged) {
      return { alreadyDeleted: true, vmTerminated: false, workspaces: 0, keys: 0, socketsClosed: 0 };
    }
    const socketsClosed = this.deps.sockets?.closeUser(userId, 'account deleted') ?? 0;
    const keys = await deleteUserKeys(pool, userId);

    const { rows } = await pool.query<{ id: string }>('SELECT id FROM workspaces WHERE user_id = $1', [
      userId,
    ]);
    const reason = `account ${userId} deleted`;
    for (const { id } of rows) {
      await this.endActor(workflowIds.workspace(id), reason);
      await this.endActor(workflowIds.ratchet(id), reason);
    }
    const vmTerminated = await this.terminateVm(userId);
    await this.endActor(workflowIds.usage(userId), reason);
    // A request that authenticated just before the account was marked deleted may have started the VM
    // again meanwhile; a second terminate ends that one (and is a no-op otherwise).
    await this.terminateVm(userId);

    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const removed = await client.query('DELETE FROM workspaces WHERE user_id = $1', [userId]);
      // The ratchets' read model goes with them (their actors were ended above).
      await client.query('DELETE FROM workspace_ratchets WHERE user_id = $1', [userId]);
      const workspaces = removed.rowCount ?? 0;
      if (await markUserPurged(client, userId)) {
        const detail = { vmTerminated, workspaces: rows.length, keys, socketsClosed };
        if (vmTerminated) {
          await recordAudit(client, {
            userId,
            actor: request.actor,
            action: 'vm.terminated',
            targetType: 'vm',
            targetId: userId,
            detail: { reason: 'user.deleted' },
            ...(request.requestId ? { requestId: request.requestId } : {}),
          });
        }
        await recordAudit(client, {
          userId,
          actor: request.actor,
          action: 'user.deleted',
          targetType: 'user',
          targetId: userId,
          detail,
          ...(request.requestId ? { requestId: request.requestId } : {}),
        });
      }
      await client.query('COMMIT');
      log.info(
        { userId, actor: request.actor, vmTerminated, workspaces, keys, socketsClosed },
        'account deleted',
      );
      return { alreadyDeleted: false, vmTerminated, workspaces: rows.length, keys, socketsClosed };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
}
