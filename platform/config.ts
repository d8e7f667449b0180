/**
 * The one configuration module of the cloud processes (api, worker, scripts). Every setting is an
 * environment variable with an embedded default that works for a local run, so `scripts/dev.sh up`
 * needs no configuration; production points the same variables at real clusters.
 *
 * This is the only file of the cloud allowed to read process.env (Biome's noProcessEnv enforces it).
 * The VM agent has its own config (core/src/agent/config.ts): it is a different program in a different box.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../workflows/ids.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
/** A JSON object of strings given in one variable, e.g. VM_EXTRA_ENV='{"ANTHROPIC_BASE_URL":"…"}'. */
const stringRecordJson = z.string().transform((text, ctx) => {
  const parsed = safeParseJson(z.record(z.string(), z.string()), text);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({
    code: 'custom',
    message: `must be a JSON object of string values (${parsed.error.message})`,
  });
  return z.NEVER;
});
/** A comma-separated list of non-empty items, e.g. authorized parties. */
const commaList = z.string().transform((text) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== ''),
);
/** Extra bind mounts for VMs, "hostPath:containerPath[:ro]" separated by commas. */
const mountList = z.string().transform((text, ctx) => {
  const mounts: { hostPath: string; containerPath: string; readOnly: boolean }[] = [];
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [hostPath, containerPath, mode] = item.split(':');
    if (!hostPath?.startsWith('/') || !containerPath?.startsWith('/') || (mode && mode !== 'ro')) {
      ctx.addIssue({
        code: 'custom',
        message: `bad mount '${item}', expected /host/path:/container/path[:ro]`,
      });
      return z.NEVER;
    }
    mounts.push({ hostPath, containerPath, readOnly: mode === 'ro' });
  }
  return mounts;
});

/** The Stripe Billing meter's event_name when STRIPE_METER_EVENT_NAME is unset. */
export const DEFAULT_METER_EVENT_NAME = 'ffc_compute_minutes';

/**
 * Every variable the cloud reads, with its default and meaning. README's configuration table and
 * docker-compose.yml are checked against these names by test/config.test.ts.
 */
