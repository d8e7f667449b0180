/**
 * The api as a process of its own for the benchmarks (bench/lib/cloud.ts starts it): the production app and
 * server (test/support/api.ts) with the session relay route, so its RSS and event loop are the api's alone,
 * not shared with the benchmark's clients.
 *
 *   argv[2]: JSON of ApiProcessArgs. Prints one JSON line {benchUrl} once listening; then answers each
 *   `stats` line on stdin with one JSON line {benchStats: {relay, agents, rssBytes}}; its logs share
 *   stdout. SIGTERM stops it.
 */
import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { firstOf } from '../../api/auth/principal.js';
import { type SessionRoute, sessionRelayRoute } from '../../api/ws/session-relay.js';
import { createLogger } from '../../platform/logger.js';
import { startTestApi } from '../../test/support/api.js';

export const ApiProcessArgs = z.object({
  databaseUrl: z.string(),
  /** Development key → user id. */
  users: z.record(z.string(), z.string()),
  taskQueue: z.string(),
  repoUrlSchemes: z.array(z.enum(['https', 'ssh', 'file'])),
  maxBufferedBytes: z.number().int().positive().optional(),
});
export type ApiProcessArgs = z.output<typeof ApiProcessArgs>;

async function main(): Promise<void> {
  const parsed = safeParseJson(ApiProcessArgs, process.argv[2] ?? '');
  if (!parsed.ok) throw parsed.error;
  const args = parsed.value;
  let route: SessionRoute | undefined;
  const api = await startTestApi({
    databaseUrl: args.databaseUrl,
    users: args.users,
    taskQueue: args.taskQueue,
    vmSettings: { agentTimeoutMs: 90_000 },
    repoUrlSchemes: args.repoUrlSchemes,
    wsRoutes: (services) => {
      route = sessionRelayRoute({
        authenticator: firstOf(
          ...Object.entries(args.users).map(([key, userId]) => createDevKeyAuthenticator({ key, userId })),
        ),
        pool: services.pool,
        vms: services.vms,
        workspaces: services.workspaces,
        agents: services.agents,
        log: createLogger('bench-api', 'warn'),
        ...(args.maxBufferedBytes !== undefined
          ? { limits: { maxBufferedBytes: args.maxBufferedBytes } }
          : {}),
      });
      return [route];
    },
  });
  process.stdout.write(`${JSON.stringify({ benchUrl: api.api.url })}\n`);
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    input += chunk;
    for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
      const line = input.slice(0, nl).trim();
      input = input.slice(nl + 1);
      if (line !== 'stats') continue;
      process.stdout.write(
        `${JSON.stringify({ benchStats: { relay: route?.stats(), agents: api.agents.stats(), rssBytes: process.memoryUsage.rss() } })}\n`,
      );
    }
  });
  const stop = () => {
    api.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.stdin.once('end', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
