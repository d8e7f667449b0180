/**
 * One agent connection per VM per api process, shared by every relay (terminals, sessions) and REST call
 * of that VM's user. The agent multiplexes requests and subscriptions on one connection, so a second one
 * buys nothing and costs a handshake (and, in the VM, a reader and a slot in its connection count).
 *
 *   const lease = await agents.acquire(userId);   // connects once; concurrent acquires share the connect
 *   await lease.agent.listSessions();
 *   lease.release();                               // the last release starts the idle timer
 *
 * A connection that closes (the VM was suspended, the agent restarted) is dropped at once, so the next
 * acquire connects again; whoever held it hears about it through `agent.onClose` and decides for itself.
 * A connection nobody holds is closed after `idleCloseMs`. Acquiring never touches the VM's idle timer:
 * only what users do counts as activity, and callers say so themselves.
 *
 * Holders share the connection: they close their own subscriptions and never call `agent.close()`.
 */
import type { AgentClient } from '@factory-factory/core/agent-client';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type { Logger } from '../../platform/logger.js';

export type AgentLease = {
  readonly agent: AgentClient;
  /** Idempotent. */
  release(): void;
};

export type AgentConnectionsOptions = {
  /** Where the user's agent listens, readying the VM first (VmService.agentEndpoint). */
  endpoint: (userId: string) => Promise<VmContainerRef>;
  /** The one door into a VM: connectVmAgent(vmAgentEndpoint(ref, secretRoot)). */
  connect: (ref: VmContainerRef) => Promise<AgentClient>;
  /** How long a connection nobody holds stays open (default 60 s). */
  idleCloseMs?: number;
  log: Logger;
};

export type AgentConnectionStats = {
  /** Open connections, one per VM at most. */
  connections: number;
  /** Connects under way. */
  connecting: number;
  /** Leases not released yet. */
  leases: number;
  /** Connections made since start (a reconnect counts again). */
  connectsTotal: number;
};

type Entry = {
  userId: string;
  agent: AgentClient;
  leases: number;
  idleTimer: NodeJS.Timeout | null;
  stopListening: () => void;
};

export class AgentConnections {
  private readonly open = new Map<string, Entry>();
  private readonly connecting = new Map<string, Promise<Entry>>();
  private readonly idleCloseMs: number;
  private connectsTotal = 0;
  private closed = false;

  constructor(private readonly options: AgentConnectionsOptions) {
    this.idleCloseMs = options.idleCloseMs ?? 60_000;
  }

  /** The user's shared connection, connecting (once, however many ask at the same time) if there is none. */
  async acquire(userId: string): Promise<AgentLease> {
    const entry = await this.entryFor(userId);
    entry.leases += 1;
    if (entry.idleTimer) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = null;
    }
    let released = false;
    return {
      agent: entry.agent,
      release: () => {
        if (released) return;
        released = true;
        entry.leases -= 1;
        if (entry.leases === 0 && this.open.get(userId) === entry) this.scheduleIdleClose(entry);
      },
    };
  }

  /** Runs `use` with the user's connection, releasing it afterwards whatever happens. */
  async withAgent<T>(userId: string, use: (agent: AgentClient) => Promise<T>): Promise<T> {
    const lease = await this.acquire(userId);
    try {
      return await use(lease.agent);
    } finally {
      lease.release();
    }
  }

  stats(userId?: string): AgentConnectionStats {
    let connections = 0;
    let leases = 0;
    for (const entry of this.open.values()) {
      if (userId !== undefined && entry.userId !== userId) continue;
      connections += 1;
      leases += entry.leases;
    }
    const connecting = userId === undefined ? this.connecting.size : this.connecting.has(userId) ? 1 : 0;
    return { connections, connecting, leases, connectsTotal: this.connectsTotal };
  }

  /** Closes every connection (api shutdown); later acquires fail. */
  closeAll(): void {
    this.closed = true;
    for (const entry of [...this.open.values()]) this.drop(entry, true);
  }

  private entryFor(userId: string): Promise<Entry> {
    if (this.closed) return Promise.reject(new Error('the api is shutting down'));
    const existing = this.open.get(userId);
    if (existing && !existing.agent.isClosed) return Promise.resolve(existing);
    if (existing) this.drop(existing, false);
    const pending = this.connecting.get(userId);
    if (pending) return pending;
    const connecting = this.connect(userId).finally(() => this.connecting.delete(userId));
    this.connecting.set(userId, connecting);
    return connecting;
  }

  private async connect(userId: string): Promise<Entry> {
    const ref = await this.options.endpoint(userId);
    const agent = await this.options.connect(ref);
    this.connectsTotal += 1;
    if (this.closed) {
      agent.close();
      throw new Error('the api is shutting down');
    }
    const entry: Entry = { userId, agent, leases: 0, idleTimer: null, stopListening: () => {} };
    entry.stopListening = agent.onClose((reason) => {
      this.options.log.info({ userId, reason: reason.code }, 'agent connection closed');
      this.drop(entry, false);
    });
    this.open.set(userId, entry);
    // Nobody may take it (the asker left meanwhile): it still closes on the idle schedule.
    this.scheduleIdleClose(entry);
    return entry;
  }

  private scheduleIdleClose(entry: Entry): void {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = null;
      if (entry.leases === 0) this.drop(entry, true);
    }, this.idleCloseMs);
    entry.idleTimer.unref();
  }

  private drop(entry: Entry, close: boolean): void {
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = null;
    entry.stopListening();
    if (this.open.get(entry.userId) === entry) this.open.delete(entry.userId);
    if (close) entry.agent.close();
  }
}
