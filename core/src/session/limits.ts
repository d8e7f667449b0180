import { MAX_MESSAGE_BYTES } from '../protocol/index.js';
import { DEFAULT_EVENT_RING_LIMITS } from './event-ring.js';

export interface SessionLimits {
  /** Messages waiting behind the running turn; one more is rejected. */
  maxQueuedMessages: number;
  /**
   * An unanswered permission request or question is denied after this long; 0 (the default) waits for
   * the human however long it takes. A question that answers itself while the user is away is worse
   * than one that waits: a deployment that wants a deadline sets one.
   */
  interactiveTimeoutMs: number;
  /** How long stop() waits after interrupt and again after closing stdin before killing the group. */
  stopGraceMs: number;
  /** A turn with no CLI output (and no question pending) for this long is killed as hung. */
  hungTimeoutMs: number;
  initializeTimeoutMs: number;
  controlTimeoutMs: number;
  maxLineBytes: number;
  /** The replay ring (recent events, transient ones included, for resumed subscriptions): events held. */
  replayMaxEvents: number;
  /** ... and encoded JSON bytes held. */
  replayMaxBytes: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxQueuedMessages: 100,
  interactiveTimeoutMs: 0,
  stopGraceMs: 5_000,
  hungTimeoutMs: 60 * 60_000,
  initializeTimeoutMs: 30_000,
  controlTimeoutMs: 60_000,
  maxLineBytes: MAX_MESSAGE_BYTES,
  replayMaxEvents: DEFAULT_EVENT_RING_LIMITS.maxEvents,
  replayMaxBytes: DEFAULT_EVENT_RING_LIMITS.maxBytes,
};
