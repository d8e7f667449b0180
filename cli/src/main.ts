/**
 * ffc, the command-line client of Factory Factory Cloud. Commander parses; each command talks to the api
 * through ApiClient (answers checked with api/contract's schemas) and reports failures as one line on
 * stderr with an exit code from errors.ts.
 */
import { resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortableWorkspaceStateSchema } from '@factory-factory/core/protocol';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import {
  CreateSessionRequestSchema,
  PullResultSchema,
  SessionAnswerSchema,
  WorkspaceAnswerSchema,
  WorkspaceListSchema,
} from '../../api/contract/workspaces.js';
import { ApiClient, ApiRefusal } from './api-client.js';
import { attachSession } from './attach.js';
import { portableStateOf, readCheckout } from './checkout.js';
import {
  credentialsPath,
  DEFAULT_API_URL,
  type Environment,
  normalizeApiUrl,
  readEnvironment,
  readStoredCredentials,
  resolveCredentials,
  saveCredentials,
} from './config.js';
import { CliError, EXIT_CODES_HELP, ExitCode, errorText } from './errors.js';
import { portableStateSummary, vmSummary, workspaceSummary, workspaceTable } from './format.js';
import { readSecret } from './prompt.js';
import { registerRatchetCommands, storeOf } from './ratchet/command.js';
import { FIXER_ACTIVE_MESSAGE, pulledWorkspace, sentRatchetFields } from './ratchet/handoff.js';
import { runVmTerminal } from './terminal.js';
import { VmAnswerSchema } from './vm-schema.js';
import { type LocalWorkspace, StoredRatchetSchema } from './workspace-store.js';

type WorkspaceView = z.output<typeof WorkspaceAnswerSchema>['workspace'];

const out = (text: string) => process.stdout.write(text);
const note = (text: string) => process.stderr.write(`${text}\n`);
const printJson = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);

const exitOnSigint = () => process.exit(ExitCode.interrupted);

async function client(env: Environment): Promise<ApiClient> {
  return new ApiClient(await resolveCredentials(env));
}

const workspacePath = (id: string) => `/api/workspaces/${encodeURIComponent(id)}`;

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

// ---- login ----

async function login(env: Environment, opts: { apiUrl?: string; key?: string; json?: boolean }) {
  const stored = await readStoredCredentials(env).catch(() => null);
  const apiUrl = normalizeApiUrl(opts.apiUrl ?? env.apiUrl ?? stored?.apiUrl ?? DEFAULT_API_URL);
  const apiKey = (opts.key ?? (await readSecret('API key: '))).trim();
  if (apiKey.length === 0) throw new CliError(ExitCode.usage, 'no API key given (--key KEY, or on stdin)');
  const api = new ApiClient({ apiUrl, apiKey });
  // One authenticated request: any answer but 401/403 means the key is good (no VM yet is a 404).
  try {
    await api.request('/api/vms/me', VmAnswerSchema);
  } catch (err) {
    if (!(err instanceof ApiRefusal) || err.code !== 'vm_not_found') {
      if (err instanceof ApiRefusal && err.exitCode === ExitCode.auth) {
        throw new CliError(ExitCode.auth, `the api at ${apiUrl} refused this key: ${err.message}`);
      }
      throw err;
    }
  }
  const path = await saveCredentials(env, { apiUrl, apiKey });
  if (opts.json) printJson({ apiUrl, credentialsPath: path });
  else out(`Logged in to ${apiUrl}; the key is stored in ${path}\n`);
}

// ---- send ----

type SendOptions = {
  repoUrl?: string;
  name?: string;
  id?: string;
  wait: boolean;
  pr: boolean;
  ratchet?: boolean;
  dryRun?: boolean;
  json?: boolean;
  timeout: number;
};

