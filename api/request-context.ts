/**
 * Request ids and access logs. A caller-supplied x-request-id is kept (so a trace spans desktop, api and
 * worker) when it is a sane token; otherwise a fresh one is made. Every response echoes it.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../platform/logger.js';
import { redactCredentials } from './auth/redact.js';

const saneRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestContext(log: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.header('x-request-id');
    const requestId = incoming && saneRequestId.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // The path only (never the query string), and never a credential pasted into it.
      const path = redactCredentials(req.path);
      log.info({ requestId, method: req.method, path, status: res.statusCode, ms }, 'request');
    });
    next();
  };
}
