/**
 * The warm pool's state and rules, pure. Claims are remembered (a bounded list) so a retried claim gets the
 * same container back instead of draining the pool.
 */
import type { VmContainerRef } from '../../activities/vm/types.js';

export type PoolState = {
  size: number;
  ready: VmContainerRef[];
  claims: { claimId: string; container: VmContainerRef | null }[];
  created: number;
  claimed: number;
};

const REMEMBERED_CLAIMS = 200;

export const newPoolState = (size: number): PoolState => ({
  size,
  ready: [],
  claims: [],
  created: 0,
  claimed: 0,
});

export function claim(
  state: PoolState,
  claimId: string,
): { state: PoolState; container: VmContainerRef | null } {
  const earlier = state.claims.find((c) => c.claimId === claimId);
  if (earlier) return { state, container: earlier.container };
  const [container = null, ...rest] = state.ready;
  return {
    container,
    state: {
      ...state,
      ready: container ? rest : state.ready,
      claimed: state.claimed + (container ? 1 : 0),
      claims: [...state.claims, { claimId, container }].slice(-REMEMBERED_CLAIMS),
    },
  };
}

/** How many containers to add (positive) or retire (negative) to reach the target size. */
export const shortfall = (state: PoolState): number => state.size - state.ready.length;
