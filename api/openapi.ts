/**
 * GET /api/openapi.json: the REST API's description, generated (zod-openapi) from the route table that also
 * mounts and validates every route, so it cannot drift from what the api does. Built once per app.
 */
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { ErrorBodySchema } from './contract/workspaces.js';
import type { ApiRoute } from './routes/table.js';

export const OPENAPI_PATH = '/openapi.json';

/** `/workspaces/:id/sessions/:sid` → `/api/workspaces/{id}/sessions/{sid}` */
export function openApiPath(expressPath: string): string {
  return `/api${expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`;
}

function operationOf(route: ApiRoute): ZodOpenApiOperationObject {
  const responses: ZodOpenApiOperationObject['responses'] = {};
  for (const [status, response] of Object.entries(route.responses)) {
    responses[status as `2${string}`] = {
      description: response.description,
      ...(response.schema ? { content: { 'application/json': { schema: response.schema } } } : {}),
    };
  }
  if (route.auth) {
    responses['401'] = {
      description: 'missing or invalid credentials',
      content: { 'application/json': { schema: ErrorBodySchema } },
    };
  }
  return {
    operationId: `${route.method}${route.path.replace(/[/:]+([A-Za-z0-9_])/g, (_m, c: string) => c.toUpperCase())}`,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.auth ? {} : { security: [] }),
    ...(route.params || route.query
      ? {
          requestParams: {
            ...(route.params ? { path: route.params } : {}),
            ...(route.query ? { query: route.query } : {}),
          },
        }
      : {}),
    ...(route.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } }
      : {}),
    responses,
  };
}

export function openApiDocument(routes: readonly ApiRoute[]): ReturnType<typeof createDocument> {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method]: operationOf(route) };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Factory Factory Cloud API',
      version: '1',
      description:
        'Cloud workspaces, their Claude sessions and the per-user VM. Every error is ' +
        '`{"error": {"code", "message"}}`. Live sessions stream over WebSocket at ' +
        '/ws/workspaces/{id}/sessions/{sid}?after={seq} (frames in api/contract/session-relay.ts), not described here.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API key' },
      },
    },
    security: [{ bearer: [] }],
    paths,
  });
}
