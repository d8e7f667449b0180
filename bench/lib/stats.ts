/** Shared measurement helpers for the benchmarks: percentiles, timing, and a plain-text table. */
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Runs `fn`, appends its duration in ms to `samples`, returns its result. */
export async function timed<T>(samples: number[], fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  samples.push(performance.now() - started);
  return result;
}

export const ms = (value: number): string => `${value.toFixed(0)} ms`;

/** One row per measurement: p50, p95, mean and count. */
export function latencyTable(rows: { label: string; samples: number[] }[]): string {
  const width = Math.max(...rows.map((r) => r.label.length), 10);
  const header = `${'measure'.padEnd(width)}  ${'p50'.padStart(8)}  ${'p95'.padStart(8)}  ${'mean'.padStart(8)}  runs`;
  const lines = rows.map(({ label, samples }) => {
    const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
    return `${label.padEnd(width)}  ${ms(percentile(samples, 50)).padStart(8)}  ${ms(percentile(samples, 95)).padStart(8)}  ${ms(mean).padStart(8)}  ${samples.length}`;
  });
  return [header, ...lines].join('\n');
}

/** What the figures were measured on, printed above every table. */
export function machineConditions(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, node ${process.version}`;
}
