/**
 * Webhook routes (Clerk's, Stripe's): POST endpoints a provider calls, authenticated by a signature over
 * the exact bytes it sent, not by our credentials. Signature checks need those bytes untouched, so these
 * routes are mounted with express.raw BEFORE express.json (which would consume and re-shape the body),
 * and each handler gets the raw Buffer and the headers. Parse the body only after the signature checks out.
 *
 * Each route is also described in /api/openapi.json (public, `security: []`): describeWebhookRoutes gives
 * route-table entries for the description only (api/app.ts never mounts them; the raw mount serves).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { MAX_MESSAGE_BYTES } from '@factory-factory/core/protocol';
import express, { type Express, type Request, type RequestHandler } from 'express';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { type ApiRoute, defineRoute, type RouteResponse } from '../routes/table.js';

export type WebhookInput = {
  /** The body exactly as received (empty Buffer when none was sent). */
  rawBody: Buffer;
  headers: IncomingHttpHeaders;
  req: Request;
  /** This request's id (request-context), for audit records and logs. */
  requestId: string;
};

export type WebhookRoute = {
  /** Express-style, relative to /api: `/webhooks/clerk`. Always POST. */
  path: string;
  /** Groups routes in the description. */
  tag: string;
  summary: string;
  description?: string;
  /** Documents the JSON the provider sends (for the description only: the handler parses it itself). */
  bodyDescription?: z.ZodType;
  /** By status code, as in the route table; errors (400 bad signature, …) carry ErrorBodySchema. */
  responses: Record<number, RouteResponse>;
  /** Verify the signature over rawBody first; throw ApiError(400, …) for a forged or stale one. */
  handle: (input: WebhookInput) => Promise<{ status: number; body: unknown }>;
};

function handlerOf(route: WebhookRoute): RequestHandler {
  return async (req, res) => {
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await route.handle({
      rawBody,
      headers: req.headers,
      req,
      requestId: String(res.locals.requestId),
    });
    res.status(answer.status).json(answer.body);
  };
}

/**
 * Mounts every webhook route on the app under /api with a raw body parser (any content type, capped like
 * JSON bodies). Call it before `app.use(express.json(...))`: the raw parser marks the body as read, so the
 * JSON parser leaves it alone. Errors go to the app's error handler like any route's.
 */
export function mountWebhookRoutes(app: Express, routes: readonly WebhookRoute[]): void {
  const seen = new Set<string>();
  for (const route of routes) {
    if (seen.has(route.path)) throw new Error(`webhook route ${route.path} mounted twice`);
    seen.add(route.path);
    app.post(
      `/api${route.path}`,
      express.raw({ type: () => true, limit: MAX_MESSAGE_BYTES }),
      handlerOf(route),
    );
  }
}

/** Route-table entries describing the webhook routes in /api/openapi.json (public, POST); never mounted. */
export function describeWebhookRoutes(routes: readonly WebhookRoute[]): ApiRoute[] {
  return routes.map((route) =>
    defineRoute({
      method: 'post',
      path: route.path,
      tag: route.tag,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      auth: false,
      ...(route.bodyDescription ? { body: route.bodyDescription } : {}),
      responses: route.responses,
      // Never mounted: mountWebhookRoutes serves this path.
      handle: async () => {
        throw new ApiError(500, 'internal', `webhook ${route.path} reached the JSON route table`);
      },
    }),
  );
}
