/**
 * Benchmarks of the VM agent (core/agent), printed, never asserted. Run: npx tsx bench/agent.ts
 *
 * 1. Memory: the compiled agent's RSS with 0 sessions, and the extra RSS per idle session beyond the
 *    CLI process's own (the CLI's RSS is reported separately).
 * 2. Event latency, from a line on the CLI's stdout to an AgentClient subscriber, p50/p99. A stub CLI
 *    stamps each line with the time it wrote it; the baseline is the same stub piped through a raw
 *    relay process onto a unix socket (no parsing, no agent).
 * 3. Throughput: events/s one agent relays when lines come as fast as they can, with the stub and
 *    with the real Claude CLI against the fake Anthropic API streaming fast, each against its
 *    baseline (stub through the raw relay; the real CLI read directly).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { AgentClient } from '../core/src/agent/client.js';
import { CappedLineSplitter, type SessionEvent } from '../core/src/protocol/index.js';
import { buildClaudeArgs } from '../core/src/session/cli-args.js';
import {
  type AgentProcess,
  createReadyWorkspace,
  startAgentProcess,
} from '../core/test/support/agent-process.js';
import { claudeBinPath, claudeTestEnv } from '../core/test/support/claude-cli.js';
import { type FakeAnthropic, startFakeAnthropic } from '../core/test/support/fake-anthropic.js';
import { createGitSandbox } from '../core/test/support/git-sandbox.js';
import { percentile } from './lib/stats.js';

/** Node flags that trade a little peak speed for a smaller idle footprint. */
const LEAN_NODE_FLAGS = ['--optimize-for-size', '--v8-pool-size=1', '--max-semi-space-size=1'];

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ff-bench-agent-'));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function rssOfPid(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : 0;
}

/**
 * A stand-in CLI that speaks enough stream-json for the agent, and prints stream_event lines stamped
 * with the wall-clock time (performance.timeOrigin + now, comparable across processes) they were
 * written. The user text says what to do: "pace <count> <everyMs>" or "burst <count>".
 */
const STUB_CLI = `
const { createInterface } = require('node:readline');
const { performance } = require('node:perf_hooks');
const now = () => performance.timeOrigin + performance.now();
const out = (v) => process.stdout.write(JSON.stringify(v) + '\\n');
const line = (i) => ({ type: 'stream_event', session_id: 'bench', seqNo: i, ts: now(),
  event: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'tok ' } } });
const finish = () => out({ type: 'result', subtype: 'success', is_error: false, session_id: 'bench', total_cost_usd: 0, result: 'ok' });
createInterface({ input: process.stdin }).on('line', (text) => {
  const msg = JSON.parse(text);
  if (msg.type === 'control_request') {
    out({ type: 'control_response', response: { subtype: 'success', request_id: msg.request_id, response: {} } });
    return;
  }
  if (msg.type !== 'user') return;
  const [mode, countText, everyText] = String(msg.message.content).split(' ');
  const count = Number(countText);
  out({ type: 'system', subtype: 'init', session_id: 'bench' });
  if (mode === 'pace') {
    let i = 0;
    const timer = setInterval(() => { out(line(i++)); if (i >= count) { clearInterval(timer); finish(); } }, Number(everyText));
    return;
  }
  let i = 0;
  const pump = () => {
    while (i < count) { if (!process.stdout.write(JSON.stringify(line(i++)) + '\\n')) { process.stdout.once('drain', pump); return; } }
    finish();
  };
  pump();
});
`;

/** Baseline relay: runs the stub, writes the user line, pipes stdout raw onto a unix socket. */
const RAW_RELAY = `
const { spawn } = require('node:child_process');
const { connect } = require('node:net');
const [socketPath, stub, text] = process.argv.slice(2);
const socket = connect(socketPath, () => {
  const child = spawn(process.execPath, [stub], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdout.pipe(socket);
  // One instruction, then EOF: the stub finishes its output and exits, which ends the pipe.
  child.stdin.end(JSON.stringify({ type: 'user', message: { role: 'user', content: text } }) + '\\n');
});
`;

/**
 * Samples a process's RSS every second for at least 12 s (V8's memory reducer runs after several
 * idle seconds) and until three samples agree within 0.5 MB, at most 40 s.
 */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 40; i++) {
    await sleep(1000);
    samples.push(rssOfPid(pid));
    const last = samples.slice(-3);
    if (i >= 11 && last.length === 3 && Math.max(...last) - Math.min(...last) < 512 * 1024) break;
  }
  return samples.at(-1) ?? Number.NaN;
}

