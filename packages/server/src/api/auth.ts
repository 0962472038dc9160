import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Caller, Deps } from '../payments/context.js';
import { hashKey } from '../payments/operators/operators.js';
import type { OperatorSettings } from '../store/rows.js';
import { errors } from './errors.js';

export type RequestClass = 'create' | 'read';
/**
 * The budget a request is counted in: its class, or `cli` for every request of the CLI (`X-Cashwire-Client: cli`,
 * cli/remote.ts), so that a developer's `listen` and `trigger` never use up the backend's budget, and the reverse.
 */
export type Budget = RequestClass | 'cli';
/** The CLI's requests per key per sliding hour, unless CASHWIRE_RATE_LIMIT_CLI or the operator's `rate_limits.cli` says otherwise. */
export const DEFAULT_CLI_RATE_LIMIT = 1000;
const WINDOW_S = 3600;

/** The budget of a request of class `cls`: the CLI's own when the request says it comes from the CLI. */
export function budgetOf(req: FastifyRequest, cls: RequestClass): Budget {
  const client = req.headers['x-cashwire-client'];
  return typeof client === 'string' && client.trim().toLowerCase() === 'cli' ? 'cli' : cls;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
}

/** A key as the last look at the database found it, with this process's requests not yet counted there. */
interface CachedKey {
  id: string;
  operator_id: string;
  environment: 'sandbox' | 'production';
  name: string;
  settings: OperatorSettings;
  cls: Budget;
  /** The counts of the hour window `windowStart` and of the one before, as the database had them at `fetchedAt`. */
  windowStart: number;
  current: number;
  previous: number | null;
  /** Requests of this process in `windowStart` counted since (not yet in the database). */
  pending: number;
  /** performance.now() of the last look. */
  fetchedAt: number;
}

interface KeyCache {
  keys: Map<string, CachedKey>;
  timer?: NodeJS.Timeout;
}
const MAX_CACHED_KEYS = 10_000;
const caches = new WeakMap<Deps, KeyCache>();

function cacheOf(deps: Deps): KeyCache {
  let c = caches.get(deps);
  if (!c) {
    c = { keys: new Map() };
    caches.set(deps, c);
  }
  return c;
}

/** Forgets what this process cached of an operator's keys (its settings changed here). */
export function forgetOperatorKeys(deps: Deps, operatorId: string): void {
  const c = caches.get(deps);
  if (!c) return;
  for (const [k, e] of c.keys) if (e.operator_id === operatorId) c.keys.delete(k);
}

const AUTH_SQL = `WITH k AS (
       SELECT k.id, k.operator_id, k.environment, o.name, o.settings
         FROM api_keys k JOIN operators o ON o.id = k.operator_id
        WHERE k.key_hash = $1 AND k.revoked_at IS NULL
     ), cur AS (
       INSERT INTO rate_counters (key_id, class, window_start, count)
       SELECT id, $2, $3, $4 FROM k
       ON CONFLICT (key_id, class, window_start) DO UPDATE SET count = rate_counters.count + $4
       RETURNING count
     )
     SELECT k.*, (SELECT count FROM cur) AS current,
            (SELECT p.count FROM rate_counters p WHERE p.key_id = k.id AND p.class = $2 AND p.window_start = $3 - ${WINDOW_S}) AS previous
       FROM k`;

/** Adds `n` requests to a key's counter of one window (what this process counted without the database). */
function addCount(deps: Deps, keyId: string, cls: Budget, windowStart: number, n: number): Promise<unknown> {
  return deps.db.query(
    `INSERT INTO rate_counters (key_id, class, window_start, count) VALUES ($1, $2, $3, $4)
     ON CONFLICT (key_id, class, window_start) DO UPDATE SET count = rate_counters.count + $4`,
    [keyId, cls, windowStart, n],
  );
}

/** Every `ttl`, the counts of keys that went quiet are written (the next request of a busy key writes its own). */
function startFlushing(deps: Deps, c: KeyCache, ttl: number): void {
  if (c.timer) return;
  c.timer = setInterval(() => {
    const now = performance.now();
    for (const e of c.keys.values()) {
      if (e.pending === 0 || now - e.fetchedAt <= ttl) continue;
      const n = e.pending;
      e.pending = 0;
      e.current += n;
      addCount(deps, e.id, e.cls, e.windowStart, n).catch(() => {
        e.pending += n; // the next flush tries again
        e.current -= n;
      });
    }
  }, ttl);
  c.timer.unref();
}