async function send(env: Environment, dir: string | undefined, opts: SendOptions) {
  const checkout = await readCheckout(dir ?? process.cwd(), {
    repoUrl: opts.repoUrl,
    readPr: opts.pr,
    ghPath: env.ghPath,
  });
  const base = portableStateOf(checkout, { name: opts.name, workspaceId: opts.id });
  const store = storeOf(env);
  const stateWith = (known: LocalWorkspace | null) => {
    // A desktop fixer at work: the api would answer 409 for this state; say so without asking it.
    if (known?.activeFixer) throw new CliError(ExitCode.conflict, FIXER_ACTIVE_MESSAGE);
    return { ...base, ...sentRatchetFields(known, opts.ratchet === true) };
  };
  if (opts.dryRun) {
    const state = stateWith(await store.get(base.workspaceId));
    if (opts.json) printJson({ state });
    else out(portableStateSummary(state));
    return;
  }
  // Credentials first: without them nothing is sent, so nothing may be handed over.
  const api = await client(env);
  // The handoff: the workspace is CLOUD here before the api hears of it, decided under the store's lock, so
  // a desktop ratchet cycle running now either dispatched before (and this send carries that dispatch, or
  // refuses while its fixer works) or sees CLOUD and leaves the workspace to the cloud.
  const { state, previous } = await store.update((all) => {
    const known = all.get(base.workspaceId) ?? null;
    const sent = stateWith(known);
    all.set(base.workspaceId, {
      id: sent.workspaceId,
      name: sent.name,
      checkoutDir: checkout.dir,
      repoUrl: sent.repoUrl,
      branchName: sent.branchName,
      location: 'CLOUD',
      prUrl: sent.prUrl ?? known?.prUrl ?? null,
      ratchet: {
        ...(known?.ratchet ?? StoredRatchetSchema.parse({ enabled: false })),
        enabled: sent.ratchetEnabled,
      },
      activeFixer: null,
      lastDecision: known?.lastDecision ?? null,
      problem: null,
    });
    return { state: sent, previous: known };
  });
  let sent: z.output<typeof WorkspaceAnswerSchema>;
  try {
    sent = await api.request('/api/workspaces', WorkspaceAnswerSchema, { method: 'POST', body: { state } });
  } catch (err) {
    // The api answered and did not take it: the workspace stays on this machine. (No answer at all may
    // still have been a send that arrived, so it stays CLOUD; sending again or pulling settles it.)
    if (err instanceof ApiRefusal && err.status < 500) {
      await store.update((all) => {
        if (previous) all.set(previous.id, previous);
        else all.delete(state.workspaceId);
      });
    }
    throw err;
  }
  let workspace = sent.workspace;
  if (opts.wait) workspace = await waitForReady(api, workspace, opts.timeout * 60_000);
  if (opts.json) printJson({ workspace });
  else {
    out(workspaceSummary(workspace));
    if (workspace.status === 'READY') out(`Talk to it: ffc attach ${workspace.id}\n`);
  }
}

const stepText: Record<string, string> = {
  vm: 'starting your VM',
  restore: 'cloning and setting up the workspace',
  done: 'finishing',
};

async function waitForReady(api: ApiClient, first: WorkspaceView, timeoutMs: number): Promise<WorkspaceView> {
  let workspace = first;
  let shown = '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = `${workspace.status}${workspace.step ? `: ${stepText[workspace.step] ?? workspace.step}` : ''}`;
    if (progress !== shown) {
      note(`${workspace.id} ${progress}`);
      shown = progress;
    }
    if (workspace.status === 'READY') return workspace;
    if (workspace.status === 'FAILED') {
      throw new CliError(
        ExitCode.service,
        `workspace ${workspace.id} FAILED: ${workspace.failureReason ?? 'no reason given'}`,
      );
    }
    if (workspace.status === 'ARCHIVED') {
      throw new CliError(ExitCode.conflict, `workspace ${workspace.id} is archived`);
    }
    if (Date.now() > deadline) {
      throw new CliError(
        ExitCode.service,
        `workspace ${workspace.id} is still ${workspace.status} after ${Math.round(timeoutMs / 60_000)} min; check later with \`ffc ls\``,
      );
    }
    await sleep(1000);
    workspace = (await api.request(workspacePath(workspace.id), WorkspaceAnswerSchema)).workspace;
  }
}

// ---- ls ----

async function list(env: Environment, opts: { location?: string; status?: string; json?: boolean }) {
  const api = await client(env);
  const all: WorkspaceView[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const query: Record<string, string> = { limit: '100' };
    if (opts.location) query.location = opts.location.toUpperCase();
    if (opts.status) query.status = opts.status.toUpperCase();
    if (cursor) query.cursor = cursor;
    const answer = await api.request('/api/workspaces', WorkspaceListSchema, { query });
    all.push(...answer.workspaces);
    cursor = answer.nextCursor;
    if (!cursor) break;
  }
  if (opts.json) printJson({ workspaces: all });
  else out(workspaceTable(all));
}

// ---- attach ----

type AttachCliOptions = {
  session?: string;
  prompt?: string;
  exitWhenIdle?: boolean;
  model?: string;
  permissionMode?: string;
  json?: boolean;
};

