/**
 * VM container benchmarks, printed, never asserted. Run with the backing services up:
 *
 *   npx tsx --conditions=source bench/vm-containers.ts [runs] [--starts-only]     (runs defaults to 20)
 *
 * Measures, with the real activities (activities/vm/lifecycle.ts) and the real agent in the real image:
 *   - cold: createVmContainer + startVmContainer + waitForVmAgent (new container, volume and run dir);
 *   - resume: start of a stopped VM until its agent answers;
 *   - stop (suspend) of a running VM; rename (the Docker part of a warm-pool claim);
 *   - idle memory of one VM (docker stats, the agent's RSS) and of ten at once (host MemAvailable), and
 *     how many idle VMs fit in this machine's memory.
 * Each start is split into its phases (printed first; --starts-only prints only these): the host's part of
 * create and start, Docker until the container runs (its StartedAt), the agent from then until it listens
 * (its "agent listening" log line: node boot and module loading, then its init), and the host from then
 * until the first health.ping answered (polling, the mutual handshake, the request).
 * Baseline in the same run: a bare container of the base image running `sleep`, with the same hardening
 * and limits (create+start, start, stop), so the agent's own cost is the difference.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { createVmContainerActivities } from '../activities/vm/lifecycle.js';
import type { VmContainerRef } from '../activities/vm/types.js';
import type { Config } from '../platform/config.js';
import { ensureVmImage } from '../scripts/build-vm-image.js';
import { connectTestTemporal, testConfig, testDocker, uniqueSuffix } from '../test/support/services.js';
import { agentListening, containerStartedAt, epochNow, PhaseSamples, phaseTable } from './lib/phases.js';
import { machineConditions, percentile, timed } from './lib/stats.js';

const args = process.argv.slice(2);
const runs = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 20);
/** Only the start-up split (cold, resume): skips stop, rename, memory and density. */
const startsOnly = args.includes('--starts-only');
const id = uniqueSuffix();
const benchLabels = { 'ffc.bench': `vm-containers-${id}` };
const owner = `bench-vm-containers-${id}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function memAvailable(): number {
  const kb = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return kb ? Number(kb) * 1024 : Number.NaN;
}

type ProcessMemory = { pss: number; private: number };

/** Proportional (shared pages split among sharers) and private memory of one host process. */
function processMemory(pid: number): ProcessMemory {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty') };
  } catch {
    return { pss: 0, private: 0 };
  }
}

function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [pid];
  }
  return [pid, ...children.flatMap(descendants)];
}

function shimPid(containerId: string): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('containerd-shim') && cmdline.includes(containerId)) return Number(entry);
    } catch {}
  }
  return null;
}

/** What one VM costs the host: its processes (init, agent, …) and its containerd shim. */
async function hostMemory(
  docker: Docker,
  containerId: string,
): Promise<{ vm: ProcessMemory; shim: ProcessMemory }> {
  const pid = (await docker.getContainer(containerId).inspect()).State.Pid;
  const sum = (pids: number[]) =>
    pids
      .map(processMemory)
      .reduce((a, b) => ({ pss: a.pss + b.pss, private: a.private + b.private }), { pss: 0, private: 0 });
  const shim = shimPid(containerId);
  return { vm: sum(descendants(pid)), shim: sum(shim ? [shim] : []) };
}

type MemoryStats = { usage?: number; stats?: Record<string, number> };

/** What `docker stats` shows (usage minus inactive page cache) and the anonymous memory (rss). */
async function containerMemory(docker: Docker, containerId: string): Promise<{ shown: number; rss: number }> {
  const stats = (await docker
    .getContainer(containerId)
    .stats({ stream: false, 'one-shot': true } as { stream: false })) as { memory_stats: MemoryStats };
  const memory = stats.memory_stats;
  const inner = memory.stats ?? {};
  const inactive = inner.total_inactive_file ?? inner.inactive_file ?? 0;
  return { shown: (memory.usage ?? 0) - inactive, rss: inner.total_rss ?? inner.rss ?? inner.anon ?? 0 };
}

async function main(): Promise<void> {
  const docker = testDocker();
  console.log('preparing: VM image (built if its inputs changed) …');
  const { tag, baseTag } = await ensureVmImage({ docker });
  const temporal = await connectTestTemporal();
  // A RUNNING workflow (no worker polls its queue) owns our containers, so no reconciler reaps them.
  await temporal.workflow.start('ownerThatNeverRuns', { taskQueue: `idle-${id}`, workflowId: owner });
  const runDirRoot = mkdtempSync(join(tmpdir(), 'ffc-bench-'));
  const vm: Config['vm'] = {
    ...testConfig.vm,
    image: tag,
    networkMode: 'none',
    runDirRoot,
    extraEnv: {},
    extraMounts: [],
  };
  const activities = createVmContainerActivities({ docker, vm, labels: benchLabels });
  const info = await docker.info();
  const version = await docker.version();
  const load = [loadavg()];

  /** The phases of one start, from `startCall` (before startVmContainer) until the agent answered. */
  async function recordStart(
    split: PhaseSamples,
    ref: VmContainerRef,
    startCall: number,
    startReturned: number,
    answered: number,
  ): Promise<void> {
    const runningAt = await containerStartedAt(docker, ref.containerId);
    const listening = await agentListening(docker, ref.containerId, startCall);
    split.add('startVmContainer (host dirs + docker start call)', startReturned - startCall);
    if (runningAt !== null)
      split.add('  docker: start call → container running (StartedAt)', runningAt - startCall);
    if (listening && runningAt !== null) {
      split.add('agent: container running → socket listening', listening.time - runningAt);
      if (listening.startupMs !== undefined && listening.initMs !== undefined) {
        const processStart = listening.time - listening.startupMs;
        split.add('  of which exec until node starts (docker-init, runc)', processStart - runningAt);
        split.add('  of which node boot + module loading', listening.startupMs - listening.initMs);
        split.add('  of which init: store, sessions, listen', listening.initMs);
      }
    }
    if (listening)
      split.add('host: listening → first answer (poll + handshake + ping)', answered - listening.time);
    // The same request once more, now that the agent is up and its credential check is cached.
    const pinged = epochNow();
    await activities.pingVmAgent(ref);
    split.add('handshake + health.ping again (agent up, probe cached)', epochNow() - pinged);
  }

  try {
    // Warm-up: first use of the image pays page-cache misses that later VMs do not.
    const warm = await activities.createVmContainer({
      containerName: `ffc-bench-warm-${id}`,
      role: 'vm',
      owner,
    });
    await activities.startVmContainer(warm);
    await activities.waitForVmAgent(warm, { timeoutMs: 60_000 });
    await activities.removeVmContainer(warm);

    // ---- baseline: a bare hardened container of the base image running sleep, run alternately with the
    // VM below so both see the same load on this shared machine ----
    const baseOptions = (name: string): Docker.ContainerCreateOptions => ({
      name,
      Image: baseTag,
      Cmd: ['sleep', 'infinity'],
      User: '1000:1000',
      Labels: benchLabels,
      HostConfig: {
        NetworkMode: 'none',
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=512m,mode=1777' },
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Memory: vm.memoryBytes,
        MemorySwap: vm.memoryBytes,
        NanoCpus: vm.nanoCpus,
        PidsLimit: vm.pidsLimit,
        Init: true,
      },
    });
    const baseCold: number[] = [];
    const baseStart: number[] = [];
    const baseStop: number[] = [];
    const baseColdSplit = new PhaseSamples();
    const baseResumeSplit = new PhaseSamples();
    async function bareStart(
      split: PhaseSamples,
      container: Docker.Container,
      startCall: number,
    ): Promise<void> {
      await container.start();
      const returned = epochNow();
      split.add('start call returns', returned - startCall);
      const runningAt = await containerStartedAt(docker, container.id);
      if (runningAt !== null)
        split.add('  docker: start call → container running (StartedAt)', runningAt - startCall);
    }
    async function bareCold(i: number): Promise<void> {
      const started = epochNow();
      const c = await docker.createContainer(baseOptions(`ffc-bench-base-${id}-${i}`));
      const created = epochNow();
      baseColdSplit.add('docker create', created - started);
      await bareStart(baseColdSplit, c, created);
      baseCold.push(epochNow() - started);
      await c.remove({ force: true });
    }

    // ---- the VM: cold, resume, stop, rename ----
    const cold: number[] = [];
    const coldSplit = new PhaseSamples();
    const firstAnswer: number[] = [];
    console.log(`cold create+start until the agent answers, ${runs} runs …`);
    for (let i = 0; i < runs; i++) {
      await bareCold(i);
      const started = epochNow();
      const ref = await activities.createVmContainer({
        containerName: `ffc-bench-cold-${id}-${i}`,
        role: 'vm',
        owner,
      });
      const created = epochNow();
      await activities.startVmContainer(ref);
      const startReturned = epochNow();
      const health = await activities.waitForVmAgent(ref, { timeoutMs: 60_000 });
      const answered = epochNow();
      cold.push(answered - started);
      firstAnswer.push(health.uptimeMs);
      coldSplit.add('createVmContainer (dirs, secret, volume, create)', created - started);
      await recordStart(coldSplit, ref, created, startReturned, answered);
      coldSplit.add('total: create + start + agent answers', answered - started);
      await activities.removeVmContainer(ref);
    }

    const vmRef = await activities.createVmContainer({
      containerName: `ffc-bench-vm-${id}`,
      role: 'vm',
      owner,
    });
    await activities.startVmContainer(vmRef);
    await activities.waitForVmAgent(vmRef, { timeoutMs: 60_000 });
    const resume: number[] = [];
    const resumeSplit = new PhaseSamples();
    const stop: number[] = [];
    console.log(`stop, then resume until the agent answers, ${runs} runs …`);
    const base = await docker.createContainer(baseOptions(`ffc-bench-base-${id}`));
    await base.start();
    for (let i = 0; i < runs; i++) {
      await timed(baseStop, () => base.stop({ t: 10 }));
      const bareStarted = epochNow();
      await bareStart(baseResumeSplit, base, bareStarted);
      baseStart.push(epochNow() - bareStarted);
      await timed(stop, () => activities.stopVmContainer(vmRef));
      const started = epochNow();
      await activities.startVmContainer(vmRef);
      const startReturned = epochNow();
      await activities.waitForVmAgent(vmRef, { timeoutMs: 60_000 });
      const answered = epochNow();
      resume.push(answered - started);
      await recordStart(resumeSplit, vmRef, started, startReturned, answered);
      resumeSplit.add('total: start + agent answers', answered - started);
    }

    await base.stop({ t: 10 });
    console.log('');
    console.log(
      `start-up split (${runs} runs; ${machineConditions()}; image ${tag}). Phases overlap and p50s do not add up;` +
        ' the totals are measured end to end.',
    );
    console.log(
      phaseTable('cold: new VM until its agent answers', coldSplit, {
        label: 'bare container create + start',
        samples: baseCold,
      }),
    );
    console.log(phaseTable('  baseline cold: bare container running sleep (same hardening)', baseColdSplit));
    console.log(
      phaseTable('resume: stopped VM until its agent answers', resumeSplit, {
        label: 'bare container start',
        samples: baseStart,
      }),
    );
    console.log(phaseTable('  baseline resume: bare container running sleep', baseResumeSplit));
    if (startsOnly) return;
    await base.start();

    const rename: number[] = [];
    let renamed: VmContainerRef = vmRef;
    for (let i = 0; i < runs; i++) {
      const next = `ffc-bench-vm-${id}-${i % 2 === 0 ? 'claimed' : 'pool'}`;
      renamed = await timed(rename, () => activities.renameVmContainer(renamed, next));
    }

    // ---- idle memory of one VM ----
    console.log('idle memory: one VM settles for 10 s …');
    await sleep(10_000);
    const vmMemory = await containerMemory(docker, renamed.containerId);
    const vmHost = await hostMemory(docker, renamed.containerId);
    const health = await activities.pingVmAgent(renamed);
    const top = await docker.getContainer(renamed.containerId).top({ ps_args: '-o pid,rss,comm' });
    await activities.removeVmContainer(renamed);

    // ---- baseline memory: the bare container of the resume runs, idle ----
    await sleep(2_000);
    const baseMemory = await containerMemory(docker, base.id);
    const baseHost = await hostMemory(docker, base.id);
    await base.remove({ force: true });

    // ---- ten idle VMs at once: what the host really gives up per VM (shims, kernel, page cache) ----
    const many = 10;
    console.log(`density: ${many} idle VMs at once …`);
    await sleep(2_000);
    const availableBefore = memAvailable();
    const refs: VmContainerRef[] = [];
    for (let i = 0; i < many; i++) {
      const ref = await activities.createVmContainer({
        containerName: `ffc-bench-idle-${id}-${i}`,
        role: 'vm',
        owner,
      });
      await activities.startVmContainer(ref);
      await activities.waitForVmAgent(ref, { timeoutMs: 60_000 });
      refs.push(ref);
    }
    await sleep(10_000);
    const availableAfter = memAvailable();
    const perVmHost = (availableBefore - availableAfter) / many;
    const shown = await Promise.all(refs.map((ref) => containerMemory(docker, ref.containerId)));
    const hosts = await Promise.all(refs.map((ref) => hostMemory(docker, ref.containerId)));
    const pssEach = hosts.reduce((sum, h) => sum + h.vm.pss + h.shim.pss, 0) / hosts.length;
    for (const ref of refs) await activities.removeVmContainer(ref);
    load.push(loadavg());

    // ---- report ----
    const row = (label: string, samples: number[], baseline?: number[]) => {
      const p50 = percentile(samples, 50);
      const p95 = percentile(samples, 95);
      const extra = baseline
        ? `   baseline ${percentile(baseline, 50).toFixed(0).padStart(5)} / ${percentile(baseline, 95).toFixed(0).padStart(5)} ms` +
          `   agent's cost (p50) +${(p50 - percentile(baseline, 50)).toFixed(0)} ms`
        : '';
      console.log(
        `${label.padEnd(50)} ${String(samples.length).padStart(3)}  ${p50.toFixed(0).padStart(5)} / ${p95.toFixed(0).padStart(5)} ms${extra}`,
      );
    };
    const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
    console.log('');
    console.log(
      `machine: ${cpus().length} cores (${cpuModel}), ${mib(totalmem())} RAM; Docker ${version.Version} ` +
        `(${info.Driver}, cgroup v${info.CgroupVersion ?? '?'}); load average ${load[0]?.map((l) => l.toFixed(2)).join(' ')} ` +
        `before, ${load[1]?.map((l) => l.toFixed(2)).join(' ')} after (other work on this machine is not paused)`,
    );
    console.log(
      `image: ${tag} on ${baseTag}; VM limits ${mib(vm.memoryBytes)}, ${vm.nanoCpus / 1e9} CPU, ${vm.pidsLimit} pids`,
    );
    console.log('');
    console.log(`${'metric'.padEnd(50)} ${'n'.padStart(3)}  ${'p50'.padStart(5)} / ${'p95'.padStart(5)}`);
    row('cold: create + start + agent answers', cold, baseCold);
    row('  agent uptime at its first answer', firstAnswer);
    row('resume: start of a stopped VM + agent answers', resume, baseStart);
    row('stop (suspend) of a running VM', stop, baseStop);
    row('renameVmContainer (warm-pool claim, Docker part)', rename);
    console.log('');
    console.log(
      `idle memory, one VM after 10 s: agent RSS ${health ? mib(health.rssBytes) : 'n/a'} (node's own text is shared ` +
        `between VMs); PSS ${mib(vmHost.vm.pss)}, private ${mib(vmHost.vm.private)}; containerd shim PSS ${mib(vmHost.shim.pss)}; ` +
        `docker stats ${mib(vmMemory.shown)}`,
    );
    console.log(
      `  processes: ${top.Processes.map((p: string[]) => `${p[2]} ${(Number(p[1]) / 1024).toFixed(1)} MiB RSS`).join(', ')}`,
    );
    console.log(
      `  baseline sleep container: PSS ${mib(baseHost.vm.pss)}, private ${mib(baseHost.vm.private)}; ` +
        `shim PSS ${mib(baseHost.shim.pss)}; docker stats ${mib(baseMemory.shown)}`,
    );
    const shownMean = shown.reduce((sum, m) => sum + m.shown, 0) / shown.length;
    console.log(
      `${many} idle VMs at once: PSS ${mib(pssEach)} per VM (VM processes + shim); docker stats mean ${mib(shownMean)}; ` +
        `host MemAvailable fell by ${mib(perVmHost)} per VM (noisy: others use this machine too)`,
    );
    const reserve = 2 * 1024 ** 3;
    const perVm = Math.max(pssEach, shownMean, perVmHost);
    const claudeIdle = 220 * 1024 ** 2;
    console.log(
      `estimate for ${mib(totalmem())} keeping 2 GiB for the host: ${Math.floor((totalmem() - reserve) / perVm)} idle VMs ` +
        `(at ${mib(perVm)}, the largest of the three measures); ${Math.floor((totalmem() - reserve) / (perVm + claudeIdle))} ` +
        `with one idle Claude CLI each (~220 MiB, TESTING.md); ${Math.floor((totalmem() - reserve) / vm.memoryBytes)} ` +
        `if every VM could reach its ${mib(vm.memoryBytes)} limit at once`,
    );
  } finally {
    const filters = { label: [`ffc.bench=${benchLabels['ffc.bench']}`] };
    for (const c of await docker.listContainers({ all: true, filters }))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    for (const v of (await docker.listVolumes({ filters })).Volumes ?? [])
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
    rmSync(runDirRoot, { recursive: true, force: true });
    await temporal.workflow
      .getHandle(owner)
      .terminate('bench over')
      .catch(() => undefined);
    await temporal.connection.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
