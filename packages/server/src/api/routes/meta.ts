import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constantTimeEqual } from '@cashwire/webhooks';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { readiness, type Readiness } from '../../delivery/heartbeat.js';
import type { Deps } from '../../payments/context.js';
import { getEvent, listEvents, resendEvent } from '../../payments/events/events.js';
import { authenticate } from '../auth.js';
import { DomainError, errorBody, errors } from '../errors.js';
import { EventsQuery, IdParams } from '../schemas.js';

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
