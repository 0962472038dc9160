/**
 * A delivery worker: claims due deliveries in batches, sends them concurrently, and records the outcomes in
 * batches. Woken by LISTEN/NOTIFY when an event commits; polling is the fallback. Survives PostgreSQL restarts
 * (every database step is retried) and leaves nothing half-done on SIGTERM: in-flight attempts get a deadline to
 * finish, the rest are released.
 *
 * Per destination (a registered endpoint, or the origin of a per-payment URL) it caps attempts in flight, applies
 * the endpoint's rate limit, and lets a single probe through an open circuit: what it cannot send now it releases
 * for a little later, uncounted, so that one slow destination cannot take the capacity of the others.
 */
import os from 'node:os';
import { isIntentEvent, type Format } from '@cashwire/webhooks';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Clock, IdGenerator } from '../clock.js';
import type { Db } from '../db/pool.js';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy, type Outcome } from '../domain/health.js';
import { DEFAULT_SCHEDULES, nextStep, parseRetryAfter, type RetrySchedule } from '../domain/retry.js';
import { resultClass, type Metrics } from '../metrics.js';
import type { SecretBox } from '../security/secrets.js';
import { guardedLookup, literalForbidden, type LookupFn } from '../security/ssrf.js';
import { DELIVERY_CHANNEL, insertOperationalEvent } from '../store/events.js';
import { HELD } from '../payments/endpoints.js';
import { recordHealth } from './health.js';
import { createAgent, send, type SendTimeouts } from './sender.js';
import { claim, complete, failGone, release, type Claimed, type Completion } from './store.js';

export interface WorkerOptions extends SendTimeouts {
  /** Deliveries claimed per round trip. Default 200. */
  batchSize: number;
  /** Attempts in flight at once in this process. Default 256. */
  concurrency: number;
  /** Attempts in flight at once to one destination, unless its endpoint sets max_concurrency. Default 32. */
  destinationConcurrency: number;
  /** How long a claim lasts; must exceed the total timeout. Default total timeout + 15 s. */
  leaseMs: number;
  /** Fallback poll interval; 0 turns polling off (NOTIFY only). Default 1000 ms. */
  pollMs: number;
  /** Listen for NOTIFY. Default true. */
  listen: boolean;
  /** Outcomes wait at most this long to be written with others. Default 5 ms. */
  flushMs: number;
  /** On stop, in-flight attempts get this long to finish before they are aborted and released. Default 10 s. */
  drainMs: number;
  /** A delivery held back by its destination's cap or probe is due again after this. Default 250 ms. */
  deferMs: number;
  health: HealthPolicy;
  /** Where to LISTEN; defaults to the pool's connection string. */
  connectionString?: string;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  connectTimeoutMs: 5_000,
  totalTimeoutMs: 15_000,
  batchSize: 200,
  concurrency: 256,
  destinationConcurrency: 32,
  leaseMs: 30_000,
  pollMs: 1_000,
  listen: true,
  flushMs: 5,
  drainMs: 10_000,
  deferMs: 250,
  health: DEFAULT_HEALTH_POLICY,
};

export interface WorkerDeps {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  log: Logger;
  secrets?: SecretBox;
  metrics?: Metrics;
  random?: () => number;
  /** undici dispatcher for sandbox requests (tests inject their own). */
  dispatcher?: Dispatcher;
  /** DNS for production requests, checked at connect time (tests inject one). Default dns.lookup. */
  resolver?: LookupFn;
}

export interface WorkerStats {
  claimed: number;
  sent: number;
  succeeded: number;
  deferred: number;
}

