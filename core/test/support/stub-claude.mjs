// A stand-in for the Claude CLI in tests of what the real one will not do on demand: print garbage,
// print a line far over the size cap, or go silent in the middle of a turn. It speaks just enough of
// stream-json: it answers control requests and turns user lines into a scripted reaction.
//   STUB_CLAUDE_MODE=garbage  each turn: a non-JSON line, a truncated line, a 2 MB line, then a normal turn
//   STUB_CLAUDE_MODE=silent   takes user lines and never answers them (a hung or very long turn)
//   STUB_CLAUDE_MODE=no-session-id  each turn: an assistant line and a result, neither with a session_id
import { createInterface } from 'node:readline';

const mode = process.env.STUB_CLAUDE_MODE ?? 'garbage';
const sessionId = 'stub-session-0001';
const write = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const message = JSON.parse(line);
  if (message.type === 'control_request') {
    write({
      type: 'control_response',
      response: { subtype: 'success', request_id: message.request_id, response: {} },
    });
    return;
  }
  if (message.type !== 'user' || mode === 'silent') return;
  if (mode === 'no-session-id') {
    write({ type: 'assistant', message: { role: 'assistant', content: [{ type: 'text', text: 'no id' }] } });
    write({ type: 'result', subtype: 'success', is_error: false, result: 'no id', total_cost_usd: 0 });
    return;
  }
  process.stdout.write('this line is not JSON\n');
  process.stdout.write('{"type":"assistant","message":\n');
  process.stdout.write(`{"type":"assistant","padding":"${'x'.repeat(2 * 1024 * 1024)}"}\n`);
  write({ type: 'system', subtype: 'init', session_id: sessionId });
  write({
    type: 'assistant',
    message: { role: 'assistant', content: [{ type: 'text', text: 'still here' }] },
    session_id: sessionId,
  });
  write({
    type: 'result',
    subtype: 'success',
    is_error: false,
    session_id: sessionId,
    total_cost_usd: 0,
    usage: { input_tokens: 1, output_tokens: 1 },
    result: 'still here',
  });
});
lines.on('close', () => process.exit(0));
