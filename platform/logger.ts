/**
 * Structured JSON logs (pino) for api and worker. Secrets are redacted by key wherever they appear,
 * so a careless `log.info({ req })` cannot leak a token.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

const redactedKeys = [
  'authorization',
  'cookie',
  'secret',
  'token',
  'apiKey',
  'password',
  'agentSecret',
  'stripeSecretKey',
];

export function createLogger(name: string, level: string): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: redactedKeys.flatMap((key) => [
        key,
        `*.${key}`,
        `*.*.${key}`,
        `headers.${key}`,
        `req.headers.${key}`,
      ]),
      censor: '[redacted]',
    },
  });
}
