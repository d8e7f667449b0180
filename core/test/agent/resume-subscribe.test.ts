import assert from 'node:assert/strict';
import { type AgentClient, AgentClientError } from '../../src/agent/client.js';
import type { SessionEvent, SessionSnapshot } from '../../src/protocol/index.js';
import { type AgentProcess, createReadyWorkspace, startAgentProcess } from '../support/agent-process.js';
import { claudeBinPath, TempDirs } from '../support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic, turns } from '../support/fake-anthropic.js';
import { collect, isResult, textDeltaOf } from '../support/feed-events.js';
import { createGitSandbox, type GitSandbox } from '../support/git-sandbox.js';

/** The ring each session keeps for resumed subscriptions is this small here, so a turn overflows it. */
const REPLAY_EVENTS = 200;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The text of the transcript's assistant messages, as the snapshot stores them (no deltas). */
function assistantText(snapshot: SessionSnapshot): string {
  const texts: string[] = [];
  for (const entry of snapshot.messages) {
    const message = entry.message as { type?: string; message?: { content?: unknown } } | undefined;
    if (message?.type !== 'assistant' || !Array.isArray(message.message?.content)) continue;
    for (const block of message.message.content as Array<{ type?: string; text?: string }>) {
      if (block.type === 'text') texts.push(block.text ?? '');
    }
  }
  return texts.join('');
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** session.subscribe with afterSeq, against the real agent process and the real CLI. */
describe('agent: resumed session subscriptions and session start', () => {
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

  const startAgent = () =>
    startAgentProcess({
      dir: agentDir,
      home,
      claudeBin: claudeBinPath(),
      fakeAnthropicUrl: fake.url,
      env: { FF_SESSION_REPLAY_EVENTS: String(REPLAY_EVENTS) },
    });

  before(async () => {
    sandbox = createGitSandbox();
    repoUrl = await sandbox.createRemote('acme/resume', { 'README.md': '# resume\n' });
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

  it('gives a subscriber that reconnects mid-stream exactly the events it missed, then live ones', async () => {
    const observer = await client();
    const workspace = await createReadyWorkspace(observer, { source: 'MANUAL', repoUrl, name: 'resume' });
    const session = await observer.createSession({ workspaceId: workspace.id });
    // Sees everything, without interruption: the truth the reconnecting subscriber is compared with.
    const truth = collect(await observer.subscribeSession(session.id));

    const first = await client();
    const firstFeed = await first.subscribeSession(session.id);
    assert.equal(firstFeed.start.kind, 'snapshot');
    const seenBeforeDrop: SessionEvent[] = [];
    firstFeed.on((event) => seenBeforeDrop.push(event));

    const chunks = Array.from({ length: 150 }, (_, i) => `word${i} `);
    fake.script(turns.deltas(chunks, 10));
    await observer.sendMessage({ sessionId: session.id, text: 'stream a long answer' });
    await truth.until((e) => textDeltaOf(e) !== null);
    // The connection drops mid-stream; from here on this subscriber sees nothing.
    while (!seenBeforeDrop.some((e) => textDeltaOf(e) !== null)) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    first.close();
    const afterSeq = seenBeforeDrop.at(-1)?.seq ?? 0;
    // Events go on while it is away (still mid-stream: the answer takes 1.5 s).
    await truth.until((e) => e.seq >= afterSeq + 10);

    const second = await client();
    const resumed = await second.subscribeSession(session.id, { afterSeq });
    const live = collect(resumed);
    assert.equal(resumed.start.kind, 'replay');
    if (resumed.start.kind !== 'replay') return;
    const { events: replay, seq } = resumed.start;
    assert.ok(replay.length >= 10);
    assert.equal(replay[0]?.seq, afterSeq + 1);
    assert.equal(replay.at(-1)?.seq, seq);
    assert.throws(() => resumed.snapshot, /replay/);

    await live.until(isResult);
    const lastSeq = (await second.getSession(session.id)).snapshot.seq;
    await live.until((e) => e.seq === lastSeq);
    await truth.until((e) => e.seq === lastSeq);

    const assembled = [...seenBeforeDrop, ...replay, ...live.events];
    assert.deepEqual(
      assembled.map((e) => e.seq),
      range(1, lastSeq),
      'every seq once, in order',
    );
    assert.deepEqual(assembled, truth.events);
    const streamed = assembled.map(textDeltaOf).filter((t) => t !== null);
    assert.ok(
      replay.some((e) => textDeltaOf(e) !== null),
      'the replay includes token deltas',
    );
    const transcript = (await second.getSession(session.id)).snapshot;
    assert.equal(streamed.join(''), chunks.join(''));
    assert.equal(assistantText(transcript), chunks.join(''));
    await resumed.close();
  });

  it('answers afterSeq with a snapshot when the events are gone or never happened, and with the rest otherwise', async () => {
    const c = await client();
    const workspace = await createReadyWorkspace(c, { source: 'MANUAL', repoUrl, name: 'resume-bounds' });
    const session = await c.createSession({ workspaceId: workspace.id });
    const feed = collect(await c.subscribeSession(session.id));
    // More events than the ring holds.
    fake.script(turns.deltas(Array.from({ length: REPLAY_EVENTS + 50 }, (_, i) => `t${i} `)));
    await c.sendMessage({ sessionId: session.id, text: 'overflow the ring' });
    await feed.until(isResult);
    const current = (await c.getSession(session.id)).snapshot.seq;
    await feed.until((e) => e.seq === current);
    assert.ok(current > REPLAY_EVENTS);

    const tooOld = await c.subscribeSession(session.id, { afterSeq: 1 });
    assert.equal(tooOld.start.kind, 'snapshot');
    assert.equal(tooOld.snapshot.seq, current);
    await tooOld.close();

    const future = await c.subscribeSession(session.id, { afterSeq: current + 5 });
    assert.equal(future.start.kind, 'snapshot');
    assert.equal(future.snapshot.seq, current);
    await future.close();

    const recent = await c.subscribeSession(session.id, { afterSeq: current - 5 });
    assert.equal(recent.start.kind, 'replay');
    if (recent.start.kind === 'replay') {
      assert.deepEqual(
        recent.start.events,
        feed.events.filter((e) => e.seq > current - 5),
      );
    }
    await recent.close();

    // Caught up: nothing to replay, and the next live event is current + 1.
    const upToDate = await c.subscribeSession(session.id, { afterSeq: current });
    assert.deepEqual(upToDate.start, { kind: 'replay', events: [], seq: current });
    const next = collect(upToDate);
    await c.sendMessage({ sessionId: session.id, text: 'one more' });
    await next.until(isResult);
    assert.equal(next.events[0]?.seq, current + 1);
    await upToDate.close();

    await assert.rejects(
      () => c.request('session.subscribe', { sessionId: session.id, subscriptionId: 'neg', afterSeq: -1 }),
      (error: unknown) => error instanceof AgentClientError && error.code === 'bad_request',
    );
  });

  it('never reuses a seq after the agent dies mid-stream, so a resume across the crash gets a snapshot', async () => {
    let c = await client();
    const workspace = await createReadyWorkspace(c, { source: 'MANUAL', repoUrl, name: 'resume-crash' });
    const session = await c.createSession({ workspaceId: workspace.id });
    const feed = collect(await c.subscribeSession(session.id));
    fake.script(
      turns.deltas(
        Array.from({ length: 100 }, (_, i) => `slow${i} `),
        20,
      ),
    );
    await c.sendMessage({ sessionId: session.id, text: 'stream until the agent dies' });
    // A few deltas in: they are transient, so the stored transcript ends before them.
    await feed.until(() => feed.events.filter((e) => textDeltaOf(e) !== null).length >= 5);
    const pid = agent.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await agent.stop();
    const seen = feed.events.at(-1)?.seq ?? 0;

    agent = await startAgent();
    c = await client();
    const after = await c.subscribeSession(session.id);
    const live = collect(after);
    await c.sendMessage({ sessionId: session.id, text: 'after the crash' });
    await live.until(isResult);
    const current = (await c.getSession(session.id)).snapshot.seq;
    await live.until((e) => e.seq === current);
    // Everything the new process numbered comes after everything the old one may have sent.
    assert.ok(after.snapshot.seq >= seen);
    assert.ok(live.events.every((e) => e.seq > seen));

    const resumed = await c.subscribeSession(session.id, { afterSeq: seen });
    assert.equal(resumed.start.kind, 'snapshot', 'the events between the crash and now are not all held');
    assert.equal(resumed.snapshot.seq, current);
    assert.equal(resumed.snapshot.sessionRuntime.activity, 'IDLE');
    await resumed.close();
    await c.stopSession(session.id);
  });

  it('starts the CLI at create with startNow, before any message', async () => {
    const c = await client();
    const workspace = await createReadyWorkspace(c, { source: 'MANUAL', repoUrl, name: 'start-now' });
    const requestsBefore = fake.requests.length;
    const session = await c.createSession({ workspaceId: workspace.id, startNow: true });
    const started = await waitFor(
      async () => (await c.getSession(session.id)).session.sessionRuntime,
      (runtime) => runtime.processState === 'alive' && runtime.activity === 'IDLE',
      'the CLI to be up',
    );
    assert.ok(started.pid);
    assert.equal(fake.requests.length, requestsBefore, 'starting asks the model nothing');
    const feed = collect(await c.subscribeSession(session.id));
    await c.sendMessage({ sessionId: session.id, text: 'warm start' });
    const result = await feed.until(isResult);
    assert.equal(result.payload.type === 'claude_message' && result.payload.data.result, 'echo: warm start');
    assert.equal((await c.getSession(session.id)).session.sessionRuntime.pid, started.pid);

    const cold = await c.createSession({ workspaceId: workspace.id });
    assert.equal(cold.sessionRuntime.processState, 'stopped');
    await c.stopSession(session.id);
  });

  it('refuses arguments the CLI could not be started with', async () => {
    const c = await client();
    const workspace = await createReadyWorkspace(c, { source: 'MANUAL', repoUrl, name: 'bad-args' });
    const refused = (params: { model?: string; appendSystemPrompt?: string }) =>
      assert.rejects(
        () => c.createSession({ workspaceId: workspace.id, ...params }),
        (error: unknown) => error instanceof AgentClientError && error.code === 'bad_request',
        JSON.stringify(params).slice(0, 80),
      );
    await refused({ model: 'claude\0sonnet' });
    await refused({ model: '--dangerously-skip-permissions' });
    await refused({ model: 'claude sonnet' });
    await refused({ model: 'x'.repeat(101) });
    await refused({ appendSystemPrompt: 'be brief\0' });
    await refused({ appendSystemPrompt: 'x'.repeat(64 * 1024 + 1) });
    // Bytes, not characters: 22k three-byte characters are over 64 KiB.
    await refused({ appendSystemPrompt: '€'.repeat(22 * 1024) });

    for (const model of ['claude-sonnet-4-5', 'claude-opus-4-1[1m]', 'us.anthropic.claude-3:0', 'sonnet']) {
      const created = await c.createSession({ workspaceId: workspace.id, model });
      assert.equal(created.model, model);
    }
    const longest = await c.createSession({
      workspaceId: workspace.id,
      appendSystemPrompt: 'x'.repeat(64 * 1024),
    });
    assert.ok(longest.id);
  });
});