/** Creates a session, runs one turn to its result and leaves the CLI idle; returns the session id. */
async function runOneTurn(client: AgentClient, workspaceId: string, name: string): Promise<string> {
  const session = await client.createSession({ workspaceId, name });
  const feed = await client.subscribeSession(session.id);
  const finished = new Promise<void>((resolve) =>
    feed.on((e) => {
      if (e.payload.type === 'claude_message' && e.payload.data.type === 'result') resolve();
    }),
  );
  await client.sendMessage({ sessionId: session.id, text: 'hello' });
  await finished;
  await feed.close();
  return session.id;
}

/** A stand-in CLI in plain sh (about 1 MB per process): answers control requests, one canned turn. */
const SHELL_STUB = `#!/bin/sh
while IFS= read -r line; do
  case "$line" in
    *'"control_request"'*)
      id=$(printf '%s' "$line" | sed -n 's/.*"request_id":"\\([^"]*\\)".*/\\1/p')
      printf '{"type":"control_response","response":{"subtype":"success","request_id":"%s","response":{}}}\\n' "$id" ;;
    *'"type":"user"'*)
      printf '%s\\n' '{"type":"system","subtype":"init","session_id":"shell-stub"}'
      printf '%s\\n' '{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"hi"}]},"session_id":"shell-stub"}'
      printf '%s\\n' '{"type":"result","subtype":"success","is_error":false,"session_id":"shell-stub","total_cost_usd":0,"result":"hi"}' ;;
  esac
done
`;

interface StampedLine {
  ts?: number;
  type?: string;
}

/** Baseline: stub → raw relay process → unix socket → here. Returns latencies and receive times. */
async function rawRelayRun(
  stubPath: string,
  text: string,
): Promise<{ latencies: number[]; times: number[] }> {
  const relayPath = join(work, 'raw-relay.cjs');
  writeFileSync(relayPath, RAW_RELAY);
  const socketPath = join(work, `raw-${Date.now()}.sock`);
  const latencies: number[] = [];
  const times: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const server = createServer((socket) => {
      const splitter = new CappedLineSplitter();
      socket.on('data', (chunk: Buffer) => {
        const at = now();
        for (const item of splitter.push(chunk)) {
          if (item.kind !== 'line') continue;
          const parsed = JSON.parse(item.text) as StampedLine;
          if (parsed.type === 'stream_event' && parsed.ts) {
            latencies.push(at - parsed.ts);
            times.push(at);
          }
          if (parsed.type === 'result') {
            socket.destroy();
            server.close(() => resolve());
          }
        }
      });
    });
    server.listen(socketPath, () => {
      const relay = spawn(process.execPath, [relayPath, socketPath, stubPath, text], { stdio: 'inherit' });
      relay.on('error', reject);
    });
  });
  return { latencies, times };
}

/** Through the agent: send the stub its instruction and time every stream_event at a subscriber. */
async function agentRun(client: AgentClient, sessionId: string, text: string) {
  const feed = await client.subscribeSession(sessionId);
  const latencies: number[] = [];
  const times: number[] = [];
  const done = new Promise<void>((resolve) => {
    feed.on((event: SessionEvent) => {
      const at = now();
      if (event.payload.type !== 'claude_message') return;
      const data = event.payload.data;
      if (data.type === 'stream_event') {
        if (typeof data.ts === 'number') latencies.push(at - data.ts);
        times.push(at);
      }
      if (data.type === 'result') resolve();
    });
  });
  await client.sendMessage({ sessionId, text });
  await done;
  await feed.close();
  return { latencies, times };
}

function rate(times: number[]): number {
  const first = times[0];
  const last = times.at(-1);
  if (first === undefined || last === undefined || last <= first) return Number.NaN;
  return (times.length - 1) / ((last - first) / 1000);
}

function latencyRow(label: string, latencies: number[]): string {
  return `${label.padEnd(34)} p50 ${percentile(latencies, 50).toFixed(2).padStart(6)} ms   p99 ${percentile(
    latencies,
    99,
  )
    .toFixed(2)
    .padStart(6)} ms   (n=${latencies.length})`;
}

