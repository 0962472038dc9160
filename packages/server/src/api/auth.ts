import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, Deps } from '../payments/context.js';
import { hashKey } from '../payments/operators.js';
import type { OperatorSettings } from '../store/rows.js';
import { errors } from './errors.js';

export type RequestClass = 'create' | 'read';
const WINDOW_S = 3600;

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
}

/**
 * Authenticates the key and counts the request in one statement. The counters live in PostgreSQL, so the limit
 * holds across every API process. The window slides: the previous hour's count is weighted by how much of it
 * still overlaps the last 3600 s (the two-window approximation).
 */
export async function authenticate(deps: Deps, req: FastifyRequest, reply: FastifyReply, cls: RequestClass): Promise<void> {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) throw errors.unauthorized();
  const nowS = Math.floor(deps.clock.now().getTime() / 1000);
  const windowStart = nowS - (nowS % WINDOW_S);
  const { rows } = await deps.db.query<{
    id: string; operator_id: string; environment: 'sandbox' | 'production'; name: string; settings: OperatorSettings; current: number; previous: number | null;
  }>({
    // Named: prepared once per connection, planned once. This runs on every request.
    name: 'cw_auth',
    text: `WITH k AS (
       SELECT k.id, k.operator_id, k.environment, o.name, o.settings
         FROM api_keys k JOIN operators o ON o.id = k.operator_id
        WHERE k.key_hash = $1 AND k.revoked_at IS NULL
     ), cur AS (
       INSERT INTO rate_counters (key_id, class, window_start, count)
       SELECT id, $2, $3, 1 FROM k
       ON CONFLICT (key_id, class, window_start) DO UPDATE SET count = rate_counters.count + 1
       RETURNING count
     )
     SELECT k.*, (SELECT count FROM cur) AS current,
            (SELECT p.count FROM rate_counters p WHERE p.key_id = k.id AND p.class = $2 AND p.window_start = $3 - ${WINDOW_S}) AS previous
       FROM k`,
    values: [hashKey(m[1]!), cls, windowStart],
  });
  const k = rows[0];
  if (!k) throw errors.unauthorized();
  const limit = k.settings.rate_limits?.[cls] ?? deps.config.rateLimits[cls];
  const elapsed = (nowS - windowStart) / WINDOW_S;
  const used = Math.floor((k.previous ?? 0) * (1 - elapsed)) + k.current;
  const reset = windowStart + WINDOW_S;
  reply.header('X-RateLimit-Limit', limit);
  reply.header('X-RateLimit-Remaining', Math.max(0, limit - used));
  reply.header('X-RateLimit-Reset', reset);
  if (used > limit) {
    // A refused request does not count, so a client that keeps retrying recovers as the window slides.
    await deps.db.query('UPDATE rate_counters SET count = count - 1 WHERE key_id = $1 AND class = $2 AND window_start = $3', [k.id, cls, windowStart]);
    reply.header('X-RateLimit-Remaining', 0);
    reply.header('Retry-After', reset - nowS);
    throw errors.rateLimited(reset - nowS);
  }
  req.caller = { keyId: k.id, operatorId: k.operator_id, operatorName: k.name, environment: k.environment, settings: k.settings };
}
