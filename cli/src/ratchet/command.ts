/**
 * `ffc ratchet`: a desktop-style ratchet for the workspaces this machine knows (the local store).
 *
 *   ffc ratchet add [dir]         track a local checkout (location DESKTOP, ratchet on)
 *   ffc ratchet ls                the local workspaces, where each one is and what its ratchet last did
 *   ffc ratchet [--once]          poll the DESKTOP ones with the local gh and run fixers with the local
 *                                 claude; CLOUD ones are skipped (the cloud's ratchet has them)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createGhRunner, GitHubClient } from '@factory-factory/core/github';
import { nextBackoffMultiplier, pollDelayMs } from '@factory-factory/core/ratchet';
import { type Command, InvalidArgumentError } from 'commander';
import { defaultWorkspaceName, readCheckout, workspaceIdFor } from '../checkout.js';
import type { Environment } from '../config.js';
import { CliError, ExitCode } from '../errors.js';
import { table } from '../format.js';
import { type LocalWorkspace, StoredRatchetSchema, WorkspaceStore } from '../workspace-store.js';
import { type CycleReport, DesktopRatchet, type FixerEnded } from './cycle.js';
import { ClaudeFixerRunner } from './fixer.js';

const out = (text: string) => process.stdout.write(text);
const printLine = (value: unknown) => out(`${JSON.stringify(value)}\n`);

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function positiveInteger(value: string): number {
  const n = positive(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export const storeOf = (env: Environment) => new WorkspaceStore(env.stateDir);

// ---- add ----

type AddOptions = { id?: string; name?: string; pr?: string; off?: boolean; json?: boolean };

async function add(env: Environment, dir: string | undefined, opts: AddOptions) {
  const checkout = await readCheckout(dir ?? process.cwd(), {
    readPr: opts.pr === undefined,
    ghPath: env.ghPath,
  });
  const id = opts.id ?? workspaceIdFor(checkout.repoUrl, checkout.branchName);
  const prUrl = opts.pr ?? checkout.pr?.url ?? null;
  const workspace = await storeOf(env).update((all) => {
    const known = all.get(id);
    if (known?.location === 'CLOUD') {
      throw new CliError(
        ExitCode.conflict,
        `workspace ${id} is in the cloud; \`ffc pull ${id}\` brings it back to this machine`,
      );
    }
    const entry: LocalWorkspace = {
      id,
      name: opts.name ?? known?.name ?? defaultWorkspaceName(checkout.repoUrl, checkout.branchName),
      checkoutDir: checkout.dir,
      repoUrl: checkout.repoUrl,
      branchName: checkout.branchName,
      location: 'DESKTOP',
      prUrl: prUrl ?? known?.prUrl ?? null,
      ratchet: { ...(known?.ratchet ?? StoredRatchetSchema.parse({ enabled: true })), enabled: !opts.off },
      activeFixer: known?.activeFixer ?? null,
      lastDecision: known?.lastDecision ?? null,
      problem: known?.problem ?? null,
    };
    all.set(id, entry);
    return entry;
  });
  if (opts.json) printLine({ workspace });
  else
    out(
      `${workspace.id} ${workspace.name}: DESKTOP, ratchet ${workspace.ratchet.enabled ? 'on' : 'off'}, PR ${workspace.prUrl ?? '- (none found)'}\n`,
    );
}

// ---- ls ----

async function list(env: Environment, opts: { json?: boolean }) {
  const workspaces = await storeOf(env).list();
  if (opts.json) {
    printLine({ workspaces });
    return;
  }
  if (workspaces.length === 0) {
    out('no local workspaces (track one with `ffc ratchet add` or `ffc send`)\n');
    return;
  }
  out(
    table(
      ['ID', 'NAME', 'LOCATION', 'RATCHET', 'LAST DECISION', 'FIXER'],
      workspaces.map((w) => [
        w.id,
        w.name,
        w.location,
        w.ratchet.enabled ? w.ratchet.state : 'off',
        w.lastDecision ? `${w.lastDecision.action} (${w.lastDecision.reason})` : '-',
        w.activeFixer ? w.activeFixer.sessionId : w.ratchet.dispatchStalled ? 'stalled' : '-',
      ]),
    ),
  );
}

// ---- run ----

type RunOptions = {
  once?: boolean;
  interval: number;
  json?: boolean;
  allFeedback?: boolean;
  trustedBot: string[];
  maxPerDay: number;
  fixerTimeout: number;
  model?: string;
};

async function run(env: Environment, opts: RunOptions): Promise<number> {
  const github = new GitHubClient({
    runner: createGhRunner({ env: { ...env.childEnv }, ghPath: env.ghPath }),
  });
  const fixers = new ClaudeFixerRunner({
    claudePath: env.claudePath,
    env: env.childEnv,
    timeoutMs: opts.fixerTimeout * 60_000,
    ...(opts.model ? { model: opts.model } : {}),
  });
  const ratchet = new DesktopRatchet({
    store: storeOf(env),
    github,
    fixers,
    settings: {
      trust: {
        triggerMode: opts.allFeedback ? 'all_feedback' : 'changes_requested',
        trustedBots: opts.trustedBot,
      },
      maxDispatchesPerDay: opts.maxPerDay,
    },
    onFixerEnded: (ended) =>
      opts.json ? printLine({ type: 'fixer_ended', ...ended }) : out(endedText(ended)),
  });

  // Ctrl-C: stop the fixers (recorded as stopped, not retried), then exit 130.
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort();
  process.on('SIGINT', onSigint);
  let multiplier = 1;
  try {
    while (!interrupted.signal.aborted) {
      const reports = await ratchet.cycle(Date.now());
      for (const report of reports)
        opts.json ? printLine({ type: 'cycle', ...report }) : out(reportText(report));
      if (opts.once) break;
      const failures = reports.filter((r) => r.problem !== null);
      const retryAfterMs = Math.max(0, ...failures.map((r) => r.problem?.retryAfterMs ?? 0)) || null;
      multiplier = nextBackoffMultiplier(
        multiplier,
        retryAfterMs !== null ? 'rate_limited' : failures.length > 0 ? 'other_error' : 'clean',
      );
      await sleep(pollDelayMs(opts.interval * 1000, multiplier, retryAfterMs), undefined, {
        signal: interrupted.signal,
      }).catch(() => undefined);
    }
    if (interrupted.signal.aborted) {
      await fixers.stopAll();
      await ratchet.idle();
      return ExitCode.interrupted;
    }
    // --once: the fixers this cycle started run to their end, and their outcome is recorded.
    await Promise.race([ratchet.idle(), abortedPromise(interrupted.signal)]);
    if (interrupted.signal.aborted) {
      await fixers.stopAll();
      await ratchet.idle();
      return ExitCode.interrupted;
    }
    return ExitCode.ok;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function abortedPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function reportText(r: CycleReport): string {
  const head = `${new Date().toISOString()} ${r.workspaceId} ${r.name}:`;
  switch (r.outcome) {
    case 'skipped_cloud':
      return `${head} in the cloud, skipped\n`;
    case 'disabled':
      return `${head} ratchet off\n`;
    case 'no_pr':
      return `${head} no pull request\n`;
    case 'poll_failed':
      return `${head} could not read the PR: ${r.problem?.message ?? 'unknown error'}\n`;
    case 'decided': {
      const decided = `${head} ${r.decision?.action ?? '?'} (${r.decision?.reason ?? '?'})\n`;
      return r.dispatched ? `${decided}  fixer ${r.dispatched.sessionId} started\n` : decided;
    }
  }
}

function endedText(e: FixerEnded): string {
  return `${new Date().toISOString()} ${e.workspaceId}: fixer ${e.sessionId} ${e.outcome}${e.detail ? ` (${e.detail})` : ''}\n`;
}

// ---- registration ----

export function registerRatchetCommands(
  program: Command,
  env: Environment,
  setExit: (code: number) => void,
  // main's Ctrl-C handler exits at once; `ffc ratchet` stops its fixers first.
  releaseSigint: () => void,
): void {
  const ratchet = program
    .command('ratchet')
    .description(
      'a desktop ratchet for your local workspaces: fixers for failing CI, conflicts and review feedback (DESKTOP workspaces only)',
    );
  ratchet
    .command('run', { isDefault: true })
    .description('poll the DESKTOP workspaces’ PRs with the local gh and run fixers with the local claude')
    .option('--once', 'one cycle, wait for the fixers it started, then exit')
    .option('--interval <seconds>', 'time between cycles', positive, 30)
    .option('--all-feedback', 'also trigger on COMMENTED reviews and comments (by collaborators only)')
    .option('--trusted-bot <login>', 'a bot whose reviews count (exact login; repeatable)', collect, [])
    .option('--max-per-day <n>', 'fixer runs per PR per 24 h', positiveInteger, 10)
    .option('--fixer-timeout <minutes>', 'stop a fixer that runs longer', positive, 60)
    .option('--model <model>', 'model for the fixers')
    .option('--json', 'one JSON line per workspace per cycle, and per ended fixer')
    .action(async (opts: RunOptions) => {
      releaseSigint();
      setExit(await run(env, opts));
    });
  ratchet
    .command('add')
    .description('track a local checkout: location DESKTOP, ratchet on')
    .argument('[dir]', 'the checkout (default: the current directory)')
    .option('--id <id>', 'workspace id (default: derived from repo and branch, as `ffc send` does)')
    .option('--name <name>', 'workspace name')
    .option('--pr <url>', 'the pull request (default: the branch’s, by gh)')
    .option('--off', 'track it with the ratchet off')
    .option('--json', 'print {workspace} as JSON')
    .action((dir: string | undefined, opts: AddOptions) => add(env, dir, opts));
  ratchet
    .command('ls')
    .description('the local workspaces: location, ratchet state, last decision, active fixer')
    .option('--json', 'print {workspaces} as JSON')
    .action((opts: { json?: boolean }) => list(env, opts));
}
