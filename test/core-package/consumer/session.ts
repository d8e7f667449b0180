/**
 * A stranger's program, copied into a scratch project by ../package.test.ts and compiled there against the
 * published `.d.ts`: it drives the Claude Code CLI through the package's public session API and prints the
 * answer as it streams. Run with plain `node`: argv is the CLI's path, the CLI's environment as JSON, the
 * working directory and the prompt.
 */
import { type SessionEvent, safeParseJson } from '@factory-factory/core/protocol';
import { ClaudeSession } from '@factory-factory/core/session';
// The consumer's own zod: the package takes it as a peer, so these schemas and core's are one copy.
import { z } from 'zod';

const TextDelta = z.object({
  type: z.literal('stream_event'),
  event: z.object({
    type: z.literal('content_block_delta'),
    delta: z.object({ type: z.literal('text_delta'), text: z.string() }),
  }),
});
const TurnResult = z.object({
  type: z.literal('result'),
  subtype: z.string(),
  result: z.string().optional(),
});

const [claudeBin, envJson, cwd, prompt] = process.argv.slice(2);
if (!claudeBin || !envJson || !cwd || !prompt) {
  process.stderr.write('usage: session.js <claude-bin> <env-json> <cwd> <prompt>\n');
  process.exit(2);
}
const env = safeParseJson(z.record(z.string(), z.string()), envJson);
if (!env.ok) {
  process.stderr.write(`bad environment: ${env.error.message}\n`);
  process.exit(2);
}

const session = new ClaudeSession({
  id: 'consumer-session',
  cwd,
  claudeBin,
  env: env.value,
  permissionMode: 'default',
  includePartialMessages: true,
});

const ended = new Promise<z.output<typeof TurnResult>>((resolve, reject) => {
  session.subscribe((event: SessionEvent) => {
    const payload = event.payload;
    if (payload.type === 'session_error') reject(new Error(`session_error: ${JSON.stringify(payload)}`));
    if (payload.type !== 'claude_message') return;
    const delta = TextDelta.safeParse(payload.data);
    if (delta.success) process.stdout.write(`stream: ${delta.data.event.delta.text}\n`);
    const result = TurnResult.safeParse(payload.data);
    if (result.success) resolve(result.data);
  });
});

process.stdout.write(`send: ${prompt}\n`);
const sent = session.send({ text: prompt });
process.stdout.write(`message ${sent.messageId}: ${sent.state}\n`);
const watchdog = setTimeout(() => {
  process.stderr.write('no result within 45 s\n');
  process.exit(1);
}, 45_000);
try {
  const result = await ended;
  process.stdout.write(`result: ${result.subtype}: ${result.result ?? ''}\n`);
} finally {
  clearTimeout(watchdog);
  await session.close();
}
process.stdout.write(`closed: process ${session.snapshot().sessionRuntime.processState}\n`);
