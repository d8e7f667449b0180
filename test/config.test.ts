import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, configVariables, loadConfig } from '../platform/config.js';
import { childEnv } from './support/env.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

describe('configuration', () => {
  it('has working defaults for a local run with no variables set', () => {
    const config = loadConfig({});
    assert.equal(config.api.port, 3000);
    assert.equal(config.temporal.address, '127.0.0.1:7233');
    assert.deepEqual(config.docker, { socketPath: '/var/run/docker.sock' });
    assert.equal(config.vm.networkMode, 'none');
  });

  it('rejects invalid values naming every offending variable', () => {
    assert.throws(
      () => loadConfig({ API_PORT: 'eighty', VM_NETWORK_MODE: 'wifi', VM_EXTRA_ENV: '{not json' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /API_PORT/);
        assert.match(err.message, /VM_NETWORK_MODE/);
        assert.match(err.message, /VM_EXTRA_ENV/);
        return true;
      },
    );
  });

  it('parses structured deployment settings', () => {
    const config = loadConfig({
      VM_EXTRA_ENV: '{"ANTHROPIC_BASE_URL":"http://127.0.0.1:9999"}',
      VM_EXTRA_MOUNTS: '/tmp/gh.sock:/run/fake/gh.sock:ro',
      DOCKER_HOST: 'tcp://10.0.0.5:2376',
    });
    assert.deepEqual(config.vm.extraEnv, { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9999' });
    assert.deepEqual(config.vm.extraMounts, [
      { hostPath: '/tmp/gh.sock', containerPath: '/run/fake/gh.sock', readOnly: true },
    ]);
    assert.deepEqual(config.docker, { host: '10.0.0.5', port: 2376 });
  });

  it('a process started with a bad value exits naming the variable, without a stack trace', () => {
    const result = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', resolve(root, 'scripts/setup.ts')],
      { env: childEnv({ API_PORT: '-1' }), encoding: 'utf8', cwd: root },
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /API_PORT/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  it('documents every variable in the README', () => {
    const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
    const missing = Object.keys(configVariables).filter((name) => !readme.includes(`\`${name}\``));
    assert.deepEqual(missing, [], 'README configuration table lists every variable');
  });
});

describe('docker-compose.yml', () => {
  const ComposeSchema = z.object({
    services: z.record(
      z.string(),
      z.object({
        image: z.string().optional(),
        build: z.unknown().optional(),
        environment: z.record(z.string(), z.unknown()).optional(),
        volumes: z.array(z.string()).optional(),
        depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
      }),
    ),
  });
  const compose = ComposeSchema.parse(
    parse(readFileSync(resolve(root, 'docker-compose.yml'), 'utf8'), { merge: true }),
  );

  it('follows Temporal self-hosting practice: postgres, one-shot schema job, server, namespace job, UI', () => {
    const s = compose.services;
    for (const name of ['postgresql', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui']) {
      assert.ok(s[name], `service ${name}`);
    }
    assert.match(s['temporal-schema']?.image ?? '', /^temporalio\/admin-tools:/);
    assert.match(s.temporal?.image ?? '', /^temporalio\/server:/);
    assert.equal(s.temporal?.depends_on?.['temporal-schema']?.condition, 'service_completed_successfully');
    assert.match(s['temporal-ui']?.image ?? '', /^temporalio\/ui:/);
  });

  it('runs migrations before the api and worker, and gives only the worker the Docker socket', () => {
    const s = compose.services;
    assert.equal(s.api?.depends_on?.setup?.condition, 'service_completed_successfully');
    assert.equal(s.worker?.depends_on?.setup?.condition, 'service_completed_successfully');
    assert.ok(s.worker?.volumes?.some((v) => v.startsWith('/var/run/docker.sock:')));
    assert.ok(!s.api?.volumes?.some((v) => v.includes('docker.sock')), 'the api never drives Docker');
  });

  it('sets only variables the config module knows on api, worker and setup', () => {
    const known = new Set(Object.keys(configVariables));
    for (const name of ['api', 'worker', 'setup']) {
      const env = compose.services[name]?.environment ?? {};
      const unknown = Object.keys(env).filter((key) => !known.has(key));
      assert.deepEqual(unknown, [], `${name} sets unknown variables`);
      // Compose substitutes ${VAR:-default}; check the values a deployment gets with the defaults.
      const substituted = Object.entries(env).map(([k, v]) => [
        k,
        String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1'),
      ]);
      assert.doesNotThrow(() => loadConfig(Object.fromEntries(substituted)));
    }
  });
});
