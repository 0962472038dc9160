import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constantTimeEqual } from '@cashwire/webhooks';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { readiness, type Readiness } from '../../delivery/heartbeat.js';
import type { Deps } from '../../payments/context.js';
import { getEvent, listEvents, resendEvent } from '../../payments/events/events.js';
import { authenticate } from '../auth.js';
import { DomainError, errorBody, errors } from '../errors.js';
import { EventsQuery, IdParams } from '../schemas.js';
import { ICON } from './dashboard/kit.js';
import { esc } from './hosted-brand.js';

/** Where the API reference is served (README: "The API"). */
export const DOCS_PATH = '/docs';

/**
 * The API reference's page and assets (Swagger UI, from @fastify/swagger-ui's own files): everything from this
 * server, nothing from a CDN, so it works offline. Swagger UI sets inline styles, hence style-src 'unsafe-inline'.
 */
const DOCS_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/** The landing page's look: that of the hosted pages (routes/pay.ts), wider. */
const HOME_STYLE = `
 *{box-sizing:border-box}
 body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f6fb;margin:0;display:flex;justify-content:center;padding:48px 16px;color:#14213d}
 main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001;max-width:720px;width:100%;padding:28px}
 h1{font-size:1.3rem;margin:0 0 4px} h2{font-size:1rem;margin:24px 0 8px} p{margin:8px 0 0} .muted{color:#5c677d;font-size:.9rem}
 ul{margin:8px 0 0;padding-left:20px} li{margin:4px 0} a{color:#1d4ed8} code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em}
 pre{background:#f4f6fb;border-radius:8px;padding:12px;overflow-x:auto;font-size:.8rem;line-height:1.5;margin:8px 0 0}
 .soon{color:#5c677d}`;

