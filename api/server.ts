/**
 * One HTTP server for REST and WebSockets, with a graceful stop: refuse new connections, close sockets
 * with 1001, let in-flight requests finish (bounded), then release the clients.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AppDependencies, createApp } from './app.js';
import { createUpgradeRouter, type WsRoute } from './ws/upgrade.js';

export type RunningApi = { server: Server; url: string; stop: () => Promise<void> };

export async function startApi(
  deps: AppDependencies,
  options: { host: string; port: number; wsRoutes?: WsRoute[] },
): Promise<RunningApi> {
  const app = createApp(deps);
  const server = createServer(app);
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  const upgrades = createUpgradeRouter(options.wsRoutes ?? []);
  server.on('upgrade', (req, socket, head) => {
    upgrades.handleUpgrade(req, socket, head).catch((err: unknown) => {
      deps.log.error({ err }, 'websocket upgrade failed');
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;

  async function stop(): Promise<void> {
    upgrades.closeAll();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = setTimeout(() => server.closeAllConnections(), 10_000);
    await closed;
    clearTimeout(deadline);
  }

  return { server, url, stop };
}
