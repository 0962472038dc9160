/**
 * GET /webhook/stats: the dashboard charts' series as JSON for a key (the CLI, scripts, tests): attempts per bucket by
 * outcome, attempt latency p50/p99 and queue depth, for the key's environment, overall or for one endpoint
 * (delivery/stats.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import { loadEndpoint } from '../../delivery/endpoints.js';
import { deliveryStats } from '../../delivery/stats.js';
import type { Deps } from '../../payments/context.js';
import { keyAuth } from '../auth.js';
import { errorsOf } from '../schemas.js';

const StatsQuery = Type.Object({
  window: Type.Optional(Type.Union([Type.Literal('1h'), Type.Literal('6h'), Type.Literal('24h')], { description: '1h (1-minute buckets, the default), 6h (5 minutes) or 24h (15 minutes)' })),
  endpoint_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "one of this environment's endpoints; unset: all deliveries" })),
});

export const statsRoutes = (deps: Deps): FastifyPluginAsync => async (app) => {
  const auth = keyAuth(deps);
  app.get<{ Querystring: Static<typeof StatsQuery> }>('/webhook/stats', {
    schema: {
      querystring: StatsQuery,
      response: errorsOf(400, 401, 404),
      summary: 'Delivery statistics of this environment over a window ending now: attempts per bucket by outcome, attempt latency p50/p99 (ms), ' +
        'queue depth (pending and due, sampled each minute; null where not sampled). 404 endpoint_not_found',
    },
    onRequest: auth('read'),
  }, async (req) => {
    const endpointId = req.query.endpoint_id;
    if (endpointId !== undefined) await loadEndpoint(deps.db, req.caller, endpointId);
    return deliveryStats(deps.db, { operatorId: req.caller.operatorId, environment: req.caller.environment, ...(endpointId !== undefined ? { endpointId } : {}) },
      req.query.window ?? '1h', deps.clock.now());
  });
};
