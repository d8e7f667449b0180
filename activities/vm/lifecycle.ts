/**
 * The Docker side of a user's VM (implements VmContainerActivities from ./types.ts with dockerode).
 *
 * A VM is three things on the Docker host, all named from the container name and labelled as ours:
 *   - the container, hardened: non-root, no capabilities, no-new-privileges, read-only root with a /tmp
 *     tmpfs, memory/CPU/pids limits, the deployment's network mode and runtime (runc, or gVisor's runsc),
 *     never the Docker socket;
 *   - a named volume mounted as the VM user's home (credentials, clones, the agent's SQLite);
 *   - a host run dir bind-mounted read-write at /run/ff-agent, where the agent creates its socket;
 *   - a host secret dir bind-mounted read-only at /run/ff-agent-secret, holding the per-VM secret.
 *
 * Everything in the run dir belongs to the VM's user, who may plant anything there. The host therefore
 * keeps the secret elsewhere, only creates, chowns and removes the run dir itself (whose parent only the
 * host can write), and never resolves a path inside it (see platform/vm-agent.ts for the socket).
 *
 * Every activity is safe to retry: creating a name that exists adopts it, starting a running container or
 * stopping a stopped one succeeds, removing what is gone succeeds.
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { AgentHealth } from '@factory-factory/core/protocol';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type Docker from 'dockerode';
import type { Config } from '../../platform/config.js';
import {
  connectVmAgent,
  readVmAgentSecret,
  VM_AGENT_SECRET_NAME,
  VM_AGENT_SOCKET_NAME,
  VM_RUN_DIR_IN_CONTAINER,
  VM_SECRET_DIR_IN_CONTAINER,
  vmAgentEndpoint,
  vmAgentSocketPath,
  vmSecretDir,
} from '../../platform/vm-agent.js';
import { demuxLogs, dockerStatusCode } from './containers.js';
import { LABEL_CONTAINER_NAME, LABEL_MANAGED, LABEL_RUN_DIR, LABEL_VOLUME, managedLabels } from './labels.js';
import type {
  CreateVmContainerInput,
  VmContainerActivities,
  VmContainerRef,
  VmContainerStatus,
} from './types.js';

/** ApplicationFailure types the VM actor can tell apart. */
export const VmFailureType = {
  /** The container is gone (stop, rename). Not retryable: the actor recreates it. */
  containerMissing: 'VmContainerMissing',
  /** The agent did not answer in time, or its container stopped while we waited. */
  agentUnreachable: 'VmAgentUnreachable',
  /** The name belongs to a container we did not create, or to another VM. */
  nameConflict: 'VmNameConflict',
  /** VM_IMAGE does not exist on this Docker host. */
  imageMissing: 'VmImageMissing',
  /** A name, mount or path this code refuses (e.g. a mount exposing the Docker socket). */
  invalidInput: 'VmInvalidInput',
  /** The run dir cannot be prepared for the VM's user (the worker is neither root nor uid 1000). */
  runDirUnusable: 'VmRunDirUnusable',
} as const;

/** The VM's user in the image (vm/Dockerfile): owns the run dir and the secret on the host. */
export const VM_UID = 1000;
export const VM_GID = 1000;
export const VM_HOME = '/home/ff';

/** /tmp is memory-backed and charged to the VM's memory limit; this caps one runaway writer. */
const TMPFS_OPTIONS = 'rw,nosuid,nodev,size=512m,mode=1777';
/** Seconds between SIGTERM and SIGKILL on suspend; the idle agent shuts down in well under one. */
const STOP_TIMEOUT_SECONDS = 10;
/** A unix socket path (sun_path) holds at most 107 bytes plus the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** While an agent is starting its socket is polled this often, then less often (see waitForVmAgent). */
const AGENT_POLL_BRISK_MS = 25;
const AGENT_POLL_SLOW_MS = 250;
const AGENT_BRISK_PERIOD_MS = 3_000;
/** A failed attempt asks Docker whether the container still runs at most this often (a Docker call each). */
const AGENT_INSPECT_EVERY_MS = 250;
/** However often the run dir changes, attempts are at least this far apart. */
const AGENT_MIN_ATTEMPT_GAP_MS = 5;
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type VmContainerDeps = {
  docker: Docker;
  vm: Config['vm'];
  /** Extra labels on every container and volume created here (tests mark theirs). */
  labels?: Record<string, string>;
};

