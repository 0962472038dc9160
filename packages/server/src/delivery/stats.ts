/**
 * Delivery statistics for the dashboard's charts (issue 16) and GET /webhook/stats: attempts per time bucket by
 * outcome, attempt latency p50/p99, and queue depth, for one operator's environment, overall or for one endpoint,
 * across every worker process (the attempt log and the samples are in the database, whoever wrote them).
 *
 * The attempt series are computed in SQL from the attempt log (delivery_attempts, each attempt with its delivery's
 * environment and endpoint), a minute at a time: a background job counts each minute once it has ended
 * ({@link countDueMinutes}, into attempt_rollups, migration 023), and a chart reads one row per counted minute plus
 * the attempts of the minutes not counted yet (the last two or three). Its buckets are sums of minutes
 * (domain/latency-histogram.ts). Every read starts with operator_id (the Citus distribution column) and always has
 * the environment: a production session never sees sandbox numbers. A listen's forwards (lane `cli`, the CLI's, not
 * the engine's) are left out.
 *
 * Queue depth cannot be read from the past: it is sampled (migration 019). This module owns every statement on
 * queue_sample_minutes, queue_samples, attempt_minutes and attempt_rollups: the sample and the counts, the reads and
 * the pruning.
 */
import type { Queryable } from '../db/pool.js';
import { bucketsFromMinutes, histSql, OUTCOMES, type BucketRow, type MinuteRow, type Outcome } from '../domain/latency-histogram.js';
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
export { OUTCOMES, type Outcome };

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

// --- The attempt log, a minute at a time (migration 023) -------------------------------------------------------------

/** A minute is counted (pass 1) once it ended this long ago: an attempt's row is written when its outcome batch is,
 * within the attempt's timeout (15 s by default) and a batch of that; a worker that dies mid-attempt writes none. */
export const COUNT_AFTER_MS = 2 * 60_000;
/** And counted again (pass 2) once it ended this long ago: an attempt written late (an outcome batch retried while
 * the database was away, a worker whose clock runs behind) shows then. One written later still is not counted. */
export const RECOUNT_AFTER_MS = 10 * 60_000;
/**
 * When a minute is counted, for a webhook timeout of `totalTimeoutMs` (CASHWIRE_WEBHOOK_TIMEOUT_MS): an attempt's row
 * comes at most its timeout and an outcome batch after its start, so a longer timeout waits longer (a minute of slack
 * past it), and the second count comes 8 minutes after the first at least.
 */
export function countDelays(totalTimeoutMs = 15_000): { afterMs: number; recountMs: number } {
  const afterMs = Math.max(COUNT_AFTER_MS, totalTimeoutMs + 60_000);
  return { afterMs, recountMs: Math.max(RECOUNT_AFTER_MS, afterMs + 8 * 60_000) };
}

/** How far back the job counts minutes not counted yet (a process started after a pause): the longest window, and a
 * minute more. */
export const COUNT_BACK_MS = 24 * 3_600_000 + 60_000;

const COUNTS = OUTCOMES.map((o) => `count(*) FILTER (WHERE outcome = '${o}')::int AS "${o}"`).join(', ');
const PERCENTILES = 'percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99';
/**
 * An attempt's delivery (its environment, endpoint and lane): looked up by primary key, once per attempt (OFFSET 0
 * keeps the planner from turning it into a hash join, which reads every delivery of the operator: the cost of a chart
 * would then grow with the account's history instead of the window's attempts).
 */
const DELIVERY_OF = (op: string) =>
  `CROSS JOIN LATERAL (SELECT d.environment, d.endpoint_id, d.lane FROM deliveries d WHERE d.operator_id = ${op} AND d.id = a.delivery_id OFFSET 0) d`;
/** An attempt's delivery as a plain join, which the planner may make a hash join of (for a long range: cheaper than
 * a lookup per attempt). */