/**
 * Authenticates the key and counts the request, in the budget of its class (`create` or `read`), or in the CLI's own
 * (`cli`) when it says it comes from the CLI (budgetOf). The counters live in PostgreSQL, so the limit holds across every
 * API process. The window slides: the previous hour's count is weighted by how much of it still overlaps the last
 * 3600 s (the two-window approximation).
 *
 * A key seen in the last `authCacheMs` (CASHWIRE_AUTH_CACHE_MS, default 1 s) is not looked up again: the request is
 * counted in this process and the count written with the next look (or by the flush of quiet keys). That statement was
 * the largest part of a request's database time (without it POST /intent with a key went from 3,979 to 6,657/s).
 * The price: a key revoked, or settings changed, by another process (the CLI) take effect within that time; settings
 * changed through this process's API take effect at once. Across several API processes a limit can be exceeded by
 * what the others counted in the last `authCacheMs`, and only while more than a tenth of the limit is left (closer to
 * it, every request is looked up and counted in the database again). 0 turns the cache off: every request is looked
 * up and counted in the database.
 */
export async function authenticate(deps: Deps, req: FastifyRequest, reply: FastifyReply, requestClass: RequestClass): Promise<void> {
  const cls = budgetOf(req, requestClass);
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) throw errors.unauthorized();
  const nowS = Math.floor(deps.clock.now().getTime() / 1000);
  const windowStart = nowS - (nowS % WINDOW_S);
  const ttl = deps.config.authCacheMs ?? 0;
  const hash = hashKey(m[1]!);
  const ck = `${cls}:${hash}`;
  const cache = ttl > 0 ? cacheOf(deps) : undefined;
  const real = performance.now();
  let k = cache?.keys.get(ck);
  let fromCache = false;
  const elapsed = (nowS - windowStart) / WINDOW_S;
  const limitOf = (x: CachedKey) => x.settings.rate_limits?.[cls] ?? deps.config.rateLimits[cls] ?? DEFAULT_CLI_RATE_LIMIT;
  const usedBy = (x: CachedKey) => Math.floor((x.previous ?? 0) * (1 - elapsed)) + x.current + x.pending;
  // Near its limit a key is looked up and counted in the database at every request, so that a limit holds exactly
  // across processes where it matters: the cache serves a key only while more than a tenth of its limit (at least
  // 10 requests) is left.
  const roomy = (x: CachedKey) => limitOf(x) - (usedBy(x) + 1) > Math.max(10, Math.ceil(limitOf(x) / 10));
  if (k && k.windowStart === windowStart && real - k.fetchedAt <= ttl && roomy(k)) {
    k.pending++;
    fromCache = true;
  } else {
    // Requests that arrive while this look runs are counted on the entry as it was (one look at a time per key).
    if (k) k.fetchedAt = real;
    const stale = k;
    let add = 1;
    if (stale && stale.windowStart === windowStart) {
      add += stale.pending;
      stale.pending = 0;
    } else if (stale && stale.pending > 0) {
      const n = stale.pending;
      stale.pending = 0;
      await addCount(deps, stale.id, cls, stale.windowStart, n).catch(() => {});
    }
    const { rows } = await deps.db.query<{
      id: string; operator_id: string; environment: 'sandbox' | 'production'; name: string; settings: OperatorSettings; current: number; previous: number | null;
    }>({
      // Named: prepared once per connection, planned once.
      name: 'cw_auth_v2',
      text: AUTH_SQL,
      values: [hash, cls, windowStart, add],
    });
    const row = rows[0];
    if (!row) {
      cache?.keys.delete(ck);
      throw errors.unauthorized();
    }
    // Requests counted on the stale entry while this look ran are not in the database yet: they stay pending.
    k = { ...row, cls, windowStart, pending: stale && stale.windowStart === windowStart ? stale.pending : 0, fetchedAt: real };
    if (cache) {
      if (cache.keys.size >= MAX_CACHED_KEYS) cache.keys.clear();
      cache.keys.set(ck, k);
      startFlushing(deps, cache, ttl);
    }
  }
  const limit = limitOf(k);
  const used = usedBy(k);
  const reset = windowStart + WINDOW_S;
  reply.header('X-RateLimit-Limit', limit);
  reply.header('X-RateLimit-Remaining', Math.max(0, limit - used));
  reply.header('X-RateLimit-Reset', reset);
  if (used > limit) {
    // A refused request does not count, so a client that keeps retrying recovers as the window slides.
    if (fromCache) {
      k.pending--;
    } else {
      await deps.db.query('UPDATE rate_counters SET count = count - 1 WHERE key_id = $1 AND class = $2 AND window_start = $3', [k.id, cls, windowStart]);
      k.current--;
    }
    reply.header('X-RateLimit-Remaining', 0);
    reply.header('Retry-After', reset - nowS);
    throw errors.rateLimited(reset - nowS);
  }
  req.caller = { keyId: k.id, operatorId: k.operator_id, operatorName: k.name, environment: k.environment, settings: k.settings };
}

/** The onRequest hook of a route that needs an API key, counted against the key's `cls` budget. */
export function keyAuth(deps: Deps) {
  return (cls: 'create' | 'read') => async (req: FastifyRequest, reply: FastifyReply) => authenticate(deps, req, reply, cls);
}
