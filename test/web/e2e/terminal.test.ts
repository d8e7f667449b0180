/**
 * The VM page's terminal in real Chromium against the real stack (api and worker processes, a real VM):
 * a command typed into xterm runs in the VM; a drag-resize of the window in 50 steps sends debounced
 * resizes and ends with the PTY's size equal to xterm's; after the api restarts the terminal reattaches and
 * replays its scrollback without a duplicated line; after the VM itself restarts the terminal says so and
 * reconnects, again with no line twice.
 */
import assert from 'node:assert/strict';
import { safeParseJson } from '@factory-factory/core/protocol';
import type { Browser, Page } from 'playwright-core';
import { z } from 'zod';
import {
  type DashboardPage,
  ensureDashboardBuilt,
  inPage,
  launchBrowser,
  localToken,
  openDashboard,
} from '../../support/browser.js';
import { type CloudRig, startCloudRig } from '../../support/cloud-rig.js';
import { recordSockets, type SocketLog, textOf, until } from './helpers.js';

const ResizeFrame = z.object({ type: z.literal('resize'), cols: z.number().int(), rows: z.number().int() });

/** What xterm shows, one string per row (its DOM renderer's rows). */
async function screenRows(page: Page): Promise<string[]> {
  return inPage(
    page,
    z.array(z.string()),
    `() => [...document.querySelectorAll('[data-testid="terminal"] .xterm-rows > div')].map((row) => row.textContent || '')`,
  );
}

const countLines = (rows: string[], line: string) => rows.filter((row) => row.trim() === line).length;

describe('web e2e: the terminal on the VM page (real api, worker, VM)', function () {
  this.timeout(10 * 60_000);
  let rig: CloudRig;
  let browser: Browser;
  let dashboard: DashboardPage;
  let page: Page;
  let socket: SocketLog;

  before(async () => {
    ensureDashboardBuilt();
    rig = await startCloudRig('webterm');
    browser = await launchBrowser();
    // A workspace makes the VM (the rig's user has no other way to get one provisioned and onboarded).
    await rig.sendAndWaitReady(`ws-webterm-${rig.suffix}`);
    dashboard = await openDashboard(browser, { token: await localToken(rig.api.url, rig.user.userId) });
    page = dashboard.page;
    socket = recordSockets(page, '/ws/vms/me/terminal');
  });
  after(async () => {
    await dashboard?.close().catch(() => undefined);
    await browser?.close();
    await rig?.stop();
  });

  async function typeLine(text: string): Promise<void> {
    await page.getByTestId('terminal').click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  }

  it('opens the terminal and runs a command in the VM', async () => {
    await page.goto(`${rig.api.url}/vm`);
    await page.getByRole('heading', { name: 'Your VM', exact: true }).waitFor();
    for (const item of ['GitHub CLI logged in', 'Claude logged in'])
      await page.getByText(item).first().waitFor();
    await page.getByRole('button', { name: 'Open terminal' }).click();
    await page.getByTestId('terminal').locator('.xterm').waitFor();
    await until('the shell to print something', async () =>
      (await screenRows(page)).some((row) => row.trim() !== ''),
    );
    await typeLine('echo "ran-$((6*7))-in-vm"');
    await until('the output', async () => countLines(await screenRows(page), 'ran-42-in-vm') === 1);
  });

  it('a 50-step drag-resize sends debounced resizes and ends with the PTY as large as xterm', async () => {
    const sentBefore = socket.sent.length;
    for (let step = 1; step <= 50; step += 1) {
      await page.setViewportSize({ width: 1280 - step * 10, height: 800 - step * 5 });
      await page.waitForTimeout(10);
    }
    const resizes = () =>
      socket.sent
        .slice(sentBefore)
        .map((text) => safeParseJson(ResizeFrame, text))
        .flatMap((parsed) => (parsed.ok ? [parsed.value] : []));
    // Settled: the last resize sent has xterm's final row count, and none follows it over three looks 100 ms
    // apart (the debounce's own period is 100 ms, so one still pending would have gone out meanwhile).
    let count = -1;
    let unchangedLooks = 0;
    await until('the resizes to settle', async () => {
      const sentNow = resizes();
      const rows = (await screenRows(page)).length;
      unchangedLooks = sentNow.length === count ? unchangedLooks + 1 : 0;
      count = sentNow.length;
      return sentNow.length > 0 && sentNow.at(-1)?.rows === rows && unchangedLooks >= 3;
    });
    const sent = resizes();
    assert.ok(sent.length >= 1 && sent.length < 50, `debounced: ${sent.length} resizes for 50 steps`);
    const last = sent.at(-1);
    assert.ok(last);
    const rows = await screenRows(page);
    assert.equal(rows.length, last.rows, "xterm's rows are the last size sent");
    await typeLine('stty size');
    const expected = `${last.rows} ${last.cols}`;
    await until(`the PTY to be ${expected}`, async () => countLines(await screenRows(page), expected) >= 1);
  });

  it('after the api restarts, the terminal reattaches and replays its scrollback without a line twice', async () => {
    await typeLine('clear');
    await typeLine('echo "mark-$((1+1))-before-api-restart"');
    await until(
      'the mark',
      async () => countLines(await screenRows(page), 'mark-2-before-api-restart') === 1,
    );
    await rig.restartApi({ signal: 'SIGKILL' });
    await until('reattached', async () => /^\s*Connected/.test(await textOf(page, 'terminal-state')), 60_000);
    await typeLine('echo "mark-$((2+1))-after-api-restart"');
    await until(
      'the new mark',
      async () => countLines(await screenRows(page), 'mark-3-after-api-restart') === 1,
    );
    assert.equal(countLines(await screenRows(page), 'mark-2-before-api-restart'), 1, 'scrollback once');
  });

  it('after the VM restarts, the terminal says so, reconnects, and shows no line twice', async () => {
    await typeLine('clear');
    await typeLine('echo "vm-$((3+1))-before-restart"');
    await until('the mark', async () => countLines(await screenRows(page), 'vm-4-before-restart') === 1);
    const ref = await rig.vmRef();
    const states: string[] = [];
    const watch = setInterval(() => {
      void textOf(page, 'terminal-state').then((t) => {
        if (t !== states.at(-1)) states.push(t);
      });
    }, 100);
    try {
      await rig.docker.getContainer(ref.containerName).restart({ t: 1 });
      await until('"VM restarted"', () => states.some((s) => /VM restarted/i.test(s)), 120_000);
      await until('reconnected', () => /^\s*Connected/.test(states.at(-1) ?? ''), 180_000);
    } finally {
      clearInterval(watch);
    }
    await typeLine('echo "vm-$((4+1))-after-restart"');
    await until(
      'the new mark',
      async () => countLines(await screenRows(page), 'vm-5-after-restart') === 1,
      60_000,
    );
    assert.ok(countLines(await screenRows(page), 'vm-4-before-restart') <= 1, 'no line twice');
  });
});
