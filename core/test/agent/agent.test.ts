import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { AgentClient, AgentClientError } from '../../src/agent/client.js';
import { AGENT_PROTOCOL_VERSION, type SessionEvent } from '../../src/protocol/index.js';
import { applySessionEvent, snapshotOf, transcriptStateFromSnapshot } from '../../src/session/index.js';
import { type AgentProcess, createReadyWorkspace, startAgentProcess } from '../support/agent-process.js';
import { claudeBinPath, TempDirs } from '../support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../support/fake-anthropic.js';
import { collect, isResult } from '../support/feed-events.js';
import { createGitSandbox, type GitSandbox } from '../support/git-sandbox.js';

/** The real agent process over its unix socket, with the real CLI behind it. */
describe('agent over its unix socket', () => {
  const dirs = new TempDirs();
  let fake: FakeAnthropic;
  let agent: AgentProcess;
  let home: string;
  let agentDir: string;
  let sandbox: GitSandbox;
  let repoUrl: string;
  const clients: AgentClient[] = [];

  async function client(): Promise<AgentClient> {
    const c = await agent.connect();
    clients.push(c);
    return c;
  }

  async function startAgent(): Promise<AgentProcess> {
    return startAgentProcess({ dir: agentDir, home, claudeBin: claudeBinPath(), fakeAnthropicUrl: fake.url });
  }

  /** A fresh worktree on a new branch of the test repository. */
  const workspaceFor = (c: AgentClient, name: string) =>
    createReadyWorkspace(c, { source: 'MANUAL', repoUrl, name });

  before(async () => {
    sandbox = createGitSandbox();
    repoUrl = await sandbox.createRemote('acme/app', { 'README.md': '# app\n' });
    fake = await startFakeAnthropic();
    home = dirs.make('agent-home');
    agentDir = dirs.make('agent');
    agent = await startAgent();
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  after(async () => {
    await agent?.stop();
    await fake?.close();
    sandbox?.cleanup();
    dirs.cleanup();
  });

  it('refuses a wrong secret and a connection that skips the hello', async () => {
    await assert.rejects(
      () => AgentClient.connect({ socketPath: agent.socketPath, secret: 'wrong-secret-wrong-secret' }),
      (error: unknown) => error instanceof AgentClientError && error.code === 'unauthorized',
    );

    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(agent.socketPath);
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('utf8');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.write(`${JSON.stringify({ type: 'request', id: '1', method: 'health.ping', params: {} })}\n`);
    });
    assert.match(reply, /"hello_error"/);
    assert.doesNotMatch(reply, /agentVersion/);
  });

  it('reports health: version, uptime, memory, sessions and credentials', async () => {
    const c = await client();
    const health = await c.health();
    assert.equal(health.agentVersion, c.agentVersion);
    assert.equal(health.protocolVersion, AGENT_PROTOCOL_VERSION);
    assert.ok(health.uptimeMs >= 0);
    assert.ok(health.rssBytes > 0);
    assert.equal(typeof health.liveSessions, 'number');
    // The API key is configured for claude; nobody logged gh in on this fresh HOME.
    assert.deepEqual(health.credentials, { gh: false, claude: true });
  });

  it('gives two subscribers the same events in the same order', async () => {
    const [a, b] = [await client(), await client()];
    const workspace = await workspaceFor(a, 'two-subs');
    const session = await a.createSession({ workspaceId: workspace.id });
    const feedA = collect(await a.subscribeSession(session.id));
    const feedB = collect(await b.subscribeSession(session.id));

    fake.script(turns.write('two.txt', 'two\n'));
    await a.sendMessage({ sessionId: session.id, text: 'write two.txt' });
    const request = await feedB.until((e) => e.payload.type === 'permission_request');
    assert.equal(request.payload.type, 'permission_request');
    if (request.payload.type !== 'permission_request') return;
    await b.answerPermission({ sessionId: session.id, requestId: request.payload.requestId, allow: true });
    await feedA.until(isResult);
    // Everything the session has emitted so far, then compare the two feeds up to there.
    const lastSeq = (await a.getSession(session.id)).snapshot.seq;
    await feedA.until((e) => e.seq === lastSeq);
    await feedB.until((e) => e.seq === lastSeq);

    assert.ok(feedA.events.length > 5);
    assert.deepEqual(feedA.events, feedB.events);
    const seqs = feedA.events.map((e) => e.seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => (seqs[0] ?? 0) + i),
      'consecutive seq numbers',
    );
  });

  it('gives a late subscriber a snapshot and then live events with no gap and no duplicate', async () => {
    const [early, late] = [await client(), await client()];
    const workspace = await workspaceFor(early, 'late');
    const session = await early.createSession({ workspaceId: workspace.id });
    const earlyFeed = await early.subscribeSession(session.id);
    const earlyEvents = collect(earlyFeed);

    fake.script(turns.ask('Ship it?', ['Yes', 'No'], 'Ship'));
    await early.sendMessage({ sessionId: session.id, text: 'ask me before shipping' });
    const question = await earlyEvents.until((e) => e.payload.type === 'user_question');

    // Join mid-turn, while the question is pending.
    const lateFeed = await late.subscribeSession(session.id);
    const lateEvents = collect(lateFeed);
    assert.equal(lateFeed.snapshot.pendingInteractiveRequest?.kind, 'question');
    assert.ok(lateFeed.snapshot.seq >= question.seq);

    if (question.payload.type !== 'user_question') return;
    await late.answerQuestion({
      sessionId: session.id,
      requestId: question.payload.requestId,
      answers: { 'Ship it?': 'Yes' },
    });
    await earlyEvents.until(isResult);
    const lastSeq = (await late.getSession(session.id)).snapshot.seq;
    await earlyEvents.until((e) => e.seq === lastSeq);
    await lateEvents.until((e) => e.seq === lastSeq);

    const expected = earlyEvents.events.filter((e) => e.seq > lateFeed.snapshot.seq);
    assert.deepEqual(lateEvents.events, expected);
    assert.equal(lateEvents.events[0]?.seq, lateFeed.snapshot.seq + 1);

    // Snapshot + the late feed rebuild exactly what a fresh snapshot says now.
    let state = transcriptStateFromSnapshot(lateFeed.snapshot);
    for (const event of lateEvents.events) state = applySessionEvent(state, event);
    const now = (await late.getSession(session.id)).snapshot;
    assert.equal(now.seq, lastSeq);
    const rebuilt = snapshotOf(state);
    assert.equal(rebuilt.seq, now.seq);
    assert.deepEqual(rebuilt.messages, now.messages);
    assert.deepEqual(rebuilt.pendingInteractiveRequests, now.pendingInteractiveRequests);
  });

  it('streams events to a for-await consumer and closes the feed when it breaks out', async () => {
    const c = await client();
    const workspace = await workspaceFor(c, 'iterate');
    const session = await c.createSession({ workspaceId: workspace.id });
    const feed = await c.subscribeSession(session.id);
    assert.equal(feed.snapshot.seq, 0);
    await c.sendMessage({ sessionId: session.id, text: 'iterate over me' });
    let result: SessionEvent | undefined;
    for await (const event of feed) {
      if (isResult(event)) {
        result = event;
        break;
      }
    }
    assert.ok(result);
    assert.equal(feed.isEnded, true);
    assert.equal(await feed.ended, null);
    await c.stopSession(session.id);
  });

  it('answers a send past 100 queued messages with queue_full', async () => {
    const c = await client();
    const workspace = await workspaceFor(c, 'full');
    const session = await c.createSession({ workspaceId: workspace.id });
    const feed = collect(await c.subscribeSession(session.id));
    // A permission request nobody answers keeps the first turn open while the queue fills.
    fake.script(turns.write('blocked.txt', 'x\n'));
    await c.sendMessage({ sessionId: session.id, text: 'block on a permission' });
    await feed.until((e) => e.payload.type === 'permission_request');
    for (let i = 0; i < 100; i++) {
      const sent = await c.sendMessage({ sessionId: session.id, text: `queued ${i}` });
      assert.equal(sent.queuePosition, i);
    }
    await assert.rejects(
      () => c.sendMessage({ sessionId: session.id, text: 'one too many' }),
      (error: unknown) => error instanceof AgentClientError && error.code === 'queue_full',
    );
    assert.equal((await c.getSession(session.id)).session.queuedCount, 100);
    await c.stopSession(session.id);
    assert.equal((await c.getSession(session.id)).session.queuedCount, 0);
  });

  it('rejects answers to requests that are not pending with not_found', async () => {
    const c = await client();
    const workspace = await workspaceFor(c, 'errors');
    const session = await c.createSession({ workspaceId: workspace.id });
    await assert.rejects(
      () => c.answerPermission({ sessionId: session.id, requestId: 'nope', allow: true }),
      (error: unknown) => error instanceof AgentClientError && error.code === 'not_found',
    );
    await assert.rejects(
      () => c.request('session.send', { sessionId: session.id, text: '' }),
      (error: unknown) => error instanceof AgentClientError && error.code === 'bad_request',
    );
  });

  it('runs a PTY that echoes input and replays its scrollback on reattach', async () => {
    const c = await client();
    const terminal = await c.createTerminal({ cols: 100, rows: 30 });
    const first = await c.subscribeTerminal(terminal.id);
    let output = first.scrollback;
    const seen = new Promise<void>((resolve) => {
      first.on((event) => {
        if (event.type === 'output') output += event.data;
        if (output.includes('pty-says-hello-42')) resolve();
      });
    });
    // The shell echoes the command line; only its output contains the computed 42.
    await c.terminalInput(terminal.id, 'echo pty-says-hello-$((40+2))\n');
    await seen;
    await first.close();
    await c.resizeTerminal(terminal.id, 120, 40);

    const again = await c.subscribeTerminal(terminal.id);
    assert.match(again.scrollback, /pty-says-hello-42/);
    assert.equal(again.terminal.cols, 120);
    await again.close();

    await c.killTerminal(terminal.id);
    assert.ok(!(await c.listTerminals()).some((t) => t.id === terminal.id));
  });

  it('keeps sessions and their history across an agent restart and resumes the conversation', async () => {
    let c = await client();
    const workspace = await workspaceFor(c, 'restart');
    const session = await c.createSession({ workspaceId: workspace.id, name: 'survivor' });
    const feed = collect(await c.subscribeSession(session.id));
    await c.sendMessage({ sessionId: session.id, text: 'remember the number 7' });
    await feed.until(isResult);
    const before = (await c.getSession(session.id)).session;
    assert.ok(before.claudeSessionId);
    // The CLI is still running: the agent's shutdown ends it cleanly (stdin closed, conversation saved).
    assert.equal(before.sessionRuntime.processState, 'alive');
    await agent.stop();
    agent = await startAgent();
    c = await client();

    const listed = (await c.listSessions({ workspaceId: workspace.id })).find((s) => s.id === session.id);
    assert.ok(listed);
    assert.equal(listed.name, 'survivor');
    assert.equal(listed.claudeSessionId, before.claudeSessionId);
    assert.equal(listed.sessionRuntime.processState, 'stopped');
    const resumed = collect(await c.subscribeSession(session.id));
    const history = (await c.getSession(session.id)).snapshot.messages;
    assert.equal(history.find((m) => m.source === 'user')?.text, 'remember the number 7');

    await c.sendMessage({ sessionId: session.id, text: 'which number?' });
    const result = await resumed.until(isResult);
    assert.equal(
      result.payload.type === 'claude_message' && result.payload.data.result,
      'echo: which number?',
    );
    const conversation =
      fake.requests
        .at(-1)
        ?.messages.map((m) => m.text)
        .join('\n') ?? '';
    assert.match(conversation, /remember the number 7/);
    await c.stopSession(session.id);
  });
});
