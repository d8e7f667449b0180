import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

  it('refuses the development API key with NODE_ENV=production, naming DEV_API_KEY', () => {
    const key = 'a-development-key-of-24ch';
    assert.throws(
      () => loadConfig({ NODE_ENV: 'production', DEV_API_KEY: key }),
      (err: unknown) => err instanceof ConfigError && /DEV_API_KEY/.test(err.message),
    );
    const production = { NODE_ENV: 'production', AUTH_MODE: 'clerk', CLERK_JWT_KEY: 'a PEM public key' };
    assert.doesNotThrow(() => loadConfig(production));
    assert.equal(loadConfig({ NODE_ENV: 'development', DEV_API_KEY: key }).api.devApiKey, key);
  });

  it('the api process does not start in production with the development key', () => {
    const result = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', resolve(root, 'api/main.ts')],
      {
        env: childEnv({ NODE_ENV: 'production', DEV_API_KEY: 'a-development-key-of-24ch', API_PORT: '9' }),
        encoding: 'utf8',
        cwd: root,
        timeout: 60_000,
      },
    );
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /DEV_API_KEY/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  it('documents every variable in the README', () => {
    const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
    const missing = Object.keys(configVariables).filter((name) => !readme.includes(`\`${name}\``));
    assert.deepEqual(missing, [], 'README configuration table lists every variable');
  });
});

