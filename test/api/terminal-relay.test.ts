/**
 * The terminal relay is bounded and leak-free (issue 8, section 4): every way a client can leave or misbehave
 * releases the agent connection and the keep-alive timer of its relay, and errors carry codes without host
 * details. Real api (in this process, ephemeral port), real Temporal, real Docker and the real VM image; the
 * agent's own count of open connections (health.ping) shows what the api still holds.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AgentClient } from '@factory-factory/core/agent-client';
import { safeParseJson, TerminalServerMessage } from '@factory-factory/core/protocol';
import type { Client } from '@temporalio/client';
import type Docker from 'dockerode';
import { createActivities } from '../../activities/index.js';
import type { VmContainerRef } from '../../activities/vm/types.js';
import { createDevKeyAuthenticator } from '../../api/auth/dev-key.js';
import { firstOf } from '../../api/auth/principal.js';
import { type TerminalRelayLimits, type TerminalRoute, terminalRoute } from '../../api/ws/terminal.js';
import { createLogger } from '../../platform/logger.js';
import { connectVmAgent, vmAgentSocketPath } from '../../platform/vm-agent.js';
import { startTestApi, type TestApi, type TestApiServices } from '../support/api.js';
import { request } from '../support/http.js';
import { RawWsClient } from '../support/raw-ws.js';
import {
  connectTestTemporal,
  createMigratedDatabase,
  type TestDatabase,
  testConfig,
  testDocker,
  uniqueSuffix,
} from '../support/services.js';
import { TerminalClient } from '../support/terminal-client.js';
import { eventually, removeUserVm } from '../support/vm.js';
import { connectTestAgent } from '../support/vm-terminal.js';
import { type RunningTestWorker, startTestWorker } from '../support/worker.js';

const IDLE_TIMEOUT_MS = 10_000;
const PING_INTERVAL_MS = 1000;
const KEEP_ALIVE_MS = 1000;
const FLOOD_BYTES = 100 * 1024 * 1024;
const MB = 1024 * 1024;
const AGENT_IDLE_CLOSE_MS = 300;

/** What a message to a client must never contain: paths, socket names, errno codes, stack frames. */
const HOST_DETAIL =
  /\/(work|tmp|run|var|home|root|proc|srv|opt)\b|\.sock\b|\bE[A-Z]{3,}\b|\bat .+:\d+|Error:/;

