import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AgentClient, AgentClientError } from '../../src/agent/client.js';
import { handshakeProof, newNonce } from '../../src/agent/handshake.js';
import { AGENT_PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { type AgentProcess, startAgentProcess } from '../support/agent-process.js';
import { claudeBinPath, TempDirs } from '../support/claude-cli.js';

/** Opens a raw socket, sends `lines`, and collects what comes back until the agent closes it. */
function rawExchange(
  socketPath: string,
  onLine: (line: string, socket: Socket) => void,
  first: object,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(socketPath);
    const lines: string[] = [];
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        onLine(line, socket);
      }
    });
    socket.on('close', () => resolve(lines));
    socket.on('error', reject);
    socket.write(`${JSON.stringify(first)}\n`);
  });
}

/** A listener on a socket path that records every byte a client sends, as a planted one would. */
async function recordingListener(path: string, reply?: (socket: Socket, received: string) => void) {
  const received: string[] = [];
  const server: Server = createServer((socket) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
      received.push(chunk.toString('utf8'));
      reply?.(socket, text);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('agent handshake: both sides prove the per-VM secret, nothing reusable crosses the socket', () => {
  const dirs = new TempDirs();
  let agent: AgentProcess;

  before(async () => {
    agent = await startAgentProcess({
      dir: dirs.make('handshake-agent'),
      home: dirs.make('handshake-home'),
      claudeBin: claudeBinPath(),
      fakeAnthropicUrl: 'http://127.0.0.1:9',
    });
  });

  after(async () => {
    await agent?.stop();
    dirs.cleanup();
  });

  it('connects with the right secret, and health counts authenticated connections', async () => {
    const a = await AgentClient.connect({ socketPath: agent.socketPath, secret: agent.secret });
    const b = await AgentClient.connect({ socketPath: agent.socketPath, secret: agent.secret });
    try {
      assert.equal((await a.health()).connections, 2);
    } finally {
      a.close();
      b.close();
    }
  });

  it('the client refuses an agent that does not know its secret (another VM agent), before any request', async () => {
    await assert.rejects(
      () => AgentClient.connect({ socketPath: agent.socketPath, secret: 'x'.repeat(64) }),
      (error: unknown) =>
        error instanceof AgentClientError &&
        error.code === 'unauthorized' &&
        /not the agent of this VM/.test(error.message),
    );
  });

  it('the agent refuses a client with a wrong proof, a reflected proof, a replayed proof, or no handshake', async () => {
    const challengeThen = (
      answer: (challenge: { agentNonce: string; agentProof: string }, cn: string) => object,
    ) => {
      const clientNonce = newNonce();
      return rawExchange(
        agent.socketPath,
        (line, socket) => {
          const frame = JSON.parse(line) as { type: string; agentNonce: string; agentProof: string };
          if (frame.type === 'challenge') socket.write(`${JSON.stringify(answer(frame, clientNonce))}\n`);
        },
        { type: 'hello', protocolVersion: AGENT_PROTOCOL_VERSION, clientNonce },
      );
    };
    const wrong = await challengeThen(() => ({ type: 'auth', clientProof: 'a'.repeat(64) }));
    assert.match(wrong.at(-1) ?? '', /"hello_error".*unauthorized/);

    // The agent's own proof sent back as the client's: roles are part of the MAC.
    const reflected = await challengeThen((c) => ({ type: 'auth', clientProof: c.agentProof }));
    assert.match(reflected.at(-1) ?? '', /"hello_error".*unauthorized/);

    // A proof computed for one connection's nonces is worthless on the next one.
    const stale = handshakeProof(agent.secret, 'client', newNonce(), newNonce());
    const replayed = await challengeThen(() => ({ type: 'auth', clientProof: stale }));
    assert.match(replayed.at(-1) ?? '', /"hello_error".*unauthorized/);

    const skipped = await rawExchange(agent.socketPath, () => {}, {
      type: 'request',
      id: '1',
      method: 'health.ping',
      params: {},
    });
    assert.match(skipped.join('\n'), /"hello_error"/);
    assert.doesNotMatch(skipped.join('\n'), /agentVersion|uptimeMs/);
  });

  it('listens on a socket only its owner may connect to (0600)', () => {
    const stat = statSync(agent.socketPath);
    assert.ok(stat.isSocket());
    assert.equal((stat.mode & 0o777).toString(8), '600');
  });

  it('an unauthenticated peer cannot make the agent buffer more than a small frame', async () => {
    const lines = await rawExchange(agent.socketPath, () => {}, {
      type: 'hello',
      protocolVersion: AGENT_PROTOCOL_VERSION,
      clientNonce: newNonce(),
      client: 'y'.repeat(4096),
    });
    assert.match(lines.join('\n'), /"hello_error".*frame over 1024 bytes/);
  });

  it('a listener planted on the socket path learns only a fresh nonce, and a fake challenge is refused', async () => {
    const path = join(dirs.make('planted'), 'agent.sock');
    const fakeProof = handshakeProof('guessed-secret-guessed-secret', 'agent', newNonce(), newNonce());
    const listener = await recordingListener(path, (socket, text) => {
      if (text.includes('\n'))
        socket.write(
          `${JSON.stringify({ type: 'challenge', agentNonce: newNonce(), agentProof: fakeProof })}\n`,
        );
    });
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          () => AgentClient.connect({ socketPath: path, secret: agent.secret }),
          (error: unknown) => error instanceof AgentClientError && error.code === 'unauthorized',
        );
      }
      const sent = listener.received.join('');
      assert.ok(!sent.includes(agent.secret), 'the secret crossed the socket');
      const frames = sent
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { type: string; clientNonce?: string });
      // Two hellos, each with its own nonce, and never an auth frame: the client stopped at the bad proof.
      assert.deepEqual(
        frames.map((f) => f.type),
        ['hello', 'hello'],
      );
      assert.notEqual(frames[0]?.clientNonce, frames[1]?.clientNonce);
    } finally {
      await listener.close();
    }
  });
});
