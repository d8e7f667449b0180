/**
 * The cross-tenant walk: every route of the API description and every WebSocket channel, called by one user
 * (bob) with another user's (alice's) ids, through the real stack (test/support/cloud-rig.ts: api and worker
 * processes, alice's real VM with a READY workspace and a live session, real sign-in tokens).
 *
 * What each route must do is written down once, in WALK below, and the test fails for any route of the
 * description that WALK does not classify: a route added later is walked too, or the test says why not.
 * "Another user's thing" must be indistinguishable from a thing that does not exist: the same status (404,
 * never 403) and the same body as for an id nobody has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { z } from 'zod';
import { LocalSignInAnswerSchema } from '../../api/contract/accounts.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';
import { type HttpResult, request } from '../support/http.js';
import { TerminalClient } from '../support/terminal-client.js';
import { removeUserVm } from '../support/vm.js';

/** Alice's things, as the walk substitutes them into paths and bodies. */
type Alice = { userId: string; workspaceId: string; sessionId: string; keyId: string; vmId: string };

type Step =
  /** The path names alice's things: bob must get exactly what an id nobody has gets. */
  | { kind: 'foreign'; body?: (alice: Alice) => unknown }
  /** The body names alice's things (the path is bob's own): 404, like a thing that does not exist. */
  | { kind: 'names-alice'; body: (alice: Alice) => unknown }
  /** Bob's own: it answers about bob and nothing of alice's appears in it. */
  | { kind: 'own'; body?: unknown }
  /** Not tenant data: why. */
  | { kind: 'public'; why: string }
  /** Bob's own, run at the end of the walk (it ends bob's account). */
  | { kind: 'last'; why: string };

const WALK: Record<string, Step> = {
  'GET /api/openapi.json': { kind: 'public', why: 'the API description' },
  'POST /api/auth/local/sign-in': {
    kind: 'public',
    why: 'local mode only (refused in production): issues a token for the id it is given, by design',
  },
  'GET /api/auth/config': {
    kind: 'public',
    why: 'how to sign in, read before signing in: the mode, Clerk sign-in URL and publishable key',
  },
  'POST /api/webhooks/clerk': {
    kind: 'public',
    why: 'svix-signed by Clerk; forged ones are refused (clerk-webhooks tests)',
  },
  'POST /api/webhooks/stripe': {
    kind: 'public',
    why: 'signed by Stripe; forged ones are refused (billing tests)',
  },
  'GET /api/me': { kind: 'own' },
  'DELETE /api/me': { kind: 'last', why: "deletes bob's account: alice's must be untouched afterwards" },
  'GET /api/keys': { kind: 'own' },
  'POST /api/keys': { kind: 'own', body: { name: 'bob laptop' } },
  'DELETE /api/keys/{id}': { kind: 'foreign' },
  'GET /api/audit': { kind: 'own' },
  'GET /api/usage': { kind: 'own' },
  'POST /api/billing/checkout': { kind: 'own', body: { plan: 'PRO' } },
  'POST /api/billing/portal': { kind: 'own' },
  'POST /api/vms': { kind: 'names-alice', body: (alice) => ({ userId: alice.userId }) },
  'GET /api/vms/me': { kind: 'own' },
  'POST /api/vms/me/suspend': { kind: 'own' },
  'DELETE /api/vms/me': { kind: 'own' },
  'GET /api/workspaces': { kind: 'own' },
  'POST /api/workspaces': {
    kind: 'names-alice',
    body: (alice) => ({ state: portableStateOf(alice.workspaceId) }),
  },
  'GET /api/workspaces/{id}': { kind: 'foreign' },
  'POST /api/workspaces/{id}/pull': { kind: 'foreign' },
  'POST /api/workspaces/{id}/archive': { kind: 'foreign' },
  'POST /api/workspaces/{id}/retry': { kind: 'foreign' },
  'POST /api/workspaces/{id}/ratchet': { kind: 'foreign', body: () => ({ enabled: true }) },
  'POST /api/workspaces/{id}/ratchet/stop-fixer': { kind: 'foreign' },
  'POST /api/workspaces/{id}/ratchet/wake': { kind: 'foreign' },
  'GET /api/workspaces/{id}/sessions': { kind: 'foreign' },
  'POST /api/workspaces/{id}/sessions': { kind: 'foreign', body: () => ({ prompt: 'steal', name: 'x' }) },
  'GET /api/workspaces/{id}/sessions/{sid}': { kind: 'foreign' },
  'GET /api/workspaces/{id}/sessions/{sid}/messages': { kind: 'foreign' },
  'POST /api/workspaces/{id}/sessions/{sid}/stop': { kind: 'foreign' },
};

let portableStateOf: (workspaceId: string) => unknown = () => ({});

