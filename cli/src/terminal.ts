/**
 * `ffc vm terminal`: a raw-mode terminal into the VM over ws /ws/vms/me/terminal (the desktop's terminal
 * protocol). Creates a shell of the local size, forwards stdin as `input`, resizes on SIGWINCH, and puts
 * the local tty back as it was whatever way it ends.
 */
import { randomUUID } from 'node:crypto';
import {
  safeParseJson,
  type TerminalClientMessage,
  TerminalServerMessage,
} from '@factory-factory/core/protocol';
import type WebSocket from 'ws';
import type { ApiClient } from './api-client.js';
import { CliError, ExitCode, errorText } from './errors.js';
import { openSocket, rawText } from './relay-socket.js';

const clampSize = (n: number | undefined, fallback: number) =>
  Math.min(1000, Math.max(1, Number.isInteger(n) && n !== undefined && n > 0 ? n : fallback));

/** The agent caps one input frame at 64 KiB (characters); a paste is split below that. */
const MAX_INPUT_CHARS = 32 * 1024;

export async function runVmTerminal(client: ApiClient): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const requestId = randomUUID();
  const size = () => ({ cols: clampSize(stdout.columns, 80), rows: clampSize(stdout.rows, 24) });
  let ws: WebSocket | null = null;
  const send = (message: TerminalClientMessage) => {
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };
  let terminalId: string | null = null;
  let done = false;
  let resolveRun: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    resolveRun = resolve;
  });
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;

  const onInput = (chunk: Buffer | string) => {
    if (!terminalId) return;
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    for (let i = 0; i < text.length; i += MAX_INPUT_CHARS) {
      send({ type: 'input', terminalId, data: text.slice(i, i + MAX_INPUT_CHARS) });
    }
  };
  const onResize = () => {
    if (terminalId) send({ type: 'resize', terminalId, ...size() });
  };
  const finish = (code: number, message?: string) => {
    if (done) return;
    done = true;
    stdin.removeListener('data', onInput);
    process.removeListener('SIGWINCH', onResize);
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
    stdin.pause();
    if (message) process.stderr.write(`\r\n${message}\n`);
    const socket = ws;
    if (socket) {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.close(1000, 'client done');
      setTimeout(() => socket.terminate(), 1000).unref();
    }
    resolveRun(code);
  };

  const onMessage = (data: WebSocket.RawData) => {
    const parsed = safeParseJson(TerminalServerMessage, rawText(data));
    if (!parsed.ok || done) return;
    const message = parsed.value;
    switch (message.type) {
      case 'terminal_list':
        return;
      case 'created':
        if (message.requestId !== requestId) return;
        terminalId = message.terminalId;
        if (message.outputBuffer) stdout.write(message.outputBuffer);
        // Raw only once the shell exists: until then Ctrl-C still stops ffc the usual way.
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.on('data', onInput);
        stdin.resume();
        process.on('SIGWINCH', onResize);
        onResize();
        return;
      case 'output':
        if (message.terminalId === terminalId) stdout.write(message.data);
        return;
      case 'exit':
        // The shell ended as the user asked (exit, Ctrl-D): ffc did its job.
        if (message.terminalId === terminalId) finish(ExitCode.ok);
        return;
      case 'error': {
        if (terminalId === null || message.code === 'terminal_not_found') {
          const code = message.code === 'vm_not_found' ? ExitCode.notFound : ExitCode.service;
          finish(code, `ffc: ${message.message}`);
        } else {
          process.stderr.write(`\r\nffc: ${message.message}\r\n`);
        }
        return;
      }
    }
  };

  try {
    ws = await openSocket(client.wsUrl('/ws/vms/me/terminal'), client.credentials.apiKey, {
      message: onMessage,
      close: () => finish(ExitCode.service, 'ffc: the connection to your VM closed'),
    });
  } catch (err) {
    throw err instanceof CliError ? err : new CliError(ExitCode.service, errorText(err));
  }
  process.once('SIGTERM', () => finish(ExitCode.interrupted));
  if (!done) send({ type: 'create', requestId, ...size() });
  return finished;
}
