import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { safeParseJson } from '../protocol/index.js';

/**
 * The agent's settings, read once from the environment at startup. This is the only module of core
 * that reads process.env; everything else gets its settings as arguments.
 *
 *   FF_AGENT_SOCKET        unix socket path to listen on (required; bind-mounted from the host)
 *   FF_AGENT_SOCKET_MODE   0600 (default) or 0660
 *   FF_AGENT_SECRET_FILE   file holding the per-VM secret (required)
 *   FF_AGENT_DATA_DIR      SQLite database, repository clones (repos/) and worktrees (worktrees/)
 *                          (default ~/.ff-agent, on the VM's volume)
 *   FF_AGENT_LOG_LEVEL     pino level (default info)
 *   FF_CLAUDE_BIN          Claude Code CLI (default `claude` on PATH)
 *   FF_GH_BIN              GitHub CLI (default `gh` on PATH)
 *   FF_CLAUDE_EXTRA_ARGS   JSON array of extra CLI flags, e.g. ["--tools","Bash,Read"]
 *   FF_CLAUDE_PARTIAL_MESSAGES  1 (default) streams token deltas to subscribers; 0 turns them off
 *   FF_SESSION_INTERACTIVE_TIMEOUT_MS  deny a question or permission prompt nobody answered after this
 *                          long (default 0: wait for the human however long it takes)
 *   FF_SESSION_STOP_GRACE_MS, FF_SESSION_HUNG_TIMEOUT_MS,
 *   FF_SESSION_MAX_QUEUED  session limits (defaults: 5000, 3600000, 100); a turn waiting for a human is
 *                          never killed as hung
 *   FF_SESSION_REPLAY_EVENTS, FF_SESSION_REPLAY_BYTES  per session, the recent events kept in memory for
 *                          subscribers that resume with afterSeq (defaults: 5000 events, 8 MiB of JSON)
 *   FF_WORKSPACE_LOCATION  CLOUD (default) or DESKTOP: the side this agent runs on; imports must be
 *                          handed to it and its workspaces are created there
 *   FF_WORKSPACE_URL_SCHEMES  comma-separated clone URL schemes accepted (default https,ssh; tests add file)
 *   FF_WORKSPACE_SETUP_TIMEOUT_MS  factory-factory.json setup script limit (default 300000)
 *   FF_CHILD_ENV_<NAME>    sets <NAME> in the environment of claude, gh, git, setup scripts and terminals
 *                          (e.g. FF_CHILD_ENV_ANTHROPIC_BASE_URL); other FF_* variables are not passed on
 */
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().nonnegative();
const UrlScheme = z.enum(['https', 'http', 'ssh', 'file']);

const AgentConfigSchema = z.object({
  socketPath: z.string().min(1, 'FF_AGENT_SOCKET is required'),
  socketMode: z.enum(['0600', '0660']).transform((mode) => Number.parseInt(mode, 8)),
  secretFile: z.string().min(1, 'FF_AGENT_SECRET_FILE is required'),
  dataDir: z.string().min(1),
  homeDir: z.string().min(1),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  claudeBin: z.string().min(1),
  ghBin: z.string().min(1),
  // spawn() throws for a NUL byte in an argument; refused at startup rather than at every session start.
  claudeExtraArgs: z.array(z.string().refine((arg) => !arg.includes('\0'), 'no NUL in an argument')),
  includePartialMessages: z.boolean(),
  /** 0: never. */
  interactiveTimeoutMs: nonNegativeInt,
  stopGraceMs: positiveInt,
  hungTimeoutMs: positiveInt,
  maxQueuedMessages: positiveInt,
  replayMaxEvents: nonNegativeInt,
  replayMaxBytes: nonNegativeInt,
  workspaceLocation: z.enum(['CLOUD', 'DESKTOP']),
  repoUrlSchemes: z.array(UrlScheme).min(1, 'FF_WORKSPACE_URL_SCHEMES names no scheme'),
  setupTimeoutMs: positiveInt,
  /** The whole environment of claude, gh and terminal shells. */
  childEnv: z.record(z.string(), z.string()),
});
export type AgentConfig = z.output<typeof AgentConfigSchema>;

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

const CHILD_ENV_PREFIX = 'FF_CHILD_ENV_';

/** The agent's own environment minus FF_* settings, plus FF_CHILD_ENV_* overrides. */
function childEnvironment(env: NodeJS.ProcessEnv, home: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || key.startsWith('FF_')) continue;
    out[key] = value;
  }
  out.HOME = out.HOME ?? home;
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && key.startsWith(CHILD_ENV_PREFIX) && key.length > CHILD_ENV_PREFIX.length) {
      out[key.slice(CHILD_ENV_PREFIX.length)] = value;
    }
  }
  return out;
}

function extraArgs(raw: string | undefined): string[] {
  if (!raw) return [];
  const parsed = safeParseJson(z.array(z.string()), raw);
  if (!parsed.ok)
    throw new AgentConfigError(
      `FF_CLAUDE_EXTRA_ARGS must be a JSON array of strings: ${parsed.error.message}`,
    );
  return parsed.value;
}

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const home = env.HOME ?? homedir();
  const parsed = AgentConfigSchema.safeParse({
    socketPath: env.FF_AGENT_SOCKET ?? '',
    socketMode: env.FF_AGENT_SOCKET_MODE ?? '0600',
    secretFile: env.FF_AGENT_SECRET_FILE ?? '',
    dataDir: env.FF_AGENT_DATA_DIR ?? join(home, '.ff-agent'),
    homeDir: home,
    logLevel: env.FF_AGENT_LOG_LEVEL ?? 'info',
    claudeBin: env.FF_CLAUDE_BIN ?? 'claude',
    ghBin: env.FF_GH_BIN ?? 'gh',
    claudeExtraArgs: extraArgs(env.FF_CLAUDE_EXTRA_ARGS),
    includePartialMessages: (env.FF_CLAUDE_PARTIAL_MESSAGES ?? '1') !== '0',
    interactiveTimeoutMs: env.FF_SESSION_INTERACTIVE_TIMEOUT_MS ?? 0,
    stopGraceMs: env.FF_SESSION_STOP_GRACE_MS ?? 5_000,
    hungTimeoutMs: env.FF_SESSION_HUNG_TIMEOUT_MS ?? 3_600_000,
    maxQueuedMessages: env.FF_SESSION_MAX_QUEUED ?? 100,
    replayMaxEvents: env.FF_SESSION_REPLAY_EVENTS ?? 5000,
    replayMaxBytes: env.FF_SESSION_REPLAY_BYTES ?? 8 * 1024 * 1024,
    workspaceLocation: env.FF_WORKSPACE_LOCATION ?? 'CLOUD',
    repoUrlSchemes: (env.FF_WORKSPACE_URL_SCHEMES ?? 'https,ssh')
      .split(',')
      .map((scheme) => scheme.trim())
      .filter((scheme) => scheme !== ''),
    setupTimeoutMs: env.FF_WORKSPACE_SETUP_TIMEOUT_MS ?? 300_000,
    childEnv: childEnvironment(env, home),
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new AgentConfigError(`invalid agent configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}