export function scheduleOf(d: Pick<Claimed, 'schedule_name' | 'schedule'>): RetrySchedule {
  return { ...DEFAULT_SCHEDULES[d.schedule_name], ...(d.schedule ?? {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());
const plain: SecretBox = { seal: (s) => s, open: (s) => s };

/** A destination: the endpoint, or the origin of a per-payment URL. */
function destinationOf(d: Claimed): string {
  if (d.endpoint_id) return `ep:${d.operator_id}/${d.endpoint_id}`;
  try {
    return `url:${new URL(d.url).origin}`;
  } catch {
    return `url:${d.url}`;
  }
}

export function createWorker(deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
  const o: WorkerOptions = { ...DEFAULT_WORKER_OPTIONS, ...options, health: { ...DEFAULT_HEALTH_POLICY, ...options.health } };
  if (options.leaseMs === undefined) o.leaseMs = Math.max(DEFAULT_WORKER_OPTIONS.leaseMs, o.totalTimeoutMs + 15_000);
  if (o.leaseMs <= o.totalTimeoutMs) throw new Error(`leaseMs (${o.leaseMs}) must be longer than totalTimeoutMs (${o.totalTimeoutMs})`);
  const id = `${os.hostname()}:${process.pid}:${deps.ids.next('').slice(0, 8)}`;
  const random = deps.random ?? Math.random;
  const secrets = deps.secrets ?? plain;
  const sandboxAgent = deps.dispatcher ?? createAgent(o, Math.min(o.concurrency, 128));
  // Production requests resolve names through a guard that refuses private addresses on the address connected to.
  const productionAgent = createAgent(o, Math.min(o.concurrency, 128), guardedLookup(deps.resolver));
  const log = deps.log.child({ worker: id });
  const abort = new AbortController();
  const stats: WorkerStats = { claimed: 0, sent: 0, succeeded: 0, deferred: 0 };

  const inflight = new Map<string, Claimed>();
  const perDestination = new Map<string, number>();
  const buckets = new Map<string, { tokens: number; at: number }>();
  let pendingResults: { completion: Completion; claimed: Claimed; gone: boolean }[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let running = false;
  let stopping = false;
  let wake: (() => void) | undefined;
  let loopDone: Promise<void> | undefined;
  let listener: pg.Client | undefined;
  let listenerRetry: NodeJS.Timeout | undefined;
  const idleWaiters: (() => void)[] = [];
  // The loop's timers are unref'd; while PostgreSQL is down no socket is open either, and the process would exit.
  let keepAlive: NodeJS.Timeout | undefined;

  // Set when a wake-up came while the loop was busy, so that it claims again instead of sleeping through it.
  let woken = false;
  function poke() {
    const w = wake;
    wake = undefined;
    if (w) w();
    else woken = true;
  }

  function scheduleFlush() {
    if (pendingResults.length >= o.batchSize) void flush();
    else if (!flushTimer) flushTimer = setTimeout(() => void flush(), o.flushMs);
  }

  async function retrying(what: string, size: number, fn: () => Promise<void>): Promise<void> {
    for (let tries = 0; ; tries++) {
      try {
        return await fn();
      } catch (err) {
        if (tries === 0) log.warn({ err: (err as Error).message, size }, `${what} failed; retrying`);
        if (stopping && tries > 20) throw err;
        await sleep(Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
      }
    }
  }

  /**
   * Writes outcomes, then what follows from them: endpoint health, 410s, and delivery.exhausted events. On a
   * database error everything stays queued and is tried again (the leases cover the deliveries meanwhile).
   */
  function flush(): Promise<void> {
    if (flushTimer) {
      clearTimeout(flushTimer);
      flushTimer = undefined;
    }
    if (flushing) return flushing.then(() => (pendingResults.length ? flush() : undefined));
    if (pendingResults.length === 0) return Promise.resolve();
    const batch = pendingResults;
    pendingResults = [];
    flushing = (async () => {
      await retrying('recording outcomes', batch.length, () => complete(deps.db, id, batch.map((b) => b.completion)));
      await retrying('recording health', batch.length, () => afterOutcomes(batch));
    })().finally(() => {
      flushing = undefined;
      if (pendingResults.length) scheduleFlush();
    });
    return flushing;
  }

  async function afterOutcomes(batch: { completion: Completion; claimed: Claimed; gone: boolean }[]): Promise<void> {
    const byEndpoint = new Map<string, { key: { operator_id: string; id: string }; outcomes: Outcome[]; healthy: boolean }>();
    for (const { completion: c, claimed: d, gone } of batch) {
      if (d.endpoint_id) {
        const k = `${d.operator_id}/${d.endpoint_id}`;
        const entry = byEndpoint.get(k) ?? { key: { operator_id: d.operator_id, id: d.endpoint_id }, outcomes: [], healthy: true };
        entry.outcomes.push({ ok: c.outcome === 'succeeded', gone, at: c.started_at });
        // A healthy endpoint that succeeded again has nothing to write.
        entry.healthy &&= c.outcome === 'succeeded' && d.circuit_state === 'closed' && d.consecutive_failures === 0;
        byEndpoint.set(k, entry);
      } else if (gone) {
        // A per-payment URL that answered 410: the operator's other queued deliveries to it fail too.
        await failGone(deps.db, d.operator_id, d.url, deps.clock.now());
      }
      // Tell the operator when a payment event could not be delivered (not for operational events: no loops).
      if (c.status === 'failed' || c.status === 'expired') {
        log.warn({ delivery: d.id, event: d.event.id, endpoint: d.endpoint_id, status: c.status, last_status: c.status_code, error: c.error_code }, 'delivery ended without success');
      }
      if ((c.status === 'failed' || c.status === 'expired') && isIntentEvent(d.event)) {
        await insertOperationalEvent(deps.db, deps, d, 'delivery.exhausted', {
          delivery_id: d.id, event_id: d.event.id, event_type: d.event.type, endpoint_id: d.endpoint_id, url: d.url,
          status: c.status, attempts: d.attempts, last_status: c.status_code, last_error: c.error_code,
        });
      }
    }
    for (const e of byEndpoint.values()) {
      if (!e.healthy) await recordHealth(deps, e.key, e.outcomes, o.health);
    }
  }

  /** Whether the destination can take one more attempt now; if not, when to try again. */
  function admit(d: Claimed, dest: string, now: number, probes: Set<string>): number | undefined {
    // A delivery that came due while its endpoint was disabled, or before its open circuit's probe time (its own retry
    // time was set after the endpoint's deliveries were held), waits with the others.
    if (d.endpoint_status === 'disabled') return HELD.getTime();
    if (d.circuit_state === 'open' && d.circuit_retry_at && d.circuit_retry_at.getTime() > now) return d.circuit_retry_at.getTime();
    if (d.circuit_state === 'open') {
      // Half-open: one probe at a time.
      if (probes.has(dest) || (perDestination.get(dest) ?? 0) > 0) return now + o.deferMs;
      probes.add(dest);
      return undefined;
    }
    const cap = d.max_concurrency ?? o.destinationConcurrency;
    if ((perDestination.get(dest) ?? 0) >= cap) return now + o.deferMs;
    if (d.rate_limit_per_s) {
      const b = buckets.get(dest) ?? { tokens: d.rate_limit_per_s, at: now };
      b.tokens = Math.min(d.rate_limit_per_s, b.tokens + ((now - b.at) / 1000) * d.rate_limit_per_s);
      b.at = now;
      buckets.set(dest, b);
      if (b.tokens < 1) return now + Math.ceil(((1 - b.tokens) / d.rate_limit_per_s) * 1000);
      b.tokens -= 1;
    }
    return undefined;
  }

  /** Starts what the destinations admit; releases the rest for a little later. Returns the attempts started. */
  async function dispatch(batch: Claimed[], collect?: Promise<void>[]): Promise<number> {
    const now = deps.clock.now().getTime();
    const probes = new Set<string>();
    const deferred: { operator_id: string; id: string; attempt: number; at: Date }[] = [];
    let started = 0;
    for (const d of batch) {
      const dest = destinationOf(d);
      const later = admit(d, dest, now, probes);
      if (later !== undefined) {
        deferred.push({ operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: new Date(later) });
        continue;
      }
      perDestination.set(dest, (perDestination.get(dest) ?? 0) + 1);
      inflight.set(`${d.operator_id}/${d.id}`, d);
      started++;
      const p = attempt(d, dest);
      collect?.push(p);
    }
    if (deferred.length) {
      stats.deferred += deferred.length;
      await retrying('releasing deferred deliveries', deferred.length, () => release(deps.db, id, deferred));
    }
    return started;
  }

  async function attempt(d: Claimed, dest: string) {
    const at = deps.clock.now();
    const production = d.environment === 'production';
    let out;
    let forbidden: string | undefined;
    try {
      forbidden = production ? literalForbidden(new URL(d.url)) : undefined;
    } catch {
      forbidden = undefined;
    }
    if (forbidden) {
      out = { errorCode: 'forbidden_address', errorMessage: `${forbidden} may not be reached from production`, latencyMs: 0 };
    } else {
      const own = d.secret ? [secrets.open(d.secret)] : [];
      // During a rotation, Standard Webhooks carries a signature by the old secret too; the other formats sign with the new one only.
      const previousValid = d.previous_secret && d.previous_expires_at && d.previous_expires_at > at;
      const all = previousValid && d.format === 'standard' ? [...own, secrets.open(d.previous_secret!)] : own;
      out = await send(production ? productionAgent : sandboxAgent, {
        url: d.url, format: d.format as Format, payloadVersion: d.payload_version, secrets: all, event: d.event, at,
      }, o, abort.signal);
    }
    inflight.delete(`${d.operator_id}/${d.id}`);
    perDestination.set(dest, (perDestination.get(dest) ?? 1) - 1);
    if (out.errorCode === 'aborted') return; // shutdown: released, not counted
    stats.sent++;
    const now = deps.clock.now();
    const step = nextStep({
      schedule: scheduleOf(d),
      result: { status: out.status, retryAfterMs: parseRetryAfter(out.retryAfter, now) },
      attempt: d.attempts,
      createdAt: d.created_at,
      now,
      random: random(),
    });
    if (step.kind === 'succeeded') stats.succeeded++;
    deps.metrics?.deliveries.inc({ outcome: step.kind });
    deps.metrics?.attemptSeconds.observe({ result: resultClass(out.status) }, out.latencyMs / 1000);
    if (step.kind !== 'succeeded') log.debug({ delivery: d.id, event: d.event.id, status: out.status, error: out.errorCode, next: step.kind }, 'attempt failed');
    pendingResults.push({
      claimed: d,
      gone: step.kind === 'failed' && step.reason === 'gone',
      completion: {
        operator_id: d.operator_id,
        id: d.id,
        attempt: d.attempts,
        status: step.kind === 'retry' ? 'pending' : step.kind,
        outcome: step.kind,
        next_attempt_at: step.kind === 'retry' ? step.at : now,
        started_at: at,
        latency_ms: out.latencyMs,
        status_code: out.status ?? null,
        error_code: out.errorCode ?? (step.kind === 'failed' ? step.reason : null),
        excerpt: out.excerpt ?? out.errorMessage ?? null,
      },
    });
    scheduleFlush();
    if (inflight.size === o.concurrency - 1) poke();
    if (inflight.size === 0) for (const w of idleWaiters.splice(0)) w();
  }

  // Whether this worker has marked itself asleep in idle_workers (so that committing producers NOTIFY it).
  let idle = false;
  async function setIdle(on: boolean): Promise<void> {
    try {
      if (on) await deps.db.query('INSERT INTO idle_workers (worker, since) VALUES ($1, $2) ON CONFLICT (worker) DO UPDATE SET since = EXCLUDED.since', [id, new Date()]);
      else await deps.db.query('DELETE FROM idle_workers WHERE worker = $1', [id]);
      idle = on;
    } catch {
      // Unmarked, producers do not notify: polling still finds the work.
      idle = false;
    }
  }

  async function loop() {
    let backoff = 100;
    while (!stopping) {
      const free = o.concurrency - inflight.size;
      if (free > 0) {
        try {
          const want = Math.min(o.batchSize, free);
          const batch = await claim(deps.db, id, deps.clock.now(), o.leaseMs, want);
          backoff = 100;
          stats.claimed += batch.length;
          if (batch.length > 0 && idle) await setIdle(false);
          await dispatch(batch);
          if (batch.length === want && !stopping) continue; // more may be due
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'claim failed; retrying');
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5_000);
          continue;
        }
      }
      if (stopping) break;
      if (woken) {
        woken = false;
        continue;
      }
      if (!idle && free > 0) {
        // Mark asleep, then look once more: a commit either sees the mark and notifies, or was before this look.
        await setIdle(true);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (o.pollMs > 0) setTimeout(poke, o.pollMs).unref();
      });
    }
  }

  async function listen() {
    if (!o.listen || stopping) return;
    const cs = o.connectionString ?? (deps.db as unknown as { options: { connectionString: string } }).options.connectionString;
    const client = new pg.Client({ connectionString: cs });
    client.on('notification', () => poke());
    const retry = () => {
      if (stopping || listenerRetry) return;
      listenerRetry = setTimeout(() => {
        listenerRetry = undefined;
        void listen();
      }, 500);
      listenerRetry.unref();
    };
    client.on('error', () => {
      client.end().catch(() => {});
      retry();
    });
    client.on('end', retry);
    try {
      await client.connect();
      await client.query(`LISTEN ${DELIVERY_CHANNEL}`);
      listener = client;
      poke(); // anything committed while we were not listening
    } catch {
      client.end().catch(() => {});
      retry();
    }
  }

  return {
    id,
    stats,
    options: o,
    async start() {
      if (running) return;
      running = true;
      // Ref'd, so the process stays up while PostgreSQL is down; it also keeps an idle mark fresh (stale marks of dead
      // workers are removed after two minutes by the periodic job).
      keepAlive = setInterval(() => {
        if (idle) void setIdle(true);
      }, 20_000);
      await listen();
      loopDone = loop();
    },
    /** Wakes the loop now (tests move the clock, then poke). */
    poke,
    /**
     * One pass without the loop: claims whatever is due, sends it, records the outcomes, until nothing is due.
     * Returns how many attempts were made. Tests drive schedules with it and a moved clock.
     */
    async tick(): Promise<number> {
      let total = 0;
      for (;;) {
        const batch = await claim(deps.db, id, deps.clock.now(), o.leaseMs, o.batchSize);
        stats.claimed += batch.length;
        const attempts: Promise<void>[] = [];
        total += await dispatch(batch, attempts);
        await Promise.all(attempts);
        await flush();
        if (batch.length < o.batchSize) return total;
      }
    },
    /** Resolves when nothing is in flight and every outcome is written. */
    async idle(): Promise<void> {
      if (inflight.size > 0) await new Promise<void>((r) => idleWaiters.push(r));
      await flush();
    },
    /** Stops claiming; in-flight attempts get `drainMs`, then are aborted and released. */
    async stop(): Promise<void> {
      if (!running) return;
      stopping = true;
      poke();
      if (listenerRetry) clearTimeout(listenerRetry);
      await listener?.end().catch(() => {});
      await loopDone;
      if (inflight.size > 0) {
        await Promise.race([new Promise<void>((r) => idleWaiters.push(r)), sleep(o.drainMs)]);
      }
      const leftovers = [...inflight.values()];
      abort.abort();
      await flush().catch((err) => log.error({ err }, 'could not record outcomes at shutdown; their leases will expire'));
      const now = deps.clock.now();
      await release(deps.db, id, leftovers.map((d) => ({ operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: now })))
        .catch((err) => log.error({ err }, 'could not release claims at shutdown; their leases will expire'));
      if (idle) await setIdle(false);
      if (!deps.dispatcher) await sandboxAgent.close().catch(() => {});
      await productionAgent.close().catch(() => {});
      clearInterval(keepAlive);
      running = false;
    },
  };
}

export type DeliveryWorker = ReturnType<typeof createWorker>;