export const configVariables = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where local state lives: Postgres and Temporal data, VM run dirs, generated dev secrets. */
  FFC_DATA_DIR: z.string().default(resolve(repoRoot, '.data')),

  DATABASE_URL: z.url().default('postgres://ffc:ffc@127.0.0.1:54329/ffc'),
  DATABASE_POOL_MAX: positiveInt.default(10),

  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default(DEFAULT_TASK_QUEUE),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  /**
   * Activities one worker runs at once. Each cloud ratchet holds one while it watches its PR (mostly
   * asleep between polls), so this bounds the ratchets a worker carries besides the other work.
   */
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt.default(1000),

  DOCKER_HOST: z.string().default('unix:///var/run/docker.sock'),

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port.default(3000),
  /** Public origin of the dashboard, used in links and CORS. */
  PUBLIC_URL: z.url().default('http://127.0.0.1:3000'),
  /** Development only: an API key that identifies DEV_USER_ID until real accounts exist. */
  DEV_API_KEY: z.string().min(16).optional(),
  DEV_USER_ID: z.string().default('dev-user'),
  /**
   * How people sign in. `clerk`: Clerk session JWTs, verified without network with CLERK_JWT_KEY.
   * `local` (development and tests only): the api holds its own key pair and a sign-in page that issues
   * tokens, verified by the very same code as Clerk's.
   */
  AUTH_MODE: z.enum(['local', 'clerk']).default('local'),
  /** The Clerk instance's JWT public key (PEM), for networkless verification of session tokens. */
  CLERK_JWT_KEY: z.string().min(1).optional(),
  /** Origins a session token may have been issued for (its `azp`); PUBLIC_URL when unset. */
  CLERK_AUTHORIZED_PARTIES: commaList.optional(),
  /** Tolerated clock difference when checking a token's exp and nbf. */
  CLERK_CLOCK_SKEW_MS: z.coerce.number().int().min(0).max(300_000).default(5_000),
  /** Signing secret of the Clerk webhook endpoint (svix, `whsec_…`); without it Clerk webhooks are refused. */
  CLERK_WEBHOOK_SECRET: z.string().startsWith('whsec_').optional(),
  /** Clerk's hosted sign-in page (Account Portal), where the dashboard sends people in clerk mode. */
  CLERK_SIGN_IN_URL: z.url().optional(),
  /** The Clerk instance's publishable key (`pk_…`), public by design: the dashboard's Clerk client uses it. */
  CLERK_PUBLISHABLE_KEY: z.string().startsWith('pk_').optional(),
  /**
   * User ids (comma-separated) who see operator links in the dashboard: each workspace and VM links to its
   * actor in the Temporal UI (TEMPORAL_UI_URL). Nobody by default.
   */
  OPERATOR_USER_IDS: commaList.default([]),
  /** Stripe's secret API key; without it billing routes answer 503 and every user has Free limits. */
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  /** Test deployments only: where the Stripe client sends requests (stripe-mock behind the project's fake). */
  STRIPE_API_URL: z.url().optional(),
  /** Signing secret of the Stripe webhook endpoint (`whsec_…`). */
  STRIPE_WEBHOOK_SECRET: z.string().startsWith('whsec_').optional(),
  /** Stripe price ids of the paid plans. */
  STRIPE_PRICE_PRO: z.string().min(1).optional(),
  STRIPE_PRICE_TEAM: z.string().min(1).optional(),
  /** The Stripe Billing meter compute minutes are reported to (its event_name). */
  STRIPE_METER_EVENT_NAME: z.string().min(1).default(DEFAULT_METER_EVENT_NAME),
  /** After a failed payment, paid limits stay this long before the account falls back to Free limits. */
  BILLING_GRACE_PERIOD_MS: positiveInt.default(3 * 24 * 3600 * 1000),
  /** How often a cloud workspace's ratchet looks at its pull request while its VM runs. */
  RATCHET_POLL_INTERVAL_MS: positiveInt.default(30_000),
  /** How often it looks while the VM is suspended (each look resumes the VM briefly, as background work). */
  RATCHET_SUSPENDED_POLL_INTERVAL_MS: positiveInt.default(300_000),
  /** At most this many fixer sessions per workspace in any 24 hours, retries included. */
  RATCHET_MAX_FIXERS_PER_DAY: positiveInt.default(10),
  /** Which trusted review activity starts a fixer: CHANGES_REQUESTED reviews only, or every comment too. */
  RATCHET_REVIEW_TRIGGER: z.enum(['changes_requested', 'all_feedback']).default('changes_requested'),
  /** Bot logins (exact, comma-separated) whose reviews count as trusted besides OWNER/MEMBER/COLLABORATOR. */
  RATCHET_TRUSTED_BOTS: commaList.default([]),
  /** Per-user rate limits, counted in Postgres so every api process shares them. */
  RATE_LIMIT_PROVISION_PER_MINUTE: positiveInt.default(10),
  RATE_LIMIT_SESSIONS_PER_MINUTE: positiveInt.default(30),
  RATE_LIMIT_KEYS_PER_HOUR: positiveInt.default(20),
  /** WebSocket keepalive: a client that does not answer a ping within one interval is cut off. */
  API_WS_PING_INTERVAL_MS: positiveInt.default(30_000),

  VM_IMAGE: z.string().default('ffc-vm:latest'),
  VM_NETWORK_MODE: z.enum(['none', 'host', 'bridge']).default('none'),
  /**
   * The OCI runtime of every VM container. `runc`: Docker's, the VM shares the host's kernel. `runsc`:
   * gVisor, a user-space kernel between the VM and the host; the Docker engine must have it registered
   * under that name (README, "Isolation").
   */
  VM_RUNTIME: z.enum(['runc', 'runsc']).default('runc'),
  VM_MEMORY_MB: positiveInt.default(2048),
  VM_CPUS: z.coerce.number().positive().default(1),
  VM_PIDS_LIMIT: positiveInt.default(512),
  VM_IDLE_TIMEOUT_MS: positiveInt.default(30 * 60 * 1000),
  VM_HEALTH_INTERVAL_MS: positiveInt.default(30 * 1000),
  VM_WARM_POOL_SIZE: z.coerce.number().int().min(0).default(0),
  /** Test deployments only: environment given to claude and gh inside VMs (e.g. ANTHROPIC_BASE_URL). */
  VM_EXTRA_ENV: stringRecordJson.default({}),
  /** Test deployments only: host sockets mounted into VMs (e.g. a fake GitHub's unix socket). */
  VM_EXTRA_MOUNTS: mountList.default([]),
  /**
   * Clone URL schemes a VM's agent accepts for workspaces. Production keeps https and ssh; a test
   * deployment adds `file` to clone from a bare repository it mounts into VMs with VM_EXTRA_MOUNTS.
   */
  VM_REPO_URL_SCHEMES: z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((scheme) => scheme.trim())
        .filter((scheme) => scheme !== ''),
    )
    .pipe(z.array(z.enum(['https', 'ssh', 'file'])).min(1, 'names no scheme'))
    .default(['https', 'ssh']),
  /** Allow VMs to be created at all without TLS etc. checks; false in production images. */
  VM_DEV_MODE: bool.default(false),
} as const;