export type WaitForAgentOptions = {
  timeoutMs: number;
};

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, VmFailureType.invalidInput);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

/** The Temporal activity context, or null when called directly (benchmarks, scripts). */
function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

function heartbeat(details?: unknown): void {
  activityContext()?.heartbeat(details);
}

/** Sleeps, but ends early with CancelledFailure when the activity is cancelled. */
function pause(ms: number): Promise<void> {
  const context = activityContext();
  if (context) return context.sleep(ms);
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** `ffc-vm-<user>` → `ffc-home-vm-<user>`; `ffc-pool-<slot>` → `ffc-home-pool-<slot>`. */
export function vmVolumeName(containerName: string): string {
  return `ffc-home-${containerName.replace(/^ffc-/, '')}`;
}

/** A mount of the Docker socket, or of a directory holding it, would hand the VM the host. */
function exposesDockerSocket(hostPath: string): boolean {
  const path = resolve(hostPath);
  if (path.endsWith('docker.sock')) return true;
  return ['/var/run/docker.sock', '/run/docker.sock'].some(
    (socket) => socket === path || socket.startsWith(path === '/' ? '/' : `${path}/`),
  );
}

function dockerTime(value: string | undefined): string | null {
  return !value || value.startsWith('0001-01-01') ? null : value;
}

/**
 * Resolves `next()` as soon as the agent's socket may have appeared in the run dir (its bind() creates it,
 * its chmod follows), rather than at the next poll: inotify sees the container's writes through the bind
 * mount. Only a hint, never trusted: the socket is still checked and the peer still proves the secret,
 * and where no event arrives (no inotify watches left, an engine on another kernel) polling still finds it.
 */
function watchForSocket(runDir: string): { next(): Promise<void>; close(): void } {
  let changed = false;
  let wake: (() => void) | null = null;
  let watcher: FSWatcher | null = null;
  const notify = () => {
    changed = true;
    wake?.();
  };
  try {
    watcher = watch(runDir, { persistent: false }, (_event, filename) => {
      if (filename === null || filename === VM_AGENT_SOCKET_NAME) notify();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = null; // polling alone
  }
  return {
    next: () =>
      changed
        ? Promise.resolve().then(() => {
            changed = false;
          })
        : new Promise<void>((resolveNext) => {
            wake = () => {
              wake = null;
              changed = false;
              resolveNext();
            };
          }),
    close: () => {
      wake = null;
      watcher?.close();
    },
  };
}

export function createVmContainerActivities(deps: VmContainerDeps) {
  const { docker, vm } = deps;
  const runDirRoot = resolve(vm.runDirRoot);
  const secretRoot = resolve(vm.secretRoot);
  /** The host's own uid: it owns every secret (root, or the uid the worker runs as). */
  const hostUid = process.getuid?.() ?? 0;
  let initAvailable: Promise<boolean> | undefined;

  /** An init (docker-init) as PID 1 reaps orphans of terminals and CLIs; use it when the engine has one. */
  function hasInit(): Promise<boolean> {
    initAvailable ??= docker.info().then(
      (info: { InitBinary?: string }) => Boolean(info.InitBinary),
      () => {
        initAvailable = undefined;
        return false;
      },
    );
    return initAvailable;
  }

  function checkName(containerName: string): void {
    if (!CONTAINER_NAME.test(containerName))
      throw invalid(`'${containerName}' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
  }

  function runDirFor(containerName: string): string {
    const runDir = join(runDirRoot, containerName);
    const socketBytes = Buffer.byteLength(join(runDir, VM_AGENT_SOCKET_NAME));
    if (socketBytes > MAX_SOCKET_PATH_BYTES)
      throw invalid(
        `the agent socket path under ${runDirRoot} would be ${socketBytes} bytes, over the unix limit of ` +
          `${MAX_SOCKET_PATH_BYTES}: use a shorter FFC_DATA_DIR`,
      );
    return runDir;
  }

  /** Only paths under the run dir root are ever deleted, whatever a ref says. */
  function ownedRunDir(runDir: string): string {
    const path = resolve(runDir);
    if (!path.startsWith(`${runDirRoot}${sep}`))
      throw invalid(`run dir ${runDir} is not under ${runDirRoot}`);
    return path;
  }

  async function chownTo(path: string, uid: number, gid: number): Promise<void> {
    try {
      await chown(path, uid, gid);
    } catch (err) {
      if (errnoCode(err) === 'EPERM')
        throw ApplicationFailure.nonRetryable(
          `cannot give ${path} to the VM user (uid ${VM_UID}): the worker must run as root or as uid ${VM_UID}`,
          VmFailureType.runDirUnusable,
        );
      throw err;
    }
  }

  /** A directory made (or found) at `path`; a symlink or a file there is refused, never followed. */
  async function realDirectory(path: string, mode: number): Promise<void> {
    await mkdir(path, { mode }).catch((err: unknown) => {
      if (errnoCode(err) !== 'EEXIST') throw err;
    });
    const stat = await lstat(path);
    if (!stat.isDirectory() || stat.isSymbolicLink())
      throw ApplicationFailure.nonRetryable(`${path} is not a directory`, VmFailureType.runDirUnusable);
  }

  /**
   * The run dir (0700, the VM user's: the agent creates its socket there) and the secret dir (0750, the
   * host's with the VM's group; the secret 0440): the VM reads its secret through a read-only mount and
   * can neither change it nor put anything in its place. Both parents are the host's alone, so neither
   * directory can be swapped for a link. An existing secret is kept, so a retried create or a restart does
   * not change it under a running agent; a new one appears atomically (written aside, then linked into
   * place), so nobody ever reads half a secret.
   */
  async function prepareVmDirs(runDir: string): Promise<void> {
    await mkdir(runDirRoot, { recursive: true, mode: 0o711 });
    await realDirectory(runDir, 0o700);
    await chownTo(runDir, VM_UID, VM_GID);
    await chmod(runDir, 0o700);

    await mkdir(secretRoot, { recursive: true, mode: 0o700 });
    await chmod(secretRoot, 0o700);
    const secretDir = vmSecretDir(secretRoot, runDir);
    await realDirectory(secretDir, 0o750);
    await chownTo(secretDir, hostUid, VM_GID);
    await chmod(secretDir, 0o750);
    const secretPath = join(secretDir, VM_AGENT_SECRET_NAME);
    const existing = await readVmAgentSecret(secretPath).then(
      () => true,
      (err: unknown) => (errnoCode(err) === 'ENOENT' ? false : null),
    );
    if (existing === true) return;
    const aside = join(secretDir, `.secret-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(aside, `${randomBytes(32).toString('hex')}\n`, { mode: 0o440, flag: 'wx' });
      await chownTo(aside, hostUid, VM_GID);
      if (existing === false) {
        await link(aside, secretPath).catch((err: unknown) => {
          if (errnoCode(err) !== 'EEXIST') throw err; // a concurrent attempt won; keep its secret
        });
      } else {
        await rename(aside, secretPath); // an unusable (empty, truncated) secret is replaced
      }
    } finally {
      await unlink(aside).catch(() => undefined);
    }
  }

  async function inspectById(containerId: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await docker.getContainer(containerId).inspect();
    } catch (err) {
      if (dockerStatusCode(err) === 404) return null;
      throw err;
    }
  }

  function refOf(info: Docker.ContainerInspectInfo): VmContainerRef {
    const labels = info.Config.Labels ?? {};
    const mountAt = (target: string) => info.Mounts.find((m) => m.Destination === target);
    const volumeName = labels[LABEL_VOLUME] ?? mountAt(VM_HOME)?.Name;
    const runDir = labels[LABEL_RUN_DIR] ?? mountAt(VM_RUN_DIR_IN_CONTAINER)?.Source;
    if (!volumeName || !runDir)
      throw ApplicationFailure.nonRetryable(
        `container ${info.Name} has no home volume or run dir`,
        VmFailureType.nameConflict,
      );
    return { containerName: info.Name.replace(/^\//, ''), containerId: info.Id, volumeName, runDir };
  }

  /**
   * An existing container of that name becomes the result of create, if it is one of our VMs. One made
   * before the secret moved out of the run dir cannot talk to the current agent protocol: it is removed
   * (its home volume stays) and its volume is handed back, so create makes a current one on the same data.
   */
  async function adopt(containerName: string): Promise<VmContainerRef | { retiredVolume: string } | null> {
    const info = await inspectById(containerName);
    // Docker also matches ID prefixes; only a container with exactly this name counts.
    if (!info || info.Name !== `/${containerName}`) return null;
    if (info.Config.Labels?.[LABEL_MANAGED] !== 'true')
      throw ApplicationFailure.nonRetryable(
        `a container named ${containerName} exists and is not managed by FF Cloud`,
        VmFailureType.nameConflict,
      );
    const ref = refOf(info);
    if (!hasCurrentLayout(info) || isStoppedUnderOtherRuntime(info)) {
      await docker.getContainer(info.Id).remove({ force: true });
      return { retiredVolume: ref.volumeName };
    }
    await prepareVmDirs(ownedRunDir(ref.runDir));
    return ref;
  }

  /** Made before the secret moved out of the run dir: it cannot run the current agent's handshake. */
  function hasCurrentLayout(info: Docker.ContainerInspectInfo): boolean {
    return info.Mounts.some((m) => m.Destination === VM_SECRET_DIR_IN_CONTAINER);
  }

  /**
   * Made under another runtime than VM_RUNTIME (the deployment switched since) and not running: it is
   * recreated on its volume so the switch reaches every VM at its next start. A running one is left alone
   * until it is suspended, rather than cutting off its user's sessions.
   */
  function isStoppedUnderOtherRuntime(info: Docker.ContainerInspectInfo): boolean {
    return (info.HostConfig.Runtime || 'runc') !== vm.runtime && !info.State.Running;
  }

  function mountsFor(runDir: string, volumeName: string): Docker.MountSettings[] {
    const secretDir = vmSecretDir(secretRoot, runDir);
    const extra = vm.extraMounts.map((m): Docker.MountSettings => {
      if (exposesDockerSocket(m.hostPath))
        throw invalid(`refusing to mount ${m.hostPath} into a VM: it exposes the Docker socket`);
      return { Type: 'bind', Source: m.hostPath, Target: m.containerPath, ReadOnly: m.readOnly };
    });
    return [
      { Type: 'bind', Source: runDir, Target: VM_RUN_DIR_IN_CONTAINER, ReadOnly: false },
      { Type: 'bind', Source: secretDir, Target: VM_SECRET_DIR_IN_CONTAINER, ReadOnly: true },
      { Type: 'volume', Source: volumeName, Target: VM_HOME, ReadOnly: false },
      ...extra,
    ];
  }

  function envFor(): string[] {
    const env = [
      `FF_AGENT_SOCKET=${vmAgentSocketPath(VM_RUN_DIR_IN_CONTAINER)}`,
      `FF_AGENT_SECRET_FILE=${VM_SECRET_DIR_IN_CONTAINER}/${VM_AGENT_SECRET_NAME}`,
      `HOME=${VM_HOME}`,
      `FF_WORKSPACE_URL_SCHEMES=${vm.repoUrlSchemes.join(',')}`,
    ];
    for (const [name, value] of Object.entries(vm.extraEnv)) {
      if (!ENV_NAME.test(name)) throw invalid(`VM_EXTRA_ENV has an invalid variable name '${name}'`);
      // The agent passes FF_CHILD_ENV_<NAME> to claude, gh and terminals as <NAME>.
      env.push(`FF_CHILD_ENV_${name}=${value}`);
    }
    return env;
  }

  async function createVmContainer(input: CreateVmContainerInput): Promise<VmContainerRef> {
    checkName(input.containerName);
    const adopted = await adopt(input.containerName);
    if (adopted && 'containerId' in adopted) return adopted;

    const runDir = runDirFor(input.containerName);
    const volumeName = input.volumeName ?? adopted?.retiredVolume ?? vmVolumeName(input.containerName);
    checkName(volumeName);
    const labels = {
      ...deps.labels,
      ...managedLabels({ owner: input.owner, role: input.role, userId: input.userId }),
    };
    await prepareVmDirs(runDir);
    // Creating a volume that exists returns it: a retry after a crash here is harmless.
    await docker.createVolume({
      Name: volumeName,
      Labels: { ...labels, [LABEL_CONTAINER_NAME]: input.containerName },
    });
    const options: Docker.ContainerCreateOptions = {
      name: input.containerName,
      Image: vm.image,
      User: `${VM_UID}:${VM_GID}`,
      Hostname: 'ff-vm',
      WorkingDir: VM_HOME,
      Env: envFor(),
      Labels: { ...labels, [LABEL_VOLUME]: volumeName, [LABEL_RUN_DIR]: runDir },
      StopTimeout: STOP_TIMEOUT_SECONDS,
      HostConfig: {
        Mounts: mountsFor(runDir, volumeName),
        Tmpfs: { '/tmp': TMPFS_OPTIONS },
        ReadonlyRootfs: true,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Privileged: false,
        Memory: vm.memoryBytes,
        MemorySwap: vm.memoryBytes,
        NanoCpus: vm.nanoCpus,
        PidsLimit: vm.pidsLimit,
        NetworkMode: vm.networkMode,
        // runc, or gVisor's runsc: a user-space kernel between the VM and the host's (VM_RUNTIME).
        Runtime: vm.runtime,
        IpcMode: 'private',
        Init: await hasInit(),
        // The VM actor restarts crashed VMs itself (and counts the crashes).
        RestartPolicy: { Name: 'no' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
      },
    };
    try {
      return refOf(await (await docker.createContainer(options)).inspect());
    } catch (err) {
      const status = dockerStatusCode(err);
      if (status === 409) {
        // Created by a concurrent attempt of this same activity: adopt it.
        const raced = await adopt(input.containerName);
        if (raced && 'containerId' in raced) return raced;
      }
      if (status === 404 && /no such image/i.test(errorMessage(err)))
        throw ApplicationFailure.nonRetryable(
          `the VM image ${vm.image} does not exist on this Docker host (build it with scripts/build-vm-image.ts)`,
          VmFailureType.imageMissing,
        );
      throw err;
    }
  }

  function missing(ref: VmContainerRef, doing: string): ApplicationFailure {
    return ApplicationFailure.nonRetryable(
      `cannot ${doing} VM container ${ref.containerName} (${ref.containerId.slice(0, 12)}): it no longer exists`,
      VmFailureType.containerMissing,
    );
  }

  async function startVmContainer(ref: VmContainerRef): Promise<void> {
    const info = await inspectById(ref.containerId);
    if (!info) throw missing(ref, 'start');
    if (!hasCurrentLayout(info)) {
      // Made before the secret moved out of the run dir, it could never pass the handshake: it goes (its
      // volume stays), and the actor recreates the VM on that volume as it does for a vanished container.
      await docker.getContainer(info.Id).remove({ force: true });
      throw missing(ref, 'start (it predated the current VM layout and was retired)');
    }
    if (isStoppedUnderOtherRuntime(info)) {
      // Its volume stays; the actor recreates it under the deployment's runtime, as for the old layout.
      await docker.getContainer(info.Id).remove({ force: true });
      throw missing(
        ref,
        `start (it was made for the ${info.HostConfig.Runtime || 'runc'} runtime, VM_RUNTIME is ${vm.runtime}; it was retired)`,
      );
    }
    // The bind mounts need both dirs; recreate them (same secret if it survived) if the host lost them.
    await prepareVmDirs(ownedRunDir(ref.runDir));
    try {
      await docker.getContainer(ref.containerId).start();
    } catch (err) {
      const status = dockerStatusCode(err);
      if (status === 304) return; // already running
      if (status === 404 && !(await inspectById(ref.containerId))) throw missing(ref, 'start');
      throw err;
    }
  }

  async function stopVmContainer(ref: VmContainerRef): Promise<void> {
    try {
      await docker.getContainer(ref.containerId).stop({ t: STOP_TIMEOUT_SECONDS });
    } catch (err) {
      const status = dockerStatusCode(err);
      if (status === 304) return; // already stopped
      if (status === 404) throw missing(ref, 'stop');
      throw err;
    }
  }

  async function removeVmContainer(ref: VmContainerRef): Promise<void> {
    const runDir = ownedRunDir(ref.runDir);
    try {
      await docker.getContainer(ref.containerId).remove({ force: true, v: true });
    } catch (err) {
      const status = dockerStatusCode(err);
      // 409: removal already in progress (a retry racing the first attempt); the volume step retries.
      if (status !== 404 && status !== 409) throw err;
    }
    try {
      await docker.getVolume(ref.volumeName).remove();
    } catch (err) {
      if (dockerStatusCode(err) !== 404) throw err;
    }
    // rm does not follow symlinks: whatever the VM planted in its run dir goes, and nothing it points at.
    await rm(runDir, { recursive: true, force: true });
    await rm(vmSecretDir(secretRoot, runDir), { recursive: true, force: true });
  }

  async function inspectVmContainer(ref: VmContainerRef): Promise<VmContainerStatus> {
    const info = await inspectById(ref.containerId);
    if (!info)
      return {
        exists: false,
        running: false,
        status: 'missing',
        exitCode: null,
        oomKilled: false,
        startedAt: null,
        finishedAt: null,
      };
    const state = info.State;
    const ended = state.Status === 'exited' || state.Status === 'dead';
    return {
      exists: true,
      running: state.Running,
      status: state.Status,
      exitCode: ended ? state.ExitCode : null,
      oomKilled: state.OOMKilled,
      startedAt: dockerTime(state.StartedAt),
      finishedAt: ended ? dockerTime(state.FinishedAt) : null,
    };
  }

  async function renameVmContainer(ref: VmContainerRef, containerName: string): Promise<VmContainerRef> {
    checkName(containerName);
    const info = await inspectById(ref.containerId);
    if (!info) throw missing(ref, `rename to ${containerName}`);
    if (info.Name.replace(/^\//, '') === containerName) return refOf(info);
    try {
      await docker.getContainer(ref.containerId).rename({ name: containerName });
    } catch (err) {
      const status = dockerStatusCode(err);
      if (status === 404) throw missing(ref, `rename to ${containerName}`);
      if (status !== 409) throw err;
      const holder = await inspectById(containerName);
      if (holder?.Id !== ref.containerId)
        throw ApplicationFailure.nonRetryable(
          `cannot rename ${ref.containerName} to ${containerName}: another container has that name`,
          VmFailureType.nameConflict,
        );
    }
    const renamed = await inspectById(ref.containerId);
    if (!renamed) throw missing(ref, `rename to ${containerName}`);
    return refOf(renamed);
  }

  /** One health.ping over the socket; the error text when it fails (never the secret). */
  async function tryHealth(
    ref: VmContainerRef,
    timeouts: { connectTimeoutMs: number; requestTimeoutMs: number },
  ): Promise<{ ok: true; health: AgentHealth } | { ok: false; error: string }> {
    try {
      const client = await connectVmAgent(vmAgentEndpoint(ref, secretRoot), {
        clientName: 'ffc-worker',
        ...timeouts,
      });
      try {
        return { ok: true, health: await client.health() };
      } finally {
        client.close();
      }
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
  }

  async function logTail(containerId: string, lines: number): Promise<string> {
    try {
      const raw = await docker
        .getContainer(containerId)
        .logs({ stdout: true, stderr: true, tail: lines, follow: false });
      return demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).trim();
    } catch {
      return '';
    }
  }

  /** A stopped container will not answer: the failure says why, with its last log lines. */
  async function failIfStopped(ref: VmContainerRef): Promise<void> {
    const status = await inspectVmContainer(ref);
    if (status.running) return;
    const tail = status.exists ? await logTail(ref.containerId, 20) : '';
    throw ApplicationFailure.nonRetryable(
      `the agent of VM ${ref.containerName} cannot answer: container ${status.status}` +
        `${status.exitCode !== null ? ` (exit code ${status.exitCode}${status.oomKilled ? ', out of memory' : ''})` : ''}` +
        `${tail ? `; last log lines:\n${tail}` : ''}`,
      VmFailureType.agentUnreachable,
      { containerStatus: status },
    );
  }

  /**
   * Until the agent answers health.ping. An attempt is cheap (two file checks, then the handshake once a
   * socket is there), so a starting agent is tried briskly and, through watchForSocket, the moment its
   * socket appears; Docker is asked whether the container still runs only every AGENT_INSPECT_EVERY_MS,
   * since each inspect is a call into the engine that competes with the starting VM for the CPU.
   */
  async function waitForVmAgent(ref: VmContainerRef, options: WaitForAgentOptions): Promise<AgentHealth> {
    const started = Date.now();
    const deadline = started + options.timeoutMs;
    const socketChanged = watchForSocket(ref.runDir);
    let lastError = 'not tried';
    let inspectedAt = Number.NEGATIVE_INFINITY;
    try {
      for (let attempt = 1; ; attempt++) {
        heartbeat({ attempt });
        const attemptAt = Date.now();
        const remaining = Math.max(deadline - attemptAt, 250);
        const result = await tryHealth(ref, {
          connectTimeoutMs: Math.min(2_000, remaining),
          requestTimeoutMs: Math.min(10_000, remaining),
        });
        if (result.ok) return result.health;
        lastError = result.error;

        // A container that stopped will not answer: say why now instead of at the deadline.
        if (Date.now() - inspectedAt >= AGENT_INSPECT_EVERY_MS || Date.now() >= deadline) {
          inspectedAt = Date.now();
          await failIfStopped(ref);
        }
        if (Date.now() >= deadline)
          throw ApplicationFailure.nonRetryable(
            `the agent of VM ${ref.containerName} did not answer within ${options.timeoutMs} ms ` +
              `(${attempt} attempts; last error: ${lastError})`,
            VmFailureType.agentUnreachable,
          );
        // Poll briskly while a starting agent is expected (well under a second), then back off; either
        // way try again as soon as the socket appears.
        const poll = pause(
          Date.now() - started < AGENT_BRISK_PERIOD_MS ? AGENT_POLL_BRISK_MS : AGENT_POLL_SLOW_MS,
        );
        poll.catch(() => undefined); // a cancellation after the race was decided is seen by the next pause
        await Promise.race([poll, socketChanged.next()]);
        const sinceAttempt = Date.now() - attemptAt;
        if (sinceAttempt < AGENT_MIN_ATTEMPT_GAP_MS) await pause(AGENT_MIN_ATTEMPT_GAP_MS - sinceAttempt);
      }
    } finally {
      socketChanged.close();
    }
  }

  async function pingVmAgent(ref: VmContainerRef): Promise<AgentHealth | null> {
    const result = await tryHealth(ref, { connectTimeoutMs: 2_000, requestTimeoutMs: 10_000 });
    return result.ok ? result.health : null;
  }

  const activities = {
    createVmContainer,
    startVmContainer,
    stopVmContainer,
    removeVmContainer,
    inspectVmContainer,
    renameVmContainer,
    waitForVmAgent,
    pingVmAgent,
  } satisfies VmContainerActivities;
  return activities;
}
