/**
 * The workspaces this machine knows: one JSON file (`<stateDir>/workspaces.json`) holding, per workspace,
 * its checkout, its `location` (DESKTOP | CLOUD: the handoff) and the ratchet's memory. `ffc send` marks a
 * workspace CLOUD, `ffc pull` marks it DESKTOP again, `ffc ratchet` works only on DESKTOP ones.
 *
 * Several ffc processes share it (a `ffc ratchet` loop and a `ffc send` in another terminal), so every
 * change is a read-modify-write under an exclusive lock file, and the file is replaced atomically (temp
 * file + rename): a reader never sees half a file, and no writer loses another's change, in particular a
 * send's CLOUD is never overwritten by a ratchet cycle that read the entry before it.
 */
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RatchetStateSchema,
  safeParseJson,
  WorkspaceIdSchema,
  WorkspaceLocationSchema,
} from '@factory-factory/core/protocol';
import { z } from 'zod';
import { CliError, ExitCode } from './errors.js';

/** The ratchet's memory (core/ratchet RatchetMemory) plus the state shown to the user. */
export const StoredRatchetSchema = z.object({
  enabled: z.boolean(),
  state: RatchetStateSchema.default('IDLE'),
  lastDispatchKey: z.string().max(4096).nullable().default(null),
  dispatchKeys: z.array(z.string().max(4096)).max(50).default([]),
  reviewLastCheckedAt: z.string().nullable().default(null),
  dispatchOutcome: z.enum(['RUNNING', 'COMPLETED', 'DIED']).nullable().default(null),
  dispatchRetryCount: z.number().int().nonnegative().default(0),
  dispatchStalled: z.boolean().default(false),
  /** Dispatch times (ms) of the last 24 h, for the daily cap. */
  dispatchTimesMs: z.array(z.number().finite()).max(10_000).default([]),
});
export type StoredRatchet = z.output<typeof StoredRatchetSchema>;

/** A fixer a `ffc ratchet` process started; while it is set, send refuses (the portable ratchetActiveSessionId). */
export const ActiveFixerSchema = z.object({
  sessionId: z.string().min(1),
  dispatchKey: z.string(),
  /** The ffc process running it: when that process is gone, so is the fixer. */
  ownerPid: z.number().int().positive(),
  startedAtMs: z.number().finite(),
});
export type ActiveFixer = z.output<typeof ActiveFixerSchema>;

export const LastDecisionSchema = z.object({
  action: z.string(),
  reason: z.string(),
  key: z.string().nullable(),
  atMs: z.number().finite(),
});

export const LocalWorkspaceSchema = z.object({
  id: WorkspaceIdSchema,
  name: z.string(),
  /** The local checkout: where gh is asked about the PR and where a desktop fixer runs. */
  checkoutDir: z.string().min(1),
  repoUrl: z.string(),
  branchName: z.string(),
  location: WorkspaceLocationSchema,
  prUrl: z.string().nullable(),
  ratchet: StoredRatchetSchema,
  activeFixer: ActiveFixerSchema.nullable().default(null),
  lastDecision: LastDecisionSchema.nullable().default(null),
  /** The last poll's failure (GitHub unreachable, rate limited), cleared by a good poll. */
  problem: z.string().nullable().default(null),
});
export type LocalWorkspace = z.output<typeof LocalWorkspaceSchema>;
export type LocalWorkspaceInput = z.input<typeof LocalWorkspaceSchema>;

const StoreFileSchema = z.object({
  version: z.literal(1),
  workspaces: z.array(LocalWorkspaceSchema),
});

const LOCK_WAIT_MS = 10_000;

export class WorkspaceStore {
  readonly path: string;
  private readonly lockPath: string;

  constructor(readonly dir: string) {
    this.path = join(dir, 'workspaces.json');
    this.lockPath = `${this.path}.lock`;
  }

  async list(): Promise<LocalWorkspace[]> {
    return [...(await this.read()).values()];
  }

  async get(id: string): Promise<LocalWorkspace | null> {
    return (await this.read()).get(id) ?? null;
  }

  /**
   * Runs `change` on the newest copy of every workspace, under the lock, and writes the result if it
   * changed anything. `change` is synchronous on purpose: nothing slow (gh, claude, the api) happens while
   * other ffc processes wait for the lock.
   */
  async update<T>(change: (workspaces: Map<string, LocalWorkspace>) => T): Promise<T> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.lock();
    try {
      const workspaces = await this.read();
      const before = JSON.stringify([...workspaces.values()]);
      const result = change(workspaces);
      const after = [...workspaces.values()].map((w) => LocalWorkspaceSchema.parse(w));
      if (JSON.stringify(after) !== before) await this.write(after);
      return result;
    } finally {
      await unlink(this.lockPath).catch(() => undefined);
    }
  }

  private async read(): Promise<Map<string, LocalWorkspace>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new CliError(ExitCode.service, `cannot read ${this.path}: ${(err as Error).message}`);
    }
    const parsed = safeParseJson(StoreFileSchema, text);
    if (!parsed.ok) {
      throw new CliError(
        ExitCode.service,
        `${this.path} is damaged (${parsed.error.message}); move it away to start over`,
      );
    }
    return new Map(parsed.value.workspaces.map((w) => [w.id, w]));
  }

  private async write(workspaces: LocalWorkspace[]): Promise<void> {
    const temp = `${this.path}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify({ version: 1, workspaces }, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.path);
  }

  /** An exclusive lock file holding the owner's pid; one left by a process that died is taken over. */
  private async lock(): Promise<void> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const handle = await open(this.lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = Number((await readFile(this.lockPath, 'utf8').catch(() => '')).trim());
      // No pid in it: its writer died between creating and writing it (or is writing it right now).
      const unowned = !(Number.isInteger(owner) && owner > 0) && (await ageMs(this.lockPath)) > 5_000;
      if (unowned || (owner > 0 && !isProcessAlive(owner))) {
        await unlink(this.lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) {
        throw new CliError(
          ExitCode.service,
          `${this.path} stays locked by process ${owner || '?'}; if no ffc is running, remove ${this.lockPath}`,
        );
      }
      await sleep(25);
    }
  }
}

async function ageMs(path: string): Promise<number> {
  const info = await stat(path).catch(() => null);
  return info === null ? 0 : Date.now() - info.mtimeMs;
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
