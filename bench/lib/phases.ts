/**
 * Where the time of a VM start goes: timestamps read from Docker (the container's StartedAt), from the
 * agent's own log (its "agent listening" line) and from a workflow's history (activity events), all on
 * this host's clock, so they line up with the benchmark's own timestamps.
 */
import { performance } from 'node:perf_hooks';
import { safeParseJson } from '@factory-factory/core/protocol';
import proto from '@temporalio/proto';
import type Docker from 'dockerode';
import { z } from 'zod';
import { demuxLogs } from '../../activities/vm/containers.js';
import { percentile } from './stats.js';

/** Milliseconds since the epoch with sub-millisecond precision (Date.now() rounds to whole ms). */
export const epochNow = (): number => performance.timeOrigin + performance.now();

/** Docker's RFC 3339 time with nanoseconds, as epoch ms keeping the fraction. */
export function dockerTimeMs(value: string | undefined): number | null {
  if (!value || value.startsWith('0001-01-01')) return null;
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(value);
  if (!m) return null;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  return Number.isNaN(whole) ? null : whole + Number(m[2] ?? 0) * 1000;
}

export async function containerStartedAt(docker: Docker, containerId: string): Promise<number | null> {
  return dockerTimeMs((await docker.getContainer(containerId).inspect()).State.StartedAt);
}

const ListeningLine = z.looseObject({
  msg: z.literal('agent listening'),
  time: z.number(),
  /** Since the node process started (agents built from this tree on). */
  startupMs: z.number().optional(),
  /** Of which inside startAgent: store, sessions, workspaces, server, listen. */
  initMs: z.number().optional(),
});
export type AgentStartup = z.output<typeof ListeningLine>;

/** The agent's last "agent listening" line logged at or after `sinceMs`, or null. */
export async function agentListening(
  docker: Docker,
  containerId: string,
  sinceMs: number,
): Promise<AgentStartup | null> {
  const raw = await docker
    .getContainer(containerId)
    .logs({ stdout: true, stderr: true, tail: 200, follow: false });
  const text = demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
  let found: AgentStartup | null = null;
  for (const line of text.split('\n')) {
    if (!line.includes('agent listening')) continue;
    const parsed = safeParseJson(ListeningLine, line);
    // pino's time is whole ms: a line of the same ms as sinceMs counts.
    if (parsed.ok && parsed.value.time >= Math.floor(sinceMs)) found = parsed.value;
  }
  return found;
}

/** Samples per phase, in the order phases were first recorded. */
export class PhaseSamples {
  private readonly phases = new Map<string, number[]>();

  add(phase: string, ms: number | null | undefined): void {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return;
    let samples = this.phases.get(phase);
    if (!samples) {
      samples = [];
      this.phases.set(phase, samples);
    }
    samples.push(ms);
  }

  get(phase: string): number[] {
    return this.phases.get(phase) ?? [];
  }

  entries(): [string, number[]][] {
    return [...this.phases];
  }
}

const fmt = (value: number) => (Number.isNaN(value) ? '    -' : value.toFixed(0).padStart(5));

/**
 * A split table: one row per phase, p50 / p95 and runs; a row may name a baseline row of another table
 * (same run) to print beside it. Phases are not additive at p50, hence the total row of each table.
 */
export function phaseTable(
  title: string,
  samples: PhaseSamples,
  baseline?: { label: string; samples: number[] },
): string {
  const rows = samples.entries();
  const width = Math.max(48, ...rows.map(([phase]) => phase.length));
  const lines = [
    title,
    `  ${'phase'.padEnd(width)}  ${'p50'.padStart(5)} / ${'p95'.padStart(5)} ms  runs`,
    ...rows.map(
      ([phase, values]) =>
        `  ${phase.padEnd(width)}  ${fmt(percentile(values, 50))} / ${fmt(percentile(values, 95))} ms  ${values.length}`,
    ),
  ];
  if (baseline)
    lines.push(
      `  ${`baseline: ${baseline.label}`.padEnd(width)}  ${fmt(percentile(baseline.samples, 50))} / ${fmt(percentile(baseline.samples, 95))} ms  ${baseline.samples.length}`,
    );
  return lines.join('\n');
}

// ---- workflow history ----

const { EventType } = proto.temporal.api.enums.v1;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) return Number.NaN;
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

export type ActivitySpan = {
  name: string;
  scheduledAt: number;
  startedAt: number;
  completedAt: number;
};

export type HistorySplit = {
  activities: ActivitySpan[];
  /** Workflow tasks (scheduled → completed) whose completion falls in the window. */
  workflowTaskMs: number[];
};

/**
 * Activities and workflow tasks of a workflow that completed within [fromMs, toMs] (epoch ms). Temporal
 * stamps events with the server's clock, which on this machine is the benchmark's.
 */
export function historySplit(events: HistoryEvent[], fromMs: number, toMs: number): HistorySplit {
  const byId = new Map<number, HistoryEvent>();
  for (const event of events) byId.set(Number(event.eventId ?? 0), event);
  const activities: ActivitySpan[] = [];
  const workflowTaskMs: number[] = [];
  const inWindow = (ms: number) => ms >= fromMs - 1 && ms <= toMs + 1;
  for (const event of events) {
    const at = eventMs(event);
    if (!inWindow(at)) continue;
    if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const attrs = event.activityTaskCompletedEventAttributes;
      const scheduled = byId.get(Number(attrs?.scheduledEventId ?? 0));
      const started = byId.get(Number(attrs?.startedEventId ?? 0));
      if (!scheduled || !started) continue;
      activities.push({
        name: scheduled.activityTaskScheduledEventAttributes?.activityType?.name ?? '?',
        scheduledAt: eventMs(scheduled),
        startedAt: eventMs(started),
        completedAt: at,
      });
    }
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      const attrs = event.workflowTaskCompletedEventAttributes;
      const scheduled = byId.get(Number(attrs?.scheduledEventId ?? 0));
      if (scheduled) workflowTaskMs.push(at - eventMs(scheduled));
    }
  }
  return { activities, workflowTaskMs };
}