const JOIN_DELIVERY = 'JOIN deliveries d ON d.operator_id = a.operator_id AND d.id = a.delivery_id';

/**
 * Counts the minute starting at `minute` into attempt_rollups, for every operator, environment and endpoint (and
 * all the deliveries of each environment, endpoint_id ''), unless a process counted this pass of it already: one
 * statement that claims (minute, pass) in attempt_minutes and, only if it won, reads the minute's attempts. A second
 * pass replaces a row only with one that counts at least as many attempts (attempts are only ever added). Listen
 * forwards (lane `cli`) are left out, as everywhere in the charts. Returns whether this call counted, and how many rows.
 */
export async function countMinute(db: Queryable, minute: Date, pass: 1 | 2, now: Date): Promise<{ counted: boolean; rows: number }> {
  const sum = (t: string) => OUTCOMES.map((o) => `${t}."${o}"`).join(' + ');
  const r = await db.query<{ won: boolean; n: number }>(
    `WITH won AS (
       INSERT INTO attempt_minutes (minute, pass, counted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING minute
     ), src AS MATERIALIZED (
       SELECT a.operator_id, d.environment, d.endpoint_id, a.outcome, a.latency_ms, ${histSql('a.latency_ms')} AS h
         FROM delivery_attempts a
         ${DELIVERY_OF('a.operator_id')}
        WHERE EXISTS (SELECT 1 FROM won) AND a.started_at >= $1 AND a.started_at < $1::timestamptz + interval '1 minute'
          AND d.lane IS DISTINCT FROM 'cli' AND d.environment IN ('sandbox', 'production')
     ), agg AS (
       SELECT operator_id, environment, coalesce(endpoint_id, '${ALL}') AS endpoint_key, ${COUNTS}, ${PERCENTILES}
         FROM src
        GROUP BY GROUPING SETS ((operator_id, environment, endpoint_id), (operator_id, environment))
       HAVING GROUPING(endpoint_id) = 1 OR endpoint_id IS NOT NULL
     ), hb AS (
       SELECT operator_id, environment, coalesce(endpoint_id, '${ALL}') AS endpoint_key, h, count(*)::int AS n
         FROM src WHERE h IS NOT NULL
        GROUP BY GROUPING SETS ((operator_id, environment, endpoint_id, h), (operator_id, environment, h))
       HAVING GROUPING(endpoint_id) = 1 OR endpoint_id IS NOT NULL
     ), hist AS (
       SELECT operator_id, environment, endpoint_key, array_agg(h::smallint ORDER BY h) AS hist_idx, array_agg(n ORDER BY h) AS hist_n
         FROM hb GROUP BY 1, 2, 3
     ), ins AS (
       INSERT INTO attempt_rollups AS r (operator_id, environment, endpoint_id, minute, ${OUTCOMES.join(', ')}, p50, p99, hist_idx, hist_n)
       SELECT g.operator_id, g.environment, g.endpoint_key, $1, ${OUTCOMES.map((o) => `g."${o}"`).join(', ')}, g.p50, g.p99,
              coalesce(h.hist_idx, '{}'), coalesce(h.hist_n, '{}')
         FROM agg g LEFT JOIN hist h USING (operator_id, environment, endpoint_key)
       ON CONFLICT (operator_id, environment, endpoint_id, minute) DO UPDATE
          SET ${OUTCOMES.map((o) => `"${o}" = excluded."${o}"`).join(', ')}, p50 = excluded.p50, p99 = excluded.p99,
              hist_idx = excluded.hist_idx, hist_n = excluded.hist_n
        WHERE ${sum('excluded')} >= ${sum('r')}
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM won) AS won, (SELECT count(*)::int FROM ins) AS n`,
    [minute, pass, now],
  );
  return { counted: r.rows[0]!.won, rows: r.rows[0]!.n };
}

