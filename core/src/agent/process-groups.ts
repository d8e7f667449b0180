import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  isSameProcessGroup,
  killProcessGroup,
  type ProcessGroupKind,
  type ProcessGroupRecorder,
  readProcStat,
} from '../protocol/process-group.js';

const ProcessGroupRow = z.object({
  pgid: z.number().int(),
  kind: z.string(),
  start_time: z.string().nullable(),
});

/**
 * The process groups of the detached children this agent started (CLI sessions, setup scripts), in the
 * agent's database (table process_groups, store.ts). A child is detached so that one kill ends it with
 * everything it started, which also means it outlives an agent that crashes; what is still recorded at
 * the next start is what the predecessor left, and reap() ends it.
 *
 * Each group is recorded with its leader's start time (/proc/<pid>/stat), so a pid the kernel has since
 * given to some other process is never killed. Without /proc (macOS) nothing can be verified, and
 * nothing is reaped.
 */
export class ProcessGroupLedger implements ProcessGroupRecorder {
  private readonly insert;
  private readonly remove;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
  ) {
    this.insert = db.prepare(
      'INSERT OR REPLACE INTO process_groups (pgid, kind, start_time, recorded_at) VALUES (?, ?, ?, ?)',
    );
    this.remove = db.prepare('DELETE FROM process_groups WHERE pgid = ?');
  }

  started(pgid: number, kind: ProcessGroupKind): void {
    // spawn() returns after the child's exec, so it already leads its own group; its start time is the fork's.
    const stat = readProcStat(pgid);
    this.write(() => this.insert.run(pgid, kind, stat?.startTime ?? null, new Date().toISOString()));
  }

  ended(pgid: number): void {
    this.write(() => this.remove.run(pgid));
  }

  /** Kills every recorded group that is still the one we started; empties the record. Returns the count. */
  reap(): number {
    const rows = this.db
      .prepare('SELECT pgid, kind, start_time FROM process_groups')
      .all()
      .map((row) => ProcessGroupRow.parse(row));
    let killed = 0;
    for (const row of rows) {
      if (row.start_time !== null && isSameProcessGroup(row.pgid, row.start_time)) {
        if (killProcessGroup(row.pgid, 'SIGKILL')) {
          killed++;
          this.logger.warn(
            { pgid: row.pgid, kind: row.kind },
            'ended a process group left by a crashed agent',
          );
        }
      }
      this.remove.run(row.pgid);
    }
    return killed;
  }

  /** A record that cannot be written (the database closed at shutdown) costs only the reaping after a crash. */
  private write(run: () => unknown): void {
    try {
      run();
    } catch (error) {
      this.logger.warn({ error: String(error) }, 'could not record a process group');
    }
  }
}

/**
 * The variable every CLI session and setup script of one agent run carries, with that run's id. Children
 * inherit it, so it also marks what they start in process groups of their own (the Claude CLI runs each
 * Bash tool in a new group, which killing the CLI's group misses). Terminals do not get it: a user's own
 * background jobs are not the agent's to end.
 */
export const AGENT_RUN_VARIABLE = 'FF_AGENT_RUN';
const RUNS_FILE = 'agent-runs';
const KEPT_RUNS = 5;
const RUN_ID = /^[0-9a-f-]{36}$/;

/** Earlier runs' ids, recorded in the data dir (newest last); this run is added to the record. */
export function recordAgentRun(dataDir: string, runId: string): string[] {
  const file = join(dataDir, RUNS_FILE);
  let earlier: string[] = [];
  try {
    earlier = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => RUN_ID.test(line));
  } catch {
    // The first run of this data dir.
  }
  writeFileSync(file, `${[...earlier, runId].slice(-KEPT_RUNS).join('\n')}\n`, { mode: 0o600 });
  return earlier;
}

/**
 * Kills every process (of any group) whose environment carries an earlier run's marker. Runs before this
 * run starts any child, so nothing of its own can match. Returns how many were killed.
 */
export function reapMarkedProcesses(earlierRuns: readonly string[], logger: Logger): number {
  if (earlierRuns.length === 0) return 0;
  const markers = new Set(earlierRuns.map((run) => `${AGENT_RUN_VARIABLE}=${run}`));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return 0;
  }
  let killed = 0;
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!environ.split('\0').some((entry) => markers.has(entry))) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed++;
    } catch {
      // It ended meanwhile.
    }
  }
  if (killed > 0) logger.warn({ killed }, 'ended processes left by a crashed agent');
  return killed;
}
