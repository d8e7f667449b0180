/** Reading the API key: hidden typing at a terminal, or all of stdin when it is piped. */
import { createInterface } from 'node:readline';
import { CliError, ExitCode } from './errors.js';

export async function readSecret(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return Buffer.concat(chunks).toString('utf8').trim();
  }
  process.stderr.write(question);
  const rl = createInterface({ input: stdin, terminal: true });
  // The key is a secret: typed characters are not echoed (readline echoes only through `output`).
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.once('line', (line) => resolve(line));
      rl.once('close', () => resolve(''));
      rl.once('SIGINT', () => reject(new CliError(ExitCode.interrupted, 'interrupted')));
    });
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
