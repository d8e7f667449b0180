/**
 * Serves the built Vue dashboard (web/dist) with a fallback to index.html for client-side routes. When the
 * dashboard has not been built, a short page says how to build it instead of a bare 404.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

export const dashboardDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../web/dist');

export function dashboardRoutes(dir: string = dashboardDir): Router {
  const router = Router();
  const index = resolve(dir, 'index.html');
  if (existsSync(index)) {
    router.use(express.static(dir, { index: false, maxAge: '1h', immutable: false }));
    router.get(/^\/(?!api\/|ws\/).*/, (_req, res) => {
      res.setHeader('cache-control', 'no-cache');
      res.sendFile(index);
    });
  } else {
    router.get('/', (_req, res) => {
      res
        .type('html')
        .send(
          '<!doctype html><title>Factory Factory Cloud</title><h1>Factory Factory Cloud</h1>' +
            '<p>The dashboard is not built. Run <code>npm run build -w @factory-factory/web</code>.</p>',
        );
    });
  }
  return router;
}
