import type { PermissionMode } from '../protocol/index.js';

export interface ClaudeCliArgsOptions {
  permissionMode: PermissionMode;
  model?: string | undefined;
  /** The Claude session id to continue (the conversation lives in ~/.claude/projects/<cwd>/<id>.jsonl). */
  resumeSessionId?: string | null | undefined;
  appendSystemPrompt?: string | undefined;
  /** Adds `stream_event` token deltas to stdout, for live typing in the dashboard. */
  includePartialMessages?: boolean | undefined;
  /** Anything else the deployment wants (e.g. `--tools ...`), appended last. */
  extraArgs?: readonly string[] | undefined;
}

/**
 * argv for one long-lived CLI process speaking stream-json both ways. `--verbose` is mandatory with
 * stream-json output, and `--permission-prompt-tool stdio` turns permission prompts (and
 * AskUserQuestion / ExitPlanMode) into `can_use_tool` control requests on stdout.
 */
export function buildClaudeArgs(options: ClaudeCliArgsOptions): string[] {
  const args = [
    '-p',
    '--input-format',
    'stream-json',
    '--output-format',
    'stream-json',
    '--verbose',
    '--permission-prompt-tool',
    'stdio',
    '--permission-mode',
    options.permissionMode,
  ];
  if (options.includePartialMessages) args.push('--include-partial-messages');
  if (options.model) args.push('--model', options.model);
  if (options.resumeSessionId) args.push('--resume', options.resumeSessionId);
  if (options.appendSystemPrompt) args.push('--append-system-prompt', options.appendSystemPrompt);
  if (options.extraArgs) args.push(...options.extraArgs);
  return args;
}