const configSchema = z.object(configVariables);
export type RawConfig = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type Config = ReturnType<typeof shapeConfig>;

function shapeConfig(raw: RawConfig) {
  return {
    env: raw.NODE_ENV,
    logLevel: raw.LOG_LEVEL,
    dataDir: raw.FFC_DATA_DIR,
    database: { url: raw.DATABASE_URL, poolMax: raw.DATABASE_POOL_MAX },
    temporal: {
      address: raw.TEMPORAL_ADDRESS,
      namespace: raw.TEMPORAL_NAMESPACE,
      taskQueue: raw.TEMPORAL_TASK_QUEUE,
      uiUrl: raw.TEMPORAL_UI_URL,
      maxConcurrentActivities: raw.WORKER_MAX_CONCURRENT_ACTIVITIES,
    },
    docker: dockerConnection(raw.DOCKER_HOST),
    api: {
      host: raw.API_HOST,
      port: raw.API_PORT,
      publicUrl: raw.PUBLIC_URL,
      devApiKey: raw.DEV_API_KEY,
      devUserId: raw.DEV_USER_ID,
      wsPingIntervalMs: raw.API_WS_PING_INTERVAL_MS,
    },
    auth: {
      mode: raw.AUTH_MODE,
      clerkJwtKey: raw.CLERK_JWT_KEY,
      authorizedParties: raw.CLERK_AUTHORIZED_PARTIES ?? [new URL(raw.PUBLIC_URL).origin],
      clockSkewMs: raw.CLERK_CLOCK_SKEW_MS,
      clerkWebhookSecret: raw.CLERK_WEBHOOK_SECRET,
      clerkSignInUrl: raw.CLERK_SIGN_IN_URL,
      clerkPublishableKey: raw.CLERK_PUBLISHABLE_KEY,
      /** Local mode's key pair, generated on first start; host-only, like the VM secrets. */
      localKeyDir: resolve(raw.FFC_DATA_DIR, 'auth'),
    },
    /** Who sees the operator links of the dashboard (Temporal UI). */
    operators: { userIds: raw.OPERATOR_USER_IDS },
    billing: {
      stripeSecretKey: raw.STRIPE_SECRET_KEY,
      stripeApiUrl: raw.STRIPE_API_URL,
      stripeWebhookSecret: raw.STRIPE_WEBHOOK_SECRET,
      prices: { PRO: raw.STRIPE_PRICE_PRO, TEAM: raw.STRIPE_PRICE_TEAM },
      meterEventName: raw.STRIPE_METER_EVENT_NAME,
      gracePeriodMs: raw.BILLING_GRACE_PERIOD_MS,
    },
    /** What every ratchet actor starts with (workflows/ratchet/messages.ts RatchetSettings). */
    ratchet: {
      pollIntervalMs: raw.RATCHET_POLL_INTERVAL_MS,
      suspendedPollIntervalMs: raw.RATCHET_SUSPENDED_POLL_INTERVAL_MS,
      maxDispatchesPerDay: raw.RATCHET_MAX_FIXERS_PER_DAY,
      trust: { triggerMode: raw.RATCHET_REVIEW_TRIGGER, trustedBots: raw.RATCHET_TRUSTED_BOTS },
    },
    rateLimits: {
      provisionPerMinute: raw.RATE_LIMIT_PROVISION_PER_MINUTE,
      sessionsPerMinute: raw.RATE_LIMIT_SESSIONS_PER_MINUTE,
      keysPerHour: raw.RATE_LIMIT_KEYS_PER_HOUR,
    },
    vm: {
      image: raw.VM_IMAGE,
      networkMode: raw.VM_NETWORK_MODE,
      runtime: raw.VM_RUNTIME,
      memoryBytes: raw.VM_MEMORY_MB * 1024 * 1024,
      nanoCpus: Math.round(raw.VM_CPUS * 1e9),
      pidsLimit: raw.VM_PIDS_LIMIT,
      idleTimeoutMs: raw.VM_IDLE_TIMEOUT_MS,
      healthIntervalMs: raw.VM_HEALTH_INTERVAL_MS,
      warmPoolSize: raw.VM_WARM_POOL_SIZE,
      runDirRoot: resolve(raw.FFC_DATA_DIR, 'vm-run'),
      /** Per-VM secrets, where only the host writes; each VM gets its own directory mounted read-only. */
      secretRoot: resolve(raw.FFC_DATA_DIR, 'vm-secrets'),
      extraEnv: raw.VM_EXTRA_ENV,
      extraMounts: raw.VM_EXTRA_MOUNTS,
      repoUrlSchemes: raw.VM_REPO_URL_SCHEMES,
      devMode: raw.VM_DEV_MODE,
    },
  };
}

