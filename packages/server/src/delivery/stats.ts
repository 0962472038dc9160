/**
 * Delivery statistics for the dashboard's charts (issue 16) and GET /webhook/stats: attempts per time bucket by
 * outcome, attempt latency p50/p99, and queue depth, for one operator's environment, overall or for one endpoint,
 * across every worker process (the attempt log and the samples are in the database, whoever wrote them).
 *
 * The buckets are computed in SQL from the attempt log (delivery_attempts joined to deliveries, for the environment
 * and the endpoint). Every query starts with operator_id (the Citus distribution column) and always has the
 * environment: a production session never sees sandbox numbers. A listen's forwards (lane `cli`, the CLI's, not the
 * engine's) are left out.
 *
 * Queue depth cannot be read from the past: it is sampled (migration 019). This module owns every statement on
 * queue_sample_minutes and queue_samples: the sample itself ({@link sampleQueue}), the read and the pruning.
 */
import type { Queryable } from '../db/pool.js';
import { endpointHolds } from './queue.js';

/** The windows the charts offer: how far back, and the width of one bucket. */
export const WINDOWS = {
  '1h': { spanMs: 3_600_000, bucketMs: 60_000 },
  '6h': { spanMs: 6 * 3_600_000, bucketMs: 5 * 60_000 },
  '24h': { spanMs: 24 * 3_600_000, bucketMs: 15 * 60_000 },
} as const;
export type WindowName = keyof typeof WINDOWS;
export const isWindow = (w: unknown): w is WindowName => typeof w === 'string' && Object.hasOwn(WINDOWS, w);

