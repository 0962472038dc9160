/**
 * The charts' SQL (delivery/stats.ts): buckets, outcome counts, latency percentiles and queue-depth samples, scoped to
 * one operator's environment (and endpoint), on rows written straight into the attempt log so that every expected
 * number is known; the same series from the per-minute counts (attempt_rollups) as from the log, which minutes are due
 * to be counted and when again (an attempt written late still shows), one count per pass whatever the processes. The
 * sampler: two processes with clocks a few seconds apart write one sample a minute; runs are aimed at the minute's
 * boundaries (no drift), one timer whatever start() is called. Retention prunes samples past their own age.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { ManualClock } from '../src/clock.js';
import { bucketsOf, countDelays, LOOKUP_MINUTES, OUTCOMES, countDueMinutes, countMinute, COUNT_AFTER_MS, deliveryStats, dueMinutes, minuteOf, RECOUNT_AFTER_MS, sampleQueue } from '../src/delivery/stats.js';
import { createQueueSampler, nextRunDelay, SAMPLE_OFFSET_MS, type SamplerTimers } from '../src/jobs/queue-sampler.js';
import { pruneOnce } from '../src/jobs/retention.js';
import { loadConfig } from '../src/config.js';
import { newOperator, startTestServer, type Keys, type TestServer } from './helpers.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 30); // 12:00:30: the 1h window's buckets are 11:01 .. 12:00
const MIN = 60_000;
const at = (hh: number, mm: number, ss = 0) => new Date(Date.UTC(2026, 0, 15, hh, mm, ss));
let s: TestServer;
let a: Keys;
let b: Keys;
let n = 0;

beforeAll(async () => {
  s = await startTestServer({}, new ManualClock(NOW));
  a = await newOperator(s, 'Alpha');
  b = await newOperator(s, 'Beta');
});
afterAll(async () => {
  await s?.stop();
});
beforeEach(async () => {
  s.clock.set(NOW);
  await s.running.deps.db.query('TRUNCATE delivery_attempts, deliveries, events, queue_samples, queue_sample_minutes, attempt_rollups, attempt_minutes, endpoints CASCADE');
});

const q = (sql: string, params: unknown[] = []) => s.running.deps.db.query(sql, params);

async function endpoint(op: string, env: 'sandbox' | 'production', opts: { status?: 'enabled' | 'disabled' } = {}): Promise<string> {
  const id = `ep_test${++n}`;
  await q(`INSERT INTO endpoints (operator_id, environment, id, url, events, format, payload_version, secret, status, created_at, updated_at)
           VALUES ($1, $2, $3, $4, '{*}', 'pushcash', '2024-05', 'sealed', $5, $6, $6)`, [op, env, id, `https://hooks.example/${id}`, opts.status ?? 'enabled', new Date(NOW)]);
  return id;
}

/** A delivery (with its event) of `op` in `env`, to an endpoint or to a payment's own URL (its lane `url:<env>:…`). */
async function delivery(op: string, env: 'sandbox' | 'production', opts: { endpointId?: string; status?: string; due?: Date; leased?: boolean; lane?: string } = {}): Promise<string> {
  const id = `dlv_test${++n}`;
  const ev = `evt_test${n}`;
  await q(`INSERT INTO events (operator_id, environment, id, type, data, created_at) VALUES ($1, $2, $3, 'intent.approved', '{}', $4)`, [op, env, ev, new Date(NOW - 3600_000)]);
  const url = opts.endpointId ? `https://hooks.example/${opts.endpointId}` : 'https://shop.example/hook';
  await q(`INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, status, next_attempt_at, leased_by, created_at)
           VALUES ($1, $2, $3, $4, $5, coalesce($9, cw_lane($5, $3, $6)), $6, 'pushcash', '2024-05', $7, $8, $10, $11)`,
  [op, id, env, ev, opts.endpointId ?? null, url, opts.status ?? 'succeeded', opts.due ?? new Date(NOW), opts.lane ?? null, opts.leased ? 'w1' : null, new Date(NOW - 3600_000)]);
  return id;
}

async function attempt(op: string, deliveryId: string, started: Date, outcome: string, latencyMs = 10): Promise<void> {
  const { rows } = await q('SELECT coalesce(max(attempt), 0) + 1 AS k FROM delivery_attempts WHERE operator_id = $1 AND delivery_id = $2', [op, deliveryId]);
  await q(`INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, outcome) VALUES ($1, $2, $3, 'w1', $4, $5, $6)`,
    [op, deliveryId, rows[0].k, started, latencyMs, outcome]);
}

const stats = (op: string, env: string, window: '1h' | '6h' | '24h' = '1h', endpointId?: string) =>
  deliveryStats(s.running.deps.db, { operatorId: op, environment: env, ...(endpointId ? { endpointId } : {}) }, window, s.clock.now());
const idx = (st: { buckets: string[] }, d: Date) => st.buckets.indexOf(d.toISOString());

