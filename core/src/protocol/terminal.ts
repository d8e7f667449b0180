import { z } from 'zod';

/**
 * PTY terminals, named like the desktop app's `/terminal` socket: the client sends create / input /
 * resize / destroy, the server sends created / output / exit / error and a terminal_list on attach.
 */
export const TERMINAL_PROTOCOL_VERSION = 1;

/** Output kept per terminal and replayed to a client that (re)attaches. */
export const TERMINAL_SCROLLBACK_BYTES = 100 * 1024;

const Cols = z.number().int().min(1).max(1000);
const Rows = z.number().int().min(1).max(1000);

export const TerminalExit = z.object({ exitCode: z.number().int(), signal: z.number().int().nullable() });
export type TerminalExit = z.infer<typeof TerminalExit>;

export const TerminalInfo = z.object({
  id: z.string(),
  /** The workspace whose directory the shell started in, or null for a home-directory terminal. */
  workspaceId: z.string().nullable(),
  pid: z.number().int(),
  cols: Cols,
  rows: Rows,
  createdAt: z.string(),
  exit: TerminalExit.nullable(),
});
export type TerminalInfo = z.infer<typeof TerminalInfo>;

// ---- client → server ----

export const TerminalCreateMessage = z.object({
  type: z.literal('create'),
  requestId: z.string().optional(),
  workspaceId: z.string().optional(),
  cols: Cols.default(80),
  rows: Rows.default(24),
});
export const TerminalInputMessage = z.object({
  type: z.literal('input'),
  terminalId: z.string(),
  data: z.string().max(64 * 1024),
});
export const TerminalResizeMessage = z.object({
  type: z.literal('resize'),
  terminalId: z.string(),
  cols: Cols,
  rows: Rows,
});
export const TerminalDestroyMessage = z.object({ type: z.literal('destroy'), terminalId: z.string() });

export const TerminalClientMessage = z.discriminatedUnion('type', [
  TerminalCreateMessage,
  TerminalInputMessage,
  TerminalResizeMessage,
  TerminalDestroyMessage,
]);
export type TerminalClientMessage = z.infer<typeof TerminalClientMessage>;

// ---- server → client ----

export const TerminalServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('terminal_list'),
    terminals: z.array(z.object({ id: z.string(), createdAt: z.string(), outputBuffer: z.string() })),
  }),
  z.object({
    type: z.literal('created'),
    terminalId: z.string(),
    requestId: z.string().optional(),
    outputBuffer: z.string().optional(),
  }),
  z.object({ type: z.literal('output'), terminalId: z.string(), data: z.string() }),
  z.object({
    type: z.literal('exit'),
    terminalId: z.string(),
    exitCode: z.number().int(),
    signal: z.number().int().nullable(),
  }),
  /**
   * `code` is stable for clients to branch on (e.g. `invalid_message`, `terminal_not_found`, `vm_unavailable`,
   * `input_overflow`); `message` is for the user and never carries host details.
   */
  z.object({
    type: z.literal('error'),
    code: z.string(),
    message: z.string(),
    requestId: z.string().optional(),
  }),
]);
export type TerminalServerMessage = z.infer<typeof TerminalServerMessage>;

/** Events a terminal subscriber receives after its scrollback replay. */
export const TerminalEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('output'), terminalId: z.string(), data: z.string() }),
  z.object({
    type: z.literal('exit'),
    terminalId: z.string(),
    exitCode: z.number().int(),
    signal: z.number().int().nullable(),
  }),
]);
export type TerminalEvent = z.infer<typeof TerminalEvent>;
