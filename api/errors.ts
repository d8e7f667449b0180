/**
 * Every error the api sends is `{ error: { code, message } }` with a message the caller can act on; a
 * limit's error also names the limit (`limit`), and a rate limit's says when to try again (Retry-After).
 * Routes throw ApiError; anything else becomes a 500 whose details stay in the log.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../platform/logger.js';
import { redactCredentials } from './auth/redact.js';

/** A limit that was reached: which, how much is used, the most allowed, and where to get more. */
export type LimitDetail = { name: string; used: number; max: number; upgradeUrl: string };

export type ApiErrorExtra = {
  /** Sent as Retry-After (whole seconds): when the same request may succeed. */
  retryAfterSeconds?: number;
  limit?: LimitDetail;
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: ApiErrorExtra = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type ErrorBody = { error: { code: string; message: string; limit?: LimitDetail } };

export const errorBody = (code: string, message: string, limit?: LimitDetail): ErrorBody => ({
  error: { code, message, ...(limit ? { limit } : {}) },
});

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/** Errors raised by express.json() carry a `type`; translate the ones a client can cause. */
function bodyParserError(err: unknown): ApiError | null {
  if (typeof err !== 'object' || err === null || !('type' in err)) return null;
  switch ((err as { type: unknown }).type) {
    case 'entity.parse.failed':
      return new ApiError(400, 'malformed_json', 'request body is not valid JSON');
    case 'entity.too.large':
      return new ApiError(413, 'payload_too_large', 'request body exceeds the 1 MB limit');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_encoding', 'request body encoding is not supported');
    default:
      return null;
  }
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const apiError = err instanceof ApiError ? err : bodyParserError(err);
    if (apiError) {
      const { retryAfterSeconds, limit } = apiError.extra;
      if (retryAfterSeconds !== undefined)
        res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterSeconds))));
      res.status(apiError.status).json(errorBody(apiError.code, apiError.message, limit));
      return;
    }
    log.error({ err, requestId: res.locals.requestId, path: redactCredentials(req.path) }, 'unhandled error');
    res
      .status(500)
      .json(errorBody('internal', `internal error (request id ${String(res.locals.requestId)})`));
  };
}
