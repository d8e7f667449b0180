/**
 * VM container benchmarks, printed, never asserted. Run with the backing services up:
 *
 *   npx tsx --conditions=source bench/vm-containers.ts [runs] [--starts-only] [--runtime=runc|runsc]
 *                                                                            (runs defaults to 20)
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
 * Baseline in the same run: a bare container of the base image running `sleep`, with the same hardening,
 * limits and runtime (create+start, start, stop), so the agent's own cost is the difference.
 *
 * Every figure is measured for each VM runtime the engine has (VM_RUNTIME: runc, gVisor's runsc), one
 * after the other, then printed side by side; `--runtime=runc` (or runsc) measures only that one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { createVmContainerActivities } from '../activities/vm/lifecycle.js';
import type { VmContainerRef } from '../activities/vm/types.js';
import type { Config } from '../platform/config.js';
import { ensureVmImage } from '../scripts/build-vm-image.js';
import { connectTestTemporal, testConfig, testDocker, uniqueSuffix } from '../test/support/services.js';
import { agentListening, containerStartedAt, epochNow, PhaseSamples, phaseTable } from './lib/phases.js';
import {
  type Cell,
  containerMemory,
  hostMemory,
  memAvailable,
  mib,
  runtimesToMeasure,
  sideBySide,
  type VmRuntime,
} from './lib/runtimes.js';
import { machineConditions, percentile, timed } from './lib/stats.js';

const args = process.argv.slice(2);
const runs = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 20);
/** Only the start-up split (cold, resume): skips stop, rename, memory and density. */
const startsOnly = args.includes('--starts-only');
const id = uniqueSuffix();
const benchLabels = { 'ffc.bench': `vm-containers-${id}` };
const owner = `bench-vm-containers-${id}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the side-by-side table shows of one runtime. */
type RuntimeFigures = {
  cold: number[];
  resume: number[];
  stop: number[];
  baseCold: number[];
  baseResume: number[];
  coldSplit: PhaseSamples;
  resumeSplit: PhaseSamples;
  idle?: {
    pss: number;
    shown: number;
    baselineShown: number;
    manyPss: number;
    manyShown: number;
    manyAvailableDrop: number;
    fit: number;
  };
};

/** `docker top`'s rows as "command RSS": runc's ps takes our columns, runsc's prints its own. */
function processList(top: { Titles: string[]; Processes: string[][] }): string {
  const rss = top.Titles.indexOf('RSS');
  const command = Math.max(top.Titles.indexOf('COMMAND'), top.Titles.indexOf('CMD'));
  return top.Processes.map((p) =>
    rss >= 0 ? `${p[command]} ${(Number(p[rss]) / 1024).toFixed(1)} MiB RSS` : `${p[command] ?? p.join(' ')}`,
  ).join(', ');
}

async function main(): Promise<void> {
  const docker = testDocker();
  console.log('preparing: VM image (built if its inputs changed) …');
  const { tag, baseTag } = await ensureVmImage({ docker });
  const runtimes = await runtimesToMeasure(docker, args);
  const temporal = await connectTestTemporal();
  // A RUNNING workflow (no worker polls its queue) owns our containers, so no reconciler reaps them.
  await temporal.workflow.start('ownerThatNeverRuns', { taskQueue: `idle-${id}`, workflowId: owner });
  const runDirRoot = mkdtempSync(join(tmpdir(), 'ffc-bench-'));
  const info = await docker.info();
  const version = await docker.version();
  const measured = new Map<VmRuntime, RuntimeFigures>();

  /** Every figure of one runtime, printed as measured; the comparison is printed at the end. */
  async function measure(runtime: VmRuntime): Promise<RuntimeFigures> {
    const vm: Config['vm'] = {
      ...testConfig.vm,
      image: tag,
      networkMode: 'none',
      runtime,
      runDirRoot,
      extraEnv: {},
      extraMounts: [],
    };
    const activities = createVmContainerActivities({ docker, vm, labels: benchLabels });
    const load = [loadavg()];
    /** Container names of this runtime's runs (a --starts-only run leaves its baseline container). */
    const rid = `${id}-${runtime}`;

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
          split.add(`  of which exec until node starts (docker-init, ${runtime})`, processStart - runningAt);
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

    // Warm-up: first use of the image pays page-cache misses that later VMs do not.
    const warm = await activities.createVmContainer({
      containerName: `ffc-bench-warm-${rid}`,
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
        Runtime: runtime,
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
      const c = await docker.createContainer(baseOptions(`ffc-bench-base-${rid}-${i}`));
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
        containerName: `ffc-bench-cold-${rid}-${i}`,
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
      containerName: `ffc-bench-vm-${rid}`,
      role: 'vm',
      owner,
    });
    await activities.startVmContainer(vmRef);
    await activities.waitForVmAgent(vmRef, { timeoutMs: 60_000 });
    const resume: number[] = [];
    const resumeSplit = new PhaseSamples();
    const stop: number[] = [];
    console.log(`stop, then resume until the agent answers, ${runs} runs …`);
    const base = await docker.createContainer(baseOptions(`ffc-bench-base-${rid}`));
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
      `${runtime}: start-up split (${runs} runs; ${machineConditions()}; image ${tag}). Phases overlap and p50s do not add up;` +
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
    const figures: RuntimeFigures = {
      cold,
      resume,
      stop,
      baseCold,
      baseResume: baseStart,
      coldSplit,
      resumeSplit,
    };
    if (startsOnly) return figures;
    await base.start();

    const rename: number[] = [];
    let renamed: VmContainerRef = vmRef;
    for (let i = 0; i < runs; i++) {
      const next = `ffc-bench-vm-${rid}-${i % 2 === 0 ? 'claimed' : 'pool'}`;
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
        containerName: `ffc-bench-idle-${rid}-${i}`,
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
      `runtime ${runtime}; image: ${tag} on ${baseTag}; VM limits ${mib(vm.memoryBytes)}, ${vm.nanoCpus / 1e9} CPU, ${vm.pidsLimit} pids`,
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
    console.log(`  processes: ${processList(top)}`);
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
    figures.idle = {
      pss: vmHost.vm.pss + vmHost.shim.pss,
      shown: vmMemory.shown,
      baselineShown: baseMemory.shown,
      manyPss: pssEach,
      manyShown: shownMean,
      manyAvailableDrop: perVmHost,
      fit: Math.floor((totalmem() - reserve) / perVm),
    };
    const claudeIdle = 220 * 1024 ** 2;
    console.log(
      `estimate for ${mib(totalmem())} keeping 2 GiB for the host: ${Math.floor((totalmem() - reserve) / perVm)} idle VMs ` +
        `(at ${mib(perVm)}, the largest of the three measures); ${Math.floor((totalmem() - reserve) / (perVm + claudeIdle))} ` +
        `with one idle Claude CLI each (~220 MiB, TESTING.md); ${Math.floor((totalmem() - reserve) / vm.memoryBytes)} ` +
        `if every VM could reach its ${mib(vm.memoryBytes)} limit at once`,
    );
    return figures;
  }

  try {
    for (const runtime of runtimes) {
      console.log(`\n=== runtime ${runtime} ===`);
      measured.set(runtime, await measure(runtime));
    }
    printSideBySide(runtimes, measured);
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

/** The runtimes next to each other: what an operator chooses VM_RUNTIME with. */
function printSideBySide(runtimes: VmRuntime[], measured: Map<VmRuntime, RuntimeFigures>): void {
  if (runtimes.length === 0) return;
  const cells = (pick: (f: RuntimeFigures) => Cell | undefined) =>
    Object.fromEntries(
      runtimes.map((r) => {
        const f = measured.get(r);
        return [r, f ? pick(f) : undefined];
      }),
    );
  const memory = (pick: (idle: NonNullable<RuntimeFigures['idle']>) => number) =>
    cells((f) => (f.idle ? mib(pick(f.idle)) : undefined));
  const phase = (split: 'coldSplit' | 'resumeSplit', name: string) => cells((f) => f[split].get(name));
  console.log('');
  console.log(
    sideBySide(`runtimes side by side (${runs} runs each; p50 / p95; ${machineConditions()})`, runtimes, [
      { label: 'cold: create + start + agent answers', cells: cells((f) => f.cold) },
      {
        label: '  container running → agent listening',
        cells: phase('coldSplit', 'agent: container running → socket listening'),
      },
      { label: '  baseline: bare container create + start', cells: cells((f) => f.baseCold) },
      { label: 'resume: start of a stopped VM + agent answers', cells: cells((f) => f.resume) },
      {
        label: '  container running → agent listening',
        cells: phase('resumeSplit', 'agent: container running → socket listening'),
      },
      { label: '  baseline: bare container start', cells: cells((f) => f.baseResume) },
      { label: 'stop (suspend) of a running VM', cells: cells((f) => f.stop) },
      { label: 'idle memory, one VM: docker stats (its cgroup)', cells: memory((i) => i.shown) },
      { label: '  baseline: bare sleep container, docker stats', cells: memory((i) => i.baselineShown) },
      { label: '  PSS of its host processes + shim (see below)', cells: memory((i) => i.pss) },
      { label: 'ten idle VMs: host MemAvailable drop per VM', cells: memory((i) => i.manyAvailableDrop) },
      { label: '  docker stats, mean', cells: memory((i) => i.manyShown) },
      { label: '  PSS per VM (see below)', cells: memory((i) => i.manyPss) },
      {
        label: 'idle VMs that fit here (2 GiB kept for the host)',
        cells: cells((f) => (f.idle ? String(f.idle.fit) : undefined)),
      },
    ]),
  );
  if (runtimes.includes('runsc'))
    console.log(
      "  PSS under runsc misses the VM's memory: gVisor keeps it in a memory file its sandbox maps only in part;" +
        ' the cgroup (docker stats) and MemAvailable count it.',
    );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
