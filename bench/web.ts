/**
 * The web dashboard, printed, never asserted:
 *
 *   flock /tmp/ffc-test.lock npx tsx --conditions=source bench/web.ts
 *
 * 1. First page JS, gzipped (goal ≤ 150 KB): the JS the sign-in and workspaces pages load, measured two
 *    ways: from the built web/dist (index.html's entry and its modulepreloads, each gzipped at level 9), and
 *    from what Chromium actually fetched opening those pages (each script body gzipped the same way). The
 *    terminal and markdown chunks must not be among them; the whole of dist's JS is printed beside it.
 * 2. Send → first streamed token: the message sent from the session page in Chromium, the first token of
 *    the reply (a) rendered in the page's transcript and (b) arriving on a raw relay WebSocket opened in
 *    this process on the same session (the baseline), p50/p95 over the run. Both instants are taken on this
 *    process's clock through one page binding, so the page's own clock never enters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { turns } from '../core/test/support/fake-anthropic.js';
import { ensureDashboardBuilt, launchBrowser, openDashboard } from '../test/support/browser.js';
import { startBenchCloud } from './lib/cloud.js';
import { BenchRelayClient, isResult } from './lib/relay-client.js';
import { machineConditions, percentile } from './lib/stats.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../web/dist');
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const gz = (data: Buffer | string) => gzipSync(data, { level: 9 }).length;

/** The JS index.html loads before anything runs: its module entry and the chunks it preloads. */
function firstPageJsFromDist(): { files: string[]; gzipped: number } {
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const files = [
    ...html.matchAll(/<script[^>]+src="([^"]+\.js)"/g),
    ...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"/g),
  ].flatMap((m) => (m[1] ? [m[1]] : []));
  const gzipped = files.reduce((sum, file) => sum + gz(readFileSync(join(dist, file.replace(/^\//, '')))), 0);
  return { files, gzipped };
}

function allDistJs(): { file: string; gzipped: number }[] {
  return readdirSync(join(dist, 'assets'))
    .filter((file) => file.endsWith('.js'))
    .map((file) => ({ file, gzipped: gz(readFileSync(join(dist, 'assets', file))) }))
    .sort((a, b) => b.gzipped - a.gzipped);
}

async function main(): Promise<void> {
  ensureDashboardBuilt();
  console.log(machineConditions());
  const fromDist = firstPageJsFromDist();
  console.log('\n1. First page JS, gzipped (goal ≤ 150 KB)');
  console.log(`   from web/dist: ${kb(fromDist.gzipped)} (${fromDist.files.join(', ')})`);
  const everything = allDistJs();
  console.log(
    `   all of dist's JS: ${kb(everything.reduce((s, f) => s + f.gzipped, 0))} in ${everything.length} chunks`,
  );
  for (const chunk of everything.slice(0, 6))
    console.log(`     ${kb(chunk.gzipped).padStart(9)}  ${chunk.file}`);

  const cloud = await startBenchCloud();
  const browser = await launchBrowser();
  try {
    // What Chromium fetched for the sign-in page, then the workspaces page (signed in with the user's key).
    for (const [label, path, token] of [
      ['sign-in', '/sign-in', undefined],
      ['workspaces', '/', cloud.key],
    ] as const) {
      const dashboard = await openDashboard(browser, token ? { token } : {});
      const scripts: { url: string; gzipped: number }[] = [];
      dashboard.page.on('response', (res) => {
        if (res.request().resourceType() !== 'script') return;
        void res.body().then((body) => scripts.push({ url: new URL(res.url()).pathname, gzipped: gz(body) }));
      });
      await dashboard.page.goto(`${cloud.apiUrl}${path}`, { waitUntil: 'networkidle' });
      const total = scripts.reduce((s, f) => s + f.gzipped, 0);
      const lazy = scripts.filter((s) => /xterm|markdown|purify|Terminal/i.test(s.url));
      console.log(
        `   fetched by Chromium for ${label}: ${kb(total)} in ${scripts.length} scripts` +
          `${lazy.length ? `; UNEXPECTED lazy chunks: ${lazy.map((s) => s.url).join(', ')}` : '; no terminal or markdown chunk'}`,
      );
      await dashboard.close();
    }

    // Send → first token, in the browser and on a raw relay socket.
    const workspaceId = 'bench-web';
    await cloud.readyWorkspace(workspaceId);
    const session = await cloud.agent.createSession({ workspaceId, name: 'web', startNow: true });
    const dashboard = await openDashboard(browser, { token: cloud.key });
    const { page } = dashboard;
    const marks = new Map<string, number>();
    await page.exposeBinding('__benchMark', (_source, name: unknown) => {
      if (typeof name === 'string' && !marks.has(name)) marks.set(name, performance.now());
    });
    await page.goto(`${cloud.apiUrl}/workspaces/${workspaceId}/sessions/${session.id}`);
    await page.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 60_000 });
    const raw = await BenchRelayClient.open(cloud.relayUrl(workspaceId, session.id), cloud.key);
    await raw.next((f) => f.type === 'session_snapshot', 'snapshot');
    const browserMs: number[] = [];
    const rawMs: number[] = [];
    const runs = 20;
    for (let i = 0; i < runs; i++) {
      const token = `first${i}x`;
      marks.clear();
      cloud.fake.script(turns.deltas([`${token} `, 'and the rest'], 0));
      await page.getByLabel('Message').fill(`bench message ${i}`);
      const rawSeen = raw.nextEvent(
        (e) => e.payload.type === 'claude_message' && JSON.stringify(e.payload.data).includes(token),
        `token ${i} on the raw socket`,
        60_000,
      );
      await page.evaluate(`(() => {
        const token = ${JSON.stringify(token)};
        const transcript = document.querySelector('[data-testid="transcript"]') || document.body;
        const seen = () => transcript.textContent.includes(token);
        const observer = new MutationObserver(() => {
          if (seen()) { observer.disconnect(); window.__benchMark('render'); }
        });
        observer.observe(transcript, { childList: true, subtree: true, characterData: true });
        window.__benchMark('send');
        [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Send').click();
      })()`);
      const arrived = await rawSeen;
      marks.set('raw', arrived.at);
      const tokenSeq = arrived.value.type === 'session_event' ? arrived.value.event.seq : 0;
      await raw.nextEvent((e) => isResult(e) && e.seq > tokenSeq, 'turn end', 60_000);
      const deadline = Date.now() + 30_000;
      while (!marks.has('render') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const send = marks.get('send');
      const render = marks.get('render');
      if (send === undefined || render === undefined) {
        console.log(`   run ${i}: the token was not seen rendered`);
        continue;
      }
      browserMs.push(render - send);
      rawMs.push(arrived.at - send);
    }
    const row = (label: string, v: number[]) =>
      `   ${label.padEnd(34)} p50 ${percentile(v, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(v, 95).toFixed(1).padStart(7)} ms`;
    console.log(`\n2. Send → first streamed token (${browserMs.length} of ${runs} runs)`);
    console.log(row('raw relay WebSocket (baseline)', rawMs));
    console.log(row('rendered in Chromium', browserMs));
    console.log(
      row(
        'rendering cost (browser − raw)',
        browserMs.map((b, i) => b - (rawMs[i] ?? b)),
      ),
    );
    await raw.close();
    await dashboard.close();
  } finally {
    await browser.close();
    await cloud.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
