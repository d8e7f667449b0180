// A fake GitHub for the real `gh` binary: node:http on a unix socket, reached through gh's
// `http_unix_socket` key in $GH_CONFIG_DIR/config.yml (gh then sends every request, https included, as
// plain HTTP down the socket with the host still api.github.com). It answers the REST paths the product
// uses and `POST /graphql`, projecting exactly the fields each query asks for from the fixtures.
//
//   const gh = await startFakeGitHub({ fixtures: { repos: { 'o/r': { pulls: [{ number: 1 }] } } } });
//   execFile('gh', ['pr', 'view', '1', '--repo', 'o/r', '--json', 'number'], { env: gh.ghEnv() });
//   gh.updateFixtures((f) => { ... });      // or PUT /__fixtures from another process
//   await gh.close();
//
// Admin routes (no auth): GET/PUT /__fixtures, GET /__requests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type FakeGitHubFixtures,
  type FakeGitHubFixturesInput,
  type FakePullRequestInput,
  FakePullRequestSchema,
  parseFakeGitHubFixtures,
} from './fake-github-fixtures.js';
import {
  findRepo,
  type GraphContext,
  restLineComment,
  restPullRequest,
  rootNode,
} from './fake-github-graph.js';
import { executeGraphQL, type GraphArgs } from './fake-github-graphql.js';

export * from './fake-github-fixtures.js';

export interface FakeGitHubRequest {
  method: string;
  host: string;
  path: string;
  status: number;
  authorization: 'none' | 'valid' | 'invalid';
  operationName?: string | null;
  variables?: GraphArgs;
  unknownFields?: string[];
}

export interface GhEnvOptions {
  /** GH_TOKEN to hand gh; null leaves gh without any token. Defaults to the fixtures' token. */
  token?: string | null;
  /** Extra variables (e.g. GH_DEBUG=api). */
  extra?: Record<string, string>;
}

export interface FakeGitHub {
  /** Unix socket the fake listens on. */
  readonly socketPath: string;
  /** A GH_CONFIG_DIR whose config.yml routes gh to the socket. */
  readonly configDir: string;
  /** Scratch directory holding the socket, config and a HOME for gh. */
  readonly dir: string;
  /**
   * Environment for running the real gh against this fake, with the leak guard: proxies point at a
   * closed loopback port so anything not routed to the socket fails at once instead of reaching GitHub.
   */
  ghEnv(options?: GhEnvOptions): Record<string, string>;
  fixtures(): FakeGitHubFixtures;
  setFixtures(input: FakeGitHubFixturesInput): void;
  updateFixtures(mutate: (fixtures: FakeGitHubFixtures) => void): void;
  /** Adds or replaces one PR of `owner/name` (creating the repo if needed). */
  upsertPullRequest(repo: string, pr: FakePullRequestInput): void;
  readonly requests: readonly FakeGitHubRequest[];
  /** GraphQL fields some query asked for that the fake does not model (check after upgrading gh). */
  unknownFields(): string[];
  close(): Promise<void>;
}

export interface StartFakeGitHubOptions {
  fixtures?: FakeGitHubFixturesInput;
  /** Directory for socket and config; a fresh temp dir (removed on close) when omitted. */
  dir?: string;
}

const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** Port 9 (discard) is closed on loopback here: a request that escapes the socket fails immediately. */
export const LEAK_GUARD_PROXY = 'http://127.0.0.1:9';

