/**
 * The charts' minutes and buckets (delivery/stats.ts), without I/O: a minute of attempts is its counts by outcome,
 * its exact latency p50/p99, and a latency histogram; a chart's bucket (1, 5 or 15 minutes) is the sum of its minutes,
 * with the percentiles of the merged histograms (exact when a single minute of the bucket had attempts).
 *
 * The histogram's buckets grow by 10%: bucket 0 holds 0 ms, bucket i >= 1 holds [1.1^(i-1), 1.1^i) ms, and the last
 * ({@link HIST_LAST}, from about 65 minutes on) everything above. A percentile read from it is the geometric middle
 * of its bucket, rounded to the millisecond: within 5% (and that half millisecond) of an attempt's latency that falls
 * in the same bucket, and exact for 1 to 10 ms.
 */

export const HIST_RATIO = 1.1;
export const HIST_LAST = 160;

/**
 * The SQL expression of the bucket of `col` (integer milliseconds), null for null. The same as {@link histIndex}:
 * ln() of an integer is computed in double precision on both sides.
 */
export const histSql = (col: string) =>
  `CASE WHEN ${col} IS NULL THEN NULL WHEN ${col} < 1 THEN 0 ELSE least(${HIST_LAST}, floor(ln(${col}::float8) / ln(${HIST_RATIO}::float8))::int + 1) END`;

/** The histogram bucket of a latency in milliseconds. */
export function histIndex(ms: number): number {
  if (ms < 1) return 0;
  return Math.min(HIST_LAST, Math.floor(Math.log(ms) / Math.log(HIST_RATIO)) + 1);
}

/** The value a bucket stands for: 0, or the geometric middle of its range, rounded to the millisecond. */
export function histValue(i: number): number {
  return i <= 0 ? 0 : Math.round(HIST_RATIO ** (i - 0.5));
}

/** A sparse histogram: bucket index → count. */
export type Histogram = Map<number, number>;

/** Adds the sparse arrays of a row (indexes ascending, their counts) to `into`. */
export function addHistogram(into: Histogram, idx: readonly number[], n: readonly number[]): Histogram {
  idx.forEach((i, k) => into.set(i, (into.get(i) ?? 0) + n[k]!));
  return into;
}

/**
 * The percentile `p` (0 < p <= 1) of a histogram, as percentile_disc computes it on the values themselves: the
 * smallest value whose cumulative share reaches p (the ceil(p * n)-th value); null when it is empty.
 */
export function histPercentile(h: Histogram, p: number): number | null {
  let total = 0;
  for (const c of h.values()) total += c;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total - 1e-9));
  let seen = 0;
  for (const i of [...h.keys()].sort((a, b) => a - b)) {
    seen += h.get(i)!;
    if (seen >= rank) return histValue(i);
  }
  return histValue(Math.max(...h.keys()));
}

export const OUTCOMES = ['succeeded', 'retry', 'failed', 'expired', 'held'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** One minute of one scope: as counted into attempt_rollups, or read from the attempt log for a minute not counted. */
export type MinuteRow = Record<Outcome, number> & { minute: Date; p50: number | null; p99: number | null; hist_idx: number[]; hist_n: number[] };

/** One bucket of a chart. */
export type BucketRow = Record<Outcome, number> & { t: Date; p50: number | null; p99: number | null };

/**
 * The buckets of [from, to), `bucketMs` wide, from the minutes in them (a minute outside is ignored; a minute may
 * appear once only). A bucket with no minute is all zeros, its percentiles null.
 */
export function bucketsFromMinutes(minutes: readonly MinuteRow[], from: number, to: number, bucketMs: number): BucketRow[] {
  const count = Math.max(0, Math.ceil((to - from) / bucketMs));
  const groups: MinuteRow[][] = Array.from({ length: count }, () => []);
  for (const m of minutes) {
    const k = Math.floor((m.minute.getTime() - from) / bucketMs);
    if (k >= 0 && k < count) groups[k]!.push(m);
  }
  return groups.map((rows, k) => {
    const b = { t: new Date(from + k * bucketMs), succeeded: 0, retry: 0, failed: 0, expired: 0, held: 0, p50: null, p99: null } as BucketRow;
    for (const r of rows) for (const o of OUTCOMES) b[o] += r[o];
    const timed = rows.filter((r) => r.hist_idx.length > 0);
    if (timed.length === 1) {
      b.p50 = timed[0]!.p50;
      b.p99 = timed[0]!.p99;
    } else if (timed.length > 1) {
      const h: Histogram = new Map();
      for (const r of timed) addHistogram(h, r.hist_idx, r.hist_n);
      b.p50 = histPercentile(h, 0.5);
      b.p99 = histPercentile(h, 0.99);
    }
    return b;
  });
}
