/**
 * The live WebSockets of this api process, by user, so that deleting an account closes its sockets at once
 * (a socket authenticated once, on upgrade; without this it would outlive the account). `track` wraps the
 * ws routes: every route's authorize puts the caller's principal into the context, which is where the
 * user is read from.
 */
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.js';
import type { WsRoute } from './upgrade.js';

/** Application close code (4000-4999): the account behind this socket no longer exists. */
export const ACCOUNT_DELETED_CLOSE_CODE = 4403;

export class UserSockets {
  private readonly byUser = new Map<string, Set<WebSocket>>();

  add(userId: string, ws: WebSocket): void {
    let sockets = this.byUser.get(userId);
    if (!sockets) {
      sockets = new Set();
      this.byUser.set(userId, sockets);
    }
    sockets.add(ws);
    ws.once('close', () => {
      const set = this.byUser.get(userId);
      set?.delete(ws);
      if (set?.size === 0) this.byUser.delete(userId);
    });
  }

  count(userId: string): number {
    return this.byUser.get(userId)?.size ?? 0;
  }

  /** Closes every socket of the user; one that does not finish the close handshake is cut after graceMs. */
  closeUser(userId: string, reason: string, graceMs = 2_000): number {
    const sockets = [...(this.byUser.get(userId) ?? [])];
    for (const ws of sockets) {
      ws.close(ACCOUNT_DELETED_CLOSE_CODE, reason);
      setTimeout(() => ws.terminate(), graceMs).unref();
    }
    return sockets.length;
  }

  /** The routes, each registering its accepted sockets under the caller's user id. */
  track(routes: WsRoute[]): WsRoute[] {
    return routes.map((route) => ({
      ...route,
      onConnection: (ws, req, context) => {
        const principal = context.principal as Principal | undefined;
        if (principal) this.add(principal.userId, ws);
        route.onConnection(ws, req, context);
      },
    }));
  }
}