/** The real CLI read directly: stdout lines/s while the fake streams `chunks` deltas. */
async function directCliRun(fake: FakeAnthropic, chunks: number): Promise<number> {
  const home = mkdtempSync(join(work, 'cli-home-'));
  const cwd = mkdtempSync(join(work, 'cli-cwd-'));
  fake.script({ kind: 'deltas', chunks: Array.from({ length: chunks }, () => 'tok '), delayMs: 0 });
  const child = spawn(
    claudeBinPath(),
    buildClaudeArgs({ permissionMode: 'default', includePartialMessages: true }),
    { cwd, env: claudeTestEnv({ fakeUrl: fake.url, home }), stdio: ['pipe', 'pipe', 'ignore'] },
  );
  const times: number[] = [];
  const splitter = new CappedLineSplitter();
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const at = now();
      for (const item of splitter.push(chunk)) {
        if (item.kind !== 'line') continue;
        if (item.text.startsWith('{"type":"stream_event"')) times.push(at);
        if (item.text.startsWith('{"type":"result"')) resolve();
      }
    });
    child.stdin.write(
      `${JSON.stringify({ type: 'user', message: { role: 'user', content: 'stream' }, parent_tool_use_id: null, session_id: '' })}\n`,
    );
  });
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  return rate(times);
}

