/**
 * Mutual authentication of an agent connection on the per-VM secret, with nothing reusable on the wire.
 *
 *   client → agent   hello     {clientNonce}
 *   agent  → client  challenge {agentNonce, agentProof = MAC(secret, "agent", clientNonce, agentNonce)}
 *   client → agent   auth      {clientProof = MAC(secret, "client", clientNonce, agentNonce)}
 *   agent  → client  hello_ok
 *
 * Why both ways: the cloud reaches the agent through a socket path inside a directory the VM's user can
 * write, so whatever answers there may be another VM's agent (a planted symlink) or a listener of the
 * user's own. The client checks the agent's proof before it sends anything but its nonce, so such a peer
 * learns only a random nonce; the agent checks the client's proof before it serves a request. The two
 * roles are in the MAC, so a proof can never be reflected back as the other side's, and fresh nonces on
 * both sides make every proof good for one connection only.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type HandshakeRole = 'agent' | 'client';

/** 32 random bytes as hex: what both sides send as their nonce. */
export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

export function handshakeProof(
  secret: string,
  role: HandshakeRole,
  clientNonce: string,
  agentNonce: string,
): string {
  return createHmac('sha256', secret)
    .update(`ff-agent-handshake/v1\n${role}\n${clientNonce}\n${agentNonce}`)
    .digest('hex');
}

/** Constant time; a proof of the wrong length is simply wrong. */
export function proofMatches(
  presented: string,
  secret: string,
  role: HandshakeRole,
  clientNonce: string,
  agentNonce: string,
): boolean {
  const expected = Buffer.from(handshakeProof(secret, role, clientNonce, agentNonce), 'utf8');
  const given = Buffer.from(presented, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
