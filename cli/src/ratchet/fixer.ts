/**
 * A desktop fixer: the real Claude Code CLI in the workspace's checkout, driven through core's
 * ClaudeSession with the fixer prompt as its one message (permission mode bypassPermissions: nobody is at
 * the keyboard to answer prompts). It ends COMPLETED when that turn ends normally, DIED when the turn
 * errors, the CLI exits under it, or no result comes within the timeout (the session is stopped then).
 */
import { ClaudeSession } from '@factory-factory/core/session';

export type FixerJob = {
  sessionId: string;
  workspaceId: string;
  /** The checkout the fixer works (and pushes) in. */
  cwd: string;
  prompt: string;
};

export type FixerEnd = { outcome: 'COMPLETED' | 'DIED'; detail: string | null };

/** What the desktop ratchet needs from whatever runs fixers (the tests may run something else). */
export interface FixerRunner {
  /** Starts the fixer; the promise settles once it has ended (never rejects). */
  start(job: FixerJob): Promise<FixerEnd>;
  /** Whether this process runs that fixer right now. */
  isRunning(sessionId: string): boolean;
  /** Stops every running fixer (Ctrl-C on `ffc ratchet`); each ends COMPLETED, "stopped", not retried. */
  stopAll(): Promise<void>;
}

export type ClaudeFixerOptions = {
  claudePath: string;
  env: Readonly<Record<string, string>>;
  model?: string;
  timeoutMs: number;
};

type Running = { finish: (end: FixerEnd) => void; done: Promise<FixerEnd> };

export class ClaudeFixerRunner implements FixerRunner {
  private readonly running = new Map<string, Running>();

  constructor(private readonly options: ClaudeFixerOptions) {}

  isRunning(sessionId: string): boolean {
    return this.running.has(sessionId);
  }

  start(job: FixerJob): Promise<FixerEnd> {
    const known = this.running.get(job.sessionId);
    if (known) return known.done;
    const session = new ClaudeSession({
      id: job.sessionId,
      cwd: job.cwd,
      claudeBin: this.options.claudePath,
      env: this.options.env,
      permissionMode: 'bypassPermissions',
      model: this.options.model,
    });
    // The dispatch's one message carries the session id, so its state changes are easy to pick out.
    const messageId = job.sessionId;
    let finish: (end: FixerEnd) => void = () => {};
    const done = new Promise<FixerEnd>((resolve) => {
      let finished = false;
      finish = (end) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        subscription.unsubscribe();
        session
          .stop()
          .catch(() => undefined)
          .finally(() => {
            this.running.delete(job.sessionId);
            resolve(end);
          });
      };
      const timer = setTimeout(
        () =>
          finish({
            outcome: 'DIED',
            detail: `no result within ${Math.round(this.options.timeoutMs / 60_000)} min; stopped`,
          }),
        this.options.timeoutMs,
      );
      const subscription = session.subscribe((event) => {
        const payload = event.payload;
        if (payload.type === 'claude_message' && payload.data.type === 'result') {
          const ok = payload.data.subtype === 'success' && payload.data.is_error !== true;
          finish(
            ok
              ? { outcome: 'COMPLETED', detail: null }
              : { outcome: 'DIED', detail: `the turn ended with ${String(payload.data.subtype)}` },
          );
        } else if (
          payload.type === 'message_state_changed' &&
          payload.id === messageId &&
          (payload.newState === 'FAILED' ||
            payload.newState === 'REJECTED' ||
            payload.newState === 'CANCELLED')
        ) {
          finish({ outcome: 'DIED', detail: payload.errorMessage ?? `the prompt was ${payload.newState}` });
        } else if (
          payload.type === 'session_runtime_updated' &&
          payload.sessionRuntime.processState === 'stopped' &&
          payload.sessionRuntime.lastExit?.unexpected === true
        ) {
          const exit = payload.sessionRuntime.lastExit;
          finish({
            outcome: 'DIED',
            detail: `the Claude process exited (code ${exit.code ?? '-'}, signal ${exit.signal ?? '-'})`,
          });
        }
      });
    });
    this.running.set(job.sessionId, { finish, done });
    try {
      session.send({ id: messageId, text: job.prompt });
    } catch (err) {
      finish({ outcome: 'DIED', detail: err instanceof Error ? err.message : String(err) });
    }
    return done;
  }

  async stopAll(): Promise<void> {
    const all = [...this.running.values()];
    for (const fixer of all) fixer.finish({ outcome: 'COMPLETED', detail: 'stopped by the user' });
    await Promise.all(all.map((fixer) => fixer.done));
  }
}
