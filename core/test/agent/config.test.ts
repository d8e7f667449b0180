import assert from 'node:assert/strict';
import { AgentConfigError, loadAgentConfig } from '../../src/agent/config.js';

describe('agent config', () => {
  const base = { HOME: '/home/ff', FF_AGENT_SOCKET: '/run/ff-agent/agent.sock', FF_AGENT_SECRET_FILE: '/s' };

  it('defaults to the cloud side, https and ssh clones, and the desktop setup timeout', () => {
    const config = loadAgentConfig(base);
    assert.equal(config.workspaceLocation, 'CLOUD');
    assert.deepEqual(config.repoUrlSchemes, ['https', 'ssh']);
    assert.equal(config.setupTimeoutMs, 300_000);
    assert.equal(config.dataDir, '/home/ff/.ff-agent');
  });

  it('reads overrides and refuses values it does not know', () => {
    const config = loadAgentConfig({
      ...base,
      FF_WORKSPACE_LOCATION: 'DESKTOP',
      FF_WORKSPACE_URL_SCHEMES: 'https, file',
      FF_WORKSPACE_SETUP_TIMEOUT_MS: '5000',
    });
    assert.equal(config.workspaceLocation, 'DESKTOP');
    assert.deepEqual(config.repoUrlSchemes, ['https', 'file']);
    assert.equal(config.setupTimeoutMs, 5000);
    assert.throws(
      () => loadAgentConfig({ ...base, FF_WORKSPACE_LOCATION: 'MOON' }),
      (error: unknown) => error instanceof AgentConfigError && /workspaceLocation/.test(error.message),
    );
    assert.throws(
      () => loadAgentConfig({ ...base, FF_WORKSPACE_URL_SCHEMES: 'ftp' }),
      (error: unknown) => error instanceof AgentConfigError && /repoUrlSchemes/.test(error.message),
    );
  });

  it('waits for a human indefinitely unless a deployment sets a deadline, and sizes the replay ring', () => {
    const config = loadAgentConfig(base);
    assert.equal(config.interactiveTimeoutMs, 0);
    assert.equal(config.replayMaxEvents, 5000);
    assert.equal(config.replayMaxBytes, 8 * 1024 * 1024);
    const tuned = loadAgentConfig({
      ...base,
      FF_SESSION_INTERACTIVE_TIMEOUT_MS: '600000',
      FF_SESSION_REPLAY_EVENTS: '100',
      FF_SESSION_REPLAY_BYTES: '65536',
    });
    assert.deepEqual(
      [tuned.interactiveTimeoutMs, tuned.replayMaxEvents, tuned.replayMaxBytes],
      [600_000, 100, 65_536],
    );
    assert.throws(
      () => loadAgentConfig({ ...base, FF_CLAUDE_EXTRA_ARGS: JSON.stringify(['--tools', 'Bash\u0000']) }),
      (error: unknown) => error instanceof AgentConfigError && /claudeExtraArgs/.test(error.message),
    );
  });
});
