import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { safeParseJson } from '../protocol/index.js';

export interface CredentialStatus {
  gh: boolean;
  claude: boolean;
}

export interface CredentialProbeOptions {
  home: string;
  ghBin: string;
  /** The environment claude and gh run with (API keys, GH_CONFIG_DIR, GH_TOKEN). */
  childEnv: Readonly<Record<string, string>>;
  /** Results are reused for this long: `gh auth status` is a process spawn per health check. */
  cacheMs?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const ClaudeJson = z.looseObject({ oauthAccount: z.unknown().optional() });

/** Claude is logged in: OAuth credentials file, an oauthAccount in ~/.claude.json, or an API key. */
async function claudeCredentialsPresent(
  home: string,
  env: Readonly<Record<string, string>>,
): Promise<boolean> {
  if (env.ANTHROPIC_API_KEY || env.CLAUDE_CODE_OAUTH_TOKEN) return true;
  const configDir = env.CLAUDE_CONFIG_DIR ?? join(home, '.claude');
  if (await exists(join(configDir, '.credentials.json'))) return true;
  try {
    const text = await readFile(join(home, '.claude.json'), 'utf8');
    const parsed = safeParseJson(ClaudeJson, text, 16 * 1024 * 1024);
    return parsed.ok && parsed.value.oauthAccount !== undefined && parsed.value.oauthAccount !== null;
  } catch {
    return false;
  }
}

function ghAuthStatus(ghBin: string, env: Readonly<Record<string, string>>): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      ghBin,
      ['auth', 'status'],
      { env: { ...env, GH_NO_UPDATE_NOTIFIER: '1' }, timeout: 5000 },
      (error) => resolve(error === null),
    );
  });
}

/** gh is logged in: a hosts.yml in its config dir, a token in the env, or `gh auth status` says so. */
async function ghCredentialsPresent(home: string, ghBin: string, env: Readonly<Record<string, string>>) {
  if (env.GH_TOKEN || env.GITHUB_TOKEN) return true;
  const configDir = env.GH_CONFIG_DIR ?? join(home, '.config', 'gh');
  if (await exists(join(configDir, 'hosts.yml'))) return true;
  return ghAuthStatus(ghBin, env);
}

/** Reports whether the user finished onboarding (gh and Claude logins), without reading any secret out. */
export function createCredentialProbe(options: CredentialProbeOptions): () => Promise<CredentialStatus> {
  let cached: { at: number; value: Promise<CredentialStatus> } | null = null;
  const cacheMs = options.cacheMs ?? 10_000;
  return () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.value;
    const value = Promise.all([
      ghCredentialsPresent(options.home, options.ghBin, options.childEnv),
      claudeCredentialsPresent(options.home, options.childEnv),
    ]).then(([gh, claude]) => ({ gh, claude }));
    cached = { at: Date.now(), value };
    return value;
  };
}