/**
 * The (minute, pass) counts due at `now`, newest first, at most `limit`: pass 1 of every minute that ended
 * {@link COUNT_AFTER_MS} ago or more, back to {@link COUNT_BACK_MS} (none while the log is empty); pass 2 of those
 * that ended {@link RECOUNT_AFTER_MS} ago, unless their pass 1 was itself that late (both longer for a longer webhook
 * timeout: {@link countDelays}). `now` is the jobs' clock, which follows the database's (db/clock-sync.ts), so
 * processes whose hosts' clocks disagree agree on what is due.
 */
export async function dueMinutes(db: Queryable, now: Date, limit: number, delays = countDelays()): Promise<{ minute: Date; pass: 1 | 2 }[]> {
  const r = await db.query<{ minute: Date; pass: 1 | 2 }>(
    `WITH bounds AS (
       -- No attempt at all: nothing to count yet. Once there is one, every minute back a day, those before the
       -- oldest attempt too (empty, cheap to count): a 24 h chart then reads only counted minutes.
       SELECT CASE WHEN EXISTS (SELECT 1 FROM delivery_attempts) THEN date_bin('1 minute', $1::timestamptz - $2 * interval '1 millisecond', TIMESTAMPTZ 'epoch') END AS lo
     )
     SELECT m AS minute, 1 AS pass
       FROM bounds, generate_series(bounds.lo, date_bin('1 minute', $1::timestamptz - $3 * interval '1 millisecond', TIMESTAMPTZ 'epoch') - interval '1 minute', interval '1 minute') m
      WHERE NOT EXISTS (SELECT 1 FROM attempt_minutes c WHERE c.minute = m AND c.pass = 1)
     UNION ALL
     SELECT c.minute, 2
       FROM bounds, attempt_minutes c
      WHERE c.pass = 1 AND c.minute >= bounds.lo
        AND c.minute + interval '1 minute' + $4 * interval '1 millisecond' <= $1
        AND c.counted_at < c.minute + interval '1 minute' + $4 * interval '1 millisecond'
        AND NOT EXISTS (SELECT 1 FROM attempt_minutes c2 WHERE c2.minute = c.minute AND c2.pass = 2)
      ORDER BY minute DESC, pass
      LIMIT $5`,
    [now, COUNT_BACK_MS, delays.afterMs, delays.recountMs, limit],
  );
  return r.rows.map((x) => ({ minute: x.minute, pass: Number(x.pass) as 1 | 2 }));
}

/**
 * One run of the counting job: the due counts, newest first, until none is left, `max` were made or `budgetMs` of
 * `elapsed()` went by (a process catching up on a day of minutes spreads it over several runs). Returns how many
 * this process counted (another process may have taken some).
 */
export async function countDueMinutes(db: Queryable, now: Date, o: { max?: number; budgetMs?: number; elapsed?: () => number; delays?: { afterMs: number; recountMs: number } } = {}): Promise<number> {
  const max = o.max ?? 120;
  const t0 = performance.now();
  const elapsed = o.elapsed ?? (() => performance.now() - t0);
  let counted = 0;
  for (const { minute, pass } of await dueMinutes(db, now, max, o.delays)) {
    if (elapsed() >= (o.budgetMs ?? 10_000)) break;
    if ((await countMinute(db, minute, pass, now)).counted) counted++;
  }
  return counted;
}

/** When the minutes not counted are only the last few (since this many minutes before now's: the usual two or three),
 * a chart reads their attempts with each attempt's delivery by primary key; from further back (a stretch no process
 * counted: a first start, the counts turned off) in one join that the planner chooses (a hash join over the
 * operator's deliveries beats 100,000 lookups). */
export const LOOKUP_MINUTES = 15;