/** The attempt outcomes counted (delivery_attempts.outcome; `held`: a 410 that disabled its endpoint). */
export const OUTCOMES = ['succeeded', 'retry', 'failed', 'expired', 'held'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The endpoint_id of a sample of all the deliveries of an environment. */
export const ALL = '';

/** Samples are kept this long unless CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS says otherwise. */
export const DEFAULT_SAMPLE_RETENTION_MS = 7 * 86_400_000;

export interface StatsScope { operatorId: string; environment: string; endpointId?: string }

export interface DeliveryStats {
  window: WindowName;
  /** The time the window ends at (now, by the injected clock). */
  as_of: string;
  bucket_seconds: number;
  from: string;
  to: string;
  endpoint: string;
  /** The start of each bucket, oldest first; every series has one value per bucket. */
  buckets: string[];
  attempts: Record<Outcome, number[]>;
  /** Milliseconds; null in a bucket with no attempt. */
  latency: { p50: (number | null)[]; p99: (number | null)[] };
  /** The largest sample in each bucket; null where no process sampled the queue. */
  queue: { pending: (number | null)[]; due: (number | null)[] };
  totals: { attempts: number; samples: number };
}

/**
 * The buckets of a window ending at `now`: aligned on multiples of the bucket width (since the epoch), the last one
 * the bucket `now` is in (still filling). Pure, so that the tests and the SQL agree on the edges.
 */
export function bucketsOf(window: WindowName, now: Date): { from: Date; to: Date; bucketMs: number; count: number } {
  const { spanMs, bucketMs } = WINDOWS[window];
  const count = spanMs / bucketMs;
  const last = Math.floor(now.getTime() / bucketMs) * bucketMs;
  return { from: new Date(last - (count - 1) * bucketMs), to: new Date(last + bucketMs), bucketMs, count };
}

/** The minute a sample taken at `at` belongs to. */
export const minuteOf = (at: Date) => new Date(Math.floor(at.getTime() / 60_000) * 60_000);

const attemptsSql = (byEndpoint: boolean) => `
  WITH b AS (
    SELECT generate_series($3::timestamptz, $4::timestamptz - $5::interval, $5::interval) AS t
  ), a AS (
    SELECT date_bin($5::interval, a.started_at, $3::timestamptz) AS t,
           ${OUTCOMES.map((o) => `count(*) FILTER (WHERE a.outcome = '${o}')::int AS "${o}"`).join(', ')},
           percentile_disc(0.5) WITHIN GROUP (ORDER BY a.latency_ms) AS p50,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY a.latency_ms) AS p99
      FROM delivery_attempts a
      JOIN deliveries d ON d.operator_id = a.operator_id AND d.id = a.delivery_id
     WHERE a.operator_id = $1 AND d.operator_id = $1 AND d.environment = $2
       AND a.started_at >= $3 AND a.started_at < $4
       AND d.lane IS DISTINCT FROM 'cli'${byEndpoint ? ' AND d.endpoint_id = $6' : ''}
     GROUP BY 1
  )
  SELECT b.t, ${OUTCOMES.map((o) => `coalesce(a."${o}", 0) AS "${o}"`).join(', ')}, a.p50, a.p99
    FROM b LEFT JOIN a ON a.t = b.t
   ORDER BY b.t`;

// A minute some process sampled (queue_sample_minutes) with no row for this scope had nothing pending: 0, not a gap.
const QUEUE_SQL = `
  WITH b AS (
    SELECT generate_series($3::timestamptz, $4::timestamptz - $5::interval, $5::interval) AS t
  ), m AS (
    SELECT date_bin($5::interval, m.minute, $3::timestamptz) AS t, max(coalesce(s.pending, 0))::int AS pending, max(coalesce(s.due, 0))::int AS due,
           count(*)::int AS samples
      FROM queue_sample_minutes m
      LEFT JOIN queue_samples s ON s.operator_id = $1 AND s.environment = $2 AND s.endpoint_id = $6 AND s.minute = m.minute
     WHERE m.minute >= $3 AND m.minute < $4
     GROUP BY 1
  )
  SELECT b.t, m.pending, m.due, coalesce(m.samples, 0) AS samples FROM b LEFT JOIN m ON m.t = b.t ORDER BY b.t`;

type AttemptRow = Record<Outcome, number> & { t: Date; p50: number | null; p99: number | null };

/**
 * A bucket of the attempt series is settled once it ended this long ago: an attempt's row carries its start time and
 * is usually written when its outcome batch is, within the attempt's timeout (15 s by default) and a batch of that; a
 * worker that dies mid-attempt writes no row at all (the delivery is claimed again later, with a new start). Past
 * this, little more arrives in the bucket, so it is kept in memory rather than read on every refresh. Little, not
 * nothing: the outcome writer retries a batch for as long as the database is unreachable, CASHWIRE_WEBHOOK_TIMEOUT_MS
 * has no upper bound, and a worker host's clock may run behind; so a kept bucket is only trusted for {@link KEEP_MS}.
 */
export const SETTLED_MS = 5 * 60_000;
/**
 * How long (of `now`, the injected clock) a settled bucket read from the database is trusted before it is read again:
 * an attempt written late (long after its started_at) shows within 10 minutes. Once a kept bucket is past this, it and
 * every bucket after it are read again (about one full read of the window per scope every 10 minutes; the refreshes
 * in between read only the last minutes).
 */
export const KEEP_MS = 10 * 60_000;
/** Scopes whose settled buckets this process keeps (the least recently asked for goes first). */
const CACHED_SCOPES = 500;
/** A settled bucket's row, and when (by `now`) it was read from the database. */
type Kept = { row: AttemptRow; readAt: number };
/** Settled buckets per database pool (a test's server, a process's pool), per scope and bucket width: start → kept row. */
const settled = new WeakMap<object, Map<string, Map<number, Kept>>>();

/** Whether a bucket kept since `readAt` may still be shown without reading it again at `now` (a clock stepped back: no). */
const trusted = (readAt: number, now: number): boolean => now >= readAt && now - readAt < KEEP_MS;

/**
 * The attempt series of [from, to), one row per bucket. The settled buckets this process has read in the last
 * {@link KEEP_MS} come from memory: a chart left open (it refreshes every 20 s) reads only the buckets of the last
 * minutes again, not the whole window (at 400,000 attempts an hour, 1 h of buckets took about 300 ms; the last few
 * take a few ms).
 */
async function attemptRows(db: Queryable, scope: StatsScope, from: Date, to: Date, bucketMs: number, now: Date): Promise<AttemptRow[]> {
  let byPool = settled.get(db);
  if (!byPool) settled.set(db, (byPool = new Map()));
  const key = `${scope.operatorId}|${scope.environment}|${scope.endpointId ?? ''}|${bucketMs}`;
  const known = byPool.get(key) ?? new Map<number, Kept>();
  byPool.delete(key);
  byPool.set(key, known);
  if (byPool.size > CACHED_SCOPES) byPool.delete(byPool.keys().next().value!);
  // The first bucket not known (or kept too long): everything from there on is read (the ones shown from memory form
  // a run from the window's start).
  let start = from.getTime();
  for (let k: Kept | undefined; start < to.getTime() && (k = known.get(start)) && trusted(k.readAt, now.getTime());) start += bucketMs;
  const byEndpoint = scope.endpointId !== undefined;
  const base = [scope.operatorId, scope.environment, new Date(start), to, `${bucketMs / 1000} seconds`];
  const fresh = start < to.getTime() ? (await db.query<AttemptRow>(attemptsSql(byEndpoint), byEndpoint ? [...base, scope.endpointId] : base)).rows : [];
  for (const r of fresh) if (r.t.getTime() + bucketMs <= now.getTime() - SETTLED_MS) known.set(r.t.getTime(), { row: r, readAt: now.getTime() });
  for (const t of known.keys()) if (t < from.getTime()) known.delete(t);
  const rows: AttemptRow[] = [];
  for (let t = from.getTime(); t < start; t += bucketMs) rows.push(known.get(t)!.row);
  return rows.concat(fresh);
}

/** Forgets the settled buckets kept for a pool: for tests that rewrite the attempt log's past (TRUNCATE). */
export function forgetSettledStats(db: Queryable): void {
  settled.delete(db);
}

/** The charts' series for one scope over one window ending at `now`: two statements, run together. */
export async function deliveryStats(db: Queryable, scope: StatsScope, window: WindowName, now: Date): Promise<DeliveryStats> {
  const { from, to, bucketMs } = bucketsOf(window, now);
  const interval = `${bucketMs / 1000} seconds`;
  const base = [scope.operatorId, scope.environment, from, to, interval];
  const [attRows, q] = await Promise.all([
    attemptRows(db, scope, from, to, bucketMs, now),
    db.query<{ t: Date; pending: number | null; due: number | null; samples: number }>(QUEUE_SQL, [...base, scope.endpointId ?? ALL]),
  ]);
  const att = { rows: attRows };
  const attempts = Object.fromEntries(OUTCOMES.map((o) => [o, att.rows.map((r) => r[o])])) as Record<Outcome, number[]>;
  const total = att.rows.reduce((n, r) => n + OUTCOMES.reduce((k, o) => k + r[o], 0), 0);
  return {
    window,
    as_of: now.toISOString(),
    bucket_seconds: bucketMs / 1000,
    from: from.toISOString(),
    to: to.toISOString(),
    endpoint: scope.endpointId ?? 'all',
    buckets: att.rows.map((r) => r.t.toISOString()),
    attempts,
    latency: { p50: att.rows.map((r) => r.p50), p99: att.rows.map((r) => r.p99) },
    queue: { pending: q.rows.map((r) => r.pending), due: q.rows.map((r) => r.due) },
    totals: { attempts: total, samples: q.rows.reduce((n, r) => n + r.samples, 0) },
  };
}

/**
 * Writes the queue's sample of the minute `at` is in, unless a process wrote it already: one statement that claims
 * the minute (ON CONFLICT DO NOTHING: a second process waits for the first one's commit, then finds it taken) and,
 * only if it won, counts the pending deliveries. The count reads the lane index (deliveries_lane: operator, lane, due
 * time, pending rows only) grouped by lane, then maps each lane to its environment and endpoint: an endpoint's lane
 * (`ep:<id>`) through the endpoints table, a payment URL's (`url:<environment>:<origin>`) from its name. Due counts
 * the deliveries whose time has come and whose endpoint does not hold them (disabled, or its circuit open), as
 * /metrics does. One row per (operator, environment, endpoint) with something pending, and one per (operator,
 * environment) for all. Returns whether this call wrote the minute, and how many rows.
 */
export async function sampleQueue(db: Queryable, at: Date): Promise<{ wrote: boolean; rows: number }> {
  const r = await db.query<{ won: boolean; n: number }>(
    `WITH won AS (
       INSERT INTO queue_sample_minutes (minute, sampled_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING minute
     ), lanes AS (
       SELECT operator_id, lane, count(*)::int AS pending, count(*) FILTER (WHERE next_attempt_at <= $2)::int AS due
         FROM deliveries
        WHERE status = 'pending' AND EXISTS (SELECT 1 FROM won)
        GROUP BY operator_id, lane
     ), scoped AS (
       SELECT l.operator_id,
              CASE WHEN e.id IS NOT NULL THEN e.environment ELSE split_part(l.lane, ':', 2) END AS environment,
              e.id AS endpoint_id,
              l.pending,
              CASE WHEN e.id IS NOT NULL AND ${endpointHolds('e', '$2')} THEN 0 ELSE l.due END AS due
         FROM lanes l
         LEFT JOIN endpoints e ON l.lane LIKE 'ep:%' AND e.operator_id = l.operator_id AND e.id = substr(l.lane, 4)
     ), ins AS (
       INSERT INTO queue_samples (operator_id, environment, endpoint_id, minute, pending, due)
       SELECT operator_id, environment, coalesce(endpoint_id, '${ALL}'), $1, sum(pending), sum(due)
         FROM scoped
        WHERE environment IN ('sandbox', 'production')
        GROUP BY GROUPING SETS ((operator_id, environment, endpoint_id), (operator_id, environment))
       HAVING GROUPING(endpoint_id) = 1 OR endpoint_id IS NOT NULL
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM won) AS won, (SELECT count(*)::int FROM ins) AS n`,
    [minuteOf(at), at],
  );
  return { wrote: r.rows[0]!.won, rows: r.rows[0]!.n };
}

/** Retention: deletes up to `batch` samples (and claimed minutes) older than `cutoff`; returns how many samples. */
export async function pruneQueueSamples(db: Queryable, cutoff: Date, batch: number): Promise<number> {
  const r = await db.query(`DELETE FROM queue_samples WHERE ctid = ANY (ARRAY(SELECT ctid FROM queue_samples WHERE minute < $1 LIMIT $2))`, [cutoff, batch]);
  const n = r.rowCount ?? 0;
  // The claimed minutes go once their samples are gone (at most 1440 a day: one statement).
  if (n < batch) await db.query('DELETE FROM queue_sample_minutes WHERE minute < $1', [cutoff]);
  return n;
}
