/**
 * The one module of ffc that reads the environment, and where the credentials live.
 *
 * `ffc login` stores `{apiUrl, apiKey}` in `$FFC_CONFIG_DIR/credentials.json` (default ~/.config/ffc), the
 * file 0600 and its directory 0700 because the key is as good as a password. `FFC_API_URL` / `FFC_API_KEY`
 * override the file, so CI needs no login.
 *
 * The local workspace store (workspace-store.ts) lives in the state directory: `$FFC_STATE_DIR`, else
 * `$FFC_CONFIG_DIR/state` when FFC_CONFIG_DIR is set (one variable moves everything ffc keeps, which is
 * what scripts and tests want), else `$XDG_STATE_HOME/ffc` (default ~/.local/state/ffc).
 */
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { safeParseJson } from '@factory-factory/core/protocol';
import { z } from 'zod';
import { CliError, ExitCode } from './errors.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

export const CredentialsSchema = z.object({
  apiUrl: z.string().min(1),
  apiKey: z.string().min(1),
});
export type Credentials = z.output<typeof CredentialsSchema>;

export type Environment = {
  configDir: string;
  stateDir: string;
  apiUrl: string | undefined;
  apiKey: string | undefined;
  /** The gh binary ffc asks about PRs (`ffc ratchet`'s polls, the PR of a send): FFC_GH_PATH, default "gh" on PATH. */
  ghPath: string;
  /** The Claude Code CLI a desktop fixer runs (FFC_CLAUDE_PATH, default "claude" on PATH). */
  claudePath: string;
  /** ffc's own environment, handed whole to gh and claude: they find their logins through HOME etc. */
  childEnv: Readonly<Record<string, string>>;
};

/** Read once at start; everything else gets these values passed in. */
export function readEnvironment(): Environment {
  const env = process.env;
  const nonEmpty = (value: string | undefined) => (value && value.length > 0 ? value : undefined);
  const configDir = nonEmpty(env.FFC_CONFIG_DIR);
  const stateHome = nonEmpty(env.XDG_STATE_HOME) ?? join(homedir(), '.local', 'state');
  const childEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  return {
    configDir: configDir ?? join(homedir(), '.config', 'ffc'),
    stateDir: nonEmpty(env.FFC_STATE_DIR) ?? (configDir ? join(configDir, 'state') : join(stateHome, 'ffc')),
    apiUrl: nonEmpty(env.FFC_API_URL),
    apiKey: nonEmpty(env.FFC_API_KEY),
    ghPath: nonEmpty(env.FFC_GH_PATH) ?? 'gh',
    claudePath: nonEmpty(env.FFC_CLAUDE_PATH) ?? 'claude',
    childEnv,
  };
}

export const credentialsPath = (env: Environment) => join(env.configDir, 'credentials.json');

/** An api URL without its trailing slash; refuses anything but http(s). */
export function normalizeApiUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(ExitCode.usage, `not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(ExitCode.usage, `the api URL must be http:// or https://, not ${url.protocol}`);
  }
  return url.toString().replace(/\/+$/, '');
}

export async function readStoredCredentials(env: Environment): Promise<Credentials | null> {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(ExitCode.auth, `cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = safeParseJson(CredentialsSchema, text);
  if (!parsed.ok) {
    throw new CliError(
      ExitCode.auth,
      `${path} is damaged (${parsed.error.message}): run \`ffc login\` again`,
    );
  }
  return parsed.value;
}

/** The credentials to use: the environment's over the stored ones. Exits 2 when there is no key. */
export async function resolveCredentials(env: Environment): Promise<Credentials> {
  const stored = env.apiKey && env.apiUrl ? null : await readStoredCredentials(env);
  const apiKey = env.apiKey ?? stored?.apiKey;
  if (!apiKey) {
    throw new CliError(ExitCode.auth, 'not logged in: run `ffc login` (or set FFC_API_KEY)');
  }
  return { apiUrl: normalizeApiUrl(env.apiUrl ?? stored?.apiUrl ?? DEFAULT_API_URL), apiKey };
}

/** Writes the file 0600 in a 0700 directory, replacing it atomically (never a half-written key). */
export async function saveCredentials(env: Environment, credentials: Credentials): Promise<string> {
  await mkdir(env.configDir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone; a key must not sit in a world-readable one.
  if (((await stat(env.configDir)).mode & 0o077) !== 0) await chmod(env.configDir, 0o700);
  const path = credentialsPath(env);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, path);
  return path;
}
