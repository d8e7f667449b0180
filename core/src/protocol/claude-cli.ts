import { z } from 'zod';
import { JsonParseError, safeParseJson } from './json.js';

/**
 * The Claude Code CLI's stream-json protocol (`-p --input-format stream-json --output-format stream-json
 * --verbose --permission-prompt-tool stdio`), as observed with CLI 2.1.197. Only the fields we act on
 * are checked; everything else passes through untouched so the dashboard sees what the CLI sent.
 */

const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;

export const CliUsage = z.looseObject({
  input_tokens: z.number().optional(),
  output_tokens: z.number().optional(),
  cache_creation_input_tokens: z.number().nullish(),
  cache_read_input_tokens: z.number().nullish(),
});
export type CliUsage = z.infer<typeof CliUsage>;

export const CliSystemMessage = z.looseObject({
  type: z.literal('system'),
  subtype: z.string(),
  session_id: z.string().optional(),
});

export const CliAssistantMessage = z.looseObject({
  type: z.literal('assistant'),
  message: z.looseObject({ content: z.array(JsonObject).optional() }),
  session_id: z.string().optional(),
});

export const CliUserMessage = z.looseObject({
  type: z.literal('user'),
  message: z.looseObject({ content: z.union([z.string(), z.array(JsonObject)]).optional() }),
  session_id: z.string().optional(),
});

export const CliStreamEvent = z.looseObject({
  type: z.literal('stream_event'),
  event: z.looseObject({ type: z.string() }),
  session_id: z.string().optional(),
});

/**
 * Ends every turn, successful or not; carries cost and usage. `session_id` is optional: a result is what
 * ends the turn, and one refused for a missing id would leave the turn running until the hung watchdog.
 */
export const CliResultMessage = z.looseObject({
  type: z.literal('result'),
  subtype: z.string(),
  is_error: z.boolean(),
  session_id: z.string().optional(),
  total_cost_usd: z.number().optional(),
  usage: CliUsage.optional(),
  num_turns: z.number().optional(),
  duration_ms: z.number().optional(),
  result: z.string().optional(),
  stop_reason: z.string().nullish(),
  terminal_reason: z.string().optional(),
  permission_denials: z.array(JsonObject).optional(),
});
export type CliResultMessage = z.infer<typeof CliResultMessage>;

export const CanUseToolRequest = z.looseObject({
  subtype: z.literal('can_use_tool'),
  tool_name: z.string(),
  input: JsonObject,
  tool_use_id: z.string().optional(),
  description: z.string().optional(),
  permission_suggestions: z.array(JsonObject).optional(),
  blocked_path: z.string().optional(),
});
export type CanUseToolRequest = z.infer<typeof CanUseToolRequest>;

/** A request from the CLI to the host (today: `can_use_tool`; hooks would come the same way). */
export const CliControlRequest = z.looseObject({
  type: z.literal('control_request'),
  request_id: z.string(),
  request: z.looseObject({ subtype: z.string() }),
});

/** The CLI's answer to one of our control requests (initialize, interrupt, set_permission_mode, ...). */
export const CliControlResponse = z.looseObject({
  type: z.literal('control_response'),
  response: z.union([
    z.looseObject({ subtype: z.literal('success'), request_id: z.string(), response: JsonObject.optional() }),
    z.looseObject({ subtype: z.literal('error'), request_id: z.string(), error: z.string() }),
  ]),
});

/** The CLI withdrew one of its own pending control requests (e.g. a permission prompt, on interrupt). */
export const CliControlCancelRequest = z.looseObject({
  type: z.literal('control_cancel_request'),
  request_id: z.string(),
});

/** Lines of a type we do not act on (tool_progress, keep_alive, ...) are kept as they are. */
export const CliOtherMessage = z.looseObject({ type: z.string() });

