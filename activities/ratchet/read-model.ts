/**
 * workspace_ratchets is the read model of the ratchet:<workspaceId> actors: the api shows a workspace's
 * ratchet (state, last decision, fixer, stalled, daily cap) from it without asking Temporal. The write is
 * db/ratchet.ts's idempotent upsert that never goes over a newer write or another user's row.
 */

import type { Pool } from '../../db/pool.js';
import { recordRatchetView } from '../../db/ratchet.js';
import type { RatchetView } from '../../workflows/ratchet/messages.js';
import type { RatchetActivities, RecordedRatchetViewResult } from './types.js';

export function createRatchetReadModelActivities(deps: { pool: Pool }) {
  return {
    recordRatchetView: (view: RatchetView): Promise<RecordedRatchetViewResult> =>
      recordRatchetView(deps.pool, view),
  } satisfies Pick<RatchetActivities, 'recordRatchetView'>;
}
