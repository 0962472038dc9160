/**
 * A delivery worker: a short loop over parts with one job each. It claims due deliveries in batches, lane by lane,
 * taking only what admission lets through now (queue.ts, admission.ts), prepares and sends them (sender.ts),
 * and hands each outcome to the writer (outcomes.ts), which records them in batches; endpoint health follows in the
 * background (health.ts). It sleeps until woken (wakeup.ts). Survives PostgreSQL restarts (every database step is
 * retried), and leaves nothing half-done on SIGTERM: in-flight attempts get a deadline to finish, the rest are released.
 *
 * Nothing in an attempt can crash the process: every error before, during or after the send is caught. A fault of the
 * worker's own (a secret it cannot open, a signing error) releases the delivery without spending one of the receiver's
 * attempts, and counts toward dead-lettering, like a claim whose lease ran out with no outcome.
 */
import os from 'node:os';
import type { Format } from '@cashwire/webhooks';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Clock, IdGenerator } from '../clock.js';
import type { Db } from '../db/pool.js';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from '../domain/health.js';
import { nextStep, parseRetryAfter, scheduleFor, type RetrySchedule } from '../domain/retry.js';
import { resultClass, type Metrics } from '../metrics.js';
import type { SecretBox } from '../security/secrets.js';
import { guardedLookup, literalForbidden, type LookupFn } from '../security/ssrf.js';
import { syncedClock } from '../db/clock-sync.js';
import { createHealthRecorder } from './health.js';
import { createHeartbeat } from './heartbeat.js';
import { createOutcomeWriter, deadLetter, type Written } from './outcomes.js';
import { claimBatch, HELD, MAX_STALLS, release, sampleSecrets, type Claimed } from './queue.js';
import { createAgent, prepare, send, type AttemptOutcome, type SendTimeouts } from './sender.js';
import { createWakeup } from './wakeup.js';
import { traceAttempt } from '../telemetry.js';

export interface WorkerOptions extends SendTimeouts {
  /** Deliveries claimed per round trip. Default 200. */
  batchSize: number;
  /** Attempts in flight at once in this process. Default 256. */
  concurrency: number;
  /** Attempts in flight at once to one destination, across all workers, unless its endpoint sets max_concurrency. Default 32. */
  destinationConcurrency: number;
  /** How long a claim lasts; must exceed the total timeout. Default total timeout + 15 s. */
  leaseMs: number;
  /** Fallback poll interval; 0 turns polling off (NOTIFY, and a wake-up when the next delivery can be taken). Default 1000 ms. */
  pollMs: number;
  /** Listen for NOTIFY. Default true. */
  listen: boolean;
  /** Outcomes wait at most this long to be written with others; 0 (the default): written at the end of the event loop's turn, or with the next batch while one is being written. */
  flushMs: number;
  /** On stop, in-flight attempts get this long to finish before they are aborted and released. Default 10 s. */
  drainMs: number;
  /** Correct the clock by its offset from the database's (db/clock-sync.ts; never for a manual clock). Default true. */
  clockSync: boolean;
  /** Once a response's status line is in, its body is read for at most this long. Default 1 s. */
  bodyWindowMs: number;
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
  flushMs: 0,
  drainMs: 10_000,
  clockSync: true,
  bodyWindowMs: 1_000,
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
  /** Claim statements run, and deliveries they took. */
  claims: number;
  claimed: number;
  sent: number;
  succeeded: number;
  /** Claimed, then given back unsent (an endpoint disabled or a circuit opened between the claim's read and its take). */
  deferred: number;
  faults: number;
  dead: number;
}

/** The schedule in force for a claimed delivery. */
export function scheduleOf(d: Pick<Claimed, 'environment' | 'format' | 'schedule'>): RetrySchedule {
  return scheduleFor(d.environment, d.format, d.schedule);
}

/** How long a delivery waits after a fault of the worker's own: 1 s, doubling with each fault, at most a minute. */
export function faultDelayMs(stalls: number): number {
  return Math.min(60_000, 1_000 * 2 ** Math.max(0, stalls - 1));
}