/** GET /: what a newcomer who opens http://localhost:4000 needs (links, and the first commands of the README). */
function homePage(base: string): string {
  const b = esc(base);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cashwire</title><link rel="icon" type="image/svg+xml" href="${ICON}"><style>${HOME_STYLE}</style></head>
<body><main>
 <h1>Cashwire</h1>
 <p class="muted">A self-hostable, Push Cash-compatible payments API with webhook delivery. This server is running.</p>
 <h2>Links</h2>
 <ul>
  <li><a href="${DOCS_PATH}" data-testid="docs">API reference</a> (rendered from <a href="/openapi.json">/openapi.json</a>, the OpenAPI 3.1 document)</li>
  <li><a href="/healthz">/healthz</a>: the database answers · <a href="/readyz">/readyz</a>: deliveries are flowing</li>
  <li><a href="/metrics">/metrics</a>: Prometheus metrics (a bearer token only when <code>CASHWIRE_METRICS_TOKEN</code> is set)</li>
  <li><a href="/dashboard" data-testid="dashboard">Dashboard</a>: events, deliveries and every attempt, endpoints, charts, the sandbox clock (sign in with an API key)</li>
 </ul>
 <h2>Quick start</h2>
 <p>With the sandbox key <code>npm start</code> printed (lost it? <code>npx cashwire operator list</code>, then <code>npx cashwire key create &lt;operator id&gt;</code>):</p>
 <pre>export CW=${b} KEY=&lt;your sandbox key&gt;

# 1. Check the key: answers the operator's name.
curl -s -X POST $CW/keys/verify -H "Authorization: Bearer $KEY"

# 2. Register a user.
curl -s -X POST $CW/user -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{
  "name": {"first": "Ada", "last": "Lovelace"}, "email": "ada@example.com", "phone_number": "+12125550123",
  "address": {"address_line_1": "1 Main St", "locality": "Albany", "administrative_area": "NY", "postal_code": "12207", "country": "US"},
  "date_of_birth": "1990-12-10", "government_id": {"type": "drivers_license", "last4": "1234", "state": "NY"},
  "identity_verified": true}'

# 3. Create a deposit intent for that user, and open its url to approve it.
curl -s -X POST $CW/intent -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
  -d '{"direction": "cash_in", "user_id": "user_…", "amount": 5000, "currency": "USD"}'

# 4. Every state change is an event.
curl -s "$CW/events" -H "Authorization: Bearer $KEY"</pre>
 <p class="muted">The README's walkthrough goes on from here (webhooks, endpoints, the CLI, local webhook development).</p>
</main></body></html>`;
}

let script: Promise<string | undefined> | undefined;
function buttonScript(): Promise<string | undefined> {
  script ??= (async () => {
    try {
      return await readFile(createRequire(import.meta.url).resolve('@cashwire/button'), 'utf8');
    } catch {
      return undefined;
    }
  })();
  return script;
}

export const metaRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  // The landing page. Every other unknown path still answers the JSON 404 (route_not_found).
  app.get('/', { schema: { hide: true } }, async (_req, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .header('X-Content-Type-Options', 'nosniff')
      .send(homePage(deps.config.publicUrl));
  });

  // The API reference: Swagger UI over the OpenAPI document (its /docs/json is the document /openapi.json serves).
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    staticCSP: DOCS_CSP,
    theme: { title: 'Cashwire API reference' },
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: false },
    uiHooks: {
      // Swagger UI's own redirect of /docs/static/index.html keeps a query string and then points at itself (a loop).
      onRequest: async (req, reply) => {
        if (req.url.split('?')[0] === `${DOCS_PATH}/static/index.html`) return reply.redirect(`${DOCS_PATH}/`);
      },
    },
  });

  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await deps.db.query('SELECT 1');
      return { status: 'ok' };
    } catch {
      return reply.status(503).send({ status: 'unavailable', error: { code: 'database_unavailable', message: 'PostgreSQL is not reachable' } });
    }
  });

  // Readiness: are deliveries flowing? The database answers, some worker beat recently, and the oldest due delivery has
  // not waited past the threshold. It judges the whole system (every worker on this database), not this process.
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const now = deps.clock.now();
    let r: Readiness;
    try {
      r = await readiness(deps.db, now, { maxLagMs: deps.config.readyMaxLagMs, workerMs: deps.config.readyWorkerMs });
    } catch (err) {
      deps.log.debug({ err }, 'readyz: the readiness query failed');
      return reply.status(503).send({ status: 'not_ready', checks: { database: { ok: false } }, ...errorBody(new DomainError('database_unavailable')) });
    }
    const checks = { database: { ok: true }, ...r.checks };
    if (r.failing === null) return { status: 'ready', checks };
    const message = r.failing === 'no_worker'
      ? `no delivery worker has recorded a heartbeat in the last ${r.checks.workers.window_ms} ms`
      : `the oldest due delivery has waited ${r.checks.delivery_lag.lag_ms} ms, more than ${r.checks.delivery_lag.max_lag_ms} ms`;
    return reply.status(503).send({ status: 'not_ready', checks, ...errorBody(new DomainError(r.failing, message)) });
  });

  // Prometheus scrape. With CASHWIRE_METRICS_TOKEN set, it needs `Authorization: Bearer <that token>`.
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    const token = process.env.CASHWIRE_METRICS_TOKEN;
    if (token && !constantTimeEqual(req.headers.authorization ?? '', `Bearer ${token}`)) return reply.status(401).send(errorBody(errors.unauthorized('send Authorization: Bearer <CASHWIRE_METRICS_TOKEN>')));
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });

  // The PushJS-compatible button script (packages/button), loaded by merchants' pages with a script tag.
  app.get('/sdk/push.umd.js', { schema: { hide: true } }, async (_req, reply) => {
    const js = await buttonScript();
    if (!js) return reply.status(404).send(errorBody(errors.notFound('script', 'push.umd.js')));
    return reply
      .type('application/javascript; charset=utf-8')
      .header('Cache-Control', 'public, max-age=300')
      .header('Access-Control-Allow-Origin', '*')
      .header('Cross-Origin-Resource-Policy', 'cross-origin')
      .send(js);
  });

  app.post('/keys/verify', { schema: { summary: 'Check an API key; returns the operator name' }, onRequest: (req, reply) => authenticate(deps, req, reply, 'read') }, async (req) => {
    return { name: req.caller.operatorName, environment: req.caller.environment };
  });

  const read = async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, 'read');

  app.get<{ Querystring: Static<typeof EventsQuery> }>('/events', { schema: { querystring: EventsQuery, summary: 'List events, newest first' }, onRequest: read }, async (req) => {
    return listEvents(deps, req.caller, { ...req.query, limit: req.query.limit ? Number(req.query.limit) : undefined });
  });

  app.get<{ Params: Static<typeof IdParams> }>('/events/:id', { schema: { params: IdParams, summary: 'Get one event with its deliveries and their attempts' }, onRequest: read }, async (req) => {
    return getEvent(deps, req.caller, req.params.id);
  });

  app.post<{ Params: Static<typeof IdParams> }>('/events/:id/resend', { schema: { params: IdParams, summary: 'Send an event again to its destinations, with the same event id' }, onRequest: read }, async (req) => {
    return resendEvent(deps, req.caller, req.params.id);
  });
};
