/**
 * The charts' latency histogram and buckets (domain/latency-histogram.ts): the SQL bucket of a latency is the one the
 * code computes, for every latency an attempt can have; percentiles read from it follow percentile_disc's ranks and
 * stay within 5% of the value; buckets add up their minutes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketsFromMinutes, histIndex, histPercentile, histSql, histValue, HIST_LAST, type MinuteRow } from '../src/domain/latency-histogram.js';
import { ADMIN_URL } from './helpers.js';

let c: pg.Client;
beforeAll(async () => {
  c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
});
afterAll(async () => {
  await c?.end();
});

describe('the latency histogram', () => {
  it('puts a latency in the same bucket in SQL as in the code, from 0 ms to days', async () => {
    const values = [0, 1, 2, 3, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 15_000, 30_000, 3_600_000, 2_147_483_647];
    for (let v = 0; v <= 20_000; v += 1) values.push(v);
    for (let v = 20_000; v < 5_000_000; v = Math.ceil(v * 1.013)) values.push(v);
    const { rows } = await c.query(`SELECT v, ${histSql('v')} AS h FROM unnest($1::int[]) v`, [values]);
    const wrong = rows.filter((r) => r.h !== histIndex(r.v));
    expect(wrong).toEqual([]);
    expect((await c.query(`SELECT ${histSql('NULL::int')} AS h`)).rows[0].h).toBeNull();
    expect(histIndex(2_147_483_647)).toBe(HIST_LAST);
  });

  it('stands for a value within 5% of every latency in its bucket, and exactly for 1 to 10 ms', () => {
    for (let v = 1; v <= 10; v++) expect(histValue(histIndex(v))).toBe(v);
    for (let v = 11; v < 3_000_000; v = Math.ceil(v * 1.01)) {
      expect(Math.abs(histValue(histIndex(v)) - v) / v).toBeLessThanOrEqual(0.05 + 0.5 / v);
    }
    expect(histValue(histIndex(0))).toBe(0);
  });

  it('reads percentiles at percentile_disc\'s ranks', async () => {
    // Values that are their own bucket's value, so the histogram's answer must equal PostgreSQL's exactly.
    const values = [1, 1, 2, 3, 3, 3, 5, 7, 8, 10, 10, 10, 10, 4, 6, 9, 2, 0, 0];
    const h = new Map<number, number>();
    for (const v of values) h.set(histIndex(v), (h.get(histIndex(v)) ?? 0) + 1);
    for (const p of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
      const { rows } = await c.query('SELECT percentile_disc($2::float8) WITHIN GROUP (ORDER BY v) AS x FROM unnest($1::int[]) v', [values, p]);
      expect([p, histPercentile(h, p)]).toEqual([p, rows[0].x]);
    }
    expect(histPercentile(new Map(), 0.5)).toBeNull();
  });
});

describe('buckets from minutes', () => {
  const minute = (t: number, o: Partial<MinuteRow>): MinuteRow =>
    ({ minute: new Date(t), succeeded: 0, retry: 0, failed: 0, expired: 0, held: 0, p50: null, p99: null, hist_idx: [], hist_n: [], ...o });
  const M = 60_000;

  it('adds up the minutes of each bucket; one minute with latencies keeps its exact percentiles; an empty bucket is zeros', () => {
    const rows = [
      minute(0, { succeeded: 2, retry: 1, p50: 12, p99: 40, hist_idx: [histIndex(12), histIndex(40)], hist_n: [2, 1] }),
      minute(2 * M, { failed: 1 }), // an attempt without latency
      minute(5 * M, { held: 1, p50: 7, p99: 7, hist_idx: [histIndex(7)], hist_n: [1] }),
      minute(6 * M, { succeeded: 1, p50: 9, p99: 9, hist_idx: [histIndex(9)], hist_n: [1] }),
      minute(20 * M, { succeeded: 5 }), // outside [0, 15 min)
    ];
    const b = bucketsFromMinutes(rows, 0, 15 * M, 5 * M);
    expect(b).toEqual([
      { t: new Date(0), succeeded: 2, retry: 1, failed: 1, expired: 0, held: 0, p50: 12, p99: 40 },
      { t: new Date(5 * M), succeeded: 1, retry: 0, failed: 0, expired: 0, held: 1, p50: 7, p99: 9 },
      { t: new Date(10 * M), succeeded: 0, retry: 0, failed: 0, expired: 0, held: 0, p50: null, p99: null },
    ]);
  });
});
