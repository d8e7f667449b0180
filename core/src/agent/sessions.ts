import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentSessionInfo, PermissionMode, SessionEvent, SessionWorkflow } from '../protocol/index.js';
import type { ProcessGroupRecorder } from '../protocol/process-group.js';
import type { ClaudeSession, SessionLimits } from '../session/index.js';
import type * as SessionModule from '../session/session.js';
import { isTransientEvent } from '../session/transcript.js';
import { AgentRequestError } from './errors.js';
import { loadModule } from './load-module.js';
import type { AgentStore, StoredSession } from './store.js';

export interface ClaudeLaunchSettings {
  bin: string;
  env: Readonly<Record<string, string>>;
  extraArgs: readonly string[];
  includePartialMessages: boolean;
  limits: Partial<SessionLimits>;
  /** Where each CLI's process group is recorded (the agent reaps them after a crash). */
  processGroups?: ProcessGroupRecorder;
}

export interface CreateSessionInput {
  id?: string | undefined;
  workspaceId: string;
  cwd: string;
  name?: string | undefined;
  workflow: SessionWorkflow;
  permissionMode: PermissionMode;
  model?: string | undefined;
  appendSystemPrompt?: string | undefined;
}

/**
 * Seqs reserved ahead of transient events at a time: one small write per this many deltas instead of
 * one per delta, and a restart skips at most this many numbers.
 */
const SEQ_RESERVATION_BLOCK = 4096;

interface Entry {
  record: StoredSession;
  session: ClaudeSession;
}

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

let sessionModule: Promise<typeof SessionModule> | null = null;
/**
 * The session domain (ClaudeSession, its CLI supervisor) is loaded with the first session, stored or
 * new: an agent without one, as an idle VM usually is, never needs its code.
 */
function loadSessionModule(): Promise<typeof SessionModule> {
  sessionModule ??= loadModule<typeof SessionModule>('../session/session.js');
  return sessionModule;
}

/**
 * The agent's sessions: each stored record with its live ClaudeSession. Every non-transient event is
 * written to SQLite before subscribers see it, so after a restart load() rebuilds each session from
 * its transcript and the next message resumes the conversation with --resume.
 */
