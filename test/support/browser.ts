/**
 * The dashboard in a real browser, for test/web/e2e/ and bench/web.ts: Debian's Chromium driven by
 * playwright-core (no browser download: the executable is the system's, installed by scripts/dev.sh).
 *
 * - `ensureDashboardBuilt()` makes web/dist match the current source (builds only when it does not), so the
 *   api serves what the test reads.
 * - `openDashboard()` opens a page at desktop or phone width and records what the page fetched (every
 *   request, for "nothing fetched twice" and for the first page's JS weight), dialogs (a script that ran
 *   would open one), console errors and page errors.
 * - `checkAccessibility()` injects axe-core into the page and runs it: the serious and critical violations.
 * - `screenshot()` writes `.data/screenshots/<name>-<width>.png` (README, Dashboard).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { z } from 'zod';
import { LocalSignInAnswerSchema } from '../../api/contract/accounts.js';
import { childEnv } from './env.js';
import { request } from './http.js';
import { testConfig } from './services.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Where every browser test writes its screenshots (gitignored with the rest of .data). */
export const SCREENSHOT_DIR = join(testConfig.dataDir, 'screenshots');
/** The key the dashboard keeps its session token under (web/src/stores/auth.ts, the /auth/local page). */
export const TOKEN_STORAGE_KEY = 'ffc.sessionToken';

export const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;
export type ViewportName = keyof typeof VIEWPORTS;

/** What web/dist is built from: a change to any of these makes a build stale. */
const WEB_DIR = join(root, 'web');
const WEB_SOURCES = ['src', 'index.html', 'vite.config.ts', 'package.json', 'tsconfig.json'];
/** Beside the build it describes (express.static does not serve dotfiles). */
const STAMP_FILE = '.source-hash';

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