/** Refuses a key that cannot open the secrets this database holds (a worker started with another CASHWIRE_SECRET_KEY). */
export async function checkSecretKey(db: Db, secrets: SecretBox): Promise<void> {
  for (const s of await sampleSecrets(db)) {
    try {
      secrets.open(s.secret);
    } catch {
      throw new Error(`this worker's CASHWIRE_SECRET_KEY cannot open the webhook secrets in this database (${s.where}): start it with the key the API uses`);
    }
  }
}

/** After a claim that took less than it asked for, the next one waits this long (ms). */
const CLAIM_GAP_MS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());
const plain: SecretBox = { seal: (s) => s, open: (s) => s };

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
  const stats: WorkerStats = { claims: 0, claimed: 0, sent: 0, succeeded: 0, deferred: 0, faults: 0, dead: 0 };

  // Claims, leases and schedules go by the database's clock; signatures and payload timestamps by this host's.
  const qclock = o.clockSync ? syncedClock(deps.db, deps.clock, (err) => log.warn({ err: (err as Error).message }, 'could not read the database clock')) : undefined;
  const clock = qclock ?? deps.clock;
  const health = createHealthRecorder({ db: deps.db, clock, ids: deps.ids, log }, o.health);
  const writer = createOutcomeWriter({ db: deps.db, clock, log, worker: id }, o, (items) => {
    // Written outcomes end their leases: their lanes have room again, across all workers. Claim now (a lane at its cap
    // when the attempts finished had nothing to give until these were written).
    if (running && !stopping) wakeup.poke();
    health.record(
    items.filter((i) => i.completion.outcome).map((i) => ({
      operator_id: i.claimed.operator_id,
      endpoint_id: i.claimed.endpoint_id,
      lane: i.claimed.lane,
      // A 410 from a registered endpoint (outcome `held`) disables it.
      // started_at is this host's clock (the signing time); health goes by the database's, like claims and leases.
      outcome: { ok: i.completion.outcome === 'succeeded', gone: i.completion.outcome === 'held', at: qclock?.offsetMs ? new Date(i.completion.started_at.getTime() + qclock.offsetMs) : i.completion.started_at },
      // A success at a destination that was healthy at the claim changes nothing.
      nothingNew: i.completion.outcome === 'succeeded' && i.claimed.circuit_state === 'closed' && i.claimed.consecutive_failures === 0,
    })),
    );
  });
  const wakeup = createWakeup({ db: deps.db, log, worker: id }, o);
  // For /readyz: this worker is alive and claiming (written at most every 5 s).
  const heartbeat = createHeartbeat({ db: deps.db, clock, worker: id, log }, 5_000);

  const inflight = new Map<string, Claimed>();
  let running = false;
  let stopping = false;
  let loopDone: Promise<void> | undefined;
  const idleWaiters: (() => void)[] = [];
  // The loop's timers are unref'd; while PostgreSQL is down no socket is open either, and the process would exit.
  let keepAlive: NodeJS.Timeout | undefined;

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

  function dead(d: Claimed, reason: string, at: Date) {
    stats.dead++;
    deps.metrics?.deliveries.inc({ outcome: 'dead' });
    log.error({ delivery: d.id, event: d.event.id, endpoint: d.endpoint_id, reason, stalls: d.stalls }, 'delivery dead-lettered');
    writer.push(deadLetter(d, reason, at));
  }

  /** A fault of the worker's own: the delivery goes back without spending the receiver's attempt, or dies after 5. */
  async function fault(d: Claimed, err: unknown) {
    stats.faults++;
    const now = clock.now();
    const message = String((err as Error)?.message ?? err).slice(0, 300);
    if (d.stalls >= MAX_STALLS) {
      dead(d, 'worker_fault', now);
      return;
    }
    log.error({ delivery: d.id, event: d.event.id, endpoint: d.endpoint_id, err: message, stalls: d.stalls }, 'could not prepare a delivery (a fault of this worker, not the receiver); released');
    await retrying('releasing a delivery after a fault', 1, () => release(deps.db, id, [{
      operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: new Date(now.getTime() + faultDelayMs(d.stalls)), fault: true,
    }])).catch(() => { /* its lease will expire */ });
  }

  /**
   * Starts the claimed attempts: the claim took only what admission let through (caps, rate limits, circuits, order),
   * so everything goes, but for a delivery whose endpoint was disabled or whose circuit opened since the claim read it
   * (given back, uncounted, to wait with the others). Returns the attempts started.
   */
  async function dispatch(batch: Claimed[], collect?: Promise<void>[]): Promise<number> {
    const now = clock.now().getTime();
    const back: { operator_id: string; id: string; attempt: number; at: Date }[] = [];
    let started = 0;
    for (const d of batch) {
      if (d.stalls > MAX_STALLS) {
        // Claimed MAX_STALLS times before with no outcome recorded (workers died or overran their leases with it).
        dead(d, 'stalled', new Date(now));
        continue;
      }
      if (d.endpoint_status === 'disabled') {
        back.push({ operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: new Date(now) }); // its lane is skipped while disabled
        continue;
      }
      if (d.circuit_state === 'open' && d.circuit_retry_at && d.circuit_retry_at.getTime() > now) {
        back.push({ operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: d.circuit_retry_at });
        continue;
      }
      inflight.set(`${d.operator_id}/${d.id}`, d);
      started++;
      const p = attempt(d);
      collect?.push(p);
    }
    if (back.length) {
      stats.deferred += back.length;
      await retrying('giving back deliveries', back.length, () => release(deps.db, id, back));
    }
    return started;
  }

  /** One attempt, start to finish. Never rejects. */
  async function attempt(d: Claimed): Promise<void> {
    try {
      // A span `webhook.attempt` linked to the request that wrote the event (a no-op with tracing off).
      await traceAttempt(d, async (span) => {
        // One reading of this host's clock: the attempt's started_at and the time the request is signed and
        // timestamped with are the same instant, to the millisecond, so that the request can be rendered again as it
        // went out (request-view.ts). Schedules and health stay on the database's clock (see record()).
        const at = deps.clock.now();
        let out: AttemptOutcome;
        const forbidden = d.environment === 'production' ? forbiddenReason(d.url) : undefined;
        if (forbidden) {
          out = { errorCode: 'forbidden_address', errorMessage: `${forbidden} may not be reached from production`, latencyMs: 0 };
        } else {
          let prepared;
          try {
            // Signed, and timestamped in the body, by this host's own clock.
            const signedAt = at;
            prepared = prepare({ url: d.url, format: d.format as Format, payloadVersion: d.payload_version, secrets: secretsOf(d, signedAt), event: d.event, at: signedAt });
          } catch (err) {
            span.fault(err);
            await fault(d, err);
            return;
          }
          out = await send(d.environment === 'production' ? productionAgent : sandboxAgent, prepared, o, abort.signal);
        }
        span.sent(out);
        if (out.errorCode === 'aborted') return; // shutdown: released, not counted
        record(d, at, out);
      });
    } catch (err) {
      // Nothing above should throw; if it does, it is this worker's fault, and the delivery must not be lost.
      log.error({ err: String((err as Error)?.stack ?? err), delivery: d.id }, 'unexpected error in an attempt');
      await fault(d, err).catch(() => {});
    } finally {
      inflight.delete(`${d.operator_id}/${d.id}`);
      // A finished attempt frees room in this worker and in its lane: claim again (pokes coalesce while a claim runs).
      if (running && !stopping) wakeup.poke();
      if (inflight.size === 0) for (const w of idleWaiters.splice(0)) w();
    }
  }

  function forbiddenReason(url: string): string | undefined {
    try {
      return literalForbidden(new URL(url));
    } catch {
      return undefined; // an unparsable URL fails at send, as invalid_url
    }
  }

  /** The secrets to sign with. During a rotation, Standard Webhooks carries a signature by the old secret too; the other formats sign with the new one only. */
  function secretsOf(d: Claimed, at: Date): string[] {
    const own = d.secret ? [openSecret(d.secret)] : [];
    const previousValid = d.previous_secret && d.previous_expires_at && d.previous_expires_at > at;
    return previousValid && d.format === 'standard' ? [...own, openSecret(d.previous_secret!)] : own;
  }

  // An endpoint's sealed secret, opened once rather than at every attempt (AES-GCM per attempt was 4% of the
  // worker's time in a backlog's drain). Bounded: per-payment secrets are each sealed on their own.
  const opened = new Map<string, string>();
  function openSecret(sealed: string): string {
    let plain = opened.get(sealed);
    if (plain === undefined) {
      plain = secrets.open(sealed);
      if (opened.size >= 1_000) opened.clear();
      opened.set(sealed, plain);
    }
    return plain;
  }

  function record(d: Claimed, at: Date, out: AttemptOutcome) {
    stats.sent++;
    const now = clock.now();
    const step = nextStep({
      schedule: scheduleOf(d),
      result: { status: out.status, retryAfterMs: parseRetryAfter(out.retryAfter, now) },
      attempt: d.attempts,
      createdAt: d.created_at,
      now,
      random: random(),
      destination: { registered: d.endpoint_id !== null, format: d.format },
    });
    if (step.kind === 'succeeded') stats.succeeded++;
    deps.metrics?.deliveries.inc({ outcome: step.kind });
    deps.metrics?.attemptSeconds.observe({ result: resultClass(out.status) }, out.latencyMs / 1000);
    // One info line per failed attempt, readable as it is in a terminal: what, where, why, and what happens next.
    if (step.kind !== 'succeeded') {
      log.info(
        { delivery: d.id, event: d.event.id, type: d.event.type, host: URL.canParse(d.url) ? new URL(d.url).host : d.url.slice(0, 100), status: out.status, error: out.errorCode, attempt: d.attempts, next: step.kind, ...(step.kind === 'retry' ? { retry_at: step.at.toISOString() } : {}) },
        `attempt ${d.attempts} of ${d.event.type} ${d.id} to ${URL.canParse(d.url) ? new URL(d.url).host : '(invalid url)'} failed: ${out.status ?? out.errorCode ?? 'no answer'}; ${step.kind === 'retry' ? `next retry at ${step.at.toISOString()}` : step.kind === 'held' ? 'held (410 Gone)' : 'no more retries'}`,
      );
    }
    const written: Written = {
      claimed: d,
      completion: {
        operator_id: d.operator_id,
        id: d.id,
        attempt: d.attempts,
        status: step.kind === 'retry' || step.kind === 'held' ? 'pending' : step.kind,
        outcome: step.kind,
        next_attempt_at: step.kind === 'retry' ? step.at : step.kind === 'held' ? HELD : now,
        started_at: at,
        latency_ms: out.latencyMs,
        status_code: out.status ?? null,
        error_code: out.errorCode ?? (step.kind === 'held' ? 'gone' : null),
        excerpt: out.excerpt ?? (out.errorMessage ? Buffer.from(out.errorMessage) : null),
        response_headers: out.headers ?? null,
      },
    };
    writer.push(written);
  }

  const checkKey = () => checkSecretKey(deps.db, secrets);

  const admissionOptions = { destinationConcurrency: o.destinationConcurrency };
  let lastClaimAt = 0;
  let lastCommit: Promise<void> = Promise.resolve();

  async function loop() {
    let backoff = 100;
    while (!stopping) {
      const free = o.concurrency - inflight.size;
      let wakeAt: number | undefined;
      if (free > 0) {
        try {
          // After a claim that found less than it wanted, wait a moment before the next one, so that attempts
          // finishing one by one are claimed for in batches rather than one claim each.
          const gap = lastClaimAt + CLAIM_GAP_MS - performance.now();
          if (gap > 0) await sleep(gap);
          const want = Math.min(o.batchSize, o.concurrency - inflight.size);
          // The previous claim's COMMIT (sent, not waited for) first: until it is in, its lanes are locked, and this
          // claim would skip them (it usually is in by now: the batch's dispatch took longer than its round trip).
          await lastCommit;
          const r = await claimBatch(deps.db, id, clock.now(), o.leaseMs, want, admissionOptions);
          lastCommit = r.committed.catch(() => {});
          lastClaimAt = r.rows.length < want ? performance.now() : 0;
          backoff = 100;
          stats.claimed += r.rows.length;
          stats.claims++;
          heartbeat.onClaim();
          wakeAt = r.wakeAt;
          if (r.rows.length > 0) {
            if (wakeup.idle) await wakeup.markIdle(false);
            await dispatch(r.rows);
            continue; // more may be due
          }
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'claim failed; retrying');
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5_000);
          continue;
        }
      }
      if (stopping) break;
      if (wakeup.takeWoken()) continue;
      if (!wakeup.idle && free > 0) {
        // Mark asleep, then look once more: a commit either sees the mark and notifies, or was before this look.
        await wakeup.markIdle(true);
        continue;
      }
      // Asleep until NOTIFY, a finished attempt, the poll interval, or the time the claim said something can be taken.
      await wakeup.sleep(wakeAt === undefined ? undefined : wakeAt - clock.now().getTime());
    }
  }

  return {
    id,
    stats,
    options: o,
    /** Checks the secret key, then listens and starts the loop. Rejects if the key cannot open this database's secrets. */
    async start() {
      if (running) return;
      await checkKey();
      await qclock?.start();
      if (qclock?.offsetMs) log.info({ offsetMs: qclock.offsetMs }, "this host's clock differs from the database's; claims and leases follow the database's");
      running = true;
      // Ref'd, so the process stays up while PostgreSQL is down; it also keeps an idle mark fresh (stale marks of dead
      // workers are removed after two minutes by the periodic job).
      keepAlive = setInterval(() => {
        if (wakeup.idle) void wakeup.markIdle(true);
        heartbeat.onClaim(false);
      }, 20_000);
      await wakeup.start();
      loopDone = loop();
    },
    /** Wakes the loop now (tests move the clock, then poke). */
    poke: () => wakeup.poke(),
    /**
     * One pass without the loop: claims whatever is due, sends it, records the outcomes, until nothing is due.
     * Returns how many attempts were made. Tests drive schedules with it and a moved clock.
     */
    async tick(): Promise<number> {
      let total = 0;
      for (;;) {
        const claimed = await claimBatch(deps.db, id, clock.now(), o.leaseMs, o.batchSize, admissionOptions);
        await claimed.committed;
        const batch = claimed.rows;
        stats.claimed += batch.length;
        stats.claims++;
        const attempts: Promise<void>[] = [];
        total += await dispatch(batch, attempts);
        await Promise.all(attempts);
        await writer.flush();
        await health.drain();
        if (batch.length === 0) return total; // a lane at its cap gives the rest in the next round

      }
    },
    /** Resolves when nothing is in flight and every outcome (and what follows from it) is written. */
    async idle(): Promise<void> {
      if (inflight.size > 0) await new Promise<void>((r) => idleWaiters.push(r));
      await writer.flush();
      await health.drain();
    },
    /** Stops claiming; in-flight attempts get `drainMs`, then are aborted and released. */
    async stop(): Promise<void> {
      if (!running) return;
      stopping = true;
      await wakeup.stop();
      await loopDone;
      if (inflight.size > 0) {
        await Promise.race([new Promise<void>((r) => idleWaiters.push(r)), sleep(o.drainMs)]);
      }
      const leftovers = [...inflight.values()];
      abort.abort();
      writer.giveUpAfter(20);
      await writer.flush();
      await Promise.race([health.drain(), sleep(o.drainMs)]);
      const now = clock.now();
      await release(deps.db, id, leftovers.map((d) => ({ operator_id: d.operator_id, id: d.id, attempt: d.attempts, at: now })))
        .catch((err) => log.error({ err }, 'could not release claims at shutdown; their leases will expire'));
      if (!deps.dispatcher) await sandboxAgent.close().catch(() => {});
      await productionAgent.close().catch(() => {});
      clearInterval(keepAlive);
      await heartbeat.stop();
      qclock?.stop();
      running = false;
    },
  };
}

export type DeliveryWorker = ReturnType<typeof createWorker>;