export async function startFakeGitHub(options: StartFakeGitHubOptions = {}): Promise<FakeGitHub> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ff-fake-gh-'));
  const socketPath = join(dir, 'gh.sock');
  const configDir = join(dir, 'gh-config');
  const homeDir = join(dir, 'home');
  await mkdir(configDir, { recursive: true });
  await mkdir(homeDir, { recursive: true });
  writeFileSync(join(configDir, 'config.yml'), `http_unix_socket: ${socketPath}\n`);

  let fixtures = parseFakeGitHubFixtures(options.fixtures ?? {});
  const requests: FakeGitHubRequest[] = [];
  const unknown = new Set<string>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) sendJson(res, 500, { message: `fake-github: ${message}` });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const host = (req.headers.host ?? 'api.github.com').toLowerCase();
    const url = new URL(req.url ?? '/', `http://${host}`);
    let path = url.pathname;
    if (path === '/api/graphql') path = '/graphql';
    else if (path.startsWith('/api/v3')) path = path.slice('/api/v3'.length) || '/';
    const method = req.method ?? 'GET';

    if (path === '/__fixtures') return adminFixtures(method, body, res);
    if (path === '/__requests' && method === 'GET') return sendJson(res, 200, requests);

    const entry: FakeGitHubRequest = { method, host, path, status: 200, authorization: 'none' };
    requests.push(entry);
    const respond = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      sendJson(res, status, payload, headers);
    };

    const auth = req.headers.authorization;
    const presented = auth ? auth.replace(/^(token|bearer)\s+/i, '') : null;
    entry.authorization = presented === null ? 'none' : presented === fixtures.token ? 'valid' : 'invalid';
    if (fixtures.token !== null && entry.authorization !== 'valid') {
      return respond(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    }
    if (fixtures.faults.serverError) return respond(500, { message: 'Server Error' });

    const isGraphQL = path === '/graphql' && method === 'POST';
    const limit = fixtures.faults.rateLimit;
    if (limit && (isGraphQL ? limit.graphql : limit.rest)) {
      const headers: Record<string, string> = {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-used': '5000',
      };
      if (limit.resetEpochSeconds !== null) headers['x-ratelimit-reset'] = String(limit.resetEpochSeconds);
      if (limit.retryAfterSeconds !== null) headers['retry-after'] = String(limit.retryAfterSeconds);
      const message =
        limit.kind === 'secondary'
          ? 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.'
          : 'API rate limit exceeded for user ID 1.';
      // GitHub answers GraphQL rate limits with 200 and a RATE_LIMITED error; REST with 403.
      if (isGraphQL)
        return respond(200, { data: null, errors: [{ type: 'RATE_LIMITED', message }] }, headers);
      return respond(403, { message, documentation_url: 'https://docs.github.com/rest/rate-limit' }, headers);
    }

    const webHost = host === 'api.github.com' ? 'github.com' : host;
    const apiBase = host === 'api.github.com' ? 'https://api.github.com' : `https://${host}/api/v3`;
    const ctx: GraphContext = { fixtures, webHost };

    if (isGraphQL) {
      const parsed = parseGraphQLBody(body);
      if (parsed === null) return respond(400, { message: 'Problems parsing JSON' });
      const result = executeGraphQL(rootNode(ctx), parsed.query, parsed.variables, parsed.operationName);
      entry.operationName = result.operationName;
      entry.variables = parsed.variables;
      if (result.unknownFields.length > 0) {
        entry.unknownFields = result.unknownFields;
        for (const f of result.unknownFields) unknown.add(f);
      }
      const payload: Record<string, unknown> = { data: result.data };
      if (result.errors.length > 0) payload.errors = result.errors;
      return respond(200, payload);
    }

    if (method === 'GET' && path === '/') {
      return respond(200, { current_user_url: `${apiBase}/user` });
    }
    if (method === 'GET' && path === '/user') {
      return respond(200, { login: fixtures.viewer.login, id: 1, type: 'User', name: fixtures.viewer.name });
    }
    const pullMatch = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)(\/comments)?$/.exec(path);
    if (method === 'GET' && pullMatch) {
      const [, owner = '', name = '', num, comments] = pullMatch;
      const pr = findRepo(fixtures, owner, name)?.pulls.find((p) => p.number === Number(num));
      if (!pr)
        return respond(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      if (!comments) return respond(200, restPullRequest(ctx, owner, name, pr));
      const perPage = clamp(Number(url.searchParams.get('per_page') ?? 30), 1, 100);
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
      const total = pr.lineComments.length;
      const lastPage = Math.max(1, Math.ceil(total / perPage));
      const items: Record<string, unknown>[] = [];
      for (let i = (page - 1) * perPage; i < Math.min(total, page * perPage); i++) {
        items.push(restLineComment(ctx, owner, name, pr, i));
      }
      const headers: Record<string, string> = {};
      if (page < lastPage) {
        const link = (p: number) => `<${apiBase}${path}?per_page=${perPage}&page=${p}>`;
        headers.link = `${link(page + 1)}; rel="next", ${link(lastPage)}; rel="last"`;
      }
      return respond(200, items, headers);
    }
    return respond(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  }

  function adminFixtures(method: string, body: string, res: ServerResponse): void {
    if (method === 'GET') {
      sendJson(res, 200, fixtures);
    } else if (method === 'PUT') {
      try {
        fixtures = parseFakeGitHubFixtures(JSON.parse(body));
        sendJson(res, 200, fixtures);
      } catch (err) {
        sendJson(res, 400, { message: err instanceof Error ? err.message : String(err) });
      }
    } else {
      sendJson(res, 405, { message: 'GET or PUT' });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let closed = false;
  return {
    socketPath,
    configDir,
    dir,
    ghEnv(envOptions: GhEnvOptions = {}) {
      const token = envOptions.token === undefined ? fixtures.token : envOptions.token;
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: homeDir,
        GH_CONFIG_DIR: configDir,
        GH_NO_UPDATE_NOTIFIER: '1',
        GH_PROMPT_DISABLED: '1',
        GH_SPINNER_DISABLED: '1',
        NO_COLOR: '1',
        GH_PAGER: 'cat',
        HTTPS_PROXY: LEAK_GUARD_PROXY,
        HTTP_PROXY: LEAK_GUARD_PROXY,
        https_proxy: LEAK_GUARD_PROXY,
        http_proxy: LEAK_GUARD_PROXY,
        ...envOptions.extra,
      };
      if (token !== null) env.GH_TOKEN = token;
      return env;
    },
    fixtures: () => fixtures,
    setFixtures(input) {
      fixtures = parseFakeGitHubFixtures(input);
    },
    updateFixtures(mutate) {
      const copy = structuredClone(fixtures);
      mutate(copy);
      fixtures = parseFakeGitHubFixtures(copy);
    },
    upsertPullRequest(repoName, input) {
      const pr = FakePullRequestSchema.parse(input);
      const copy = structuredClone(fixtures);
      const repo = copy.repos[repoName] ?? { defaultBranch: 'main', pulls: [], issues: [] };
      repo.pulls = [...repo.pulls.filter((p) => p.number !== pr.number), pr];
      copy.repos[repoName] = repo;
      fixtures = parseFakeGitHubFixtures(copy);
    },
    requests,
    unknownFields: () => [...unknown].sort(),
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Replaces the fixtures of a fake GitHub, possibly running in another process, through its socket. */
export function putFakeGitHubFixtures(socketPath: string, fixtures: FakeGitHubFixturesInput): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(fixtures);
    const req = request(
      {
        socketPath,
        method: 'PUT',
        path: '/__fixtures',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else
            reject(new Error(`PUT /__fixtures: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8')}`));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function parseGraphQLBody(
  body: string,
): { query: string; variables: GraphArgs; operationName: string | null } | null {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null || !('query' in raw) || typeof raw.query !== 'string')
    return null;
  const variables =
    'variables' in raw && typeof raw.variables === 'object' && raw.variables !== null
      ? (raw.variables as GraphArgs)
      : {};
  const operationName =
    'operationName' in raw && typeof raw.operationName === 'string' ? raw.operationName : null;
  return { query: raw.query, variables, operationName };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'x-oauth-scopes': 'repo, read:org',
    'x-github-request-id': 'FAKE',
    ...headers,
  });
  res.end(body);
}

function clamp(n: number, min: number, max: number): number {
  if (!Number.isFinite(n)) return min;
  return Math.min(max, Math.max(min, Math.trunc(n)));
}
