/**
 * Benchmarks that compare the VM runtimes (VM_RUNTIME: runc, gVisor's runsc) in one run: which runtimes
 * this engine has, what one VM costs the host in memory whatever its runtime, and a side-by-side table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import type { Config } from '../../platform/config.js';
import { percentile } from './stats.js';

export type VmRuntime = Config['vm']['runtime'];
export const VM_RUNTIMES: readonly VmRuntime[] = ['runc', 'runsc'];

/**
 * The runtimes to measure: both, or the one named by `--runtime=<name>`; a runtime the engine lacks is
 * left out with a line saying so (scripts/dev.sh registers runsc with the engine it starts).
 */
export async function runtimesToMeasure(docker: Docker, args: string[]): Promise<VmRuntime[]> {
  const asked = args.find((arg) => arg.startsWith('--runtime='))?.slice('--runtime='.length);
  const wanted = VM_RUNTIMES.filter((runtime) => asked === undefined || runtime === asked);
  if (wanted.length === 0) throw new Error(`--runtime must be one of ${VM_RUNTIMES.join(', ')}`);
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  const registered = Object.keys(info.Runtimes ?? {});
  const present = wanted.filter((runtime) => registered.includes(runtime));
  for (const runtime of wanted.filter((r) => !present.includes(r)))
    console.log(
      `runtime ${runtime}: not registered with this Docker engine (it has ${registered.join(', ')}); skipped`,
    );
  return present;
}

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function memAvailable(): number {
  const kb = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return kb ? Number(kb) * 1024 : Number.NaN;
}

export type ProcessMemory = { pss: number; private: number };

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

/** Host processes whose command line names the container: its containerd shim, and runsc's gofer. */
function processesNaming(containerId: string): { shim: number[]; helpers: number[] } {
  const shim: number[] = [];
  const helpers: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes(containerId)) continue;
      (cmdline.includes('containerd-shim') ? shim : helpers).push(Number(entry));
    } catch {}
  }
  return { shim, helpers };
}

const sum = (pids: Iterable<number>): ProcessMemory =>
  [...pids]
    .map(processMemory)
    .reduce((a, b) => ({ pss: a.pss + b.pss, private: a.private + b.private }), { pss: 0, private: 0 });

/**
 * What one VM costs the host: its processes (under runc: init, agent, …; under runsc: the sandbox, which
 * holds the VM's memory, its ptrace stubs and the gofer) and its containerd shim.
 */
export async function hostMemory(
  docker: Docker,
  containerId: string,
): Promise<{ vm: ProcessMemory; shim: ProcessMemory }> {
  const pid = (await docker.getContainer(containerId).inspect()).State.Pid;
  const { shim, helpers } = processesNaming(containerId);
  return { vm: sum(new Set([...descendants(pid), ...helpers])), shim: sum(shim) };
}

type MemoryStats = { usage?: number; stats?: Record<string, number> };

/** What `docker stats` shows (usage minus inactive page cache) and the anonymous memory (rss). */
export async function containerMemory(
  docker: Docker,
  containerId: string,
): Promise<{ shown: number; rss: number }> {
  const stats = (await docker
    .getContainer(containerId)
    .stats({ stream: false, 'one-shot': true } as { stream: false })) as { memory_stats: MemoryStats };
  const memory = stats.memory_stats;
  const inner = memory.stats ?? {};
  const inactive = inner.total_inactive_file ?? inner.inactive_file ?? 0;
  return { shown: (memory.usage ?? 0) - inactive, rss: inner.total_rss ?? inner.rss ?? inner.anon ?? 0 };
}

/** A cell of the side-by-side table: latencies as p50 / p95, or a figure already formatted. */
export type Cell = number[] | string;

const cellText = (cell: Cell | undefined): string => {
  if (cell === undefined) return '-';
  if (typeof cell === 'string') return cell;
  if (cell.length === 0) return '-';
  return `${percentile(cell, 50).toFixed(0)} / ${percentile(cell, 95).toFixed(0)} ms`;
};

/** One row per measure, one column per runtime; latencies as p50 / p95. */
export function sideBySide(
  title: string,
  runtimes: VmRuntime[],
  rows: { label: string; cells: Partial<Record<VmRuntime, Cell>> }[],
): string {
  const width = Math.max(...rows.map((r) => r.label.length), 10);
  const columns = runtimes.map((runtime) =>
    Math.max(runtime.length, ...rows.map((r) => cellText(r.cells[runtime]).length)),
  );
  const line = (label: string, cells: string[]) =>
    `  ${label.padEnd(width)}  ${cells.map((c, i) => c.padStart(columns[i] ?? 0)).join('   ')}`;
  return [
    title,
    line('', runtimes),
    ...rows.map((r) =>
      line(
        r.label,
        runtimes.map((runtime) => cellText(r.cells[runtime])),
      ),
    ),
  ].join('\n');
}