export type CliMessage =
  | z.infer<typeof CliSystemMessage>
  | z.infer<typeof CliAssistantMessage>
  | z.infer<typeof CliUserMessage>
  | z.infer<typeof CliStreamEvent>
  | z.infer<typeof CliResultMessage>
  | z.infer<typeof CliControlRequest>
  | z.infer<typeof CliControlResponse>
  | z.infer<typeof CliControlCancelRequest>;

/** A parsed stdout line: the known types are checked against their schema, the rest pass as `other`. */
export type ParsedCliLine =
  | { kind: 'system'; message: z.infer<typeof CliSystemMessage> }
  | { kind: 'assistant'; message: z.infer<typeof CliAssistantMessage> }
  | { kind: 'user'; message: z.infer<typeof CliUserMessage> }
  | { kind: 'stream_event'; message: z.infer<typeof CliStreamEvent> }
  | { kind: 'result'; message: z.infer<typeof CliResultMessage> }
  | { kind: 'control_request'; message: z.infer<typeof CliControlRequest> }
  | { kind: 'control_response'; message: z.infer<typeof CliControlResponse> }
  | { kind: 'control_cancel_request'; message: z.infer<typeof CliControlCancelRequest> }
  | { kind: 'other'; message: z.infer<typeof CliOtherMessage> };

export type ParseCliLineResult = { ok: true; line: ParsedCliLine } | { ok: false; error: JsonParseError };

const schemaByType = {
  system: CliSystemMessage,
  assistant: CliAssistantMessage,
  user: CliUserMessage,
  stream_event: CliStreamEvent,
  result: CliResultMessage,
  control_request: CliControlRequest,
  control_response: CliControlResponse,
  control_cancel_request: CliControlCancelRequest,
} as const;

function isKnownType(type: string): type is keyof typeof schemaByType {
  return Object.hasOwn(schemaByType, type);
}

/** Parses one stdout line of the CLI (size cap, JSON syntax, then the schema of its `type`). */
export function parseCliLine(text: string, maxBytes?: number): ParseCliLineResult {
  const base = safeParseJson(CliOtherMessage, text, maxBytes);
  if (!base.ok) return base;
  const type = base.value.type;
  if (!isKnownType(type)) return { ok: true, line: { kind: 'other', message: base.value } };
  const specific = schemaByType[type].safeParse(base.value);
  if (!specific.success) {
    const issue = specific.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    const detail = issue?.message ?? 'rejected';
    return {
      ok: false,
      error: new JsonParseError('schema_mismatch', `invalid ${type} line${where}: ${detail}`),
    };
  }
  // TypeScript cannot tie `type` to the schema it picked; the lookup table guarantees the pairing.
  return { ok: true, line: { kind: type, message: specific.data } as ParsedCliLine };
}

// ---- Host → CLI (stdin) ----

export type CliUserInput = {
  type: 'user';
  message: { role: 'user'; content: string | JsonObject[] };
  parent_tool_use_id: null;
  session_id: string;
};

export function cliUserInput(content: string | JsonObject[]): CliUserInput {
  return { type: 'user', message: { role: 'user', content }, parent_tool_use_id: null, session_id: '' };
}

export type CliHostRequest =
  | { subtype: 'initialize'; hooks: null }
  | { subtype: 'interrupt' }
  | { subtype: 'set_permission_mode'; mode: string }
  | { subtype: 'set_model'; model?: string };

export function cliControlRequest(requestId: string, request: CliHostRequest) {
  return { type: 'control_request' as const, request_id: requestId, request };
}

/** Our answer to a `can_use_tool`. `updatedInput` is mandatory on allow (the CLI rejects a bare allow). */
export type CliPermissionDecision =
  | { behavior: 'allow'; updatedInput: JsonObject }
  | { behavior: 'deny'; message: string; interrupt?: boolean };

export function cliPermissionResponse(requestId: string, decision: CliPermissionDecision) {
  return {
    type: 'control_response' as const,
    response: { subtype: 'success' as const, request_id: requestId, response: decision },
  };
}
