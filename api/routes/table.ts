/**
 * The api's REST routes as one table: each entry is what express mounts, what validates the request's
 * params, query and body, and what /api/openapi.json describes (api/openapi.ts). A route exists in the
 * description because it is mounted from the same entry, never because someone wrote it down twice.
 *
 * Handlers get parsed input and the caller's principal, and answer `{status, body}`; errors are thrown as
 * ApiError (the app's error handler turns them into `{error: {code, message}}`).
 */
import { type Request, type RequestHandler, Router } from 'express';
import type { z } from 'zod';
import { principalOf } from '../auth/middleware.js';
import type { Principal } from '../auth/principal.js';
import { ErrorBodySchema } from '../contract/workspaces.js';
import { ApiError } from '../errors.js';

export type HttpMethod = 'get' | 'post' | 'delete';

type AnyObjectSchema = z.ZodObject<z.ZodRawShape>;

export type RouteResponse = {
  description: string;
  /** Omitted for error answers: they all carry ErrorBodySchema. */
  schema?: z.ZodType;
};

export type RouteInput<P, Q, B> = {
  params: P;
  query: Q;
  body: B;
  /** Present on authenticated routes; public ones get null. */
  principal: Principal | null;
  req: Request;
};

export type ApiRoute = {
  method: HttpMethod;
  /** Express-style, relative to /api: `/workspaces/:id`. */
  path: string;
  /** Groups routes in the description. */
  tag: string;
  summary: string;
  description?: string;
  /** False for the few routes anyone may call (the API description itself). */
  auth: boolean;
  params?: AnyObjectSchema;
  query?: AnyObjectSchema;
  body?: z.ZodType;
  /** By status code; the first 2xx is what the handler answers on success. */
  responses: Record<number, RouteResponse>;
  handle: (input: RouteInput<unknown, unknown, unknown>) => Promise<{ status: number; body: unknown }>;
};

/**
 * Typed construction of one entry: the handler sees the parsed types of its schemas. (The table itself is
 * untyped over inputs, which is why handlers go through here.)
 */
export function defineRoute<
  P extends AnyObjectSchema | undefined = undefined,
  Q extends AnyObjectSchema | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(
  route: Omit<ApiRoute, 'params' | 'query' | 'body' | 'handle'> & {
    params?: P;
    query?: Q;
    body?: B;
    handle: (
      input: RouteInput<
        P extends z.ZodType ? z.output<P> : Record<string, never>,
        Q extends z.ZodType ? z.output<Q> : Record<string, never>,
        B extends z.ZodType ? z.output<B> : undefined
      >,
    ) => Promise<{ status: number; body: unknown }>;
  },
): ApiRoute {
  return route as unknown as ApiRoute;
}

/** The caller's principal on an authenticated route (requireAuth ran before it). */
export function callerOf(input: { principal: Principal | null }): Principal {
  if (!input.principal) throw new ApiError(401, 'unauthorized', 'not authenticated');
  return input.principal;
}

/** Error answers of a route by status, each carrying ErrorBodySchema: `errors({404: 'no such thing'})`. */
export const errors = (statuses: Record<number, string>): Record<number, RouteResponse> =>
  Object.fromEntries(
    Object.entries(statuses).map(([status, description]) => [
      status,
      { description, schema: ErrorBodySchema },
    ]),
  );

/** Who did it, for the audit log: the key when a key was used, else the user. */
export const actorOf = (principal: Principal): string =>
  principal.via === 'api-key' && principal.keyId ? `api-key:${principal.keyId}` : `user:${principal.userId}`;

/** This request's id (request-context), for audit records. */
export function requestIdOf(input: Pick<RouteInput<unknown, unknown, unknown>, 'req'>): string | undefined {
  const id: unknown = input.req.res?.locals.requestId;
  return typeof id === 'string' ? id : undefined;
}

function invalid(where: string, error: z.ZodError): ApiError {
  const issue = error.issues[0];
  const path = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return new ApiError(400, 'bad_request', `invalid ${where}: ${path}${issue?.message ?? 'not accepted'}`);
}

function parsePart(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return {};
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(where, parsed.error);
  return parsed.data;
}

function handlerOf(route: ApiRoute): RequestHandler {
  return async (req, res) => {
    const params = parsePart(route.params, req.params, 'path');
    const query = parsePart(route.query, req.query, 'query');
    // A route without a body schema ignores whatever was sent; one with a schema gets {} for an empty body.
    const body = route.body ? parsePart(route.body, req.body ?? {}, 'body') : undefined;
    const principal = route.auth ? principalOf(res.locals) : null;
    const answer = await route.handle({ params, query, body, principal, req });
    res.status(answer.status).json(answer.body);
  };
}

/** A router with the table's routes of one kind (public or authenticated), in table order. */
export function mountRoutes(routes: readonly ApiRoute[], which: { auth: boolean }): Router {
  const router = Router();
  for (const route of routes) {
    if (route.auth !== which.auth) continue;
    router[route.method](route.path, handlerOf(route));
  }
  return router;
}