/** DOCKER_HOST as dockerode wants it: a unix socket path, or host and port for tcp. */
function dockerConnection(dockerHost: string): { socketPath: string } | { host: string; port: number } {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port || 2375) };
}

/**
 * Reads and checks the configuration. Unknown FFC-looking variables are not an error (deployments set
 * many), but every known one with a bad value is reported by name, all at once.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(configVariables)
      .filter((name) => env[name] !== undefined && env[name] !== '')
      .map((name) => [name, env[name]]),
  );
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`),
    );
  }
  // The development key stands for a fixed user with no account behind it: never honoured in production.
  if (parsed.data.NODE_ENV === 'production' && parsed.data.DEV_API_KEY !== undefined) {
    throw new ConfigError([
      'DEV_API_KEY: the development API key is refused with NODE_ENV=production; unset DEV_API_KEY',
    ]);
  }
  // Production accounts are Clerk's; the local sign-in page would let anyone be anyone.
  if (parsed.data.NODE_ENV === 'production' && parsed.data.AUTH_MODE !== 'clerk') {
    throw new ConfigError([
      'AUTH_MODE: local sign-in is for development and tests; set AUTH_MODE=clerk with NODE_ENV=production',
    ]);
  }
  if (parsed.data.AUTH_MODE === 'clerk' && parsed.data.CLERK_JWT_KEY === undefined) {
    throw new ConfigError(["CLERK_JWT_KEY: AUTH_MODE=clerk needs the Clerk instance's JWT public key (PEM)"]);
  }
  if (parsed.data.NODE_ENV === 'production' && parsed.data.STRIPE_API_URL !== undefined) {
    throw new ConfigError(['STRIPE_API_URL: pointing Stripe elsewhere is for test deployments; unset it']);
  }
  // A VM that clones from its own filesystem is a test rig, never a product.
  if (parsed.data.NODE_ENV === 'production' && parsed.data.VM_REPO_URL_SCHEMES.includes('file')) {
    throw new ConfigError([
      'VM_REPO_URL_SCHEMES: file clone URLs are for test deployments and are refused with NODE_ENV=production',
    ]);
  }
  return shapeConfig(parsed.data);
}
