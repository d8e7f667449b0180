/**
 * Every error the api sends is `{ error: { code, message } }` with a message the caller can act on.
 * Routes throw ApiError; anything else becomes a 500 whose details stay in the log.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../platform/logger.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type ErrorBody = { error: { code: string; message: string } };

export const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } });

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
      res.status(apiError.status).json(errorBody(apiError.code, apiError.message));
      return;
    }
    log.error({ err, requestId: res.locals.requestId, path: req.path }, 'unhandled error');
    res
      .status(500)
      .json(errorBody('internal', `internal error (request id ${String(res.locals.requestId)})`));
  };
}
