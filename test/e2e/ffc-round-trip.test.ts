/**
 * The `ffc` binary through the whole stack (test/support/cloud-rig.ts: api and worker processes, a real VM,
 * the real claude against the fake Anthropic API): login, send a local checkout, ls, attach with a prompt
 * until the turn is done, pull. The commands and what they printed are saved to /tmp/ffc-transcript.txt
 * (the API key redacted) for the closing note.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeParseJson } from '@factory-factory/core/protocol';
import { PullResultSchema, WorkspaceListSchema } from '../../api/contract/workspaces.js';
import { turns } from '../../core/test/support/fake-anthropic.js';
import { type FfcResult, freshConfigDir, runFfc } from '../cli/run-ffc.js';
import { type CloudRig, startCloudRig } from '../support/cloud-rig.js';

const TRANSCRIPT = '/tmp/ffc-transcript.txt';

describe('e2e: ffc login → send → ls → attach → pull (real ffc, api, worker, VM, claude)', function () {
  this.timeout(6 * 60_000);
  let rig: CloudRig;
  let home: string;

  before(async () => {
    rig = await startCloudRig('ffc');
    home = mkdtempSync(join(tmpdir(), 'ffc-e2e-home-'));
  });

  after(async () => {
    await rig?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('sends a local checkout, streams a reply with attach, and pulls it back', async () => {
    const checkout = join(home, 'app');
    rig.cloneOnHost(checkout, 'feature-x');
    const configDir = freshConfigDir();
    const ghConfigDir = join(home, 'gh');
    const env = {
      // Only what `ffc login` stores: nothing from the machine's environment stands in for it.
      FFC_API_URL: '',
      FFC_API_KEY: '',
      FFC_CONFIG_DIR: configDir,
      // `ffc send` asks gh for the branch's PR: a gh with no login that can reach nothing.
      GH_CONFIG_DIR: ghConfigDir,
      GH_TOKEN: '',
      GITHUB_TOKEN: '',
      GH_NO_UPDATE_NOTIFIER: '1',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      HTTP_PROXY: 'http://127.0.0.1:9',
    };
    const transcript: string[] = [];
    const ffc = async (args: string[], killAfterMs = 60_000): Promise<FfcResult> => {
      const result = await runFfc(args, { env, cwd: home, killAfterMs });
      const shown = args.map((a) => (a === rig.user.key ? '<api-key>' : /\s/.test(a) ? `'${a}'` : a));
      transcript.push(
        `$ ffc ${shown.join(' ')}`,
        ...(result.stdout ? [result.stdout.trimEnd()] : []),
        ...(result.stderr
          ? result.stderr
              .trimEnd()
              .split('\n')
              .map((line) => `[stderr] ${line}`)
          : []),
        `[exit ${result.code ?? result.signal}]`,
        '',
      );
      writeFileSync(TRANSCRIPT, `${transcript.join('\n')}\n`);
      return result;
    };

    const login = await ffc(['login', '--api-url', rig.api.url, '--key', rig.user.key]);
    assert.equal(login.code, 0, login.stderr);
    assert.ok(!login.stdout.includes(rig.user.key) && !login.stderr.includes(rig.user.key));

    const sent = await ffc(['send', checkout, '--repo-url', rig.repoUrlInVm], 4 * 60_000);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stderr, /PROVISIONING/, 'progress while it waits');
    assert.match(sent.stdout, /READY/);
    const workspaceId = /ffc attach (\S+)/.exec(sent.stdout)?.[1];
    assert.ok(workspaceId, `send says how to attach: ${sent.stdout}`);

    const listed = await ffc(['ls', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const list = safeParseJson(WorkspaceListSchema.pick({ workspaces: true }), listed.stdout);
    assert.ok(list.ok, listed.stdout);
    assert.deepEqual(
      list.value.workspaces.map((w) => [w.id, w.status, w.location, w.branchName, w.repoUrl]),
      [[workspaceId, 'READY', 'CLOUD', 'feature-x', rig.repoUrlInVm]],
    );

    const chunks = ['The ', 'cloud ', 'session ', 'answers ', 'through ', 'ffc.'];
    rig.fake.script(turns.deltas(chunks, 50));
    const attached = await ffc(
      ['attach', workspaceId, '--prompt', 'say something through ffc', '--exit-when-idle'],
      2 * 60_000,
    );
    assert.equal(attached.code, 0, attached.stderr);
    assert.ok(attached.stdout.includes(chunks.join('')), `the streamed reply: ${attached.stdout}`);
    assert.equal(attached.stdout.split(chunks.join('')).length - 1, 1, 'printed once');
    const sessionId = /session (\S+) \(attach again/.exec(attached.stderr)?.[1];
    assert.ok(sessionId, attached.stderr);

    const pulled = await ffc(['pull', workspaceId, '--json']);
    assert.equal(pulled.code, 0, pulled.stderr);
    const answer = safeParseJson(PullResultSchema, pulled.stdout);
    assert.ok(answer.ok, pulled.stdout);
    assert.equal(answer.value.state.location, 'DESKTOP');
    assert.equal(answer.value.state.branchName, 'feature-x');
    assert.equal(answer.value.state.repoUrl, rig.repoUrlInVm);
    assert.equal(answer.value.state.baseBranch, 'main', "the checkout's default branch");
    assert.deepEqual(
      answer.value.sessions.map((s) => s.id),
      [sessionId],
    );

    const after = await ffc(['ls']);
    assert.equal(after.code, 0, after.stderr);
    assert.match(after.stdout, /DESKTOP/);
    const again = await ffc(['pull', workspaceId]);
    assert.equal(again.code, 4, 'a second pull is a conflict');
  });
});
