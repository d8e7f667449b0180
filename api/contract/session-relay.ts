/**
 * ws /ws/workspaces/:id/sessions/:sid[?after=<seq>] — the frames of the session relay, client ⇄ api ⇄ agent.
 * The desktop's chat protocol (core/protocol/chat.ts) with the relay's own envelope:
 *
 *   client → api: a ChatCommand (queue_message | user_message | question_response | permission_response |
 *                 remove_queued_message | interrupt | stop), optionally with `requestId` echoed in the answer
 *   api → client: session_snapshot (on connect without `after`, or when `after` is too old)
 *                 | session_event {event}  (every event has its seq; the replay after `after` comes first)
 *                 | caught_up {seq}        (the replay is done; what follows is live)
 *                 | command_result {requestId, command, result} | error {code, message, requestId?}
 *
 * A client that reconnects with `after=<last seq it saw>` gets exactly the events it missed, then live ones:
 * no gap and no duplicate. Nothing about a connection lives only in one api process, so the client can
 * reconnect to any.
 */
import { ChatCommand, SessionEvent, SessionSnapshot } from '@factory-factory/core/protocol';
import { z } from 'zod';

export const SESSION_RELAY_PATH =
  /^\/ws\/workspaces\/([A-Za-z0-9_-]{1,64})\/sessions\/([A-Za-z0-9][A-Za-z0-9_-]{0,99})$/;

/** A client frame: a chat command, with an optional id the answer carries back. */
export const RelayClientFrameSchema = z.intersection(
  ChatCommand,
  z.object({ requestId: z.string().min(1).max(200).optional() }),
);
export type RelayClientFrame = z.output<typeof RelayClientFrameSchema>;

export const RelayErrorCode = z.enum([
  'bad_request',
  'malformed_json',
  'frame_too_large',
  'not_found',
  'conflict',
  'queue_full',
  'vm_unavailable',
  'agent_unavailable',
  'too_slow',
  'internal',
]);

export const RelayServerFrameSchema = z.discriminatedUnion('type', [
  SessionSnapshot,
  z.object({ type: z.literal('session_event'), event: SessionEvent }),
  z.object({ type: z.literal('caught_up'), seq: z.number().int().nonnegative() }),
  z.object({
    type: z.literal('command_result'),
    requestId: z.string().nullable(),
    command: z.string(),
    result: z.record(z.string(), z.unknown()),
  }),
  z.object({
    type: z.literal('error'),
    code: RelayErrorCode,
    message: z.string(),
    requestId: z.string().nullable().optional(),
  }),
]);
export type RelayServerFrame = z.output<typeof RelayServerFrameSchema>;
export type RelayErrorCode = z.output<typeof RelayErrorCode>;
