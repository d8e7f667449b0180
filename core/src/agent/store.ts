import { chmodSync, closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { z } from 'zod';
import {
  PermissionMode,
  type SessionEvent,
  SessionEventPayload,
  SessionWorkflow,
  safeParseJson,
} from '../protocol/index.js';

export interface StoredSession {
  id: string;
  workspaceId: string;
  name: string;
  workflow: SessionWorkflow;
  permissionMode: PermissionMode;
  model: string | null;
  appendSystemPrompt: string | null;
  claudeSessionId: string | null;
  createdAt: string;
  /**
   * Every seq up to this one may have been given to an event this store never saw (a transient one):
   * after a restart the session numbers its events after it, so no seq means two different events.
   */
  seqReserved: number;
}

const SessionRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  name: z.string(),
  workflow: SessionWorkflow,
  permission_mode: PermissionMode,
  model: z.string().nullable(),
  append_system_prompt: z.string().nullable(),
  claude_session_id: z.string().nullable(),
  created_at: z.string(),
  seq_reserved: z.number().int(),
});

const EventRow = z.object({ seq: z.number().int(), at: z.string(), payload: z.string() });

/** Schema migrations, applied in order; `user_version` records how many ran. */
const MIGRATIONS = [
  `CREATE TABLE workspaces (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     repo_url TEXT NOT NULL,
     branch TEXT NOT NULL,
     status TEXT NOT NULL,
     worktree_path TEXT NOT NULL,
     created_at TEXT NOT NULL,
     archived_at TEXT
   );
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     workspace_id TEXT NOT NULL,
     name TEXT NOT NULL,
     permission_mode TEXT NOT NULL,
     model TEXT,
     append_system_prompt TEXT,
     claude_session_id TEXT,
     created_at TEXT NOT NULL
   );
   CREATE INDEX sessions_by_workspace ON sessions (workspace_id, created_at);
   CREATE TABLE session_events (
     session_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     at TEXT NOT NULL,
     payload TEXT NOT NULL,
     PRIMARY KEY (session_id, seq)
   ) WITHOUT ROWID;`,
  // Workspaces moved to core/workspace's own table (ff_workspaces, SqliteWorkspaceStore, same file); the
  // first table only ever held the plain-directory stand-in's rows, which have no git worktree to keep.
  `DROP TABLE workspaces;
   ALTER TABLE sessions ADD COLUMN workflow TEXT NOT NULL DEFAULT 'followup';`,
  // Seqs handed out to transient events (not stored) are reserved in blocks, so a restarted agent
  // never reuses one: a subscriber resuming after seq N must never be given a different event N + 1.
  `ALTER TABLE sessions ADD COLUMN seq_reserved INTEGER NOT NULL DEFAULT 0;`,
  // The process groups of the CLIs and setup scripts this agent started (process-groups.ts): they live
  // on in their own groups when the agent crashes, and the next start ends them.
  `CREATE TABLE process_groups (
     pgid INTEGER PRIMARY KEY,
     kind TEXT NOT NULL,
     start_time TEXT,
     recorded_at TEXT NOT NULL
   );`,
  // Which session each ratchet dispatch went to (ratchet-dispatches.ts): a retried dispatch answers
  // from here instead of sending the fixer prompt twice.
  `CREATE TABLE ratchet_dispatches (
     dispatch_id TEXT PRIMARY KEY,
     workspace_id TEXT NOT NULL,
     session_id TEXT NOT NULL,
     created_at TEXT NOT NULL
   );`,
];

/** The database file and the files SQLite keeps beside it in WAL mode. */
const DATABASE_FILE_SUFFIXES = ['', '-wal', '-shm'];

/**
 * The agent's per-VM state in SQLite: sessions with their Claude session ids and each session's
 * transcript (its non-transient events). Workspaces live in the same file, in core/workspace's table
 * (see `database`). Synchronous by design (better-sqlite3): an event is on disk before it is fanned out,
 * and WAL keeps those small writes cheap.
 */
export class AgentStore {
  private readonly db: Database.Database;
  private readonly insertEvent: Database.Statement<[string, number, string, string]>;