describe('terminal relay: bounded and leak-free (real Temporal, Docker, VM image)', function () {
  this.timeout(10 * 60_000);
  const suffix = uniqueSuffix();
  const alice = { key: `alice-key-${suffix}`, userId: `alice-${suffix}` };
  const bob = { key: `bob-key-${suffix}`, userId: `bob-${suffix}` };
  let temporal: Client;
  let docker: Docker;
  let db: TestDatabase;
  let worker: RunningTestWorker;
  let api: TestApi;
  let route: TerminalRoute;
  /** A second api whose clients are never pinged, so only the output cap can cut a slow reader off. */
  let slowApi: TestApi;
  let slowRoute: TerminalRoute;

  /** While set, the relay's connectAgent waits for `release` before it connects. */
  let connectGate: { reached: () => void; release: Promise<void> } | null = null;
  /** Connections the gated connectAgent handed to a relay. */
  const gatedAgents: AgentClient[] = [];
  /** While set, connectAgent fails the way a VM with a missing secret file does (ENOENT, with a host path). */
  let breakAgent = false;

  /**
   * How the api's shared agent connections (AgentConnections) reach the VM here: gated or broken on demand.
   * Relays hold leases on those connections; one nobody holds closes after AGENT_IDLE_CLOSE_MS, which is
   * when the agent's count drops.
   */
  const connectAgent = async (ref: VmContainerRef): Promise<AgentClient> => {
    const gate = connectGate;
    if (gate) {
      gate.reached();
      await gate.release;
      const agent = await connectTestAgent(ref, 'api-terminal-test');
      gatedAgents.push(agent);
      return agent;
    }
    if (breakAgent)
      return connectVmAgent(
        { socketPath: vmAgentSocketPath(ref.runDir), secretFile: join(ref.runDir, 'no-such-secret') },
        { clientName: 'api-terminal-test' },
      );
    return connectTestAgent(ref, 'api-terminal-test');
  };

  const makeRoute = (
    services: TestApiServices,
    pingIntervalMs: number,
    limits: Partial<TerminalRelayLimits>,
  ) =>
    terminalRoute({
      authenticator: firstOf(
        createDevKeyAuthenticator({ key: alice.key, userId: alice.userId }),
        createDevKeyAuthenticator({ key: bob.key, userId: bob.userId }),
      ),
      pool: db.pool,
      vms: services.vms,
      agents: services.agents,
      log: createLogger('terminal-relay-test', 'silent'),
      pingIntervalMs,
      limits: { keepAliveMs: KEEP_ALIVE_MS, ...limits },
    });

  before(async () => {
    temporal = await connectTestTemporal();
    docker = testDocker();
    db = await createMigratedDatabase();
    worker = await startTestWorker(createActivities({ docker, temporal, pool: db.pool, vm: testConfig.vm }));
    const users = { [alice.key]: alice.userId, [bob.key]: bob.userId };
    const vmSettings = { agentTimeoutMs: 90_000, idleTimeoutMs: IDLE_TIMEOUT_MS };
    api = await startTestApi({
      databaseUrl: db.url,
      users,
      taskQueue: worker.taskQueue,
      vmSettings,
      connectAgent,
      agentIdleCloseMs: AGENT_IDLE_CLOSE_MS,
      wsRoutes: (services) => {
        route = makeRoute(services, PING_INTERVAL_MS, {});
        return [route];
      },
    });
    slowApi = await startTestApi({
      databaseUrl: db.url,
      users,
      taskQueue: worker.taskQueue,
      vmSettings,
      connectAgent,
      agentIdleCloseMs: AGENT_IDLE_CLOSE_MS,
      wsRoutes: (services) => {
        slowRoute = makeRoute(services, 10 * 60_000, { maxBufferedOutputBytes: 256 * 1024 });
        return [slowRoute];
      },
    });
  });

  after(async () => {
    for (const agent of gatedAgents) agent.close();
    for (const userId of [alice.userId, bob.userId]) await removeUserVm(temporal, docker, userId);
    await slowApi?.stop();
    await api?.stop();
    await worker?.stop();
    await db?.drop();
    await temporal?.connection.close();
  });

  const terminalUrl = (which: TestApi = api) => `${which.api.url.replace('http', 'ws')}/ws/vms/me/terminal`;
  const auth = (who: { key: string }) => ({ authorization: `Bearer ${who.key}` });
  const vmStatus = async (userId: string) => (await api.vms.get(userId)).status;

  /** Connections to the user's agent other than the probe's own (readies the VM, which counts as use). */
  async function otherAgentConnections(userId: string): Promise<number> {
    const agent = await connectTestAgent(await api.vms.agentEndpoint(userId), 'terminal-relay-test-probe');
    try {
      return (await agent.health()).connections - 1;
    } finally {
      agent.close();
    }
  }

  /** Polls until the agent counts exactly `expected` connections besides the probe. */
  async function expectAgentConnections(userId: string, expected: number): Promise<void> {
    let seen = -1;
    await eventually(
      `${expected} agent connection(s) of ${userId}`,
      async () => {
        seen = await otherAgentConnections(userId);
        return seen === expected ? true : undefined;
      },
      60_000,
      250,
    ).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; the agent counted ${seen}`);
    });
  }

  async function expectNothingHeld(which: TerminalRoute, userId: string): Promise<void> {
    await eventually('the relay released everything', async () => {
      const stats = which.stats(userId);
      return stats.relays === 0 &&
        stats.agentConnections === 0 &&
        stats.keepAliveTimers === 0 &&
        stats.pingTimers === 0 &&
        stats.queuedInputBytes === 0
        ? true
        : undefined;
    });
  }

  /** Kills every live terminal of the user's VM (terminals outlive their sockets). */
  async function killTerminals(userId: string): Promise<void> {
    const agent = await connectTestAgent(await api.vms.agentEndpoint(userId), 'terminal-relay-test-cleanup');
    try {
      for (const t of await agent.listTerminals()) if (t.exit === null) await agent.killTerminal(t.id);
    } finally {
      agent.close();
    }
  }

  function assertNoHostDetails(messages: { code: string; message: string }[]): void {
    for (const { code, message } of messages) {
      assert.match(code, /^[a-z_]+$/, `a stable code, not ${code}`);
      assert.doesNotMatch(message, HOST_DETAIL, `no host details in ${JSON.stringify(message)}`);
      for (const secretish of [testConfig.vm.runDirRoot, testConfig.vm.secretRoot, 'agent.sock', 'secret'])
        assert.ok(!message.includes(secretish), `${JSON.stringify(message)} names ${secretish}`);
    }
  }

  it('provisions two users’ VMs; open relays share one agent connection, closed ones hold nothing', async () => {
    for (const who of [alice, bob]) {
      const created = await request(`${api.api.url}/api/vms`, { method: 'POST', headers: auth(who) });
      assert.equal(created.status, 200, created.text);
    }
    const client = await TerminalClient.open(terminalUrl(), alice.key);
    await client.waitFor('terminal_list');
    const terminalId = await client.createTerminal('r1');
    await client.run(terminalId, 'echo relay-$((6*7))', 'relay-42');
    assert.deepEqual(
      { ...route.stats(alice.userId), ended: {} },
      { relays: 1, agentConnections: 1, keepAliveTimers: 1, pingTimers: 1, queuedInputBytes: 0, ended: {} },
    );
    await expectAgentConnections(alice.userId, 1);

    // A second relay of the same user rides the same connection.
    const second = await TerminalClient.open(terminalUrl(), alice.key);
    await second.waitFor('terminal_list');
    assert.equal(route.stats(alice.userId).agentConnections, 2, 'both relays hold a lease');
    await expectAgentConnections(alice.userId, 1);
    await second.close();

    await client.close();
    await expectNothingHeld(route, alice.userId);
    await expectAgentConnections(alice.userId, 0);
    await killTerminals(alice.userId);
  });

  it('answers bad requests with codes and fixed messages, and never sends host details', async () => {
    const client = await TerminalClient.open(terminalUrl(), alice.key);
    await client.waitFor('terminal_list');
    client.send('{not json');
    assert.equal(
      (await client.waitFor('error', (m) => m.code === 'invalid_message')).code,
      'invalid_message',
    );
    client.send({ type: 'input', terminalId: 'no-such-terminal', data: 'x' });
    await client.waitFor('error', (m) => m.code === 'terminal_not_found');
    client.send({ type: 'create', requestId: 'ws', workspaceId: 'no-such-workspace' });
    const noWorkspace = await client.waitFor('error', (m) => m.requestId === 'ws');
    assert.equal(noWorkspace.code, 'workspace_not_found');
    assert.equal(client.ws.readyState, client.ws.OPEN, 'bad requests do not end the relay');
    assertNoHostDetails(client.errors());
    await client.close();

    // The agent cannot be reached: the underlying error names a host path (ENOENT … /vm-run/…/no-such-secret).
    // Only a new connection goes through the door, so wait until the shared one closed unused.
    await eventually('the unused shared connection closed', async () =>
      api.agents.stats(alice.userId).connections === 0 ? true : undefined,
    );
    breakAgent = true;
    try {
      const broken = await TerminalClient.open(terminalUrl(), alice.key);
      const closed = await broken.closed;
      assert.equal(closed.code, 1011);
      assert.equal(closed.reason, 'vm_unavailable');
      assert.deepEqual(
        broken.errors().map((e) => e.code),
        ['vm_unavailable'],
      );
      assertNoHostDetails(broken.errors());
    } finally {
      breakAgent = false;
    }
    await expectNothingHeld(route, alice.userId);

    // The agent goes away under an open relay (the VM is suspended).
    const attached = await TerminalClient.open(terminalUrl(), alice.key);
    await attached.waitFor('terminal_list');
    const suspended = await request(`${api.api.url}/api/vms/me/suspend`, {
      method: 'POST',
      headers: auth(alice),
    });
    assert.equal(suspended.status, 200, suspended.text);
    const lost = await attached.closed;
    assert.deepEqual(lost, { code: 1011, reason: 'vm_disconnected' });
    assert.deepEqual(
      attached.errors().map((e) => e.code),
      ['vm_disconnected'],
    );
    assertNoHostDetails(attached.errors());
    await expectNothingHeld(route, alice.userId);
  });

  it('cuts off a 100 MB input flood with input_overflow; api memory stays flat, other users keep working', async () => {
    const bobs = await TerminalClient.open(terminalUrl(), bob.key);
    await bobs.waitFor('terminal_list');
    const bobTerminal = await bobs.createTerminal('bob');
    await bobs.run(bobTerminal, 'echo bob-$((1+1))', 'bob-2');

    const flooder = await TerminalClient.open(terminalUrl(), alice.key);
    await flooder.waitFor('terminal_list');
    const sink = await flooder.createTerminal('sink');
    // Whatever gets through goes to a reader that discards it, with no echo (so the test holds no output).
    await flooder.run(sink, "stty -echo; printf 'sink-%s\\n' ready; cat >/dev/null", 'sink-ready');

    const line = `${'x'.repeat(1023)}\n`;
    const frame = JSON.stringify({ type: 'input', terminalId: sink, data: line.repeat(60) });
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    }, 10);
    let sent = 0;
    let closed: { code: number; reason: string } | null = null;
    // Bob keeps typing while alice floods.
    const bobDuring = bobs.run(bobTerminal, 'echo during-$((2+2))', 'during-4');
    try {
      // Generated lazily: one frame reused, each written to the socket before the next.
      while (sent < FLOOD_BYTES && flooder.ws.readyState === flooder.ws.OPEN) {
        const ok = await flooder.sendAndFlush(frame).then(
          () => true,
          () => false,
        );
        if (!ok) break;
        sent += frame.length;
      }
      // Had all of it gone through, the relay would still be working off its queue; give it that time.
      closed = await Promise.race([
        flooder.closed,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000)),
      ]);
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    } finally {
      clearInterval(sampler);
    }
    const rssAfter = process.memoryUsage.rss();
    // The figures the issue asks for; nothing else of them is asserted but the bound below.
    process.stdout.write(
      `      flood: sent ${(sent / MB).toFixed(1)} MB of ${FLOOD_BYTES / MB} MB before the cut-off; api+test RSS ` +
        `before ${(rssBefore / MB).toFixed(0)} MB, peak ${(rssPeak / MB).toFixed(0)} MB, after ${(rssAfter / MB).toFixed(0)} MB\n`,
    );
    assert.deepEqual(closed, { code: 1008, reason: 'input_overflow' }, 'the flood was cut off');
    assert.ok(sent < FLOOD_BYTES, 'the flood was cut off before it ended');
    assert.deepEqual(
      flooder.errors().map((e) => e.code),
      ['input_overflow'],
    );
    assertNoHostDetails(flooder.errors());
    assert.ok(
      rssPeak - rssBefore < 64 * MB,
      `RSS grew by ${((rssPeak - rssBefore) / MB).toFixed(0)} MB during a ${FLOOD_BYTES / MB} MB flood`,
    );
    await expectNothingHeld(route, alice.userId);

    await bobDuring;
    await bobs.run(bobTerminal, 'echo after-$((3+3))', 'after-6');
    assert.equal(route.stats(bob.userId).agentConnections, 1, "bob's relay is untouched");
    await expectAgentConnections(alice.userId, 0);

    // Alice's VM survived it: a new connection lists the sink and works.
    const again = await TerminalClient.open(terminalUrl(), alice.key);
    const list = await again.waitFor('terminal_list');
    assert.ok(list.terminals.some((t) => t.id === sink));
    const fresh = await again.createTerminal('after');
    await again.run(fresh, 'echo alice-$((4+4))', 'alice-8');
    await again.close();
    await bobs.close();
    await expectNothingHeld(route, bob.userId);
    await killTerminals(alice.userId);
    await killTerminals(bob.userId);
  });

  it('terminates a half-open client (no pong) and releases its agent connection and timers', async () => {
    const before = route.stats().ended.ping_timeout ?? 0;
    const raw = await RawWsClient.open(terminalUrl(), ['ffc.terminal.v1', `bearer.${alice.key}`]);
    // Answers pings until the relay is fully up, then goes silent.
    await eventually('terminal_list', async () =>
      raw.texts.some((t) => t.includes('"terminal_list"')) ? true : undefined,
    );
    assert.equal(route.stats(alice.userId).agentConnections, 1);
    assert.equal(route.stats(alice.userId).keepAliveTimers, 1);
    await expectAgentConnections(alice.userId, 1);
    await eventually('a ping answered', async () => (raw.pings > 0 ? true : undefined));

    raw.stopReading();
    await eventually('the ping timeout', async () =>
      (route.stats().ended.ping_timeout ?? 0) === before + 1 ? true : undefined,
    );
    await expectNothingHeld(route, alice.userId);
    await expectAgentConnections(alice.userId, 0);
    // The api dropped the TCP connection: reading again reaches its end.
    raw.resumeReading();
    await raw.closed;
  });

  it('cuts off a client that does not read its output once ws.bufferedAmount passes the cap', async () => {
    const before = slowRoute.stats().ended.output_overflow ?? 0;
    const raw = await RawWsClient.open(terminalUrl(slowApi), ['ffc.terminal.v1', `bearer.${alice.key}`]);
    await eventually('terminal_list', async () =>
      raw.texts.some((t) => t.includes('"terminal_list"')) ? true : undefined,
    );
    raw.sendText(JSON.stringify({ type: 'create', requestId: 'slow', cols: 200, rows: 50 }));
    const created = await eventually('created', async () =>
      raw.texts.find((t) => t.includes('"requestId":"slow"')),
    );
    const parsed = safeParseJson(TerminalServerMessage, created);
    assert.ok(parsed.ok && parsed.value.type === 'created', created);
    const terminalId = parsed.value.terminalId;
    raw.stopReading();
    // ~40 MB of output, far more than the kernel's socket buffers hold.
    raw.sendText(
      JSON.stringify({ type: 'input', terminalId, data: 'yes 0123456789abcdef | head -n 2500000\r' }),
    );
    await eventually('the output cut-off', async () =>
      (slowRoute.stats().ended.output_overflow ?? 0) === before + 1 ? true : undefined,
    );
    await expectNothingHeld(slowRoute, alice.userId);
    await expectAgentConnections(alice.userId, 0);
    raw.destroy();
    await killTerminals(alice.userId);
  });

  it('a client that closes while the VM resumes or while the api connects to the agent leaves nothing behind; the VM idles', async () => {
    // 1. While the VM is being resumed (the relay is waiting in agentEndpoint).
    const suspended = await request(`${api.api.url}/api/vms/me/suspend`, {
      method: 'POST',
      headers: auth(alice),
    });
    assert.equal(suspended.status, 200, suspended.text);
    const early = await TerminalClient.open(terminalUrl(), alice.key);
    early.send({ type: 'create', requestId: 'too-early' });
    await early.close();
    await expectNothingHeld(route, alice.userId);
    await eventually('the resume the relay asked for', async () =>
      ['ONBOARDING', 'READY'].includes(await vmStatus(alice.userId)) ? true : undefined,
    );
    await expectAgentConnections(alice.userId, 0);

    // 2. While the api connects to the agent: the connection arrives after the client left.
    let reached = () => {};
    const reachedGate = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release = () => {};
    connectGate = {
      reached,
      release: new Promise<void>((resolve) => {
        release = resolve;
      }),
    };
    const gatedBefore = gatedAgents.length;
    try {
      const leaving = await TerminalClient.open(terminalUrl(), alice.key);
      await reachedGate;
      await leaving.close();
      await expectNothingHeld(route, alice.userId);
    } finally {
      connectGate = null;
      release();
    }
    const late = await eventually('the late agent connection', async () => gatedAgents[gatedBefore]);
    await eventually('the unused late connection closed', async () => (late.isClosed ? true : undefined));
    await expectAgentConnections(alice.userId, 0);
    assert.deepEqual(
      { ...route.stats(), ended: {} },
      { relays: 0, agentConnections: 0, keepAliveTimers: 0, pingTimers: 0, queuedInputBytes: 0, ended: {} },
    );

    // No touch timer keeps it awake: the VM is suspended on its idle schedule.
    await eventually(
      'the VM suspended as idle',
      async () => ((await vmStatus(alice.userId)) === 'SUSPENDED' ? true : undefined),
      IDLE_TIMEOUT_MS * 6,
      500,
    );
  });

  it('an open but silent terminal tab does not keep the VM awake: it suspends on its idle schedule', async () => {
    const client = await TerminalClient.open(terminalUrl(), alice.key);
    try {
      await client.waitFor('terminal_list');
      const terminalId = await client.createTerminal('silent');
      await client.run(terminalId, 'echo used-$((6*7))', 'used-42');
      assert.equal(route.stats(alice.userId).keepAliveTimers, 1, 'the relay runs its keepalive timer');
      // Nothing typed, nothing printed: ticks of the keepalive (every second here) are not use.
      await eventually(
        'the VM suspended as idle with the tab open',
        async () => ((await vmStatus(alice.userId)) === 'SUSPENDED' ? true : undefined),
        IDLE_TIMEOUT_MS * 6,
        500,
      );
    } finally {
      await client.close();
    }
  });
});
