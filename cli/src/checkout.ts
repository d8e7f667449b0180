/**
 * What `ffc send` learns from a local checkout: the origin URL, the current branch and, when `gh` is
 * installed and answers, the branch's pull request. Then the portable state the api takes
 * (PortableWorkspaceStateSchema from core's protocol).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import {
  PORTABLE_WORKSPACE_STATE_VERSION,
  type PortableWorkspaceState,
  PortableWorkspaceStateSchema,
  safeParseJson,
} from '@factory-factory/core/protocol';
import { z } from 'zod';
import { CliError, ExitCode } from './errors.js';

export type Checkout = {
  dir: string;
  repoUrl: string;
  branchName: string;
  pr: { url: string; number: number } | null;
};

type Run = { ok: true; stdout: string } | { ok: false; missing: boolean; stderr: string };

function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout: stdout.toString() });
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      resolve({ ok: false, missing, stderr: stderr.toString().trim() || err.message });
    });
  });
}

const GhPrSchema = z.object({ url: z.string().min(1), number: z.number().int().positive() });

export async function readCheckout(
  dir: string,
  options: { repoUrl?: string; readPr?: boolean; ghPath?: string } = {},
): Promise<Checkout> {
  const top = await run('git', ['rev-parse', '--show-toplevel'], dir, 10_000);
  if (!top.ok) {
    if (top.missing) throw new CliError(ExitCode.usage, 'git is not installed');
    throw new CliError(ExitCode.usage, `${dir} is not a git checkout (${firstLine(top.stderr)})`);
  }
  const root = top.stdout.trim();
  let repoUrl = options.repoUrl;
  if (repoUrl === undefined) {
    const origin = await run('git', ['remote', 'get-url', 'origin'], root, 10_000);
    if (!origin.ok) {
      throw new CliError(
        ExitCode.usage,
        `${root} has no remote "origin": add one, or name the clone URL with --repo-url`,
      );
    }
    repoUrl = origin.stdout.trim();
  }
  const branch = await run('git', ['symbolic-ref', '--quiet', '--short', 'HEAD'], root, 10_000);
  if (!branch.ok || branch.stdout.trim() === '') {
    throw new CliError(
      ExitCode.usage,
      `${root} is not on a branch (detached HEAD): check out a branch first`,
    );
  }
  const branchName = branch.stdout.trim();
  const pr = options.readPr === false ? null : await readPullRequest(root, options.ghPath ?? 'gh');
  return { dir: root, repoUrl, branchName, pr };
}

/** The branch's PR by `gh pr view`; null when gh is missing, not logged in, or there is no PR. */
async function readPullRequest(dir: string, ghPath: string): Promise<Checkout['pr']> {
  const result = await run(ghPath, ['pr', 'view', '--json', 'url,number'], dir, 20_000);
  if (!result.ok) return null;
  const parsed = safeParseJson(GhPrSchema, result.stdout.trim());
  return parsed.ok ? parsed.value : null;
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

/**
 * The same checkout (repo + branch) always gets the same id, so sending it again (after a pull, or a retry
 * after a dropped answer) is the same cloud workspace and not a second one.
 */
export function workspaceIdFor(repoUrl: string, branchName: string): string {
  const normalized = repoUrl
    .trim()
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
  const digest = createHash('sha256').update(`${normalized}\n${branchName}`).digest('hex');
  return `ws-${digest.slice(0, 24)}`;
}

/** "repo/branch", from the clone URL's last path segment. */
export function defaultWorkspaceName(repoUrl: string, branchName: string): string {
  const repo =
    basename(
      repoUrl
        .trim()
        .replace(/\/+$/, '')
        .replace(/\.git$/, ''),
    ) || 'workspace';
  return `${repo}/${branchName}`.slice(0, 200);
}

export function portableStateOf(
  checkout: Checkout,
  options: { name?: string; workspaceId?: string; now?: Date } = {},
): PortableWorkspaceState {
  const state = {
    version: PORTABLE_WORKSPACE_STATE_VERSION,
    workspaceId: options.workspaceId ?? workspaceIdFor(checkout.repoUrl, checkout.branchName),
    name: options.name ?? defaultWorkspaceName(checkout.repoUrl, checkout.branchName),
    repoUrl: checkout.repoUrl,
    branchName: checkout.branchName,
    baseBranch: null,
    location: 'CLOUD' as const,
    prUrl: checkout.pr?.url ?? null,
    prNumber: checkout.pr?.number ?? null,
    githubIssueNumber: null,
    githubIssueUrl: null,
    ratchetEnabled: false,
    ratchetState: 'IDLE' as const,
    ratchetLastCiRunId: null,
    prReviewLastCheckedAt: null,
    ratchetDispatchKeys: [],
    exportedAt: (options.now ?? new Date()).toISOString(),
  };
  // Checked here so a bad name or id is a usage error with the field named, not an api 400.
  const parsed = PortableWorkspaceStateSchema.safeParse(state);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      ExitCode.usage,
      `cannot send this checkout: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  return parsed.data;
}
