import type { Logger } from 'pino';
import type { ParsedCliLine, PermissionMode } from '../protocol/index.js';
import type { ProcessGroupRecorder } from '../protocol/process-group.js';
import { buildClaudeArgs } from './cli-args.js';
import { ClaudeCliProcess, type CliExit, type CliProtocolError } from './cli-process.js';

/** What the CLI is started with; fixed for the session's life. */
export interface CliLaunchOptions {
  claudeBin: string;
  /** The workspace's worktree: the CLI runs there, and its conversation files are keyed by it. */
  cwd: string;
  /** The CLI's whole environment; nothing is inherited implicitly. */
  env: Readonly<Record<string, string>>;
  permissionMode: PermissionMode;
  model?: string | undefined;
  appendSystemPrompt?: string | undefined;
  includePartialMessages?: boolean | undefined;
  extraArgs?: readonly string[] | undefined;
  /** Whether this process runs as root (default: process.getuid() === 0); see cliEnvironment(). */
  runningAsRoot?: boolean | undefined;
  /** Told of each CLI process group, so the agent can end what a crashed predecessor left running. */
  processGroups?: ProcessGroupRecorder | undefined;
}

/** One CLI process under supervision and what is learnt of it while it lives. */
export interface SupervisedCli {
  readonly cli: ClaudeCliProcess;
  /** The model it runs: the session's, until a message's settings switch it. */
  model: string | undefined;
  /** When it last printed (or a human last answered it): the watchdog measures silence from here. */
  lastOutputAt: number;
  /** The end of its stderr, for the error when it fails. */
  stderrTail: string;
  /** It printed a `result` saying the conversation to resume does not exist. */
  sawNoConversation: boolean;
  /** Checks the running turn for silence while the process lives. */
  watchdog: NodeJS.Timeout | null;
}

/** What the supervisor hears from one launched process. */
export interface LaunchedCliEvents {
  onLine(proc: SupervisedCli, line: ParsedCliLine): void;
  onProtocolError(error: CliProtocolError): void;
  onExit(proc: SupervisedCli, exit: CliExit): void;
}

export interface LaunchCliOptions {
  launch: CliLaunchOptions;
  /** The conversation to continue, or null for a new one. */
  resumeSessionId: string | null;
  maxLineBytes: number;
  logger?: Logger | undefined;
  events: LaunchedCliEvents;
}

const STDERR_TAIL_CHARS = 4096;

/**
 * Spawns one CLI process and records its group (the agent reaps the groups a crashed predecessor
 * left). Throws synchronously when spawn() refuses the arguments (a NUL byte, one over the kernel's
 * per-argument limit): no process exists then, and nothing will ever exit or answer.
 */
export function launchCli(options: LaunchCliOptions): SupervisedCli {
  const { launch, logger, events } = options;
  const args = buildClaudeArgs({
    permissionMode: launch.permissionMode,
    model: launch.model,
    resumeSessionId: options.resumeSessionId,
    appendSystemPrompt: launch.appendSystemPrompt,
    includePartialMessages: launch.includePartialMessages,
    extraArgs: launch.extraArgs,
  });
  const cli: ClaudeCliProcess = new ClaudeCliProcess({
    bin: launch.claudeBin,
    args,
    cwd: launch.cwd,
    env: cliEnvironment(launch),
    maxLineBytes: options.maxLineBytes,
    handlers: {
      onLine: (line) => events.onLine(proc, line),
      onProtocolError: (error) => events.onProtocolError(error),
      onStderr: (text) => {
        proc.stderrTail = (proc.stderrTail + text).slice(-STDERR_TAIL_CHARS);
        logger?.debug({ stderr: text.slice(0, 2000) }, 'Claude CLI stderr');
      },
      onExit: (exit) => events.onExit(proc, exit),
    },
  });
  const proc: SupervisedCli = {
    cli,
    model: launch.model,
    lastOutputAt: Date.now(),
    stderrTail: '',
    sawNoConversation: false,
    watchdog: null,
  };
  if (cli.pid !== null) launch.processGroups?.started(cli.pid, 'claude');
  return proc;
}

/**
 * The CLI refuses --permission-mode bypassPermissions under uid 0 unless IS_SANDBOX=1 says the machine is
 * a disposable sandbox. An agent runs as root only inside a VM or container it owns, so that is set there
 * (and only for this mode: the other modes ask before acting and need no such promise).
 */
export function cliEnvironment(launch: CliLaunchOptions): Readonly<Record<string, string>> {
  const root = launch.runningAsRoot ?? process.getuid?.() === 0;
  if (!root || launch.permissionMode !== 'bypassPermissions') return launch.env;
  return { ...launch.env, IS_SANDBOX: '1' };
}
