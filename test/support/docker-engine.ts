/**
 * Stops and starts the local Docker engine, for tests of what happens while Docker is down (an engine
 * restart stops every container; volumes stay). Only the engine that `scripts/dev.sh` started is touched:
 * dev.sh records its pid in <data>/run/dockerd.pid and its exact command line, one argument per line, in
 * <data>/run/dockerd.args; the engine is started again with those arguments and the same log file, and
 * the new pid is written back, so dev.sh's `down` (or the end of `dev.sh test`) stops whichever engine is
 * current. Any other engine (DOCKER_HOST set, or started by someone else) makes these throw: a test that
 * needs this never silently skips.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { testConfig } from './services.js';

export class DockerEngineNotStartedByDevSh extends Error {
  constructor(reason: string) {
    super(
      `cannot stop or start the Docker engine: ${reason}. Tests that restart Docker need the engine that ` +
        '`scripts/dev.sh test` or `scripts/dev.sh services` starts (unset DOCKER_HOST, stop the other engine, ' +
        'then run dev.sh again).',
    );
    this.name = 'DockerEngineNotStartedByDevSh';
  }
}

/** Where dev.sh's records are; tests of the refusals point this elsewhere. */
export type DockerEngineLocation = { env: NodeJS.ProcessEnv; dataDir: string };

function defaultLocation(): DockerEngineLocation {
  return { env: process.env, dataDir: testConfig.dataDir };
}

type EngineRecord = { pidFile: string; args: string[]; logFile: string; pid: number | null };

function readRecord(where: DockerEngineLocation): EngineRecord {
  if (where.env.DOCKER_HOST) {
    throw new DockerEngineNotStartedByDevSh(
      `DOCKER_HOST is set (${where.env.DOCKER_HOST}), so dev.sh did not start that engine`,
    );
  }
  const runDir = join(where.dataDir, 'run');
  const argsFile = join(runDir, 'dockerd.args');
  const pidFile = join(runDir, 'dockerd.pid');
  if (!existsSync(argsFile)) {
    throw new DockerEngineNotStartedByDevSh(`${argsFile} does not exist, so dev.sh did not start the engine`);
  }
  const args = readFileSync(argsFile, 'utf8').split('\n').filter(Boolean);
  if (args.length === 0 || basename(args[0] ?? '') !== 'dockerd') {
    throw new DockerEngineNotStartedByDevSh(`${argsFile} does not hold a dockerd command line`);
  }
  const pid = existsSync(pidFile) ? Number.parseInt(readFileSync(pidFile, 'utf8'), 10) : Number.NaN;
  return { pidFile, args, logFile: join(where.dataDir, 'logs', 'dockerd.log'), pid: pid > 0 ? pid : null };
}

/** Running (a zombie is not) according to /proc. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The recorded pid runs the recorded command line (dev.sh may have started it through PATH). */
function isRecordedEngine(record: EngineRecord): record is EngineRecord & { pid: number } {
  if (record.pid === null || !isRunning(record.pid)) return false;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return false;
  }
  return (
    basename(argv[0] ?? '') === 'dockerd' &&
    argv.length === record.args.length &&
    argv.slice(1).every((arg, i) => arg === record.args[i + 1])
  );
}

function dockerAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('docker', ['info'], { timeout: 5000 }, (err) => resolve(!err));
  });
}

async function until(what: string, timeoutMs: number, done: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Stops the engine dev.sh started (SIGTERM: it stops its containers first) and resolves once it is gone. */
export async function stopDockerEngine(where: DockerEngineLocation = defaultLocation()): Promise<void> {
  const record = readRecord(where);
  if (!isRecordedEngine(record)) {
    throw new DockerEngineNotStartedByDevSh(
      record.pid === null
        ? `${record.pidFile} does not exist`
        : `pid ${record.pid} in ${record.pidFile} is not running the recorded dockerd (was it restarted by hand?)`,
    );
  }
  const { pid } = record;
  process.kill(pid, 'SIGTERM');
  await until('dockerd did not stop', 90_000, () => !isRunning(pid));
  await until('the Docker socket still answered', 10_000, async () => !(await dockerAnswers()));
}

/**
 * Starts the engine again exactly as dev.sh does (same arguments, same log file, appended to) in its own
 * session, so it outlives the test process, and resolves once `docker info` answers.
 */
export async function startDockerEngine(where: DockerEngineLocation = defaultLocation()): Promise<void> {
  const record = readRecord(where);
  if (isRecordedEngine(record)) {
    await until('the Docker engine did not answer', 60_000, dockerAnswers);
    return;
  }
  if (await dockerAnswers()) {
    throw new DockerEngineNotStartedByDevSh('another Docker engine answers, one that dev.sh did not start');
  }
  const [command, ...args] = record.args;
  if (!command) throw new DockerEngineNotStartedByDevSh('the recorded dockerd command line is empty');
  const log = openSync(record.logFile, 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let failure: Error | null = null;
  child.once('error', (err) => {
    failure = err;
  });
  child.once('exit', (code, signal) => {
    failure = new Error(`dockerd exited (${signal ?? `code ${code}`}):\n${logTail(record.logFile)}`);
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  writeFileSync(record.pidFile, `${child.pid}\n`);
  await until('the Docker engine did not answer', 60_000, async () => {
    if (failure) throw failure;
    return dockerAnswers();
  });
}