describe('bucketsOf', () => {
  it('ends with the bucket now is in, aligned on the bucket width', () => {
    expect(bucketsOf('1h', new Date(NOW))).toEqual({ from: at(11, 1), to: at(12, 1), bucketMs: MIN, count: 60 });
    expect(bucketsOf('6h', new Date(NOW))).toEqual({ from: at(6, 5), to: at(12, 5), bucketMs: 5 * MIN, count: 72 });
    expect(bucketsOf('24h', new Date(NOW))).toEqual({ from: new Date(Date.UTC(2026, 0, 14, 12, 15)), to: at(12, 15), bucketMs: 15 * MIN, count: 96 });
  });
});

describe('attempts per bucket', () => {
  it('counts each outcome in its minute, over exactly the window, with a zero in every empty bucket', async () => {
    const d1 = await delivery(a.id, 'sandbox');
    const d2 = await delivery(a.id, 'sandbox');
    await attempt(a.id, d1, at(11, 58, 1), 'retry');
    await attempt(a.id, d1, at(11, 58, 59), 'succeeded');
    await attempt(a.id, d2, at(11, 58, 30), 'succeeded');
    await attempt(a.id, d2, at(12, 0, 0), 'failed');
    await attempt(a.id, d2, at(12, 0, 29), 'expired');
    await attempt(a.id, d2, at(12, 0, 30), 'held');
    await attempt(a.id, d2, at(11, 0, 59), 'succeeded'); // before the window's first bucket (11:01)
    await attempt(a.id, d2, at(12, 1, 0), 'succeeded'); // after its last (a clock ahead of ours)
    const st = await stats(a.id, 'sandbox');
    expect(st.buckets).toHaveLength(60);
    expect(st.buckets[0]).toBe(at(11, 1).toISOString());
    expect(st.buckets[59]).toBe(at(12, 0).toISOString());
    for (const series of [...Object.values(st.attempts), st.latency.p50, st.latency.p99, st.queue.pending, st.queue.due]) expect(series).toHaveLength(60);
    const m58 = idx(st, at(11, 58));
    const m00 = idx(st, at(12, 0));
    expect({ s: st.attempts.succeeded[m58], r: st.attempts.retry[m58], f: st.attempts.failed[m58] }).toEqual({ s: 2, r: 1, f: 0 });
    expect({ f: st.attempts.failed[m00], e: st.attempts.expired[m00], h: st.attempts.held[m00], s: st.attempts.succeeded[m00] }).toEqual({ f: 1, e: 1, h: 1, s: 0 });
    expect(st.totals.attempts).toBe(6);
    expect(st.attempts.succeeded[0]).toBe(0);
    expect(st.latency.p50[0]).toBeNull();
    expect(st.window).toBe('1h');
    expect(st.bucket_seconds).toBe(60);
    expect(st.endpoint).toBe('all');
  });

  it('gives p50 and p99 of the attempts of each bucket (observed latencies, percentile_disc)', async () => {
    const d = await delivery(a.id, 'sandbox');
    for (let ms = 1; ms <= 100; ms++) await attempt(a.id, d, at(11, 30, ms % 60), 'succeeded', ms);
    await attempt(a.id, d, at(11, 31), 'retry', 700);
    const st = await stats(a.id, 'sandbox');
    const i = idx(st, at(11, 30));
    expect(st.latency.p50[i]).toBe(50);
    expect(st.latency.p99[i]).toBe(99);
    expect(st.latency.p50[i + 1]).toBe(700);
    expect(st.latency.p99[i + 1]).toBe(700);
    expect(st.latency.p50[i - 1]).toBeNull();
  });

  it('counts only the operator and environment asked for, the endpoint when one is asked for, and no listen forwards', async () => {
    const ep1 = await endpoint(a.id, 'sandbox');
    const ep2 = await endpoint(a.id, 'sandbox');
    const prodEp = await endpoint(a.id, 'production');
    const t = at(11, 45, 10);
    await attempt(a.id, await delivery(a.id, 'sandbox', { endpointId: ep1 }), t, 'succeeded');
    await attempt(a.id, await delivery(a.id, 'sandbox', { endpointId: ep2 }), t, 'failed');
    await attempt(a.id, await delivery(a.id, 'sandbox'), t, 'retry'); // a payment's own webhook_url
    await attempt(a.id, await delivery(a.id, 'sandbox', { lane: 'cli' }), t, 'succeeded'); // a `cashwire listen` forward
    for (let i = 0; i < 3; i++) await attempt(a.id, await delivery(a.id, 'production', { endpointId: prodEp }), t, 'succeeded');
    for (let i = 0; i < 4; i++) await attempt(b.id, await delivery(b.id, 'sandbox'), t, 'succeeded');
    const i = idx(await stats(a.id, 'sandbox'), at(11, 45));

    const sandbox = await stats(a.id, 'sandbox');
    expect([sandbox.attempts.succeeded[i], sandbox.attempts.failed[i], sandbox.attempts.retry[i], sandbox.totals.attempts]).toEqual([1, 1, 1, 3]);
    const production = await stats(a.id, 'production');
    expect([production.attempts.succeeded[i], production.totals.attempts]).toEqual([3, 3]);
    const one = await stats(a.id, 'sandbox', '1h', ep2);
    expect([one.attempts.failed[i], one.totals.attempts, one.endpoint]).toEqual([1, 1, ep2]);
    // An endpoint of the other environment has nothing in this one.
    expect((await stats(a.id, 'sandbox', '1h', prodEp)).totals.attempts).toBe(0);
    expect((await stats(b.id, 'sandbox')).totals.attempts).toBe(4);
    expect((await stats(b.id, 'production')).totals.attempts).toBe(0);
  });


  it('adds up larger buckets for 6 h and 24 h', async () => {
    const d = await delivery(a.id, 'sandbox');
    await attempt(a.id, d, at(11, 50), 'succeeded');
    await attempt(a.id, d, at(11, 54, 59), 'succeeded');
    await attempt(a.id, d, at(8, 0), 'failed');
    await attempt(a.id, d, at(1, 0), 'failed'); // outside 6 h, inside 24 h
    const six = await stats(a.id, 'sandbox', '6h');
    expect(six.buckets).toHaveLength(72);
    expect(six.attempts.succeeded[idx(six, at(11, 50))]).toBe(2);
    expect(six.totals.attempts).toBe(3);
    const day = await stats(a.id, 'sandbox', '24h');
    expect(day.buckets).toHaveLength(96);
    expect(day.bucket_seconds).toBe(900);
    expect(day.attempts.succeeded[idx(day, at(11, 45))]).toBe(2);
    expect(day.attempts.failed[idx(day, at(1, 0))]).toBe(1);
    expect(day.totals.attempts).toBe(4);
  });
});

