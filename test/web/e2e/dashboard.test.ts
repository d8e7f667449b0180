/**
 * The dashboard end to end in real Chromium (Debian's, driven by playwright-core) against the real stack
 * (test/support/cloud-rig.ts: the production api and worker processes serving the built web/dist,
 * Temporal, Postgres, a VM with the real claude against the fake Anthropic API):
 *
 * sign in; create a workspace from an issue URL; a message streamed token by token; a question answered
 * inline; a permission allowed and another denied; the history after a reload; the api killed mid-stream
 * ("Reconnecting…", then exactly the missed text); usage moving; an API key created, shown once and revoked;
 * agent markdown carrying script and event-handler payloads rendered inert; a session of 1,000+ events
 * opened on its newest page with nothing fetched twice. Then every page at desktop and phone width: axe
 * reports no serious or critical violation, the phone layout does not scroll sideways, and a screenshot of
 * each is written to .data/screenshots/.
 */
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { z } from 'zod';
import { SessionMessagesPageSchema } from '../../../api/contract/dashboard.js';
import { turns } from '../../../core/test/support/fake-anthropic.js';
import { type FakeGitHub, startFakeGitHub } from '../../../core/test/support/fake-github.js';
import {
  type DashboardPage,
  ensureDashboardBuilt,
  inPage,
  launchBrowser,
  localToken,
  openDashboard,
} from '../../support/browser.js';
import { type CloudRig, startCloudRig } from '../../support/cloud-rig.js';
import { request } from '../../support/http.js';
import { makeLongSession } from '../../support/long-session.js';
import { eventually } from '../../support/vm.js';
import {
  fakeGitHubRigOptions,
  ghLoginInVm,
  recordSockets,
  sweepPage,
  textOf,
  until,
  writeAxeReport,
} from './helpers.js';

/** The repository of the issues the fake GitHub serves. */
const FAKE_REPO = 'acme/app';

/** In the page: every distinct text of the last assistant message, each frame, until it contains `last`. */
const RENDERED_STATES = `async (last) => {
  const states = [];
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const all = document.querySelectorAll('[data-testid="assistant-message"]');
    const text = all.length ? all[all.length - 1].textContent || '' : '';
    if (text !== states[states.length - 1]) states.push(text);
    if (text.includes(last)) break;
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  return states;
}`;

/** In the page: whatever of the transcript could run script. */
const AUDIT_TRANSCRIPT = `() => {
  const transcript = document.querySelector('[data-testid="transcript"]');
  const all = transcript ? [...transcript.querySelectorAll('*')] : [];
  return {
    pwned: window.__pwned ?? null,
    scripts: transcript ? transcript.querySelectorAll('script, iframe, object, embed').length : -1,
    handlers: all.filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
    jsLinks: all.filter((el) => /^\\s*javascript:/i.test(el.getAttribute('href') || el.getAttribute('src') || '')).length,
    links: [...(transcript ? transcript.querySelectorAll('a[href^="https://example.test"]') : [])].map((a) => ({
      rel: a.getAttribute('rel'),
      target: a.getAttribute('target'),
    })),
    bold: transcript ? transcript.querySelectorAll('strong').length : 0,
  };
}`;
const TranscriptAudit = z.object({
  pwned: z.unknown(),
  scripts: z.number(),
  handlers: z.number(),
  jsLinks: z.number(),
  links: z.array(z.object({ rel: z.string().nullable(), target: z.string().nullable() })),
  bold: z.number(),
});

