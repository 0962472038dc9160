/**
 * A delivery worker: claims due deliveries in batches, sends them concurrently, and records the outcomes in
 * batches. Woken by LISTEN/NOTIFY when an event commits; polling is the fallback. Survives PostgreSQL restarts
 * (every database step is retried) and leaves nothing half-done on SIGTERM: in-flight attempts get a deadline to
 * finish, the rest are released.
 */
import os from 'node:os';
import type { Format } from '@cashwire/webhooks';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Clock, IdGenerator } from '../clock.js';
import type { Db } from '../db/pool.js';
import { DEFAULT_SCHEDULES, nextStep, parseRetryAfter, type RetrySchedule } from '../domain/retry.js';
import { DELIVERY_CHANNEL } from '../store/events.js';
import { createAgent, send, type SendTimeouts } from './sender.js';
import { claim, complete, failGone, release, type Claimed, type Completion } from './store.js';

export interface WorkerOptions extends SendTimeouts {
  /** Deliveries claimed per round trip. Default 200. */
  batchSize: number;
  /** Attempts in flight at once in this process. Default 256. */
  concurrency: number;
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
  /** Where to LISTEN; defaults to the pool's connection string. */
  connectionString?: string;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  connectTimeoutMs: 5_000,
  totalTimeoutMs: 15_000,
  batchSize: 200,
  concurrency: 256,
  leaseMs: 30_000,
  pollMs: 1_000,
  listen: true,
  flushMs: 5,
  drainMs: 10_000,
};

export interface WorkerDeps {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  log: Logger;
  random?: () => number;
  /** undici dispatcher for outbound requests (tests and SSRF guards inject their own). */
  dispatcher?: Dispatcher;
}

export interface WorkerStats {
  claimed: number;
  sent: number;
  succeeded: number;
}

export function scheduleOf(d: Pick<Claimed, 'schedule_name' | 'schedule'>): RetrySchedule {
  return { ...DEFAULT_SCHEDULES[d.schedule_name], ...(d.schedule ?? {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());

export function createWorker(deps: WorkerDeps, options: Partial<WorkerOptions> = {}) {
  const o: WorkerOptions = { ...DEFAULT_WORKER_OPTIONS, ...options };
  if (options.leaseMs === undefined) o.leaseMs = Math.max(DEFAULT_WORKER_OPTIONS.leaseMs, o.totalTimeoutMs + 15_000);
  if (o.leaseMs <= o.totalTimeoutMs) throw new Error(`leaseMs (${o.leaseMs}) must be longer than totalTimeoutMs (${o.totalTimeoutMs})`);
  const id = `${os.hostname()}:${process.pid}:${deps.ids.next('').slice(0, 8)}`;
  const random = deps.random ?? Math.random;
  const agent = deps.dispatcher ?? createAgent(o, Math.min(o.concurrency, 128));
  const log = deps.log.child({ worker: id });
  const abort = new AbortController();
  const stats: WorkerStats = { claimed: 0, sent: 0, succeeded: 0 };

  const inflight = new Map<string, Claimed>();
  let pendingResults: Completion[] = [];
  const goneUrls: { operator_id: string; url: string }[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let running = false;
  let stopping = false;
  let wake: (() => void) | undefined;
  let loopDone: Promise<void> | undefined;
  let listener: pg.Client | undefined;
  let listenerRetry: NodeJS.Timeout | undefined;
  let idleWaiters: (() => void)[] = [];
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

  /** Writes outcomes; on a database error they stay queued and are tried again (their leases cover them). */
  function flush(): Promise<void> {
    if (flushTimer) {
      clearTimeout(flushTimer);
      flushTimer = undefined;
    }
    if (flushing) return flushing.then(() => (pendingResults.length ? flush() : undefined));
    if (pendingResults.length === 0 && goneUrls.length === 0) return Promise.resolve();
    const batch = pendingResults;
    pendingResults = [];
    const gone = goneUrls.splice(0);
    flushing = (async () => {
      for (let tries = 0; ; tries++) {
        try {
          await complete(deps.db, id, batch);
          for (const g of gone) await failGone(deps.db, g.operator_id, g.url, deps.clock.now());
          break;
        } catch (err) {
          if (tries === 0) log.warn({ err: (err as Error).message, size: batch.length }, 'recording outcomes failed; retrying');
          if (stopping && tries > 20) throw err;
          await sleep(Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
        }
      }
    })().finally(() => {
      flushing = undefined;
      if (pendingResults.length) scheduleFlush();
    });
    return flushing;
  }

  async function attempt(d: Claimed) {
    const key = `${d.operator_id}/${d.id}`;
    const at = deps.clock.now();
    const out = await send(agent, {
      url: d.url,
      format: d.format as Format,
      payloadVersion: d.payload_version,
      secrets: d.secret ? [d.secret] : [],
      event: d.event,
      at,
    }, o, abort.signal);
    inflight.delete(key);
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
    if (step.kind === 'failed' && step.reason === 'gone') goneUrls.push({ operator_id: d.operator_id, url: d.url });
    pendingResults.push({
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
    });
    scheduleFlush();
    if (inflight.size === o.concurrency - 1) poke();
    if (inflight.size === 0) for (const w of idleWaiters.splice(0)) w();
  }

  async function loop() {
    let backoff = 100;
    while (!stopping) {
      const free = o.concurrency - inflight.size;
      let got = 0;
      if (free > 0) {
        try {
          const batch = await claim(deps.db, id, deps.clock.now(), o.leaseMs, Math.min(o.batchSize, free));
          backoff = 100;
          got = batch.length;
          stats.claimed += got;
          for (const d of batch) {
            inflight.set(`${d.operator_id}/${d.id}`, d);
            void attempt(d);
          }
          if (got === Math.min(o.batchSize, free) && !stopping) continue; // more may be due
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
      keepAlive = setInterval(() => {}, 60_000);
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
        total += batch.length;
        stats.claimed += batch.length;
        await Promise.all(batch.map((d) => {
          inflight.set(`${d.operator_id}/${d.id}`, d);
          return attempt(d);
        }));
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
      await release(deps.db, id, deps.clock.now(), leftovers.map((d) => ({ operator_id: d.operator_id, id: d.id, attempt: d.attempts })))
        .catch((err) => log.error({ err }, 'could not release claims at shutdown; their leases will expire'));
      if (!deps.dispatcher) await (agent as Dispatcher).close().catch(() => {});
      clearInterval(keepAlive);
      running = false;
    },
  };
}

export type DeliveryWorker = ReturnType<typeof createWorker>;
