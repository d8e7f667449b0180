// The agent client against a fake agent on a unix socket that speaks the real handshake and then sends
// frames the client cannot read: each must surface as an error, never as a silent gap in a feed.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AgentClient, type AgentProtocolError } from '../../src/agent/client.js';
import { handshakeProof, newNonce } from '../../src/agent/handshake.js';
import { AGENT_PROTOCOL_VERSION, type SessionEvent } from '../../src/protocol/index.js';
import { initialTranscriptState, snapshotOf } from '../../src/session/index.js';
import { TempDirs } from '../support/claude-cli.js';

const SECRET = 'fake-agent-secret-0123456789';
const MAX_FRAME_BYTES = 64 * 1024;

/** A fake agent: the mutual handshake, then session.subscribe answered with an empty snapshot. */
class FakeAgent {
  readonly socketPath: string;
  private server: Server | null = null;
  private peer: Socket | null = null;
  /** subscriptionIds in the order the client subscribed. */
  readonly subscriptions: string[] = [];
  readonly unsubscribed: string[] = [];

  constructor(dir: string) {
    this.socketPath = join(dir, 'fake-agent.sock');
  }

  async listen(): Promise<void> {
    this.server = createServer((socket) => this.serve(socket));
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(this.socketPath, resolve));
  }

  /** Writes raw bytes (a frame, or not) to the connected client. */
  send(text: string): void {
    assert.ok(this.peer, 'a client is connected');
    this.peer.write(text);
  }

  sendEvent(subscriptionId: string, event: SessionEvent): void {
    this.send(`${JSON.stringify({ type: 'event', subscriptionId, event })}\n`);
  }

  async close(): Promise<void> {
    this.peer?.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.peer = socket;
    const agentNonce = newNonce();
    let clientNonce = '';
    let buffered = '';
    const reply = (frame: object) => socket.write(`${JSON.stringify(frame)}\n`);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const frame = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        if (frame.type === 'hello') {
          clientNonce = String(frame.clientNonce);
          reply({
            type: 'challenge',
            agentNonce,
            agentProof: handshakeProof(SECRET, 'agent', clientNonce, agentNonce),
          });
        } else if (frame.type === 'auth') {
          reply({ type: 'hello_ok', protocolVersion: AGENT_PROTOCOL_VERSION, agentVersion: 'fake-1' });
        } else if (frame.type === 'request') {
          const params = frame.params as Record<string, unknown>;
          if (frame.method === 'session.subscribe') {
            this.subscriptions.push(String(params.subscriptionId));
            reply({
              type: 'response',
              id: frame.id,
              ok: true,
              result: { snapshot: snapshotOf(initialTranscriptState(new Date().toISOString())) },
            });
          } else if (frame.method === 'unsubscribe') {
            this.unsubscribed.push(String(params.subscriptionId));
            reply({ type: 'response', id: frame.id, ok: true, result: { ok: true } });
          }
        }
      }
    });
  }
}

function errorEvent(seq: number, message: string): SessionEvent {
  return {
    seq,
    at: new Date().toISOString(),
    payload: { type: 'session_error', code: 'process_exited', message },
  };
}

describe('agent client: a frame it cannot read is reported, never a silent gap', () => {
  const dirs = new TempDirs();
  let fake: FakeAgent;
  let client: AgentClient;
  let protocolErrors: AgentProtocolError[];

  beforeEach(async () => {
    fake = new FakeAgent(dirs.make('fake-agent'));
    await fake.listen();
    client = await AgentClient.connect({
      socketPath: fake.socketPath,
      secret: SECRET,
      maxFrameBytes: MAX_FRAME_BYTES,
    });
    protocolErrors = [];
    client.onProtocolError((error) => protocolErrors.push(error));
  });

  afterEach(async () => {
    client.close();
    await fake.close();
    dirs.cleanup();
  });

  async function subscribeTwo() {
    const first = await client.subscribeSession('s1');
    const second = await client.subscribeSession('s2');
    const [firstId, secondId] = fake.subscriptions;
    assert.ok(firstId && secondId);
    return { first, second, firstId, secondId };
  }

  for (const [name, frame, code] of [
    ['an unparseable frame', '{"type":"event","subscriptionId":\n', 'malformed_frame'],
    ['an oversize frame', `{"type":"event","padding":"${'x'.repeat(MAX_FRAME_BYTES)}"}\n`, 'oversize_frame'],
  ] as const) {
    it(`${name} that names no subscription ends every feed with an error`, async () => {
      const { first, second, firstId, secondId } = await subscribeTwo();
      const seen: SessionEvent[] = [];
      first.on((event) => seen.push(event));
      fake.sendEvent(firstId, errorEvent(1, 'before'));
      fake.send(frame);

      const [firstEnd, secondEnd] = await Promise.all([first.ended, second.ended]);
      assert.equal(firstEnd?.code, 'bad_request');
      assert.match(firstEnd?.message ?? '', /subscribe again/);
      assert.equal(secondEnd?.code, 'bad_request');
      assert.deepEqual(
        seen.map((e) => e.seq),
        [1],
        'the event before the bad frame arrived',
      );
      assert.deepEqual(
        protocolErrors.map((e) => [e.code, e.subscriptionId]),
        [[code, null]],
      );
      // The agent is told to stop feeding them, and the connection stays usable.
      await waitFor(() => fake.unsubscribed.length === 2);
      assert.deepEqual([...fake.unsubscribed].sort(), [firstId, secondId].sort());
      assert.equal(client.isClosed, false);
      const again = await client.subscribeSession('s1');
      assert.equal(again.isEnded, false);
    });
  }

  it('a bad frame that names its subscription ends only that feed', async () => {
    const { first, second, firstId, secondId } = await subscribeTwo();
    const later: SessionEvent[] = [];
    second.on((event) => later.push(event));
    fake.send(`${JSON.stringify({ type: 'subscription_ended', subscriptionId: firstId, reason: 'nope' })}\n`);
    const ended = await first.ended;
    assert.equal(ended?.code, 'bad_request');
    assert.deepEqual(
      protocolErrors.map((e) => [e.code, e.subscriptionId]),
      [['malformed_frame', firstId]],
    );
    fake.sendEvent(secondId, errorEvent(1, 'still flowing'));
    await waitFor(() => later.length === 1);
    assert.equal(second.isEnded, false);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.ok(condition(), 'condition reached');
}
