import assert from 'node:assert/strict';
import type { TerminalEvent } from '../../src/protocol/index.js';
import { ScrollbackBuffer, TerminalManager } from '../../src/terminal/index.js';
import { TempDirs } from '../support/claude-cli.js';

function waitFor(events: TerminalEvent[], predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out; ${events.length} events`));
      setTimeout(check, 20);
    };
    check();
  });
}

describe('TerminalManager with real PTYs', () => {
  const dirs = new TempDirs();
  const manager = new TerminalManager({ scrollbackBytes: 4096 });

  after(() => {
    manager.closeAll();
    dirs.cleanup();
  });

  it('echoes input, replays scrollback to a late subscriber and reports the exit', async () => {
    const cwd = dirs.make('pty');
    const terminal = manager.create({ cwd, env: { PATH: '/usr/bin:/bin', HOME: cwd }, shell: '/bin/sh' });
    const events: TerminalEvent[] = [];
    const first = manager.subscribe(terminal.id, (e) => events.push(e));
    const output = () => first.scrollback + events.map((e) => (e.type === 'output' ? e.data : '')).join('');

    manager.input(terminal.id, 'echo "in $(pwd)" marker-$((6*7))\n');
    await waitFor(events, () => output().includes('marker-42'));
    assert.match(output(), new RegExp(`in ${cwd}`));
    first.unsubscribe();

    const late = manager.subscribe(terminal.id, () => {});
    assert.match(late.scrollback, /marker-42/);
    late.unsubscribe();

    manager.resize(terminal.id, 132, 50);
    assert.equal(manager.get(terminal.id).cols, 132);

    const exitEvents: TerminalEvent[] = [];
    manager.subscribe(terminal.id, (e) => exitEvents.push(e));
    manager.input(terminal.id, 'exit 3\n');
    await waitFor(exitEvents, () => exitEvents.some((e) => e.type === 'exit'));
    const exit = exitEvents.find((e) => e.type === 'exit');
    assert.equal(exit?.type === 'exit' && exit.exitCode, 3);
    assert.equal(manager.get(terminal.id).exit?.exitCode, 3);
    manager.kill(terminal.id);
    assert.throws(() => manager.get(terminal.id), /no terminal/);
  });
});

describe('ScrollbackBuffer', () => {
  it('keeps only the newest output up to its limit', () => {
    const buffer = new ScrollbackBuffer(10);
    buffer.append('0123');
    buffer.append('456789');
    buffer.append('abc');
    assert.equal(buffer.toString(), '3456789abc');
    buffer.append('x'.repeat(25));
    assert.equal(buffer.toString(), 'x'.repeat(10));
    assert.equal(buffer.length, 10);
  });
});