async function attach(env: Environment, workspaceId: string, opts: AttachCliOptions): Promise<number> {
  if (opts.exitWhenIdle && !opts.prompt) {
    throw new CliError(ExitCode.usage, '--exit-when-idle needs --prompt (the turn to wait for)');
  }
  const api = await client(env);
  let sessionId = opts.session;
  if (!sessionId) {
    const body = CreateSessionRequestSchema.safeParse({
      ...(opts.model ? { model: opts.model } : {}),
      ...(opts.permissionMode ? { permissionMode: opts.permissionMode } : {}),
    });
    if (!body.success) throw new CliError(ExitCode.usage, body.error.issues[0]?.message ?? 'invalid options');
    const created = await api.request(`${workspacePath(workspaceId)}/sessions`, SessionAnswerSchema, {
      method: 'POST',
      body: body.data,
    });
    sessionId = created.session.id;
    note(`session ${sessionId} (attach again with --session ${sessionId})`);
  }
  process.removeListener('SIGINT', exitOnSigint);
  return attachSession({
    client: api,
    workspaceId,
    sessionId,
    prompt: opts.prompt,
    exitWhenIdle: opts.exitWhenIdle === true,
    json: opts.json === true,
    io: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
  });
}

// ---- pull ----

async function pull(env: Environment, workspaceId: string, opts: { dir?: string; json?: boolean }) {
  const api = await client(env);
  const answer = await api.request(`${workspacePath(workspaceId)}/pull`, PullResultSchema, {
    method: 'POST',
  });
  const state = PortableWorkspaceStateSchema.parse(answer.state);
  // DESKTOP again with the cloud's ratchet memory: the desktop ratchet resumes where the cloud stopped.
  const local = await storeOf(env).update((all) => {
    const known = all.get(state.workspaceId) ?? null;
    const checkoutDir = opts.dir ? resolvePath(opts.dir) : known?.checkoutDir;
    if (checkoutDir === undefined) return null;
    const entry = pulledWorkspace(known, state, checkoutDir);
    all.set(entry.id, entry);
    return entry;
  });
  if (opts.json) {
    printJson({ ...answer, local });
    return;
  }
  out(portableStateSummary(state));
  if (answer.sessions.length > 0) {
    out('  sessions:\n');
    for (const s of answer.sessions)
      out(`    ${s.id}  ${s.name}  (${s.workflow}, ${s.messageCount} messages)\n`);
  }
  if (local === null) {
    note(
      `${state.workspaceId} is not tracked on this machine; \`ffc pull ${state.workspaceId} --dir <checkout>\` records it for \`ffc ratchet\``,
    );
  }
}

// ---- vm ----

async function vmStatus(env: Environment, opts: { json?: boolean }) {
  const { vm } = await (await client(env)).request('/api/vms/me', VmAnswerSchema);
  if (opts.json) printJson({ vm });
  else out(vmSummary(vm));
}

async function vmSuspend(env: Environment, opts: { json?: boolean }) {
  const { vm } = await (await client(env)).request('/api/vms/me/suspend', VmAnswerSchema, { method: 'POST' });
  if (opts.json) printJson({ vm });
  else out(`VM ${vm.vmId}: ${vm.status}\n`);
}

async function vmTerminal(env: Environment): Promise<number> {
  const api = await client(env);
  process.removeListener('SIGINT', exitOnSigint);
  return runVmTerminal(api);
}

// ---- the program ----

