import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  isSameProcessGroup,
  killProcessGroup,
  type ProcessGroupKind,
  type ProcessGroupRecorder,
  readProcStat,
} from '../protocol/index.js';

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
