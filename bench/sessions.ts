/**
 * Claude sessions in one VM, against the fake Anthropic API, printed, never asserted:
 *
 *   flock /tmp/ffc-test.lock npx tsx --conditions=source bench/sessions.ts [runs=6]
 *
 * 1. Session creation → first streamed token (a text delta), as a user gets it: POST
 *    /api/workspaces/:id/sessions (the api passes startNow, so the CLI starts at once), the relay ws, a
 *    queue_message, the first delta. Baseline in the same run: the agent's own session.create without
 *    startNow, subscribe, send (the CLI starts on the first message); beside it the same with startNow, and
 *    the api path with a 2 s pause before the message (the CLI already up when it comes, as when a user
 *    types). The next turn's first token in the same session is the floor. Goal ≤ 150 ms.
 * 2. Concurrent sessions: N sessions (CLIs started and warmed by one turn), each sending a short turn at
 *    the same moment; turn latency (send → result) p50/p95 and the VM's memory (docker stats, one shot)
 *    and the agent's own RSS (health.ping).
 */
import { performance } from 'node:perf_hooks';
import { SessionAnswerSchema } from '../api/contract/workspaces.js';
import { testConfig } from '../test/support/services.js';
import { containerMemory, startBenchCloud } from './lib/cloud.js';
import { BenchRelayClient, DirectFeed, isResult, isTextDelta } from './lib/relay-client.js';
import { latencyTable, machineConditions, percentile } from './lib/stats.js';