  private constructor(db: Database.Database) {
    this.db = db;
    this.insertEvent = db.prepare(
      'INSERT OR IGNORE INTO session_events (session_id, seq, at, payload) VALUES (?, ?, ?, ?)',
    );
  }

  /** Opens (creating if needed) the database file and brings its schema up to date. */
  static open(path: string): AgentStore {
    // Transcripts hold the user's code and prompts: owner-only whatever the umask. The file is created
    // 0600 before SQLite opens it (SQLite gives its -wal and -shm files the database file's mode), and
    // files left by an earlier run under a looser umask are narrowed too.
    closeSync(openSync(path, 'a', 0o600));
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    for (const suffix of DATABASE_FILE_SUFFIXES) {
      try {
        chmodSync(`${path}${suffix}`, 0o600);
      } catch {
        // -wal and -shm exist only once SQLite made them; it makes them with the database file's mode.
      }
    }
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const version = Number(db.pragma('user_version', { simple: true }));
    for (let i = version; i < MIGRATIONS.length; i++) {
      const migration = MIGRATIONS[i];
      if (migration === undefined) continue;
      db.transaction(() => {
        db.exec(migration);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
    return new AgentStore(db);
  }

  /**
   * The connection, for core/workspace's SqliteWorkspaceStore: one connection per process means its
   * IMMEDIATE transactions never wait on ours.
   */
  get database(): Database.Database {
    return this.db;
  }

  close(): void {
    this.db.close();
  }

  // ---- sessions ----

  insertSession(session: StoredSession): void {
    this.db
      .prepare(
        `INSERT INTO sessions (id, workspace_id, name, workflow, permission_mode, model,
                               append_system_prompt, claude_session_id, created_at, seq_reserved)
         VALUES (@id, @workspaceId, @name, @workflow, @permissionMode, @model, @appendSystemPrompt,
                 @claudeSessionId, @createdAt, @seqReserved)`,
      )
      .run(session);
  }

  setClaudeSessionId(sessionId: string, claudeSessionId: string): void {
    this.db.prepare('UPDATE sessions SET claude_session_id = ? WHERE id = ?').run(claudeSessionId, sessionId);
  }

  /** Raises the session's reserved seq (never lowers it). */
  reserveSeq(sessionId: string, seq: number): void {
    this.db
      .prepare('UPDATE sessions SET seq_reserved = MAX(seq_reserved, ?) WHERE id = ?')
      .run(seq, sessionId);
  }

  getSession(id: string): StoredSession | null {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id);
    return row === undefined ? null : toSession(SessionRow.parse(row));
  }

  listSessions(): StoredSession[] {
    return this.db
      .prepare('SELECT * FROM sessions ORDER BY created_at, id')
      .all()
      .map((row) => toSession(SessionRow.parse(row)));
  }

  // ---- transcripts ----

  appendEvent(sessionId: string, event: SessionEvent): void {
    this.insertEvent.run(sessionId, event.seq, event.at, JSON.stringify(event.payload));
  }

  /** The stored transcript in seq order. A row that no longer parses is skipped, not fatal. */
  loadEvents(sessionId: string): { events: SessionEvent[]; skipped: number } {
    const rows = this.db
      .prepare('SELECT seq, at, payload FROM session_events WHERE session_id = ? ORDER BY seq')
      .all(sessionId);
    const events: SessionEvent[] = [];
    let skipped = 0;
    for (const raw of rows) {
      const row = EventRow.parse(raw);
      const payload = safeParseJson(SessionEventPayload, row.payload, Number.POSITIVE_INFINITY);
      if (payload.ok) events.push({ seq: row.seq, at: row.at, payload: payload.value });
      else skipped++;
    }
    return { events, skipped };
  }
}

function toSession(row: z.infer<typeof SessionRow>): StoredSession {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    workflow: row.workflow,
    permissionMode: row.permission_mode,
    model: row.model,
    appendSystemPrompt: row.append_system_prompt,
    claudeSessionId: row.claude_session_id,
    createdAt: row.created_at,
    seqReserved: row.seq_reserved,
  };
}