/** A hash of the dashboard's source and the installed versions of what it is built with. */
function webSourceHash(): string {
  const hash = createHash('sha256');
  const lockfile = join(root, 'package-lock.json');
  for (const file of [...WEB_SOURCES.flatMap((p) => filesUnder(join(WEB_DIR, p))), lockfile]) {
    hash.update(`${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function builtHash(dist: string): string | null {
  const stamp = join(dist, STAMP_FILE);
  return existsSync(stamp) && existsSync(join(dist, 'index.html'))
    ? readFileSync(stamp, 'utf8').trim()
    : null;
}

let checked = false;

/**
 * Makes web/dist match the current source, at most once per process: nothing when its stamp says it was built
 * from this very source (a second test file, `scripts/dev.sh test`, a bench after a test), else a build into a
 * fresh directory that then replaces dist by rename, so an api serving dist (a concurrent run) never sees a
 * half-written one, and two builds at once each end with a whole dist. Call it before an api starts: the api
 * looks for dist/index.html once, at start.
 */
export function ensureDashboardBuilt(): void {
  if (checked) return;
  const dist = join(WEB_DIR, 'dist');
  const hash = webSourceHash();
  if (builtHash(dist) !== hash) {
    const out = join(WEB_DIR, `.dist-build-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    try {
      execFileSync('npx', ['vite', 'build', '--outDir', out, '--emptyOutDir'], {
        cwd: WEB_DIR,
        env: childEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 180_000,
      });
      writeFileSync(join(out, STAMP_FILE), `${hash}\n`);
      const old = join(WEB_DIR, `.dist-old-${process.pid}`);
      if (existsSync(dist)) renameSync(dist, old);
      try {
        renameSync(out, dist);
      } catch (err) {
        // Another process put its build in place between the two renames: it is of the same source, or newer.
        if (!existsSync(join(dist, 'index.html'))) throw err;
      }
      rmSync(old, { recursive: true, force: true });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  checked = true;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // Tests run as root in a container: Chromium's sandbox needs user namespaces it does not get there.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    headless: true,
  });
}

export type FetchedRequest = {
  url: string;
  method: string;
  resourceType: string;
  /** Bytes on the wire (compressed as sent), once the response finished; 0 for a failure. */
  transferBytes: number;
};

export type DashboardPage = {
  context: BrowserContext;
  page: Page;
  viewport: ViewportName;
  /** Every request the page made, in order. */
  requests: FetchedRequest[];
  /** Messages of every dialog (alert, confirm, prompt) that opened; each is dismissed. */
  dialogs: string[];
  /** Uncaught exceptions and console errors of the page. */
  errors: string[];
  close(): Promise<void>;
};

/**
 * A fresh browser context (its own storage) at `viewport` width. With `token`, the dashboard starts signed
 * in with it (sessionStorage, as the sign-in form leaves it).
 */
export async function openDashboard(
  browser: Browser,
  options: { viewport?: ViewportName; token?: string } = {},
): Promise<DashboardPage> {
  const viewport = options.viewport ?? 'desktop';
  const context = await browser.newContext({
    viewport: VIEWPORTS[viewport],
    ...(viewport === 'phone' ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  if (options.token) {
    const [key, value] = [JSON.stringify(TOKEN_STORAGE_KEY), JSON.stringify(options.token)];
    await context.addInitScript({
      content: `if (!sessionStorage.getItem(${key})) sessionStorage.setItem(${key}, ${value});`,
    });
  }
  const page = await context.newPage();
  const requests: FetchedRequest[] = [];
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('requestfinished', (req) => {
    void req.sizes().then(
      (sizes) =>
        requests.push({
          url: req.url(),
          method: req.method(),
          resourceType: req.resourceType(),
          transferBytes: sizes.responseBodySize + sizes.responseHeadersSize,
        }),
      () =>
        requests.push({
          url: req.url(),
          method: req.method(),
          resourceType: req.resourceType(),
          transferBytes: 0,
        }),
    );
  });
  page.on('requestfailed', (req) =>
    requests.push({
      url: req.url(),
      method: req.method(),
      resourceType: req.resourceType(),
      transferBytes: 0,
    }),
  );
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss().catch(() => undefined);
  });
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  return { context, page, viewport, requests, dialogs, errors, close: () => context.close() };
}

/** A local-mode session token for `userId` (POST /api/auth/local/sign-in), as the sign-in form gets one. */
export async function localToken(apiUrl: string, userId: string): Promise<string> {
  const res = await request(`${apiUrl}/api/auth/local/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  if (res.status !== 200) throw new Error(`local sign-in failed: ${res.status} ${res.text}`);
  return LocalSignInAnswerSchema.parse(res.json).token;
}

const AxeResultsSchema = z.object({
  violations: z.array(
    z.object({
      id: z.string(),
      impact: z.string().nullable().optional(),
      help: z.string(),
      nodes: z.array(z.object({ target: z.array(z.unknown()), html: z.string() })),
    }),
  ),
});
export type AxeViolation = z.output<typeof AxeResultsSchema>['violations'][number];

/** Whether a violation fails a test: serious or critical (moderate and minor ones are reported only). */
export const isBlocking = (v: AxeViolation): boolean => v.impact === 'serious' || v.impact === 'critical';

/** axe-core's serious and critical violations on the page as it is now (WCAG 2 A/AA and best practices). */
export async function checkAccessibility(page: Page): Promise<AxeViolation[]> {
  return (await axeViolations(page)).filter(isBlocking);
}

/** Every violation axe-core finds on the page as it is now, of any impact. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const hasAxe = await inPage(page, z.boolean(), "() => 'axe' in window");
  if (!hasAxe) await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  const raw = await inPage(
    page,
    z.unknown(),
    `() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    })`,
  );
  return AxeResultsSchema.parse(raw).violations;
}

/** One line per violation and node, for an assertion message. */
export function describeViolations(violations: readonly AxeViolation[]): string {
  return violations
    .flatMap((v) => v.nodes.map((node) => `${v.impact} ${v.id} (${v.help}): ${node.html.slice(0, 200)}`))
    .join('\n');
}

/** A full-page PNG at `.data/screenshots/<name>-<viewport>.png`; returns its path. */
export async function screenshot(
  dashboard: Pick<DashboardPage, 'page' | 'viewport'>,
  name: string,
): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}-${dashboard.viewport}.png`);
  await dashboard.page.screenshot({ path, fullPage: true });
  return path;
}

/** Whether the page scrolls sideways (a phone layout must not). */
export async function scrollsHorizontally(page: Page): Promise<boolean> {
  return inPage(
    page,
    z.boolean(),
    '() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1',
  );
}

/**
 * Runs `source`, the text of a function, in the page with `arg` (JSON), and checks what it answers. Page
 * code is text here because the cloud's TypeScript has no DOM types: what crosses back is validated instead.
 */
export async function inPage<T extends z.ZodType>(
  page: Page,
  schema: T,
  source: string,
  arg?: unknown,
): Promise<z.output<T>> {
  const raw: unknown = await page.evaluate(`(${source})(${arg === undefined ? '' : JSON.stringify(arg)})`);
  return schema.parse(raw);
}
