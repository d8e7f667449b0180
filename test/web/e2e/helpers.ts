/**
 * What the dashboard's browser tests share: waiting on a page, the axe-and-screenshot sweep of a page at
 * both widths, and a record of the WebSocket frames a page sent and received.
 */
import { execFile } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page, WebSocket as PageSocket } from 'playwright-core';
import type { FakeGitHub } from '../../../core/test/support/fake-github.js';
import {
  type AxeViolation,
  axeViolations,
  describeViolations,
  isBlocking,
  openDashboard,
  SCREENSHOT_DIR,
  screenshot,
  scrollsHorizontally,
  type ViewportName,
} from '../../support/browser.js';
import type { CloudRig, CloudRigOptions } from '../../support/cloud-rig.js';
import { childEnv } from '../../support/env.js';

/** Polls `probe` until it returns something other than undefined/false. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The text of the test id's element (the first), or '' when it is not on the page. */
export async function textOf(page: Page, testId: string): Promise<string> {
  const locator = page.getByTestId(testId).first();
  return (await locator.count()) > 0 ? ((await locator.textContent()) ?? '') : '';
}

/** Frames of the page's WebSockets whose URL contains `pathPart`, as text. */
export type SocketLog = { urls: string[]; sent: string[]; received: string[] };

export function recordSockets(page: Page, pathPart: string): SocketLog {
  const log: SocketLog = { urls: [], sent: [], received: [] };
  const text = (payload: string | Buffer) =>
    typeof payload === 'string' ? payload : payload.toString('utf8');
  page.on('websocket', (ws: PageSocket) => {
    if (!ws.url().includes(pathPart)) return;
    log.urls.push(ws.url());
    ws.on('framesent', (frame) => log.sent.push(text(frame.payload)));
    ws.on('framereceived', (frame) => log.received.push(text(frame.payload)));
  });
  return log;
}

/** What axe reported per page and width (every impact), written next to the screenshots for the closing note. */
export const axeReport: Record<string, AxeViolation[]> = {};

export function writeAxeReport(): string {
  const path = join(SCREENSHOT_DIR, 'axe-report.json');
  writeFileSync(path, `${JSON.stringify(axeReport, null, 2)}\n`);
  return path;
}

/**
 * Opens `path` at both widths (signed in with `token`), waits for `ready` (which may also click, e.g. open a
 * form), then records what axe found (axeReport), writes a screenshot of each, and answers the problems: a
 * serious or critical axe violation, a phone layout that scrolls sideways, a dialog. Answered rather than
 * thrown, so one bad page does not hide what the others look like: the caller asserts on all of them.
 */
export async function sweepPage(
  browser: Browser,
  options: {
    baseUrl: string;
    token?: string;
    name: string;
    path: string;
    ready: (page: Page) => Promise<unknown>;
  },
): Promise<string[]> {
  const problems: string[] = [];
  for (const viewport of ['desktop', 'phone'] as ViewportName[]) {
    const dashboard = await openDashboard(browser, {
      viewport,
      ...(options.token ? { token: options.token } : {}),
    });
    try {
      await dashboard.page.goto(`${options.baseUrl}${options.path}`);
      await options.ready(dashboard.page);
      const found = await axeViolations(dashboard.page);
      axeReport[`${options.name} (${viewport})`] = found;
      const violations = found.filter(isBlocking);
      await screenshot(dashboard, options.name);
      if (violations.length > 0)
        problems.push(`axe on ${options.name} at ${viewport} width:\n${describeViolations(violations)}`);
      if (viewport === 'phone' && (await scrollsHorizontally(dashboard.page)))
        problems.push(`${options.name} scrolls sideways on a phone`);
      if (dashboard.dialogs.length > 0)
        problems.push(`${options.name} at ${viewport} opened a dialog: ${dashboard.dialogs.join(' | ')}`);
    } finally {
      await dashboard.close();
    }
  }
  return problems;
}

/** Where the fake GitHub's socket directory appears inside the rig's VM. */
const GITHUB_MOUNT_IN_VM = '/run/fake-github';

/** What a cloud rig needs so the VM can reach `github`: its socket directory mounted, gh never prompting. */
export function fakeGitHubRigOptions(github: FakeGitHub): CloudRigOptions {
  // The VM's user (uid 1000) must reach the socket through the mount.
  chmodSync(dirname(github.socketPath), 0o755);
  chmodSync(github.socketPath, 0o666);
  return {
    extraVmMounts: [`${dirname(github.socketPath)}:${GITHUB_MOUNT_IN_VM}`],
    extraVmEnv: { GH_NO_UPDATE_NOTIFIER: '1', GH_PROMPT_DISABLED: '1' },
  };
}

/**
 * Logs the VM's real gh in to the fake GitHub, as a user's onboarding leaves it, and answers the login gh
 * sees. Asynchronous on purpose: the fake answers gh from this very process, so a synchronous docker exec
 * (cloud-rig's execInVm) would wait on a server it keeps from running.
 */
export async function ghLoginInVm(rig: CloudRig, github: FakeGitHub): Promise<string> {
  const ref = await rig.vmRef();
  const script = [
    'mkdir -p ~/.config/gh',
    `printf "http_unix_socket: ${GITHUB_MOUNT_IN_VM}/${basename(github.socketPath)}\\n" > ~/.config/gh/config.yml`,
    `echo ${github.fixtures().token ?? 'fake-token'} | gh auth login --hostname github.com --with-token`,
    'gh api user --jq .login',
  ].join(' && ');
  const { stdout } = await promisify(execFile)('docker', ['exec', ref.containerName, 'sh', '-c', script], {
    encoding: 'utf8',
    env: childEnv(),
    timeout: 60_000,
  });
  return stdout.trim();
}