describe('the attempt log counted a minute at a time (attempt_rollups)', () => {
  /** A small deterministic generator, so that a failure can be replayed. */
  const rng = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const OUT = ['succeeded', 'succeeded', 'succeeded', 'retry', 'failed', 'expired', 'held'];
  const countAll = async (from: Date, to: Date, pass: 1 | 2 = 1) => {
    for (let m = from.getTime(); m < to.getTime(); m += MIN) await countMinute(s.running.deps.db, new Date(m), pass, s.clock.now());
  };

  it('gives the same series from the counts as from the attempt log, for every scope and window', async () => {
    const ep1 = await endpoint(a.id, 'sandbox');
    const ep2 = await endpoint(a.id, 'sandbox');
    const prodEp = await endpoint(a.id, 'production');
    const ds = [
      await delivery(a.id, 'sandbox', { endpointId: ep1 }), await delivery(a.id, 'sandbox', { endpointId: ep2 }),
      await delivery(a.id, 'sandbox'), await delivery(a.id, 'sandbox', { lane: 'cli' }),
      await delivery(a.id, 'production', { endpointId: prodEp }),
    ];
    const other = await delivery(b.id, 'sandbox');
    const r = rng(42);
    // 600 attempts over the last 26 hours, bunched into a few hundred minutes, latencies from 0 ms to 40 s.
    for (let i = 0; i < 600; i++) {
      const started = new Date(NOW - Math.floor(r() * 26 * 60) * MIN - Math.floor(r() * 60_000));
      const latency = r() < 0.05 ? 0 : Math.floor(Math.exp(r() * Math.log(40_000)));
      await attempt(a.id, ds[Math.floor(r() * ds.length)]!, started, OUT[Math.floor(r() * OUT.length)]!, latency);
      if (i % 10 === 0) await attempt(b.id, other, started, 'succeeded', latency);
    }
    // On the minutes' edges: the first and the last millisecond of a minute belong to it, and to it only.
    for (const m of [11 * 60 + 20, 9 * 60 + 5, 3 * 60]) {
      const start = new Date(NOW - 30_000 - m * MIN); // NOW is 12:00:30, so this is a minute's first instant
      await attempt(a.id, ds[0]!, start, 'succeeded', 1);
      await attempt(a.id, ds[0]!, new Date(start.getTime() - 1), 'failed', 2);
      await attempt(a.id, ds[0]!, new Date(start.getTime() + MIN - 1), 'retry', 3);
    }
    // And some in each of the last 12 minutes, read a minute at a time once the minutes before are counted.
    for (let k = 0; k < 12 * 4; k++) await attempt(a.id, ds[k % ds.length]!, new Date(NOW - Math.floor(k / 4) * MIN - 7_000 * (k % 4)), OUT[k % OUT.length]!, 5 + k * 13);
    const scopes: [string, string, string?][] = [[a.id, 'sandbox'], [a.id, 'sandbox', ep1], [a.id, 'sandbox', ep2], [a.id, 'production'], [a.id, 'production', prodEp], [b.id, 'sandbox']];
    const windows = ['1h', '6h', '24h'] as const;
    const all = async () => Promise.all(scopes.flatMap(([op, env, ep]) => windows.map((w) => stats(op, env, w, ep))));
    const fromLog = await all();
    // Counts are the same; 1-minute buckets' percentiles too (exact per minute); a wider bucket's, exact from the
    // log, are read from the merged histograms once counted: within 5% (and the rounding to a millisecond).
    const same = (got: Awaited<ReturnType<typeof all>>, want: typeof got) => {
      expect(got.map((st) => ({ ...st, latency: null }))).toEqual(want.map((st) => ({ ...st, latency: null })));
      got.forEach((st, k) => (['p50', 'p99'] as const).forEach((p) => st.latency[p].forEach((v, i) => {
        const w = want[k]!.latency[p][i]!;
        if (st.window === '1h' || v === null || w === null) expect([st.window, p, i, v]).toEqual([st.window, p, i, w]);
        else expect(Math.abs(v - w)).toBeLessThanOrEqual(0.05 * w + 1);
      })));
    };
    expect(fromLog[0]!.totals.attempts).toBeGreaterThan(10); // the 1 h window has something to compare
    expect(fromLog.reduce((n, st) => n + st.totals.attempts, 0)).toBeGreaterThan(1000);

    // Catching up, newest first: the last two hours counted, the rest of the day not yet (read in one join).
    await countAll(new Date(minuteOf(new Date(NOW)).getTime() - 120 * MIN), new Date(minuteOf(new Date(NOW)).getTime() - 2 * MIN));
    same(await all(), fromLog);
    await q('TRUNCATE attempt_minutes, attempt_rollups');
    // Every minute counted but the last 12 or so: the 1 h window reads those a minute at a time (LOOKUP_MINUTES).
    const hourOf = async () => Promise.all(scopes.map(([op, env, ep]) => stats(op, env, '1h', ep)));
    const hourFromLog = await hourOf();
    await countAll(new Date(minuteOf(new Date(NOW)).getTime() - 25 * 60 * MIN), new Date(minuteOf(new Date(NOW)).getTime() - 11 * MIN));
    expect(LOOKUP_MINUTES).toBeGreaterThanOrEqual(12);
    expect(await hourOf()).toEqual(hourFromLog);
    // Count every minute of the last 25 hours except the last three (not due yet), then read again.
    await countAll(new Date(minuteOf(new Date(NOW)).getTime() - 25 * 60 * MIN), new Date(minuteOf(new Date(NOW)).getTime() - 2 * MIN));
    const counted = (await q('SELECT count(*)::int AS n FROM attempt_rollups')).rows[0].n;
    expect(counted).toBeGreaterThan(100);
    same(await all(), fromLog);

    // The counts are what is read: the attempt log's counted minutes emptied behind its back change nothing...
    await q('DELETE FROM delivery_attempts WHERE started_at < $1', [new Date(minuteOf(new Date(NOW)).getTime() - 2 * MIN)]);
    same(await all(), fromLog);
    // ...and the counts emptied leave zeros there (a counted minute with no row had no attempt).
    await q('DELETE FROM attempt_rollups');
    const hour = await stats(a.id, 'sandbox', '1h');
    const countedBuckets = hour.buckets.length - 3; // 11:58, 11:59 and 12:00 are not counted yet
    expect(OUTCOMES.every((o) => hour.attempts[o].slice(0, countedBuckets).every((n) => n === 0))).toBe(true);
    expect(hour.latency.p50.slice(0, countedBuckets).every((v) => v === null)).toBe(true);
  });

  it('reads percentiles of wider buckets from the merged minutes, within 5% of the exact ones; a bucket with one minute is exact', async () => {
    const d = await delivery(a.id, 'sandbox');
    for (let ms = 1; ms <= 100; ms++) await attempt(a.id, d, at(11, 30, ms % 60), 'succeeded', ms);
    for (let ms = 200; ms < 250; ms++) await attempt(a.id, d, at(11, 32, ms % 60), 'succeeded', ms);
    for (let ms = 1; ms <= 9; ms++) await attempt(a.id, d, at(11, 41, ms), 'retry', ms * 37);
    await countAll(at(11, 0), at(11, 58));
    const exact = async (from: Date, to: Date, p: number) =>
      (await q('SELECT percentile_disc($3::float8) WITHIN GROUP (ORDER BY latency_ms) AS v FROM delivery_attempts WHERE started_at >= $1 AND started_at < $2', [from, to, p])).rows[0].v as number;
    const six = await stats(a.id, 'sandbox', '6h');
    const b30 = idx(six, at(11, 30));
    expect(six.attempts.succeeded[b30]).toBe(150);
    for (const [p, got] of [[0.5, six.latency.p50[b30]], [0.99, six.latency.p99[b30]]] as const) {
      const want = await exact(at(11, 30), at(11, 35), p);
      expect(Math.abs(got! - want) / want).toBeLessThanOrEqual(0.05);
    }
    // 11:40–11:45 has one minute with attempts: its exact percentiles.
    const b40 = idx(six, at(11, 40));
    expect([six.latency.p50[b40], six.latency.p99[b40]]).toEqual([await exact(at(11, 41), at(11, 42), 0.5), await exact(at(11, 41), at(11, 42), 0.99)]);
    expect([six.latency.p50[b40], six.latency.p99[b40]]).toEqual([185, 333]);
    // The 1 h window's minutes are exact, counted or not.
    const hour = await stats(a.id, 'sandbox', '1h');
    expect([hour.latency.p50[idx(hour, at(11, 30))], hour.latency.p99[idx(hour, at(11, 30))]]).toEqual([50, 99]);
    expect([hour.latency.p50[idx(hour, at(11, 32))], hour.latency.p99[idx(hour, at(11, 32))]]).toEqual([224, 249]);
  });

  it('counts a minute once per pass, however many processes try at once', async () => {
    const d = await delivery(a.id, 'sandbox');
    for (let i = 0; i < 5; i++) await attempt(a.id, d, at(11, 40, i), 'succeeded', 20 + i);
    const tries = await Promise.all([1, 2, 3, 4].map(() => countMinute(s.running.deps.db, at(11, 40), 1, s.clock.now())));
    expect(tries.filter((t) => t.counted)).toHaveLength(1);
    expect(tries.find((t) => t.counted)!.rows).toBe(1); // all of the sandbox (the delivery has no endpoint)
    const { rows } = await q('SELECT endpoint_id, succeeded, p50, p99, hist_idx, hist_n FROM attempt_rollups');
    expect(rows).toEqual([{ endpoint_id: '', succeeded: 5, p50: 22, p99: 24, hist_idx: expect.any(Array), hist_n: expect.any(Array) }]);
    expect((rows[0].hist_n as number[]).reduce((x, y) => x + y, 0)).toBe(5);
    expect((await stats(a.id, 'sandbox')).attempts.succeeded[idx(await stats(a.id, 'sandbox'), at(11, 40))]).toBe(5);
  });

  it('waits longer for a longer webhook timeout: a minute is counted a minute past the timeout at the earliest', () => {
    expect(countDelays()).toEqual({ afterMs: COUNT_AFTER_MS, recountMs: RECOUNT_AFTER_MS });
    expect(countDelays(15_000)).toEqual({ afterMs: 2 * MIN, recountMs: 10 * MIN });
    expect(countDelays(5 * MIN)).toEqual({ afterMs: 6 * MIN, recountMs: 14 * MIN });
  });

  it('knows which minutes are due: the ended ones not counted, newest first, back a day once there is an attempt; again 10 minutes after', async () => {
    const db = s.running.deps.db;
    expect(await dueMinutes(db, new Date(NOW), 100)).toEqual([]); // no attempt at all: nothing to count
    const d = await delivery(a.id, 'sandbox');
    await attempt(a.id, d, at(11, 50, 10), 'succeeded');
    // 12:00:30: minutes up to 11:57 have ended two minutes ago or more (11:58 ends at 11:59, plus 2 min > now); back
    // a day and a minute (11:59 yesterday), those before the attempt too.
    expect(COUNT_AFTER_MS).toBe(2 * MIN);
    const due = await dueMinutes(db, new Date(NOW), 10_000);
    expect(due.slice(0, 3)).toEqual([57, 56, 55].map((m) => ({ minute: at(11, m), pass: 1 })));
    expect(due).toHaveLength(24 * 60 - 1);
    expect(due.at(-1)!.minute.getTime()).toBe(minuteOf(new Date(NOW - 24 * 3_600_000 - MIN)).getTime());
    expect(due.every((x, i) => x.pass === 1 && (i === 0 || x.minute < due[i - 1]!.minute))).toBe(true);
    expect(await dueMinutes(db, new Date(NOW), 3)).toEqual(due.slice(0, 3));
    expect(await countDueMinutes(db, new Date(NOW), { max: 10_000 })).toBe(24 * 60 - 1);
    expect(await dueMinutes(db, new Date(NOW), 100)).toEqual([]);
    // 10 minutes after each minute ended: its second pass; not for the minutes first counted late (here all those
    // that had ended more than 10 minutes before: counting them again would find nothing new).
    expect(RECOUNT_AFTER_MS).toBe(10 * MIN);
    const later = new Date(at(11, 52).getTime() + MIN + RECOUNT_AFTER_MS); // 12:03
    expect((await dueMinutes(db, later, 100)).filter((x) => x.pass === 2)).toEqual([52, 51, 50].map((m) => ({ minute: at(11, m), pass: 2 })));
    // With a 5-minute webhook timeout, the minutes of the last 6 minutes wait.
    await q('TRUNCATE attempt_minutes');
    const slow = await dueMinutes(db, new Date(NOW), 5, countDelays(5 * MIN));
    expect(slow[0]).toEqual({ minute: at(11, 53), pass: 1 });
    // A run stops at its budget, and makes 120 counts at most.
    let t = 0;
    expect(await countDueMinutes(db, new Date(NOW), { budgetMs: 3, elapsed: () => t++ })).toBe(3);
    expect(await countDueMinutes(db, new Date(NOW))).toBe(120);
  });

  it('shows an attempt written after its minute was counted once the minute is counted again, and never lowers a count', async () => {
    const db = s.running.deps.db;
    const d = await delivery(a.id, 'sandbox');
    await attempt(a.id, d, at(11, 50, 10), 'succeeded');
    s.clock.set(at(11, 53, 30));
    await countDueMinutes(db, s.clock.now());
    await attempt(a.id, d, at(11, 50, 40), 'retry'); // its outcome batch came late
    const i = (st: { buckets: string[] }) => idx(st, at(11, 50));
    let st = await stats(a.id, 'sandbox');
    expect([st.attempts.succeeded[i(st)], st.attempts.retry[i(st)]]).toEqual([1, 0]);
    s.clock.set(new Date(at(11, 51).getTime() + RECOUNT_AFTER_MS)); // 12:01
    await countDueMinutes(db, s.clock.now());
    st = await stats(a.id, 'sandbox');
    expect([st.attempts.succeeded[i(st)], st.attempts.retry[i(st)]]).toEqual([1, 1]);
    // A second count that finds fewer attempts (the log pruned under it) keeps the larger one.
    await q('DELETE FROM attempt_minutes WHERE minute = $1 AND pass = 2', [at(11, 50)]);
    await q('DELETE FROM delivery_attempts WHERE started_at = $1', [at(11, 50, 40)]);
    await countMinute(db, at(11, 50), 2, s.clock.now());
    st = await stats(a.id, 'sandbox');
    expect(st.attempts.retry[i(st)]).toBe(1);
  });

  it('is counted by the sampler\'s runs unless CASHWIRE_COUNT_ATTEMPT_MINUTES is off, and pruned with the samples', async () => {
    const d = await delivery(a.id, 'sandbox');
    await attempt(a.id, d, at(11, 40), 'succeeded');
    const make = (countAttemptMinutes: boolean) => createQueueSampler({
      db: s.running.deps.db, clock: s.clock, log: pino({ level: 'silent' }), config: { queueSamples: { everyMs: MIN, retentionMs: 7 * 86_400_000 }, countAttemptMinutes },
    });
    expect(await make(false).countOnce()).toBe(0);
    expect((await q('SELECT count(*)::int AS n FROM attempt_minutes')).rows[0].n).toBe(0);
    expect(await make(true).countOnce()).toBeGreaterThan(0);
    expect((await q(`SELECT succeeded FROM attempt_rollups WHERE minute = $1 AND endpoint_id = ''`, [at(11, 40)])).rows).toEqual([{ succeeded: 1 }]);
    expect(loadConfig({ CASHWIRE_COUNT_ATTEMPT_MINUTES: 'off' }).countAttemptMinutes).toBe(false);
    expect(loadConfig({}).countAttemptMinutes).toBe(true);
    // Eight days later the counts are past the samples' retention (7 days) and go, with their claimed minutes.
    s.clock.set(NOW + 8 * 86_400_000);
    const pruned = await pruneOnce(s.running.deps, 30 * 86_400_000, 1000, 7 * 86_400_000);
    expect(pruned.rollups).toBe(1);
    expect((await q('SELECT (SELECT count(*) FROM attempt_rollups)::int AS r, (SELECT count(*) FROM attempt_minutes)::int AS m')).rows[0]).toEqual({ r: 0, m: 0 });
    // Never within the day the job counts back: those would only be counted again.
    s.clock.set(NOW);
    await countMinute(s.running.deps.db, at(11, 40), 1, s.clock.now());
    expect((await pruneOnce(s.running.deps, 30 * 86_400_000, 1000, 0)).rollups).toBe(0);
  });
});