describe('docker-compose.yml', () => {
  const Command = z.union([z.string(), z.array(z.string())]).optional();
  const ComposeSchema = z.object({
    services: z.record(
      z.string(),
      z.object({
        image: z.string().optional(),
        build: z.unknown().optional(),
        user: z.string().optional(),
        group_add: z.array(z.union([z.string(), z.number()])).optional(),
        entrypoint: Command,
        command: Command,
        environment: z.record(z.string(), z.unknown()).optional(),
        volumes: z.array(z.string()).optional(),
        depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
        healthcheck: z.object({ test: z.array(z.string()) }).optional(),
      }),
    ),
  });
  const composeText = readFileSync(resolve(root, 'docker-compose.yml'), 'utf8');
  /** The file as Compose sees it for a deployment with these settings: ${VAR}, ${VAR:-default} and $$. */
  function composeFor(vars: Record<string, string>) {
    const text = composeText.replace(
      /\$\$|\$\{(\w+)(?::-([^}]*))?\}/g,
      (match, name?: string, fallback?: string) =>
        match === '$$' ? '$' : (name && vars[name]) || fallback || '',
    );
    return ComposeSchema.parse(parse(text, { merge: true })).services;
  }
  const s = composeFor({});
  /** A deployment that changes every setting, so each check also proves the value is passed through. */
  const deployment = {
    FFC_DB_PASSWORD: 'db-pw-not-the-default',
    DOCKER_GID: '988',
    FFC_UID: '1500',
    FFC_GID: '1501',
    FFC_DATA_DIR: '/srv/ffc-data',
  };
  const d = composeFor(deployment);
  const env = (service: string, services = s) =>
    Object.fromEntries(Object.entries(services[service]?.environment ?? {}).map(([k, v]) => [k, String(v)]));
  const commandOf = (service: string, services = s) => [services[service]?.command ?? []].flat().join(' ');

  it('follows Temporal self-hosting practice: postgres, one-shot schema job, server, namespace job, UI', () => {
    for (const name of ['postgresql', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui']) {
      assert.ok(s[name], `service ${name}`);
    }
    assert.match(s['temporal-schema']?.image ?? '', /^temporalio\/admin-tools:/);
    assert.match(s.temporal?.image ?? '', /^temporalio\/server:/);
    assert.equal(s.temporal?.depends_on?.['temporal-schema']?.condition, 'service_completed_successfully');
    assert.match(s['temporal-ui']?.image ?? '', /^temporalio\/ui:/);
  });

  it('prepares the data dir, then runs migrations, before the api and worker', () => {
    assert.equal(s.setup?.depends_on?.['data-dir']?.condition, 'service_completed_successfully');
    assert.equal(s.api?.depends_on?.setup?.condition, 'service_completed_successfully');
    assert.equal(s.worker?.depends_on?.setup?.condition, 'service_completed_successfully');
  });

  it('setup and worker reach the Docker socket as a non-root user in the socket group', () => {
    for (const name of ['setup', 'worker']) {
      for (const [services, gid] of [
        [s, '999'],
        [d, deployment.DOCKER_GID],
      ] as const) {
        const service = services[name];
        assert.ok(service?.volumes?.includes('/var/run/docker.sock:/var/run/docker.sock'), `${name} socket`);
        assert.equal(env(name, services).DOCKER_HOST, 'unix:///var/run/docker.sock');
        const uid = service?.user?.split(':')[0];
        assert.ok(
          uid && uid !== '0' && uid !== 'root',
          `${name} runs as a non-root user, not ${service?.user}`,
        );
        assert.ok(service?.group_add?.map(String).includes(gid), `${name} is in the socket's group ${gid}`);
      }
    }
  });

  it('the api has no Docker: no socket, no DOCKER_HOST, readiness without Docker', () => {
    assert.ok(!s.api?.volumes?.some((v) => v.includes('docker.sock')), 'no Docker socket in the api');
    assert.equal(env('api').DOCKER_HOST, undefined);
    assert.match(s.api?.healthcheck?.test.join(' ') ?? '', /\/readyz/, 'compose waits on /readyz');
    // /readyz checks what the api uses, and the api uses no Docker client at all.
    const apiFiles = readdirSync(resolve(root, 'api'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    const usingDocker = apiFiles.filter((f) =>
      /from 'dockerode'/.test(readFileSync(resolve(root, 'api', f), 'utf8')),
    );
    assert.deepEqual(usingDocker, [], 'api/ never imports dockerode');
  });

  it('passes FFC_DB_PASSWORD to Postgres and to the DATABASE_URL of every service', () => {
    const postgres = d.postgresql;
    assert.equal(env('postgresql', d).FFC_DB_PASSWORD, deployment.FFC_DB_PASSWORD);
    const hook = postgres?.volumes?.find((v) => v.includes(':/docker-entrypoint-initdb.d/'));
    assert.ok(hook, 'an init hook creates the ffc role');
    const script = readFileSync(resolve(root, hook.split(':')[0] ?? ''), 'utf8');
    // Handed to psql as a variable and quoted by psql, never pasted into the SQL text.
    assert.match(script, /-v app_password="\$\{FFC_DB_PASSWORD/);
    assert.match(script, /CREATE ROLE ffc LOGIN PASSWORD :'app_password'/);
    for (const name of ['setup', 'api', 'worker']) {
      const url = new URL(env(name, d).DATABASE_URL ?? '');
      assert.equal(url.username, 'ffc', name);
      assert.equal(url.password, deployment.FFC_DB_PASSWORD, `${name} connects with FFC_DB_PASSWORD`);
    }
  });

  it('prepares the VM run-dir and secrets roots on a host path mounted at the same path in api and worker', () => {
    const dataDir = deployment.FFC_DATA_DIR;
    const sameMount = `${dataDir}:${dataDir}`;
    for (const name of ['setup', 'api', 'worker']) {
      assert.equal(env(name, d).FFC_DATA_DIR, dataDir, `${name} FFC_DATA_DIR`);
      assert.ok(d[name]?.volumes?.includes(sameMount), `${name} mounts ${sameMount}`);
    }
    const config = loadConfig(env('worker', d));
    assert.equal(config.vm.runDirRoot, `${dataDir}/vm-run`);
    assert.equal(config.vm.secretRoot, `${dataDir}/vm-secrets`);
    // A one-shot job as root creates both roots, owned by the user api and worker run as.
    const job = d['data-dir'];
    assert.equal(job?.user, '0:0');
    assert.ok(job?.volumes?.includes(sameMount), 'the job prepares the host path itself');
    assert.equal(d.worker?.user, `${deployment.FFC_UID}:${deployment.FFC_GID}`);
    assert.equal(d.api?.user, d.worker?.user, 'the api reads secrets the worker writes');
    const script = commandOf('data-dir', d);
    const owner = `${deployment.FFC_UID}:${deployment.FFC_GID}`;
    assert.match(script, new RegExp(`chown ${owner} ${config.vm.runDirRoot} ${config.vm.secretRoot}`));
    assert.match(script, new RegExp(`chmod 0711 ${config.vm.runDirRoot}(;|$)`));
    assert.match(script, new RegExp(`chmod 0700 ${config.vm.secretRoot}(;|$)`));
  });

  it('sets only variables the config module knows on api, worker and setup, all valid in production', () => {
    const known = new Set(Object.keys(configVariables));
    for (const name of ['api', 'worker', 'setup']) {
      const unknown = Object.keys(env(name)).filter((key) => !known.has(key));
      assert.deepEqual(unknown, [], `${name} sets unknown variables`);
      assert.equal(env(name).NODE_ENV, 'production');
      assert.doesNotThrow(() => loadConfig(env(name)));
      assert.doesNotThrow(() => loadConfig(env(name, d)));
    }
  });
});