/** The columns of a minute row, from the attempts of `src` (minute, outcome, latency_ms, h), one row per minute. */
const minuteRowsOf = (src: string) => `
  WITH src AS MATERIALIZED (${src}
  ), raw AS (
    SELECT minute, ${COUNTS}, ${PERCENTILES} FROM src GROUP BY minute
  ), rawh AS (
    SELECT minute, array_agg(h::smallint ORDER BY h) AS hist_idx, array_agg(n ORDER BY h) AS hist_n
      FROM (SELECT minute, h, count(*)::int AS n FROM src WHERE h IS NOT NULL GROUP BY 1, 2) z
     GROUP BY minute
  )
  SELECT r.minute, ${OUTCOMES.map((o) => `r."${o}"`).join(', ')}, r.p50, r.p99, coalesce(h.hist_idx, '{}') AS hist_idx, coalesce(h.hist_n, '{}') AS hist_n
    FROM raw r LEFT JOIN rawh h USING (minute)`;

/**
 * The minutes of one scope in [$3, $4), read from the attempt log (the caller leaves out those that are counted).
 * `lookup`: each attempt's delivery by primary key (OFFSET 0 keeps the planner from a hash join, which reads every
 * delivery of the operator: the cost would grow with the account's history instead of the attempts read); `range`:
 * a plain join, the planner's choice. The bounds are constants, so the planner sees how short the range is and takes
 * the started_at index. The endpoint, when there is one, is $5.
 */
export const rawMinutesSql = (byEndpoint: boolean, how: 'lookup' | 'range') => minuteRowsOf(`
    SELECT date_bin('1 minute', a.started_at, TIMESTAMPTZ 'epoch') AS minute, a.outcome, a.latency_ms, ${histSql('a.latency_ms')} AS h
      FROM delivery_attempts a
      ${how === 'lookup' ? DELIVERY_OF('$1') : JOIN_DELIVERY}
     WHERE a.operator_id = $1${how === 'range' ? ' AND d.operator_id = $1' : ''} AND d.environment = $2 AND a.started_at >= $3 AND a.started_at < $4
       AND d.lane IS DISTINCT FROM 'cli'${byEndpoint ? ' AND d.endpoint_id = $5' : ''}`);

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

/**
 * A window with no minute counted (the counts off, or not started yet): its buckets straight from the attempt log,
 * exact percentiles over each bucket, in one join the planner chooses. $3 from, $4 to, $5 the bucket width, $6 the
 * endpoint.
 */
export const bucketsSql = (byEndpoint: boolean) => `
  SELECT date_bin($5::interval, a.started_at, $3::timestamptz) AS t, ${COUNTS}, ${PERCENTILES}
    FROM delivery_attempts a
    ${JOIN_DELIVERY}
   WHERE a.operator_id = $1 AND d.operator_id = $1 AND d.environment = $2 AND a.started_at >= $3 AND a.started_at < $4
     AND d.lane IS DISTINCT FROM 'cli'${byEndpoint ? ' AND d.endpoint_id = $6' : ''}
   GROUP BY 1`;

/**
 * The counted minutes of [$4, $5) (claim rows: counts null) and the scope's rows of them, in one statement (one
 * snapshot) and without a join: two index range scans, whatever the planner thinks of a table just filled.
 */
export const COUNTED_SQL = `
  SELECT minute, true AS claim, ${OUTCOMES.map((o) => `NULL::int AS "${o}"`).join(', ')}, NULL::int AS p50, NULL::int AS p99, NULL::smallint[] AS hist_idx, NULL::int[] AS hist_n
    FROM attempt_minutes WHERE pass = 1 AND minute >= $4 AND minute < $5
  UNION ALL
  SELECT minute, false, ${OUTCOMES.map((o) => `"${o}"`).join(', ')}, p50, p99, hist_idx, hist_n
    FROM attempt_rollups WHERE operator_id = $1 AND environment = $2 AND endpoint_id = $3 AND minute >= $4 AND minute < $5`;

/**
 * The attempt series of [from, to), one row per bucket, from its minutes: the counted ones from attempt_rollups, the
 * others (the last two or three; more after a stretch no process counted) from the attempt log (rawMinutesSql).
 */