export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly store: AgentStore,
    private readonly claude: ClaudeLaunchSettings,
    private readonly resolveCwd: (workspaceId: string) => Promise<string>,
    private readonly logger: Logger,
  ) {}

  /** Rebuilds every stored session (after an agent restart). */
  async load(): Promise<void> {
    const records = this.store.listSessions();
    if (records.length > 0) {
      const { ClaudeSession } = await loadSessionModule();
      for (const record of records) {
        const { events, skipped } = this.store.loadEvents(record.id);
        if (skipped > 0)
          this.logger.warn({ sessionId: record.id, skipped }, 'skipped unreadable transcript rows');
        let cwd: string;
        try {
          cwd = await this.resolveCwd(record.workspaceId);
        } catch (error) {
          this.logger.warn({ sessionId: record.id, error: String(error) }, 'session without its workspace');
          continue;
        }
        this.entries.set(record.id, { record, session: this.open(ClaudeSession, record, cwd, events) });
      }
    }
    this.logger.info({ sessions: this.entries.size }, 'sessions loaded');
  }

  async create(input: CreateSessionInput): Promise<Entry> {
    const id = input.id ?? randomUUID();
    if (!SESSION_ID.test(id)) {
      throw new AgentRequestError('bad_request', 'session id may only use letters, digits, - and _');
    }
    const known = this.existing(id, input.workspaceId);
    if (known) return known;
    const { ClaudeSession } = await loadSessionModule();
    // Checked again: a create of the same id may have finished while this one loaded the module.
    const raced = this.existing(id, input.workspaceId);
    if (raced) return raced;
    const record: StoredSession = {
      id,
      workspaceId: input.workspaceId,
      name: input.name ?? `Session ${this.entries.size + 1}`,
      workflow: input.workflow,
      permissionMode: input.permissionMode,
      model: input.model ?? null,
      appendSystemPrompt: input.appendSystemPrompt ?? null,
      claudeSessionId: null,
      createdAt: new Date().toISOString(),
      seqReserved: 0,
    };
    this.store.insertSession(record);
    const entry = { record, session: this.open(ClaudeSession, record, input.cwd, []) };
    this.entries.set(id, entry);
    return entry;
  }

  /** The session with this id, if there is one in this workspace; a conflict if it is in another. */
  private existing(id: string, workspaceId: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry && entry.record.workspaceId !== workspaceId) {
      throw new AgentRequestError('conflict', `session ${id} already exists in another workspace`);
    }
    return entry;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The workspace a session belongs to. */
  workspaceOf(id: string): string {
    const entry = this.entries.get(id);
    if (!entry) throw new AgentRequestError('not_found', `no session ${id}`);
    return entry.record.workspaceId;
  }

  get(id: string): ClaudeSession {
    const entry = this.entries.get(id);
    if (!entry) throw new AgentRequestError('not_found', `no session ${id}`);
    return entry.session;
  }

  info(id: string): AgentSessionInfo {
    const entry = this.entries.get(id);
    if (!entry) throw new AgentRequestError('not_found', `no session ${id}`);
    return infoOf(entry);
  }

  list(workspaceId?: string): AgentSessionInfo[] {
    return [...this.entries.values()]
      .filter((e) => workspaceId === undefined || e.record.workspaceId === workspaceId)
      .map(infoOf);
  }

  inWorkspace(workspaceId: string): ClaudeSession[] {
    return [...this.entries.values()]
      .filter((e) => e.record.workspaceId === workspaceId)
      .map((e) => e.session);
  }

  /**
   * Whether a ratchet fixer is at work in the workspace: a `ratchet` session in a turn or with messages
   * waiting. A fixer that finished its turn and sits idle does not count (the desktop reaps those).
   */
  isFixerActive(workspaceId: string): boolean {
    for (const entry of this.entries.values()) {
      if (entry.record.workspaceId !== workspaceId || entry.record.workflow !== 'ratchet') continue;
      const info = entry.session.info();
      if (info.sessionRuntime.activity === 'WORKING' || info.queuedCount > 0) return true;
    }
    return false;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Sessions whose CLI process is running. */
  get liveCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.session.isAlive) count++;
    return count;
  }

  /** Ends every CLI process, keeping queued messages for the next start. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.session.close()));
  }

  private open(
    Session: typeof SessionModule.ClaudeSession,
    record: StoredSession,
    cwd: string,
    history: SessionEvent[],
  ): ClaudeSession {
    return new Session({
      id: record.id,
      cwd,
      claudeBin: this.claude.bin,
      env: this.claude.env,
      permissionMode: record.permissionMode,
      model: record.model ?? undefined,
      appendSystemPrompt: record.appendSystemPrompt ?? undefined,
      includePartialMessages: this.claude.includePartialMessages,
      extraArgs: this.claude.extraArgs,
      limits: this.claude.limits,
      logger: this.logger,
      history,
      continueAfterSeq: record.seqReserved,
      onEvent: (event) => this.record(record, event),
      ...(this.claude.processGroups ? { processGroups: this.claude.processGroups } : {}),
    });
  }

  private record(record: StoredSession, event: SessionEvent): void {
    if (isTransientEvent(event)) {
      // Not stored, but a subscriber may see it: its seq must stay taken across a restart. The
      // reservation is on disk before the event reaches anyone (onEvent runs before the subscribers).
      if (event.seq > record.seqReserved) {
        record.seqReserved = event.seq + SEQ_RESERVATION_BLOCK;
        this.store.reserveSeq(record.id, record.seqReserved);
      }
      return;
    }
    this.store.appendEvent(record.id, event);
    if (event.payload.type === 'claude_session_id') {
      record.claudeSessionId = event.payload.claudeSessionId;
      this.store.setClaudeSessionId(record.id, event.payload.claudeSessionId);
    }
  }
}

function infoOf(entry: Entry): AgentSessionInfo {
  const info = entry.session.info();
  return {
    id: entry.record.id,
    workspaceId: entry.record.workspaceId,
    name: entry.record.name,
    workflow: entry.record.workflow,
    permissionMode: entry.record.permissionMode,
    model: entry.record.model,
    claudeSessionId: info.claudeSessionId,
    createdAt: entry.record.createdAt,
    sessionRuntime: info.sessionRuntime,
    messageCount: info.messageCount,
    queuedCount: info.queuedCount,
  };
}
