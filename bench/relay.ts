/**
 * The session relay (api/ws/session-relay.ts), printed, never asserted:
 *
 *   flock /tmp/ffc-test.lock npx tsx --conditions=source bench/relay.ts
 *
 * 1. Overhead per message: one stream of events (a long `deltas` turn from the fake API, delayMs 0, and a
 *    paced one) observed at the same time by a direct agent subscription (AgentClient through
 *    connectVmAgent: the baseline) and through the api relay ws; per seq, how much later the relay's copy
 *    arrived. Both clients live in this process, the api in its own. Goal p50 ≤ 1 ms, p99 ≤ 5 ms.
 * 2. Throughput: N relay clients on one session while a long turn streams; relayed messages/s (events ×
 *    clients over the time from the first to the last arrival) and the api's RSS, against the rate the
 *    agent delivers to its direct subscriber in the same turn. Goal ≥ 10,000 messages/s.
 */
import { performance } from 'node:perf_hooks';
import { turns } from '../core/test/support/fake-anthropic.js';
import { startBenchCloud } from './lib/cloud.js';
import { BenchRelayClient, DirectFeed, isResult, isTextDelta } from './lib/relay-client.js';
import { machineConditions, percentile } from './lib/stats.js';

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const f2 = (value: number) => value.toFixed(2).padStart(7);
const tokens = (count: number) => Array.from({ length: count }, () => 'tok ');

function rate(times: number[]): number {
  if (times.length < 2) return Number.NaN;
  const first = Math.min(...times);
  const last = Math.max(...times);
  return last > first ? (times.length - 1) / ((last - first) / 1000) : Number.NaN;
}