const runs = Number(process.argv[2] ?? 5);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function main(): Promise<void> {
  const cloud = await startBenchCloud();
  const workspaceId = 'bench-sessions';
  const agent = cloud.agent;
  try {
    await cloud.readyWorkspace(workspaceId);

    /** Direct: create (with or without startNow), subscribe, send; first delta; then a second turn's. */
    async function directRun(name: string, startNow: boolean) {
      const started = performance.now();
      const session = await agent.createSession({ workspaceId, name, startNow });
      const feed = await DirectFeed.open(agent, session.id);
      const from = feed.feed.start.kind === 'snapshot' ? feed.feed.start.snapshot.seq : 0;
      const sent = performance.now();
      await agent.sendMessage({ sessionId: session.id, text: 'first' });
      const first = await feed.next((e) => e.seq > from && isTextDelta(e), 'first token');
      const result = await feed.next((e) => e.seq > from && isResult(e), 'result');
      const nextSent = performance.now();
      await agent.sendMessage({ sessionId: session.id, text: 'again' });
      const next = await feed.next((e) => e.seq > result.value.seq && isTextDelta(e), 'next token');
      await feed.next((e) => e.seq > next.value.seq && isResult(e), 'result');
      await feed.close();
      await agent.stopSession(session.id);
      return { create: first.at - started, message: first.at - sent, later: next.at - nextSent };
    }

    /** Through the api: POST …/sessions, relay ws, queue_message; first delta; then a second turn's. */
    async function apiRun(name: string, pauseMs: number) {
      const started = performance.now();
      const created = await cloud.http(`/api/workspaces/${workspaceId}/sessions`, { body: { name } });
      if (created.status !== 201) throw new Error(`POST sessions: ${created.status} ${created.text}`);
      const createdAt = performance.now();
      const sessionId = SessionAnswerSchema.parse(created.json).session.id;
      const relay = await BenchRelayClient.open(cloud.relayUrl(workspaceId, sessionId), cloud.key);
      const snapshot = await relay.next((f) => f.type === 'session_snapshot', 'snapshot');
      const from = snapshot.value.type === 'session_snapshot' ? snapshot.value.seq : 0;
      if (pauseMs > 0) await sleep(pauseMs);
      const sent = performance.now();
      relay.send({ type: 'queue_message', text: 'first', requestId: 'first' });
      const first = await relay.nextEvent((e) => e.seq > from && isTextDelta(e), 'first token');
      const result = await relay.nextEvent((e) => e.seq > from && isResult(e), 'result');
      const nextSent = performance.now();
      relay.send({ type: 'queue_message', text: 'again', requestId: 'again' });
      const resultSeq = result.value.type === 'session_event' ? result.value.event.seq : 0;
      const next = await relay.nextEvent((e) => e.seq > resultSeq && isTextDelta(e), 'next token');
      await relay.close();
      await agent.stopSession(sessionId);
      return {
        create: first.at - started,
        post: createdAt - started,
        message: first.at - sent,
        later: next.at - nextSent,
      };
    }

    // Warm-up of both paths (the CLI binary in the page cache, the api's agent connection, the JIT).
    await directRun('warm-direct', false);
    await apiRun('warm-api', 0);

    const api = {
      create: [] as number[],
      post: [] as number[],
      message: [] as number[],
      later: [] as number[],
    };
    const apiPaused = { message: [] as number[] };
    const direct = { create: [] as number[], later: [] as number[] };
    const directStartNow = { create: [] as number[], message: [] as number[] };
    for (let i = 0; i < runs; i++) {
      const a = await apiRun(`api-${i}`, 0);
      api.create.push(a.create);
      api.post.push(a.post);
      api.message.push(a.message);
      api.later.push(a.later);
      apiPaused.message.push((await apiRun(`api-paused-${i}`, 2000)).message);
      const d = await directRun(`direct-${i}`, false);
      direct.create.push(d.create);
      direct.later.push(d.later);
      const s = await directRun(`direct-startnow-${i}`, true);
      directStartNow.create.push(s.create);
      directStartNow.message.push(s.message);
    }

    console.log(`# Sessions in one VM; ${machineConditions()}`);
    console.log(`\n## Session creation → first streamed token, ${runs} runs each (goal ≤ 150 ms)`);
    console.log(
      latencyTable([
        { label: 'api: POST sessions (startNow) → first token', samples: api.create },
        { label: '  of which POST sessions → 201', samples: api.post },
        { label: '  of which queue_message → first token', samples: api.message },
        { label: 'api: 2 s after POST, queue_message → first token', samples: apiPaused.message },
        { label: 'api: next turn, queue_message → first token', samples: api.later },
        { label: 'baseline: agent create (no startNow) → first token', samples: direct.create },
        { label: 'agent create with startNow → first token', samples: directStartNow.create },
        { label: '  of which send → first token', samples: directStartNow.message },
        { label: 'floor: agent next turn, send → first token', samples: direct.later },
      ]),
    );

    // ---- 2. concurrent sessions ----
    console.log('\n## Concurrent sessions in one VM, each running a short turn at the same moment');
    const idle = {
      vm: await containerMemory(cloud.docker, cloud.vm.containerName),
      agent: (await agent.health()).rssBytes,
    };
    console.log(`no live session: VM ${mb(idle.vm)}, agent RSS ${mb(idle.agent)}`);
    console.log(
      'sessions  turn p50    p95    max   turns  failed   VM memory   agent RSS   CLI start (all, warm-up turn)',
    );
    for (const count of [1, 4, 8, 16]) {
      const startedAt = performance.now();
      const sessions = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          agent.createSession({ workspaceId, name: `concurrent-${count}-${i}`, startNow: true }),
        ),
      );
      const feeds = await Promise.all(sessions.map((s) => DirectFeed.open(agent, s.id)));
      /** Every session sends at once; each turn's send → result, or null if it failed or timed out. */
      const round = () =>
        Promise.all(
          sessions.map(async (s, i) => {
            const feed = feeds[i];
            if (!feed) return null;
            const from = feed.events.at(-1)?.value.seq ?? 0;
            const sent = performance.now();
            try {
              await agent.sendMessage({ sessionId: s.id, text: `turn of ${s.id}` });
              const result = await feed.next((e) => e.seq > from && isResult(e), 'result', 120_000);
              return result.at - sent;
            } catch {
              return null;
            }
          }),
        );
      await round(); // the CLIs start and warm up
      const warmedMs = performance.now() - startedAt;
      const latencies: number[] = [];
      let failed = 0;
      for (let r = 0; r < 2; r++) {
        for (const latency of await round()) {
          if (latency === null) failed += 1;
          else latencies.push(latency);
        }
      }
      const vmMemory = await containerMemory(cloud.docker, cloud.vm.containerName);
      const agentRss = (await agent.health()).rssBytes;
      console.log(
        `${String(count).padStart(8)}  ${percentile(latencies, 50).toFixed(0).padStart(5)} ms ${percentile(latencies, 95).toFixed(0).padStart(5)} ${Math.max(
          ...latencies,
        )
          .toFixed(0)
          .padStart(
            6,
          )}  ${String(latencies.length).padStart(6)}  ${String(failed).padStart(6)}  ${mb(vmMemory).padStart(10)}  ${mb(agentRss).padStart(10)}   ${warmedMs.toFixed(0)} ms`,
      );
      await Promise.all(feeds.map((f) => f.close()));
      await Promise.all(sessions.map((s) => agent.stopSession(s.id)));
    }
    console.log(
      `baseline: 1 session; VM memory limit ${mb(testConfig.vm.memoryBytes)}, ${testConfig.vm.nanoCpus / 1e9} CPU`,
    );
  } finally {
    await cloud.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