describe('web e2e: the dashboard in Chromium against the real stack', function () {
  this.timeout(15 * 60_000);
  let github: FakeGitHub;
  let rig: CloudRig;
  let browser: Browser;
  let token: string;
  let workspaceId: string;
  let sessionId: string;
  const open: DashboardPage[] = [];

  before(async () => {
    ensureDashboardBuilt();
    // Core's fake GitHub, mounted into the VM, with the VM's real gh logged in to it (as a user's onboarding
    // leaves it), so a workspace made from an issue URL can read its issue.
    github = await startFakeGitHub({ fixtures: { repos: { [FAKE_REPO]: { pulls: [] } } } });
    rig = await startCloudRig('web', fakeGitHubRigOptions(github));
    browser = await launchBrowser();
    workspaceId = `ws-web-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
    assert.equal(
      await ghLoginInVm(rig, github),
      github.fixtures().viewer.login,
      'gh in the VM reaches the fake',
    );
    // The rig's own user, signed in as the sign-in form would: the workspaces above are theirs.
    token = await localToken(rig.api.url, rig.user.userId);
  });
  after(async () => {
    for (const dashboard of open) await dashboard.close().catch(() => undefined);
    await browser?.close();
    await rig?.stop();
    await github?.close();
  });

  async function signedIn(path: string, viewport: 'desktop' | 'phone' = 'desktop'): Promise<DashboardPage> {
    const dashboard = await openDashboard(browser, { viewport, token });
    open.push(dashboard);
    await dashboard.page.goto(`${rig.api.url}${path}`);
    return dashboard;
  }

  const lastAssistant = (page: Page) => page.getByTestId('assistant-message').last();
  const assistantTexts = (page: Page) => page.getByTestId('assistant-message').allTextContents();

  it('signs in with the local sign-in form and lands on the workspaces, with the nav', async () => {
    const dashboard = await openDashboard(browser);
    open.push(dashboard);
    const { page } = dashboard;
    await page.goto(`${rig.api.url}/`);
    await page.waitForURL(/\/sign-in/);
    await page.getByLabel('Email').fill(`w2-${rig.suffix}@example.test`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor();
    for (const name of ['Workspaces', 'VM', 'Usage', 'API keys', 'Audit log'])
      await page.getByRole('link', { name, exact: true }).first().waitFor();
    // A new account has nothing yet, and says what to do first.
    await page.getByText(/No workspaces yet/).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/sign-in/);
    assert.deepEqual(dashboard.dialogs, []);
  });

  it("lists the rig user's workspace with its status, and the board's three columns", async () => {
    const { page } = await signedIn('/');
    await page.getByRole('link', { name: `e2e ${workspaceId}` }).waitFor();
    assert.match(await textOf(page, 'workspace-status'), /ready/i);
    await page.getByRole('button', { name: 'Board' }).click();
    for (const column of ['Working', 'Waiting for input', 'Done'])
      await page.getByRole('heading', { name: column }).waitFor();
    await page.getByRole('button', { name: 'List' }).click();
  });

  it('creates a workspace from a GitHub issue URL; the VM reads the issue and provisions it', async () => {
    const issueNumber = 4242;
    const title = `Make the widgets blue ${rig.suffix}`;
    github.updateFixtures((fixtures) => {
      const repo = fixtures.repos[FAKE_REPO];
      assert.ok(repo);
      repo.issues.push({
        number: issueNumber,
        title,
        body: 'They are red.',
        author: 'octo-tester',
        state: 'OPEN',
        createdAt: '2024-01-01T00:00:00Z',
      });
    });
    const { page } = await signedIn('/');
    await page.getByRole('button', { name: 'New workspace' }).click();
    const issueUrl = `https://github.com/${FAKE_REPO}/issues/${issueNumber}`;
    await page.getByLabel('GitHub issue URL').fill(issueUrl);
    // The rig's repository (a file:// URL the VM can clone) stands in for the issue's own.
    await page.getByLabel(/Repository URL/).fill(rig.repoUrlInVm);
    await page.getByRole('button', { name: 'Create workspace' }).click();
    // The rig's user is on Free (one cloud workspace at a time) and has one: the form says so, readably.
    const refusal = page.getByRole('alert').filter({ hasText: 'Cloud workspace limit reached' });
    await refusal.waitFor();
    assert.doesNotMatch((await refusal.textContent()) ?? '', /[{}]/, 'a message, not raw JSON');
    await rig.db.pool.query("UPDATE users SET plan = 'PRO' WHERE id = $1", [rig.user.userId]);
    await page.getByRole('button', { name: 'Create workspace' }).click();
    // The form leads to the new workspace's page, which names it after the issue once the VM has read it.
    await page.waitForURL(/\/workspaces\/[^/]+$/);
    const workspaceIdFromUrl = decodeURIComponent(new URL(page.url()).pathname.split('/').at(-1) ?? '');
    await until(
      'the workspace named after the issue',
      async () => (await page.getByText(`Issue #${issueNumber}: ${title}`).count()) > 0,
      180_000,
    );
    const view = await eventually(
      'the workspace from the issue READY',
      async () => {
        const got = await rig.http(`/api/workspaces/${workspaceIdFromUrl}`);
        return /"status":"READY"/.test(got.text) ? got.text : undefined;
      },
      180_000,
      250,
    );
    assert.match(view, new RegExp(`Issue #${issueNumber}`));
    assert.ok(!(await page.content()).includes('{"error"'), 'no raw JSON on the page');
  });

  it('streams a reply token by token, answers a question inline, allows one command and denies another', async () => {
    sessionId = await rig.createSession(workspaceId, { permissionMode: 'default', name: 'browser' });
    const { page } = await signedIn(`/workspaces/${workspaceId}/sessions/${sessionId}`);
    await until('Connected', async () => /^\s*Connected/.test(await textOf(page, 'connection-state')));

    // Token by token: the rendered text grows through several prefixes of the reply.
    const chunks = Array.from({ length: 12 }, (_, i) => `tok${i} `);
    rig.fake.script(turns.deltas(chunks, 150));
    await page.getByLabel('Message').fill('stream to me');
    await page.getByRole('button', { name: 'Send' }).click();
    const seen = await inPage(page, z.array(z.string()), RENDERED_STATES, 'tok11');
    const partial = seen.filter((s) => s.includes('tok0') && !s.includes('tok11'));
    assert.ok(partial.length >= 3, `the reply appeared in pieces, not at once: ${JSON.stringify(seen)}`);
    assert.match(seen.at(-1) ?? '', /tok0 tok1 .*tok11/);

    // A question, answered inline.
    rig.fake.script(turns.ask('Which color do you prefer?', ['Red', 'Blue'], 'Color'));
    await page.getByLabel('Message').fill('ask me');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('radio', { name: /Blue/ }).check();
    const requestsBefore = rig.fake.requests.length;
    await page.getByRole('button', { name: 'Answer' }).click();
    await until('the answer to reach the model', () =>
      rig.fake.requests.slice(requestsBefore).some((r) => r.toolResults.some((t) => /Blue/.test(t.content))),
    );

    // One command allowed, one denied: only the allowed one ran in the VM.
    const inWorktree = (script: string) => rig.execInVm(`cd ${rig.worktreeInVm(workspaceId)} && ${script}`);
    rig.fake.script(turns.bash('echo ran > allowed.txt', 'Create allowed.txt'));
    await page.getByLabel('Message').fill('run it');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await until('allowed.txt', async () =>
      (await inWorktree('cat allowed.txt 2>/dev/null || true')).includes('ran'),
    );
    rig.fake.script(turns.bash('echo ran > denied.txt', 'Create denied.txt'));
    await page.getByLabel('Message').fill('run the other');
    await page.getByRole('button', { name: 'Send' }).click();
    const denyFrom = rig.fake.requests.length;
    await page.getByRole('button', { name: 'Deny' }).click();
    await until('the denial to reach the model', () =>
      rig.fake.requests.slice(denyFrom).some((r) => r.toolResults.some((t) => t.isError)),
    );
    assert.equal((await inWorktree('test -e denied.txt && echo yes || echo no')).trim(), 'no');
  });

  it('finds the history after a reload', async () => {
    const { page } = await signedIn(`/workspaces/${workspaceId}/sessions/${sessionId}`);
    await until('the streamed reply in the history', async () =>
      (await assistantTexts(page)).some((t) => t.includes('tok11')),
    );
    await page.reload();
    await until('the history after the reload', async () =>
      (await assistantTexts(page)).some((t) => t.includes('tok11')),
    );
  });

  it('shows "Reconnecting…" while the api is down mid-stream, then exactly the missed text', async () => {
    const { page } = await signedIn(`/workspaces/${workspaceId}/sessions/${sessionId}`);
    await until('Connected', async () => /^\s*Connected/.test(await textOf(page, 'connection-state')));
    const chunks = Array.from({ length: 30 }, (_, i) => `k${i} `);
    rig.fake.script(turns.deltas(chunks, 200));
    await page.getByLabel('Message').fill('a long one');
    await page.getByRole('button', { name: 'Send' }).click();
    await until('the first tokens', async () =>
      ((await lastAssistant(page).textContent()) ?? '').includes('k2 '),
    );
    const restarted = rig.restartApi({ signal: 'SIGKILL' });
    await until(
      'Reconnecting…',
      async () => /Reconnecting/.test(await textOf(page, 'connection-state')),
      30_000,
    );
    await restarted;
    await until(
      'Connected again',
      async () => /^\s*Connected/.test(await textOf(page, 'connection-state')),
      60_000,
    );
    const text = await until('the whole reply', async () => {
      const t = (await lastAssistant(page).textContent()) ?? '';
      return t.includes('k29') ? t : undefined;
    });
    // k1 is in k10…k19 too: a token is its name not followed by another digit.
    const occurrences = (token: string) => text.match(new RegExp(`${token}(?!\\d)`, 'g'))?.length ?? 0;
    for (const chunk of chunks)
      assert.equal(occurrences(chunk.trim()), 1, `${chunk.trim()} exactly once in ${text}`);
  });

  it('renders agent markdown inert: no script runs, no handler, no javascript: link', async () => {
    const { page } = await signedIn(`/workspaces/${workspaceId}/sessions/${sessionId}`);
    const dashboard = open.at(-1);
    assert.ok(dashboard);
    await until('Connected', async () => /^\s*Connected/.test(await textOf(page, 'connection-state')));
    const payload = [
      'inert-check **bold** and [a link](https://example.test/page)',
      '<script>window.__pwned = "script"; alert("script")</script>',
      '<img src="x" onerror="window.__pwned = \'img\'; alert(\'img\')">',
      '[click me](javascript:window.__pwned="link";alert("link"))',
      '<a href="javascript:alert(1)" onclick="alert(2)">raw</a> <svg onload="alert(3)"></svg>',
      '<iframe src="javascript:alert(4)"></iframe>',
    ].join('\n\n');
    rig.fake.script(turns.text(payload));
    await page.getByLabel('Message').fill('show me markdown');
    await page.getByRole('button', { name: 'Send' }).click();
    await until('the markdown reply', async () =>
      ((await lastAssistant(page).textContent()) ?? '').includes('inert-check'),
    );
    // An <img onerror> left in would have fired by the time every image of the transcript has settled.
    await until('the images of the transcript settled', () =>
      inPage(
        page,
        z.boolean(),
        `() => [...document.querySelectorAll('[data-testid="transcript"] img')].every((img) => img.complete)`,
      ),
    );
    const found = await inPage(page, TranscriptAudit, AUDIT_TRANSCRIPT);
    assert.deepEqual(
      { pwned: found.pwned, scripts: found.scripts, handlers: found.handlers, jsLinks: found.jsLinks },
      { pwned: null, scripts: 0, handlers: 0, jsLinks: 0 },
    );
    assert.ok(found.bold > 0, 'markdown is rendered, not shown as source');
    assert.ok(found.links.length > 0, 'the safe link is a link');
    for (const link of found.links) {
      assert.match(link.rel ?? '', /noopener/);
      assert.match(link.rel ?? '', /noreferrer/);
      assert.equal(link.target, '_blank');
    }
    assert.deepEqual(dashboard.dialogs, [], 'no dialog opened');
  });

  it('shows usage and sees it move when minutes are billed', async () => {
    const { page } = await signedIn('/usage');
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    const minutes = async () => Number(/(\d+)/.exec(await textOf(page, 'minutes-used'))?.[1] ?? Number.NaN);
    const before = await until('minutes used', async () => {
      const n = await minutes();
      return Number.isNaN(n) ? undefined : n;
    });
    assert.ok(
      (await page.getByTestId('usage-chart').locator('title').count()) > 0,
      'the chart has a <title>',
    );
    // A slice as the usage actor records one for the VM's running time.
    await rig.db.pool.query(
      `INSERT INTO usage_records (user_id, vm_id, period_start, period_end, compute_seconds, minutes, idempotency_key)
       VALUES ($1, 'vm', now() - interval '3 minutes', now(), 180, 3, $2)`,
      [rig.user.userId, `web-e2e-${rig.suffix}`],
    );
    await page.reload();
    await until('the minutes to move', async () => (await minutes()) >= before + 3);
    for (const name of ['Upgrade', 'Manage billing', 'Invoices'])
      assert.ok(
        (await page.getByRole('button', { name }).or(page.getByRole('link', { name })).count()) > 0,
        name,
      );
  });

  it('creates an API key, shows it once, and revokes it: the api refuses it from then on', async () => {
    const { page } = await signedIn('/keys');
    await page.getByLabel('Key name').fill(`laptop ${rig.suffix}`);
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await until(
      'the new key',
      async () => /ffc_live_[0-9A-Za-z_]+/.exec(await textOf(page, 'new-key'))?.[0],
    );
    const me = () => request(`${rig.api.url}/api/me`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal((await me()).status, 200);
    await page.reload();
    assert.equal(await page.getByTestId('new-key').count(), 0, 'shown once');
    await page.getByRole('button', { name: 'Revoke' }).first().click();
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await until('the key refused', async () => (await me()).status === 401);
  });

  it('opens a session of 1,000+ events on its newest page; the relay goes on from there; nothing fetched twice', async () => {
    const long = await makeLongSession(rig, workspaceId, { minEvents: 1000 });
    const dashboard = await openDashboard(browser, { token });
    open.push(dashboard);
    const { page } = dashboard;
    const relay = recordSockets(page, `/sessions/${long.sessionId}`);
    const pages: { url: string; seq: number; start: number; count: number }[] = [];
    page.on('response', (res) => {
      if (!res.url().includes(`/sessions/${long.sessionId}/messages`)) return;
      void res.json().then((body: unknown) => {
        const parsed = SessionMessagesPageSchema.parse(body);
        pages.push({ url: res.url(), seq: parsed.seq, start: parsed.start, count: parsed.messages.length });
      });
    });
    await page.goto(`${rig.api.url}/workspaces/${workspaceId}/sessions/${long.sessionId}`);
    await until('Connected', async () => /^\s*Connected/.test(await textOf(page, 'connection-state')));
    await until('the newest page', () => pages.length >= 1);
    const first = pages[0];
    assert.ok(first);
    assert.ok(first.seq >= 1000, `1,000+ events (${first.seq})`);
    assert.ok(!new URL(first.url).searchParams.has('before'), 'the first page is the newest');
    assert.ok(first.start > 0, 'older messages are left for later');
    assert.equal(relay.urls.length, 1);
    assert.equal(
      new URL(relay.urls[0] ?? '').searchParams.get('after'),
      String(first.seq),
      'relay after the page',
    );
    assert.ok(!relay.received.some((frame) => frame.includes('"type":"session_snapshot"')), 'no snapshot');

    await page.getByRole('button', { name: 'Load earlier' }).click();
    await until('an older page', () => pages.length >= 2);
    const older = pages[1];
    assert.ok(older);
    assert.equal(new URL(older.url).searchParams.get('before'), String(first.start));
    assert.equal(older.start + older.count, first.start, 'the older page ends where the newest begins');
    const messageRequests = dashboard.requests.filter((r) => r.url.includes('/messages'));
    assert.equal(
      new Set(messageRequests.map((r) => r.url)).size,
      messageRequests.length,
      'no page fetched twice',
    );
  });

  it('every page at desktop and phone width: axe finds nothing serious or critical; screenshots written', async () => {
    const base = { baseUrl: rig.api.url };
    const signedInBase = { ...base, token };
    const heading = (name: string) => (page: Page) => page.getByRole('heading', { name }).first().waitFor();
    const pages: Parameters<typeof sweepPage>[1][] = [
      { ...base, name: 'sign-in', path: '/sign-in', ready: (p) => p.getByLabel('Email').waitFor() },
      {
        ...signedInBase,
        name: 'workspaces',
        path: '/',
        ready: (p) => p.getByRole('link', { name: `e2e ${workspaceId}` }).waitFor(),
      },
      {
        ...signedInBase,
        name: 'workspaces-board',
        path: '/',
        ready: async (p) => {
          await p.getByRole('link', { name: `e2e ${workspaceId}` }).waitFor();
          await p.getByRole('button', { name: 'Board' }).click();
          await p.getByRole('heading', { name: 'Waiting for input' }).waitFor();
        },
      },
      {
        ...signedInBase,
        name: 'workspaces-new',
        path: '/',
        ready: async (p) => {
          await p.getByRole('button', { name: 'New workspace' }).first().click();
          await p.getByLabel('GitHub issue URL').waitFor();
        },
      },
      {
        ...signedInBase,
        name: 'workspace',
        path: `/workspaces/${workspaceId}`,
        ready: (p) => p.getByRole('button', { name: 'New session' }).waitFor(),
      },
      {
        ...signedInBase,
        name: 'session',
        path: `/workspaces/${workspaceId}/sessions/${sessionId}`,
        ready: (p) =>
          until('the transcript', async () => (await p.getByTestId('assistant-message').count()) > 0),
      },
      { ...signedInBase, name: 'vm', path: '/vm', ready: heading('Your VM') },
      {
        ...signedInBase,
        name: 'vm-terminal',
        path: '/vm',
        ready: async (p) => {
          await p.getByRole('button', { name: 'Open terminal' }).click();
          await until('the terminal attached', async () =>
            /^\s*Connected/.test(await textOf(p, 'terminal-state')),
          );
        },
      },
      { ...signedInBase, name: 'usage', path: '/usage', ready: heading('Usage') },
      {
        ...signedInBase,
        name: 'keys',
        path: '/keys',
        ready: (p) => p.getByRole('button', { name: 'Create key' }).waitFor(),
      },
      {
        ...signedInBase,
        name: 'audit',
        path: '/audit',
        ready: (p) => p.locator('table caption', { hasText: 'Audit log' }).waitFor(),
      },
      {
        ...signedInBase,
        name: 'not-found',
        path: '/no-such-page',
        ready: (p) => p.locator('h1').first().waitFor(),
      },
    ];
    const problems: string[] = [];
    for (const target of pages) problems.push(...(await sweepPage(browser, target)));
    writeAxeReport();
    assert.deepEqual(problems, []);
  });
});