function buildProgram(env: Environment, setExit: (code: number) => void): Command {
  const program = new Command('ffc')
    .description(
      'The command-line client of Factory Factory Cloud: send workspaces to your cloud VM, talk to their agents, pull them back.',
    )
    .version('0.1.0')
    .showHelpAfterError('(run `ffc --help` for usage)')
    .addHelpText(
      'after',
      `\nCredentials: \`ffc login\` stores them in ${credentialsPath(env)}; FFC_API_URL and FFC_API_KEY override it.\n\n${EXIT_CODES_HELP}`,
    );

  program
    .command('login')
    .description('store the api URL and API key, after checking the key with the api')
    .option('--api-url <url>', `the api (default: FFC_API_URL, the stored one, or ${DEFAULT_API_URL})`)
    .option('--key <key>', 'the API key (default: read from stdin)')
    .option('--json', 'print the result as JSON')
    .action((opts) => login(env, opts));

  program
    .command('send')
    .description('send the local checkout (origin, branch, PR) to the cloud and wait until it is READY')
    .argument('[dir]', 'the checkout (default: the current directory)')
    .option('--repo-url <url>', 'clone URL to send instead of the origin remote')
    .option('--name <name>', 'workspace name (default: <repo>/<branch>)')
    .option(
      '--id <id>',
      'workspace id (default: derived from repo and branch, so sending again is the same workspace)',
    )
    .option('--ratchet', 'let the cloud ratchet keep fixing the PR (on anyway if `ffc ratchet` had it on)')
    .option('--no-pr', 'do not ask gh for the branch’s pull request')
    .option('--no-wait', 'return once the api has the workspace (PROVISIONING)')
    .option('--timeout <minutes>', 'how long to wait for READY', positiveNumber, 30)
    .option('--dry-run', 'print the state that would be sent, send nothing')
    .option('--json', 'print the workspace as JSON')
    .action((dir, opts) => send(env, dir, opts));

  program
    .command('ls')
    .description('list your workspaces (all pages)')
    .addOption(new Option('--location <where>', 'only those here').choices(['cloud', 'desktop']))
    .addOption(
      new Option('--status <status>', 'only those in this status').choices([
        'provisioning',
        'ready',
        'failed',
        'archived',
      ]),
    )
    .option('--json', 'print {workspaces: [...]} as JSON')
    .action((opts) => list(env, opts));

  program
    .command('attach')
    .description(
      'talk to a session of a workspace: streamed replies, questions, permission prompts; Ctrl-C interrupts, twice exits',
    )
    .argument('<workspace>', 'workspace id')
    .option('--session <sid>', 'an existing session (default: a new one)')
    .option('--prompt <text>', 'send this message first')
    .option('--exit-when-idle', 'with --prompt: exit when its turn is done (0 ok, 5 failed, 130 interrupted)')
    .option('--model <model>', 'model of a new session')
    .addOption(
      new Option('--permission-mode <mode>', 'permission mode of a new session').choices([
        'default',
        'acceptEdits',
        'plan',
        'bypassPermissions',
        'dontAsk',
      ]),
    )
    .option('--json', 'print every event as one JSON line on stdout (prompts go to stderr)')
    .action(async (workspace, opts) => setExit(await attach(env, workspace, opts)));

  program
    .command('pull')
    .description('take a workspace back from the cloud (location DESKTOP) and print its portable state')
    .argument('<workspace>', 'workspace id')
    .option('--dir <checkout>', 'the local checkout, for a workspace this machine did not send')
    .option('--json', 'print the whole answer as JSON (plus `local`: the workspace as recorded here)')
    .action((workspace, opts) => pull(env, workspace, opts));

  const vm = program.command('vm').description('your cloud VM');
  vm.command('status')
    .description('state of your VM and the logins it still needs')
    .option('--json', 'print {vm} as JSON')
    .action((opts) => vmStatus(env, opts));
  vm.command('suspend')
    .description('stop your VM, keeping its disk')
    .option('--json', 'print {vm} as JSON')
    .action((opts) => vmSuspend(env, opts));
  vm.command('terminal')
    .description('a shell in your VM (raw terminal; where you run `gh auth login` and Claude’s login)')
    .action(async () => setExit(await vmTerminal(env)));

  registerRatchetCommands(program, env, setExit, () => process.removeListener('SIGINT', exitOnSigint));

  return program;
}

async function main(): Promise<number> {
  process.on('SIGINT', exitOnSigint);
  let code: number = ExitCode.ok;
  let env: Environment;
  try {
    env = readEnvironment();
  } catch (err) {
    note(`ffc: ${errorText(err)}`);
    return ExitCode.usage;
  }
  const program = buildProgram(env, (c) => {
    code = c;
  });
  program.exitOverride();
  for (const sub of program.commands) {
    sub.exitOverride();
    for (const nested of sub.commands) nested.exitOverride();
  }
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CliError) {
      note(`ffc: ${err.message}`);
      return err.exitCode;
    }
    note(`ffc: unexpected failure: ${errorText(err)}`);
    return ExitCode.service;
  }
  return code;
}

main().then(
  // Exit now: an open socket's close handshake or a paused stdin must not keep ffc running (stdout and
  // stderr are synchronous for files and pipes on Linux, so nothing printed is lost).
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ffc: ${errorText(err)}\n`);
    process.exit(ExitCode.service);
  },
);
