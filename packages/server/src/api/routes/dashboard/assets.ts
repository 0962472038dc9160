/**
 * The dashboard's scripts, served from this server under /dashboard/assets/ (no CDN: the dashboard works offline, and
 * the Content-Security-Policy allows scripts from this origin only). Libraries come from node_modules, at the version
 * package-lock.json pins: htmx (live updates of the events list), its SSE extension, Chart.js (the charts). Cashwire's
 * own scripts are plain files in packages/server/assets/dashboard/, as is its icon (icon.svg, which the dashboard's and
 * the landing page's <link rel="icon"> name, so that Chromium does not ask for /favicon.ico, a JSON 404). Each is read
 * once, on first request.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { errorPage, HIDE } from './kit.js';

const require = createRequire(import.meta.url);
/** packages/server/assets/dashboard, from src/api/routes/dashboard or dist/api/routes/dashboard alike. */
export const OWN_ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../assets/dashboard');
const fromPackage = (pkg: string, file: string) => () => path.join(path.dirname(require.resolve(pkg)), file);

const FILES: Record<string, () => string> = {
  'htmx.min.js': fromPackage('htmx.org', 'htmx.min.js'),
  'sse.js': fromPackage('htmx-ext-sse', 'sse.js'),
  'chart.umd.min.js': fromPackage('chart.js', 'chart.umd.min.js'),
};

const cache = new Map<string, Promise<Buffer>>();

function load(name: string): Promise<Buffer> | undefined {
  let file: string | undefined;
  if (Object.hasOwn(FILES, name)) file = FILES[name]!();
  else if (/^[a-z][a-z0-9-]*\.js$/.test(name) || name === 'icon.svg') file = path.join(OWN_ASSETS, name);
  if (!file) return undefined;
  let p = cache.get(name);
  if (!p) {
    p = readFile(file);
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}

export function assetRoutes(app: FastifyInstance): void {
  app.get('/dashboard/assets/:name', HIDE, async (req, reply) => {
    const name = String((req.params as { name?: unknown }).name ?? '');
    const body = await load(name)?.catch(() => undefined);
    if (!body) return errorPage(reply, 404, 'Not found', 'There is no such dashboard file.');
    return reply
      .header('content-type', name.endsWith('.svg') ? 'image/svg+xml' : 'text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .header('x-content-type-options', 'nosniff')
      .send(body);
  });
}