async function main(): Promise<void> {
  const cloud = await startBenchCloud();
  const workspaceId = 'bench-relay';
  try {
    await cloud.readyWorkspace(workspaceId);
    const session = await cloud.agent.createSession({ workspaceId, name: 'relay', startNow: true });

    /** One turn seen by the direct feed and one relay client at once; per-seq extra latency of the relay. */
    async function overheadRun(chunks: number, delayMs: number) {
      const direct = await DirectFeed.open(cloud.agent, session.id);
      const relay = await BenchRelayClient.open(cloud.relayUrl(workspaceId, session.id), cloud.key);
      const snapshot = await relay.next((f) => f.type === 'session_snapshot', 'snapshot');
      const from = snapshot.value.type === 'session_snapshot' ? snapshot.value.seq : 0;
      cloud.fake.script(turns.deltas(tokens(chunks), delayMs));
      await cloud.agent.sendMessage({ sessionId: session.id, text: 'stream' });
      await direct.next((e) => e.seq > from && isResult(e), 'result (direct)', 120_000);
      await relay.nextEvent((e) => e.seq > from && isResult(e), 'result (relay)', 120_000);
      const directAt = new Map<number, number>();
      for (const e of direct.events) if (e.value.seq > from) directAt.set(e.value.seq, e.at);
      const extra: number[] = [];
      const relayTimes: number[] = [];
      for (const f of relay.frames) {
        if (f.value.type !== 'session_event' || !isTextDelta(f.value.event)) continue;
        const base = directAt.get(f.value.event.seq);
        relayTimes.push(f.at);
        if (base !== undefined) extra.push(f.at - base);
      }
      const directTimes = direct.events
        .filter((e) => e.value.seq > from && isTextDelta(e.value))
        .map((e) => e.at);
      await relay.close();
      await direct.close();
      return { extra, directRate: rate(directTimes), relayRate: rate(relayTimes) };
    }

    await overheadRun(300, 0); // warm-up: the CLI, the JIT on both sides, the api's agent connection
    console.log(`# Session relay benchmark; ${machineConditions()}`);
    console.log('\n## Extra latency of the relay over a direct agent subscription, per text delta (ms)');
    console.log(
      `${'run'.padEnd(40)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}   n      direct ev/s  relay ev/s`,
    );
    for (const [label, chunks, delayMs] of [
      ['3000 deltas, delayMs 0 (burst)', 3000, 0],
      ['3000 deltas, delayMs 0 (burst, again)', 3000, 0],
      ['1000 deltas, delayMs 1 (paced)', 1000, 1],
    ] as const) {
      const run = await overheadRun(chunks, delayMs);
      const { extra } = run;
      console.log(
        `${label.padEnd(40)} ${f2(percentile(extra, 50))} ${f2(percentile(extra, 95))} ${f2(percentile(extra, 99))} ${f2(Math.max(...extra))}   ${String(extra.length).padEnd(6)} ${run.directRate.toFixed(0).padStart(11)} ${run.relayRate.toFixed(0).padStart(11)}`,
      );
    }
    console.log('baseline: the direct subscription (0 by definition); goal p50 ≤ 1 ms, p99 ≤ 5 ms');

    /** N relay clients and the direct feed on one long turn. */
    async function throughputRun(clients: number, chunks: number) {
      const direct = await DirectFeed.open(cloud.agent, session.id);
      const relays = await Promise.all(
        Array.from({ length: clients }, () =>
          BenchRelayClient.open(cloud.relayUrl(workspaceId, session.id), cloud.key, { keep: false }),
        ),
      );
      const counts = relays.map(() => ({ events: 0, first: Number.NaN, last: Number.NaN }));
      await Promise.all(relays.map((r) => r.next((f) => f.type === 'session_snapshot', 'snapshot')));
      for (const [i, relay] of relays.entries()) {
        const count = counts[i];
        relay.ws.on('message', () => {
          if (!count) return;
          const at = performance.now();
          if (Number.isNaN(count.first)) count.first = at;
          count.last = at;
          count.events += 1;
        });
      }
      const from = direct.events.at(-1)?.value.seq ?? 0;
      const endedBefore = (await cloud.apiStats()).relay?.ended ?? {};
      const rssBefore = cloud.apiRss();
      let rssPeak = rssBefore;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, cloud.apiRss());
      }, 25);
      try {
        cloud.fake.script(turns.deltas(tokens(chunks), 0));
        await cloud.agent.sendMessage({ sessionId: session.id, text: 'stream' });
        await direct.next((e) => e.seq > from && isResult(e), 'result (direct)', 180_000);
        // A relay the api or the agent cut off ends with its socket; the others with the turn's result.
        const outcomes = await Promise.all(
          relays.map((r) =>
            Promise.race([
              r.nextEvent((e) => isResult(e), 'result (relay)', 180_000).then(() => 'result'),
              r.closed.then((code) => `closed ${code}`),
            ]),
          ),
        );
        const endedAfter = (await cloud.apiStats()).relay?.ended ?? {};
        const cutOff = Object.entries(endedAfter)
          .map(([why, n]) => [why, n - (endedBefore[why] ?? 0)] as const)
          .filter(([, n]) => n > 0)
          .map(([why, n]) => `${n} ${why}`);
        const got = counts.filter((c) => c.events > 0);
        const first = Math.min(...got.map((c) => c.first));
        const last = Math.max(...got.map((c) => c.last));
        const messages = got.reduce((sum, c) => sum + c.events, 0);
        return {
          clients,
          messages,
          perSecond: messages / ((last - first) / 1000),
          directRate: rate(direct.events.filter((e) => e.value.seq > from).map((e) => e.at)),
          rssBefore,
          rssPeak,
          completed: outcomes.filter((o) => o === 'result').length,
          cutOff: cutOff.join(', ') || '-',
        };
      } finally {
        clearInterval(sampler);
        await Promise.all(relays.map((r) => r.close()));
        await direct.close();
      }
    }

    console.log(
      '\n## Messages/s one api process relays (N clients on one session, 3000-delta turn, delayMs 0)',
    );
    console.log(
      'clients  relayed msgs   msgs/s  direct ev/s (baseline)  api RSS before → peak  completed  relays ended (why)',
    );
    for (const clients of [1, 4, 16, 32]) {
      const run = await throughputRun(clients, 3000);
      console.log(
        `${String(run.clients).padStart(7)}  ${String(run.messages).padStart(12)}  ${run.perSecond.toFixed(0).padStart(7)}  ${run.directRate.toFixed(0).padStart(22)}  ${`${mb(run.rssBefore)} → ${mb(run.rssPeak)}`.padStart(21)}  ${`${run.completed}/${run.clients}`.padStart(9)}  ${run.cutOff}`,
      );
    }
    console.log(`api RSS afterwards, relays closed: ${mb(cloud.apiRss())}; goal ≥ 10,000 msgs/s`);
  } finally {
    await cloud.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