async function main(): Promise<void> {
  console.log('# FF agent benchmark');
  console.log(
    `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load avg ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, node ${process.version}`,
  );

  console.log('building core (tsc -p core/tsconfig.build.json) to run the compiled agent ...');
  await new Promise<void>((resolve, reject) => {
    const tsc = spawn(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'core/tsconfig.build.json'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    tsc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tsc exited ${code}`))));
  });

  const fake = await startFakeAnthropic();
  // Workspaces are git worktrees: one local bare repository serves every agent here.
  const sandbox = createGitSandbox();
  const repoUrl = await sandbox.createRemote('bench/repo', { 'README.md': '# bench\n' });
  const stubPath = join(work, 'stub-cli.cjs');
  writeFileSync(stubPath, STUB_CLI);
  const shellStub = join(work, 'shell-claude');
  writeFileSync(shellStub, SHELL_STUB, { mode: 0o755 });
  const stubBin = join(work, 'stub-claude');
  writeFileSync(stubBin, `#!/bin/sh\nexec "${process.execPath}" "${stubPath}" "$@"\n`, { mode: 0o755 });

  const agents: AgentProcess[] = [];
  const startAgent = async (name: string, claudeBin: string, nodeArgs: string[] = []) => {
    const dir = mkdtempSync(join(work, `${name}-`));
    const agent = await startAgentProcess({
      dir,
      home: mkdtempSync(join(work, `${name}-home-`)),
      claudeBin,
      fakeAnthropicUrl: fake.url,
      compiled: true,
      nodeArgs,
      env: nodeArgs === LEAN_NODE_FLAGS ? { MALLOC_ARENA_MAX: '1' } : {},
    });
    agents.push(agent);
    return agent;
  };

  try {
    // ---- 1. memory ----
    // RSS is read from /proc once it has settled: V8 shrinks its heap after a few idle seconds, so an
    // early sample measures startup garbage rather than what an idle agent holds.
    const emptyModule = join(work, 'empty.mjs');
    writeFileSync(emptyModule, 'setInterval(() => {}, 1000);\n');
    const bare = spawn(process.execPath, [emptyModule], { stdio: 'ignore' });
    const bareRss = bare.pid ? await settledRss(bare.pid) : Number.NaN;
    bare.kill();

    const real = await startAgent('real', claudeBinPath());
    const idleRss = real.pid ? await settledRss(real.pid) : Number.NaN;
    const lean = await startAgent('lean', claudeBinPath(), LEAN_NODE_FLAGS);
    const leanRss = lean.pid ? await settledRss(lean.pid) : Number.NaN;
    await lean.stop();

    // The agent's own cost of a live idle session does not depend on which CLI runs behind it, so
    // it is measured with many sessions of a 1 MB shell stand-in, where it is not lost in the noise.
    const shellAgent = await startAgent('shell', shellStub);
    const shellClient = await shellAgent.connect('bench');
    const shellWorkspace = await createReadyWorkspace(shellClient, { source: 'MANUAL', repoUrl, name: 's' });
    await shellClient.stopSession(await runOneTurn(shellClient, shellWorkspace.id, 'warm-up'));
    const noLiveRss = shellAgent.pid ? await settledRss(shellAgent.pid) : Number.NaN;
    const manySessions = 40;
    for (let i = 0; i < manySessions; i++) await runOneTurn(shellClient, shellWorkspace.id, `idle-${i}`);
    const manyLiveRss = shellAgent.pid ? await settledRss(shellAgent.pid) : Number.NaN;
    const liveCount = (await shellClient.health()).liveSessions;
    shellClient.close();
    await shellAgent.stop();
    const perSession = (manyLiveRss - noLiveRss) / manySessions;

    // The real CLI's own footprint, idle after one turn.
    const client = await real.connect('bench');
    const workspace = await createReadyWorkspace(client, { source: 'MANUAL', repoUrl, name: 'bench' });
    const cliRss: number[] = [];
    for (let i = 0; i < 2; i++) await runOneTurn(client, workspace.id, `cli-${i}`);
    await sleep(2000);
    for (const s of await client.listSessions()) {
      if (s.sessionRuntime.pid) cliRss.push(rssOfPid(s.sessionRuntime.pid));
    }
    for (const s of await client.listSessions()) await client.stopSession(s.id);

    // ---- 3b. real CLI throughput, direct vs through the agent ----
    const chunks = 3000;
    const directRates: number[] = [];
    for (let i = 0; i < 2; i++) directRates.push(await directCliRun(fake, chunks));
    const streamSession = await client.createSession({ workspaceId: workspace.id, name: 'stream' });
    const agentRates: number[] = [];
    for (let i = 0; i < 2; i++) {
      fake.script({ kind: 'deltas', chunks: Array.from({ length: chunks }, () => 'tok '), delayMs: 0 });
      agentRates.push(rate((await agentRun(client, streamSession.id, 'stream')).times));
    }
    await client.stopSession(streamSession.id);
    client.close();

    // ---- 2 and 3a. latency and throughput with the stamping stub, default and lean node flags ----
    const stubRuns = async (name: string, nodeArgs: string[]) => {
      const stubAgent = await startAgent(name, stubBin, nodeArgs);
      const stubClient = await stubAgent.connect('bench');
      const stubWorkspace = await createReadyWorkspace(stubClient, { source: 'MANUAL', repoUrl, name: 'b' });
      const stubSession = await stubClient.createSession({ workspaceId: stubWorkspace.id });
      await agentRun(stubClient, stubSession.id, 'pace 200 2'); // warm-up: process start, JIT
      const paced = await agentRun(stubClient, stubSession.id, 'pace 3000 2');
      const burst = await agentRun(stubClient, stubSession.id, 'burst 50000');
      stubClient.close();
      await stubAgent.stop();
      return { paced, burst };
    };
    const stubDefault = await stubRuns('stub', []);
    const stubLean = await stubRuns('stub-lean', LEAN_NODE_FLAGS);
    await rawRelayRun(stubPath, 'pace 200 2');
    const rawPaced = await rawRelayRun(stubPath, 'pace 3000 2');
    const rawBurst = await rawRelayRun(stubPath, 'burst 50000');

    console.log('\n## Memory (compiled agent, node dist/agent/main.js, RSS settled after idling)');
    console.log(`baseline: node running an empty module   ${mb(bareRss)}`);
    console.log(`agent, 0 sessions                        ${mb(idleRss)}   (goal <= 50 MB)`);
    console.log(
      `agent, 0 sessions, lean flags           ${mb(leanRss)}   (${LEAN_NODE_FLAGS.join(' ')}, MALLOC_ARENA_MAX=1)`,
    );
    console.log(
      `agent, ${manySessions} live idle sessions (shell CLI)  ${mb(manyLiveRss)} vs ${mb(noLiveRss)} with none -> ${((perSession / 1024) | 0).toString()} KB per session (liveSessions=${liveCount})`,
    );
    console.log(`real Claude CLI process, idle after 1 turn  ${cliRss.map(mb).join(', ')}`);

    console.log('\n## Event latency, CLI stdout line -> subscriber (stub CLI, 1 line / 2 ms)');
    console.log(latencyRow('baseline: raw relay to unix socket', rawPaced.latencies));
    console.log(latencyRow('agent -> AgentClient subscriber', stubDefault.paced.latencies));
    console.log(latencyRow('same, agent with lean flags', stubLean.paced.latencies));

    console.log('\n## Throughput (events/s at the subscriber)');
    console.log(
      `stub CLI burst, baseline raw relay     ${rate(rawBurst.times).toFixed(0)} lines/s (n=${rawBurst.times.length})`,
    );
    console.log(
      `stub CLI burst, through the agent      ${rate(stubDefault.burst.times).toFixed(0)} events/s (n=${stubDefault.burst.times.length})`,
    );
    console.log(
      `stub CLI burst, agent with lean flags  ${rate(stubLean.burst.times).toFixed(0)} events/s (n=${stubLean.burst.times.length})`,
    );
    console.log(
      `real CLI + fake API ${chunks} deltas, CLI read directly  ${directRates.map((r) => r.toFixed(0)).join(', ')} lines/s`,
    );
    console.log(
      `real CLI + fake API ${chunks} deltas, through the agent  ${agentRates.map((r) => r.toFixed(0)).join(', ')} events/s`,
    );
    console.log(
      `\nload avg at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    for (const agent of agents) await agent.stop();
    await fake.close();
    sandbox.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