const OpenApiSchema = z.object({
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});
const OperationSchema = z.looseObject({ summary: z.string(), security: z.array(z.unknown()).optional() });
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

describe('e2e: the cross-tenant walk over every route and ws channel (real api, worker, VM)', function () {
  this.timeout(8 * 60_000);
  let rig: CloudRig;
  let alice: Alice;
  let aliceToken: string;
  let aliceKey: string;
  let bobToken: string;
  const bobId = () => `bob-${rig.suffix}`;

  async function signIn(userId: string): Promise<string> {
    const res = await request(`${rig.api.url}/api/auth/local/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId }),
    });
    assert.equal(res.status, 200, res.text);
    return LocalSignInAnswerSchema.parse(res.json).token;
  }

  const call = (token: string, method: string, path: string, body?: unknown): Promise<HttpResult> =>
    request(`${rig.api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  /** Every trace of alice's things a response could carry. */
  const aliceIds = () => [alice.userId, alice.workspaceId, alice.sessionId, alice.keyId, alice.vmId];
  function assertNoTraceOfAlice(result: HttpResult, what: string): void {
    for (const id of aliceIds()) {
      assert.ok(!result.text.includes(id), `${what} answered something of alice's (${id}): ${result.text}`);
    }
  }

  before(async () => {
    rig = await startCloudRig('tenancy');
    portableStateOf = (workspaceId) => rig.portableState(workspaceId);
    const workspaceId = `ws-tenancy-${rig.suffix}`;
    await rig.sendAndWaitReady(workspaceId);
    const sessionId = await rig.createSession(workspaceId, { name: 'alice' });
    aliceToken = await signIn(rig.user.userId);
    const created = await call(aliceToken, 'POST', '/api/keys', { name: 'alice laptop' });
    assert.equal(created.status, 201, created.text);
    const key = z.object({ key: z.object({ id: z.string() }), secret: z.string() }).parse(created.json);
    aliceKey = key.secret;
    const vm = await call(aliceToken, 'GET', '/api/vms/me');
    assert.equal(vm.status, 200, vm.text);
    const vmId = z.object({ vm: z.object({ vmId: z.string() }) }).parse(vm.json).vm.vmId;
    alice = { userId: rig.user.userId, workspaceId, sessionId, keyId: key.key.id, vmId };
    await rig.execInVm('echo alice-only > /home/ff/alice-secret.txt');
    bobToken = await signIn(bobId());
  });

  after(async () => {
    if (rig) await removeUserVm(rig.temporal, rig.docker, bobId()).catch(() => undefined);
    await rig?.stop();
  });

  it('classifies every route of the API description, and walks each with alice’s ids as bob', async () => {
    const described = await request(`${rig.api.url}/api/openapi.json`);
    assert.equal(described.status, 200);
    const operations = Object.entries(OpenApiSchema.parse(described.json).paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((method) => METHODS.has(method))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    const unclassified = operations.filter((op) => !(op in WALK));
    assert.deepEqual(unclassified, [], 'every route of the description is walked or says why not');
    // The README's route table is this description's: every route with its auth requirement.
    const readme = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
    const rows = Object.entries(OpenApiSchema.parse(described.json).paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([method]) => METHODS.has(method))
        .map(([method, raw]) => {
          const op = OperationSchema.parse(raw);
          const auth = op.security?.length === 0 ? 'none' : 'session token or API key';
          return `| \`${method.toUpperCase()}\` | \`${path}\` | ${auth} | ${op.summary} |`;
        }),
    );
    const missingRows = rows.filter((row) => !readme.includes(row));
    assert.deepEqual(
      missingRows,
      [],
      `README's route table lists every route; expected rows:\n${rows.join('\n')}`,
    );
    const gone = Object.keys(WALK).filter((op) => !operations.includes(op) && !op.includes('webhooks'));
    assert.deepEqual(gone, [], 'WALK names only routes that exist');

    const walked: string[] = [];
    for (const op of operations) {
      const step = WALK[op];
      assert.ok(step);
      const [method = 'GET', template = ''] = op.split(' ');
      if (step.kind === 'foreign') {
        const foreign = template.replace('{id}', idFor(template, alice)).replace('{sid}', alice.sessionId);
        const nobodysId = template.startsWith('/api/keys/') ? 'NobodyHasThisId0' : 'nobody-has-this-id';
        const nobody = template.replace('{id}', nobodysId).replace('{sid}', 'nobody-has-this-sid');
        const body = step.body?.(alice);
        const got = await call(bobToken, method, foreign, body);
        const baseline = await call(bobToken, method, nobody, body);
        assert.equal(got.status, 404, `${op} with alice's ids: ${got.status} ${got.text}`);
        const scrub = (text: string) =>
          text
            .replaceAll(idFor(template, alice), '<id>')
            .replaceAll(alice.sessionId, '<sid>')
            .replaceAll(nobodysId, '<id>')
            .replaceAll('nobody-has-this-sid', '<sid>')
            .replace(/request id [\w-]+/g, 'request id <r>');
        assert.equal(
          scrub(got.text),
          scrub(baseline.text),
          `${op}: alice's thing reads exactly like one that does not exist`,
        );
        assert.ok(!got.text.includes(alice.userId), `${op} names alice`);
      } else if (step.kind === 'names-alice') {
        const got = await call(bobToken, method, template, step.body(alice));
        assert.equal(got.status, 404, `${op} naming alice's things: ${got.status} ${got.text}`);
        assertNoTraceOfAlice(got, op);
      } else if (step.kind === 'own') {
        const got = await call(bobToken, method, template, step.body);
        assert.ok(got.status < 500 || got.status === 503, `${op}: ${got.status} ${got.text}`);
        assertNoTraceOfAlice(got, op);
      } else continue;
      walked.push(op);
    }
    assert.ok(walked.length >= 20, `walked ${walked.length} routes`);
  });

  it('refuses bob on the session relay of alice’s session exactly as on a session nobody has', async () => {
    const wsUrl = rig.api.url.replace(/^http/, 'ws');
    const closeOf = (path: string) =>
      new Promise<{ code: number | null; status: number | null }>((resolve) => {
        const ws = new WebSocket(`${wsUrl}${path}`, ['ffc.session.v1', `bearer.${bobToken}`]);
        ws.once('unexpected-response', (_req, res) => {
          resolve({ code: null, status: res.statusCode ?? null });
          ws.terminate();
        });
        ws.once('close', (code) => resolve({ code, status: null }));
        ws.once('error', () => undefined);
      });
    const foreign = await closeOf(`/ws/workspaces/${alice.workspaceId}/sessions/${alice.sessionId}`);
    const nobody = await closeOf('/ws/workspaces/nobody-has-this-id/sessions/nobody-has-this-sid');
    assert.deepEqual(foreign, nobody, "alice's session reads like one that does not exist");
    assert.ok(foreign.code === 4404 || foreign.status === 404, JSON.stringify(foreign));
  });

  it("gives bob a terminal in bob's own VM, never in alice's", async () => {
    const wsUrl = rig.api.url.replace(/^http/, 'ws');
    const provisioned = await call(bobToken, 'POST', '/api/vms');
    assert.equal(provisioned.status, 200, provisioned.text);
    assertNoTraceOfAlice(provisioned, "bob's VM");
    const terminal = await TerminalClient.open(`${wsUrl}/ws/vms/me/terminal`, bobToken);
    try {
      const id = await terminal.createTerminal('bob');
      // The markers are split in the command, so only the command's output (not its echo) matches.
      terminal.send({
        type: 'input',
        terminalId: id,
        data: 'test -e /home/ff/alice-secret.txt && echo found=PRE""SENT || echo found=AB""SENT\r',
      });
      await terminal.waitUntil('the answer', () => /found=(PRE|AB)SENT/.test(terminal.output(id)));
      assert.match(terminal.output(id), /found=ABSENT/, "alice's file is not in bob's terminal's VM");
    } finally {
      await terminal.close();
    }
    assert.equal(await rig.execInVm('cat /home/ff/alice-secret.txt'), 'alice-only\n', 'alice still has hers');
  });

  it("leaves every one of alice's things as it was, also after bob deletes his own account", async () => {
    const deleted = await call(bobToken, 'DELETE', '/api/me');
    assert.equal(deleted.status, 200, deleted.text);
    const refused = await call(bobToken, 'GET', '/api/me');
    assert.equal(refused.status, 401, "bob's token dies with his account");
    const workspace = await call(aliceKey, 'GET', `/api/workspaces/${alice.workspaceId}`);
    assert.equal(workspace.status, 200, workspace.text);
    assert.match(workspace.text, /"status":"READY"/);
    const session = await call(
      aliceKey,
      'GET',
      `/api/workspaces/${alice.workspaceId}/sessions/${alice.sessionId}`,
    );
    assert.equal(session.status, 200, session.text);
    const keys = await call(aliceToken, 'GET', '/api/keys');
    assert.ok(keys.text.includes(alice.keyId), "alice's key is still listed");
    const vm = await call(aliceKey, 'GET', '/api/vms/me');
    assert.equal(vm.status, 200, vm.text);
    assert.match(vm.text, /"status":"(READY|ONBOARDING)"/);
  });
});

/** The id a `{id}` in this route stands for: a key's id on /keys, else the workspace's. */
function idFor(template: string, alice: Alice): string {
  return template.startsWith('/api/keys/') ? alice.keyId : alice.workspaceId;
}