describe('queue-depth samples', () => {
  it('counts pending and due per endpoint and overall, per environment; a held endpoint has nothing due', async () => {
    const ep1 = await endpoint(a.id, 'sandbox');
    const off = await endpoint(a.id, 'sandbox', { status: 'disabled' });
    const past = new Date(NOW - 5000);
    const later = new Date(NOW + 600_000);
    await delivery(a.id, 'sandbox', { endpointId: ep1, status: 'pending', due: past });
    await delivery(a.id, 'sandbox', { endpointId: ep1, status: 'pending', due: past });
    await delivery(a.id, 'sandbox', { endpointId: ep1, status: 'pending', due: later }); // waiting for its retry
    await delivery(a.id, 'sandbox', { endpointId: ep1, status: 'pending', due: later, leased: true }); // in flight
    await delivery(a.id, 'sandbox', { endpointId: off, status: 'pending', due: past });
    await delivery(a.id, 'sandbox', { status: 'pending', due: past }); // a payment's own URL
    await delivery(a.id, 'sandbox', { endpointId: ep1, status: 'succeeded' });
    await delivery(a.id, 'production', { status: 'pending', due: past });
    await delivery(b.id, 'sandbox', { status: 'pending', due: later });
    expect(await sampleQueue(s.running.deps.db, s.clock.now())).toEqual({ wrote: true, rows: 5 });
    const { rows } = await q('SELECT operator_id, environment, endpoint_id, minute, pending, due FROM queue_samples ORDER BY operator_id, environment, endpoint_id');
    const row = (op: string, env: string, ep: string) => rows.find((r) => r.operator_id === op && r.environment === env && r.endpoint_id === ep);
    expect(row(a.id, 'sandbox', '')).toMatchObject({ pending: 6, due: 3, minute: at(12, 0) });
    expect(row(a.id, 'sandbox', ep1)).toMatchObject({ pending: 4, due: 2 });
    expect(row(a.id, 'sandbox', off)).toMatchObject({ pending: 1, due: 0 });
    expect(row(a.id, 'production', '')).toMatchObject({ pending: 1, due: 1 });
    expect(row(b.id, 'sandbox', '')).toMatchObject({ pending: 1, due: 0 });

    const st = await stats(a.id, 'sandbox');
    const i = idx(st, at(12, 0));
    expect([st.queue.pending[i], st.queue.due[i]]).toEqual([6, 3]);
    expect(st.queue.pending[i - 1]).toBeNull(); // never sampled: a gap, not a zero
    expect(st.totals.samples).toBe(1);
    const one = await stats(a.id, 'sandbox', '1h', ep1);
    expect([one.queue.pending[i], one.queue.due[i]]).toEqual([4, 2]);
    // Beta's production had nothing pending in a sampled minute: 0, not a gap.
    const bp = await stats(b.id, 'production');
    expect([bp.queue.pending[i], bp.queue.due[i]]).toEqual([0, 0]);
  });

  it('writes one sample a minute from two samplers whose clocks disagree by a few seconds', async () => {
    await delivery(a.id, 'sandbox', { status: 'pending', due: new Date(NOW - 1000) });
    const log = pino({ level: 'silent' });
    const config = { queueSamples: { everyMs: MIN, retentionMs: 7 * 86_400_000 } };
    const clockA = new ManualClock(at(12, 0, 57));
    const clockB = new ManualClock(at(12, 1, 2)); // 5 s ahead
    const one = createQueueSampler({ db: s.running.deps.db, clock: clockA, log, config });
    const two = createQueueSampler({ db: s.running.deps.db, clock: clockB, log, config });
    const wrote: boolean[][] = [];
    for (let tick = 0; tick < 4; tick++) {
      // Both at once (the second waits for the first's claim to commit), and again each alone.
      const r = await Promise.all([one.runOnce(), two.runOnce()]);
      const again = await Promise.all([two.runOnce(), one.runOnce()]);
      wrote.push([...r, ...again].map((x) => x.wrote));
      clockA.advance(MIN);
      clockB.advance(MIN);
    }
    const { rows } = await q(`SELECT minute, count(*)::int AS n FROM queue_samples WHERE operator_id = $1 AND endpoint_id = '' GROUP BY minute ORDER BY minute`, [a.id]);
    expect(rows.map((r) => [r.minute.toISOString(), r.n])).toEqual([0, 1, 2, 3, 4].map((k) => [at(12, k).toISOString(), 1]));
    expect((await q('SELECT count(*)::int AS n FROM queue_sample_minutes')).rows[0].n).toBe(5);
    // Every try past the first of its minute wrote nothing.
    expect(wrote.flat().filter(Boolean)).toHaveLength(5);
    // And many at once, in one minute: one writer.
    s.clock.set(at(12, 30, 10));
    const many = await Promise.all(Array.from({ length: 8 }, (_, k) => sampleQueue(s.running.deps.db, new Date(s.clock.now().getTime() + k * 1000))));
    expect(many.filter((m) => m.wrote)).toHaveLength(1);
    expect(minuteOf(at(12, 30, 59))).toEqual(at(12, 30));
  });

  it('aims each run at the next boundary of the interval since the epoch, one second past it', () => {
    const t = (hh: number, mm: number, ss = 0, ms = 0) => at(hh, mm, ss).getTime() + ms;
    expect(SAMPLE_OFFSET_MS).toBe(1000);
    expect(nextRunDelay(t(12, 0, 30), MIN)).toBe(31_000);
    expect(nextRunDelay(t(12, 0, 0, 500), MIN)).toBe(500);
    expect(nextRunDelay(t(12, 0, 1), MIN)).toBe(MIN); // strictly after: a run at the boundary aims at the next one
    expect(nextRunDelay(t(12, 0, 59, 999), MIN)).toBe(1001);
    // Past the boundary it aimed at (a timer that fired a hair early): the one after, not the same one again.
    expect(nextRunDelay(t(12, 1, 0, 900), MIN, t(12, 1, 1))).toBe(60_100);
    // Another interval: its own multiples (5 s: …:00:01, …:00:06, …).
    expect(nextRunDelay(t(12, 0, 2), 5000)).toBe(4000);
    expect(nextRunDelay(t(12, 0, 7), 1000)).toBe(1000);
    // However long each sample takes (here 0 to 9 s), a lone process samples every minute: no drift, no skipped minute.
    let now = t(12, 0, 20, 300);
    let aimed = now;
    const minutes: number[] = [];
    for (let k = 0; k < 500; k++) {
      minutes.push(minuteOf(new Date(now)).getTime());
      now += (k * 7919) % 9000; // the sample's query
      const wait = nextRunDelay(now, MIN, Math.max(now, aimed));
      aimed = now + wait;
      now = aimed - (k % 3 === 0 ? 200 : 0); // now and then, the timer fires a little early by the clock
    }
    expect(minutes.every((m, k) => m === minutes[0]! + k * MIN)).toBe(true);
  });

  it('runs on one timer however often start() is called, aimed at the minute, and leaves none after stop()', async () => {
    const clock = new ManualClock(at(12, 0, 30));
    const live = new Map<number, { fn: () => void; ms: number }>();
    let made = 0;
    const timers: SamplerTimers = {
      set: (fn, ms) => {
        live.set(++made, { fn, ms });
        return made;
      },
      clear: (h) => live.delete(h as number),
    };
    let queries = 0;
    // Each sample takes 2.5 s by the clock.
    const db = { query: (...args: unknown[]) => { queries++; clock.advance(2500); return (s.running.deps.db.query as (...a: unknown[]) => unknown)(...args); } } as unknown as typeof s.running.deps.db;
    // The attempt counts off: this is about the sample's timing, one statement a run (the counts have their tests).
    const sampler = createQueueSampler({ db, clock, log: pino({ level: 'silent' }), config: { queueSamples: { everyMs: MIN, retentionMs: 7 * 86_400_000 }, countAttemptMinutes: false } }, timers);
    const fire = async () => {
      const [[h, t]] = [...live];
      live.delete(h);
      t.fn();
    };
    sampler.start();
    sampler.start();
    expect(queries).toBe(1); // the first sample right away, once
    await expect.poll(() => live.size).toBe(1);
    // Ended at 12:00:32.5: the next one at 12:01:01.
    expect([...live.values()][0]!.ms).toBe(28_500);
    sampler.start();
    expect([queries, live.size, made]).toEqual([1, 1, 1]);
    clock.set(at(12, 1, 1));
    await fire();
    expect(queries).toBe(2);
    await expect.poll(() => made).toBe(2);
    // 12:01:03.5 after the sample: 57.5 s to 12:02:01, not 60 s after the end (which would drift by 2.5 s a minute).
    expect([live.size, [...live.values()][0]!.ms]).toEqual([1, 57_500]);
    await sampler.stop();
    expect(live.size).toBe(0);
    // Started again: one timer again.
    clock.set(at(12, 2, 10));
    sampler.start();
    sampler.start();
    await expect.poll(() => made).toBe(3);
    expect([queries, live.size, [...live.values()][0]!.ms]).toEqual([3, 1, 48_500]);
    await sampler.stop();
    expect(live.size).toBe(0);
    const { rows } = await q('SELECT minute FROM queue_sample_minutes ORDER BY minute');
    expect(rows.map((r) => r.minute.toISOString())).toEqual([at(12, 0), at(12, 1), at(12, 2)].map((d) => d.toISOString()));
  });

  it('a stop() while a sample is running leaves no timer once it ends', async () => {
    const clock = new ManualClock(at(12, 0, 30));
    const live = new Set<number>();
    let made = 0;
    const timers: SamplerTimers = { set: () => (live.add(++made), made), clear: (h) => live.delete(h as number) };
    const sampler = createQueueSampler({ db: s.running.deps.db, clock, log: pino({ level: 'silent' }), config: { queueSamples: { everyMs: MIN, retentionMs: 7 * 86_400_000 } } }, timers);
    sampler.start();
    await sampler.stop(); // waits for the running sample, which then schedules nothing
    expect([made, live.size]).toEqual([0, 0]);
    sampler.start();
    await expect.poll(() => live.size).toBe(1);
    await sampler.stop();
    expect(live.size).toBe(0);
  });

  it('takes the largest sample of each bucket in the 6 h window', async () => {
    const db = s.running.deps.db;
    const ids: string[] = [];
    for (let k = 0; k < 3; k++) ids.push(await delivery(a.id, 'sandbox', { status: 'pending', due: new Date(NOW - 1000) }));
    await sampleQueue(db, at(11, 50, 5)); // 3 pending
    await q("UPDATE deliveries SET status = 'succeeded' WHERE id = $1", [ids[0]]);
    await sampleQueue(db, at(11, 51, 5)); // 2 pending
    const st = await stats(a.id, 'sandbox', '6h');
    const i = idx(st, at(11, 50));
    expect([st.queue.pending[i], st.totals.samples]).toEqual([3, 2]);
  });

  it('is pruned by the retention job past its own retention, not the attempt log\'s', async () => {
    const db = s.running.deps.db;
    await delivery(a.id, 'sandbox', { status: 'pending', due: new Date(NOW - 1000) });
    const DAY = 86_400_000;
    await sampleQueue(db, new Date(NOW - 8 * DAY));
    await sampleQueue(db, new Date(NOW - 6 * DAY));
    await sampleQueue(db, new Date(NOW - 2 * DAY));
    const pruned = await pruneOnce(s.running.deps, 30 * DAY, 1000, 7 * DAY);
    expect(pruned.samples).toBe(1);
    const left = (await q('SELECT minute FROM queue_sample_minutes ORDER BY minute')).rows.map((r) => r.minute.getTime());
    expect(left).toEqual([minuteOf(new Date(NOW - 6 * DAY)).getTime(), minuteOf(new Date(NOW - 2 * DAY)).getTime()]);
    // A shorter retention (CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS=3) takes the next one too.
    expect((await pruneOnce(s.running.deps, 30 * DAY, 1000, 3 * DAY)).samples).toBe(1);
    expect((await q('SELECT count(*)::int AS n FROM queue_samples')).rows[0].n).toBe(1);
  });
});