async function attemptRows(db: Queryable, scope: StatsScope, from: Date, to: Date, bucketMs: number, now: Date): Promise<BucketRow[]> {
  const byEndpoint = scope.endpointId !== undefined;
  // The counted minutes and their rows in one statement, one snapshot: read apart, a minute counted between the two
  // reads would be taken for counted with no row (zeros). A counted minute with no row for the scope had no attempt.
  const { rows: read } = await db.query<MinuteRow & { claim: boolean }>(COUNTED_SQL, [scope.operatorId, scope.environment, scope.endpointId ?? ALL, from, to]);
  const isCounted = new Set(read.filter((r) => r.claim).map((r) => r.minute.getTime()));
  // A row of a minute whose claim is gone (retention deletes the claim first) is not read: the minute is read from the log.
  const counted = read.filter((r) => !r.claim && isCounted.has(r.minute.getTime()));
  if (isCounted.size === 0) {
    const params = [scope.operatorId, scope.environment, from, to, `${bucketMs / 1000} seconds`, ...(byEndpoint ? [scope.endpointId] : [])];
    const byT = new Map((await db.query<BucketRow>(bucketsSql(byEndpoint), params)).rows.map((r) => [r.t.getTime(), r]));
    return bucketsFromMinutes([], from.getTime(), to.getTime(), bucketMs).map((empty) => byT.get(empty.t.getTime()) ?? empty);
  }
  let firstOpen: number | undefined;
  for (let m = from.getTime(); m < to.getTime() && firstOpen === undefined; m += 60_000) if (!isCounted.has(m)) firstOpen = m;
  let raw: MinuteRow[] = [];
  if (firstOpen !== undefined) {
    const how = firstOpen > minuteOf(now).getTime() - LOOKUP_MINUTES * 60_000 ? 'lookup' : 'range';
    const params = [scope.operatorId, scope.environment, new Date(firstOpen), to, ...(byEndpoint ? [scope.endpointId] : [])];
    // A minute counted since the statement above is read from the log here: the same numbers.
    raw = (await db.query<MinuteRow>(rawMinutesSql(byEndpoint, how), params)).rows.filter((r) => !isCounted.has(r.minute.getTime()));
  }
  return bucketsFromMinutes([...counted, ...raw], from.getTime(), to.getTime(), bucketMs);
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

/**
 * Retention: deletes the attempt log's counts older than `cutoff` (never within {@link COUNT_BACK_MS} of `now`, where
 * the job would count them again), up to `batch` rows a call. The claimed minutes go first: a minute whose claim is
 * gone is read from the log (its rows, if some are still there, are not read), never as a counted minute with no row.
 */
export async function pruneAttemptRollups(db: Queryable, cutoff: Date, batch: number, now = new Date()): Promise<number> {
  const before = new Date(Math.min(cutoff.getTime(), now.getTime() - COUNT_BACK_MS));
  await db.query('DELETE FROM attempt_minutes WHERE minute < $1', [before]);
  const r = await db.query(`DELETE FROM attempt_rollups WHERE ctid = ANY (ARRAY(SELECT ctid FROM attempt_rollups WHERE minute < $1 LIMIT $2))`, [before, batch]);
  return r.rowCount ?? 0;
}

/** Retention: deletes up to `batch` samples (and claimed minutes) older than `cutoff`; returns how many samples. */
export async function pruneQueueSamples(db: Queryable, cutoff: Date, batch: number): Promise<number> {
  const r = await db.query(`DELETE FROM queue_samples WHERE ctid = ANY (ARRAY(SELECT ctid FROM queue_samples WHERE minute < $1 LIMIT $2))`, [cutoff, batch]);
  const n = r.rowCount ?? 0;
  // The claimed minutes go once their samples are gone (at most 1440 a day: one statement).
  if (n < batch) await db.query('DELETE FROM queue_sample_minutes WHERE minute < $1', [cutoff]);
  return n;
}
