#!/usr/bin/env node
// The dashboard charts' queries (packages/server/src/delivery/stats.ts) on a big attempt log and a big queue, on a
// fresh `cw_bench_*` database (dropped afterwards):
//   - the charts' series (attempts by outcome, latency p50/p99, queue samples) for one operator over 1 h, 6 h and
//     24 h, overall and for one endpoint, with BENCH_CHARTS_ATTEMPTS attempts (default 200,000) of that operator in
//     the last hour and as many of four other operators beside them: first with no minute counted (every minute read
//     from the attempt log), then with the minutes counted (attempt_rollups) as the job keeps them;
//   - the counting job's statement (one minute of every operator), and its catch-up over the last 25 hours;
//   - the queue sampler's statement on BENCH_CHARTS_PENDING pending deliveries (default 200,000) in 50 lanes;
//   - the cost on the hot path of an index on delivery_attempts (operator_id, started_at), the alternative not taken:
//     the attempt log's insert (the worker's batch of 200, as delivery/queue.ts complete() writes it) with and
//     without it.
// Runs from the built dist (npm run build first). `node bench/charts.js` (about 1 to 2 minutes);
// BENCH_DATABASE_URL is the admin URL (default postgres://postgres@127.0.0.1:5432/postgres); BENCH_ROOT another
// built checkout; BENCH_CHARTS_RUNS runs of each query (default 15).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { machineInfo } from './_common.js';

const ROOT = process.env.BENCH_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(ROOT, 'packages/server/dist', p));
const { migrate } = await dist('db/migrate.js');
const { COUNTED_SQL, countDueMinutes, countMinute, deliveryStats, rawMinutesSql, sampleQueue } = await dist('delivery/stats.js');

const ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ATTEMPTS = Number(process.env.BENCH_CHARTS_ATTEMPTS ?? 200_000);
const PENDING = Number(process.env.BENCH_CHARTS_PENDING ?? 200_000);
const RUNS = Number(process.env.BENCH_CHARTS_RUNS ?? 15);
const OPS = 5;
const NOW = new Date();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function timed(title, runs, fn) {
  await fn(-1); // warm
  const t = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    t.push(ms(t0));
  }
  const row = { title, rps: Math.round(1000 / median(t)), p50: Number(median(t).toFixed(1)), p99: Number(pct(t, 0.99).toFixed(1)), non2xx: 0, errors: 0, total: runs };
  console.log(`${title}: median ${row.p50} ms, max ${row.p99} ms (${runs} runs)`);
  return row;
}

const name = `cw_bench_${randomBytes(6).toString('hex')}`;
const admin = new pg.Client({ connectionString: ADMIN });
await admin.connect();
const pgVersion = (await admin.query('SELECT version()')).rows[0].version.split(' on ')[0];
await admin.query(`CREATE DATABASE ${name}`);
const u = new URL(ADMIN);
u.pathname = `/${name}`;
const db = new pg.Pool({ connectionString: u.toString(), max: 4, options: '-c jit=off' }); // as the server's pool (db/pool.ts)
db.on('error', () => {}); // the DROP DATABASE at the end ends idle connections
const rows = [];
try {
  await migrate(db);
  console.log(`seeding ${OPS} operators × ${ATTEMPTS.toLocaleString('en-US')} attempts in the last hour, ${PENDING.toLocaleString('en-US')} pending deliveries…`);
  const t0 = process.hrtime.bigint();
  await db.query(`INSERT INTO operators (id, name, created_at) SELECT 'op_' || o, 'Op ' || o, now() FROM generate_series(1, ${OPS}) o`);
  // 10 endpoints per operator, in sandbox and production.
  await db.query(`INSERT INTO endpoints (operator_id, environment, id, url, events, format, payload_version, secret, created_at, updated_at)
    SELECT 'op_' || o, CASE WHEN e % 2 = 0 THEN 'sandbox' ELSE 'production' END, 'ep_' || o || '_' || e, 'https://h.example/' || e, '{*}', 'pushcash', '2024-05', 's', now(), now()
      FROM generate_series(1, ${OPS}) o, generate_series(1, 10) e`);
  // One delivery per two attempts; its event. Spread over the last hour, 8% retries, 1% failed.
  const perOp = ATTEMPTS / 2;
  await db.query(`INSERT INTO events (operator_id, environment, id, type, data, created_at)
    SELECT 'op_' || o, CASE WHEN (i / 10) % 5 = 0 THEN 'production' ELSE 'sandbox' END, 'evt_' || i, 'intent.approved', '{}', $1::timestamptz - (i % 3600) * interval '1 second'
      FROM generate_series(1, ${OPS}) o, generate_series(1, ${perOp}) i`, [NOW]);
  await db.query(`INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, status, next_attempt_at, created_at, completed_at)
    SELECT e.operator_id, 'dlv_' || substr(e.id, 5), e.environment, e.id, ep, 'ep:' || ep, 'https://h.example/', 'pushcash', '2024-05', 'succeeded', e.created_at, e.created_at, e.created_at
      FROM events e,
           LATERAL (SELECT 'ep_' || substr(e.operator_id, 4) || '_' || ((substr(e.id, 5)::int % 5) * 2 + CASE WHEN e.environment = 'sandbox' THEN 2 ELSE 1 END) AS ep) k`);
  await db.query(`INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, outcome)
    SELECT d.operator_id, d.id, a, 'w1', d.created_at + (a - 1) * interval '20 seconds', 20 + (hashtext(d.id || a) & 255),
           CASE WHEN a = 1 AND hashtext(d.id) % 12 = 0 THEN 500 ELSE 200 END,
           CASE WHEN a = 1 AND hashtext(d.id) % 12 = 0 THEN 'retry' WHEN a = 2 AND hashtext(d.id) % 100 = 1 THEN 'failed' ELSE 'succeeded' END
      FROM deliveries d, generate_series(1, 2) a`);
  // Older history (the attempt log keeps 30 days by default): 4 × as many attempts again, spread over the 7 days
  // before the window, so that the window is a slice of the log.
  await db.query(`INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, outcome)
    SELECT d.operator_id, d.id, 2 + a, 'w1', d.created_at - interval '1 hour' - (hashtext(d.id || a) & 604799) * interval '1 second', 30, 200, 'succeeded'
      FROM deliveries d, generate_series(1, 8) a`);
  // The queue: pending deliveries in 50 lanes (the 10 endpoints of each operator), a third of them due.
  await db.query(`INSERT INTO events (operator_id, environment, id, type, data, created_at)
    SELECT 'op_' || (1 + i % ${OPS}), 'sandbox', 'evt_p' || i, 'intent.approved', '{}', $1::timestamptz FROM generate_series(1, ${PENDING}) i`, [NOW]);
  await db.query(`INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, status, next_attempt_at, created_at)
    SELECT e.operator_id, 'dlv_p' || substr(e.id, 6), 'sandbox', e.id, ep, 'ep:' || ep, 'https://h.example/', 'pushcash', '2024-05', 'pending',
           $1::timestamptz + ((substr(e.id, 6)::int % 3) - 1) * interval '10 minutes', e.created_at
      FROM events e, LATERAL (SELECT 'ep_' || substr(e.operator_id, 4) || '_' || (2 * (1 + (substr(e.id, 6)::int / ${OPS}) % 5)) AS ep) k
     WHERE e.id LIKE 'evt_p%'`, [NOW]);
  await db.query('VACUUM ANALYZE');
  console.log(`seeded in ${(ms(t0) / 1000).toFixed(1)} s`);
  const counts = (await db.query(`SELECT (SELECT count(*) FROM delivery_attempts WHERE operator_id = 'op_1') AS a1, (SELECT count(*) FROM delivery_attempts) AS a,
                                         (SELECT count(*) FROM deliveries WHERE status = 'pending') AS p`)).rows[0];
  console.log(`op_1: ${counts.a1} attempts (of ${counts.a}); ${counts.p} pending`);

  const scope = { operatorId: 'op_1', environment: 'sandbox' };
  // From the attempt log alone: nothing counted yet (a first start, a day no process ran, or
  // CASHWIRE_COUNT_ATTEMPT_MINUTES=off), every minute of the window read from delivery_attempts.
  const chartRows = async (suffix) => {
    rows.push(await timed(`charts 1h, all${suffix}`, RUNS, () => deliveryStats(db, scope, '1h', NOW)));
    rows.push(await timed(`charts 1h, one endpoint${suffix}`, RUNS, () => deliveryStats(db, { ...scope, endpointId: 'ep_1_2' }, '1h', NOW)));
    rows.push(await timed(`charts 6h, all${suffix}`, RUNS, () => deliveryStats(db, scope, '6h', NOW)));
    rows.push(await timed(`charts 24h, all${suffix}`, RUNS, () => deliveryStats(db, scope, '24h', NOW)));
  };
  await chartRows(', from the attempt log (no minute counted)');
  // The counting job's statement: one minute of every operator (here 5 × ~3,300 attempts), a new minute each run.
  const minutes = [];
  for (let m = Math.floor(NOW.getTime() / 60_000) * 60_000 - 3 * 60_000; minutes.length < RUNS + 1; m -= 60_000) minutes.push(new Date(m));
  rows.push(await timed(`count one minute, all operators (~${Math.round((OPS * ATTEMPTS) / 60).toLocaleString('en-US')} attempts)`, RUNS, async (i) => {
    const r = await countMinute(db, minutes[i + 1], 1, NOW);
    if (!r.counted) throw new Error('the minute was not counted');
  }));
  // Catching up: every minute of the last 25 hours counted, as the job does over its first runs.
  const t1 = process.hrtime.bigint();
  let counted = 0;
  for (let k; (k = await countDueMinutes(db, NOW, { max: 500, budgetMs: 600_000 })) > 0;) counted += k;
  console.log(`counted ${counted} more minutes (the last 25 h) in ${(ms(t1) / 1000).toFixed(1)} s`);
  await chartRows(', counted minutes (+ the last 2 to 3 from the log)');
  // The plan of the minutes not counted yet (the last three), read a minute at a time.
  const minuteNow = Math.floor(NOW.getTime() / 60_000) * 60_000;
  const plan = (await db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) ${rawMinutesSql(false, 'lookup')}`,
    [scope.operatorId, scope.environment, new Date(minuteNow - 2 * 60_000), new Date(minuteNow + 60_000)])).rows.map((r) => r['QUERY PLAN']);
  console.log(plan.filter((l) => /Scan|Join|Loop|Execution/.test(l)).map((l) => `  ${l.trim()}`).join('\n'));
  // And of the counted minutes of the 24 h window, with their rows.
  const plan24 = (await db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) ${COUNTED_SQL}`,
    [scope.operatorId, scope.environment, '', new Date(minuteNow - 24 * 3_600_000), new Date(minuteNow + 60_000)])).rows.map((r) => r['QUERY PLAN']);
  console.log(plan24.filter((l) => /Scan|Join|Loop|Execution|Cond|Filter/.test(l)).map((l) => `  ${l.trim()}`).join('\n'));

  // The sampler: each run a new minute (the minute claimed, then every lane counted).
  let minute = 0;
  rows.push(await timed(`queue sample (${PENDING.toLocaleString('en-US')} pending, 50 lanes)`, RUNS, async () => {
    const r = await sampleQueue(db, new Date(NOW.getTime() + ++minute * 60_000));
    if (!r.wrote) throw new Error('the sample was not written');
  }));
  rows.push(await timed('queue sample, minute already taken', RUNS, () => sampleQueue(db, new Date(NOW.getTime() + minute * 60_000))));

  // The attempt log's insert on the hot path, with and without an (operator_id, started_at) index: two copies of the
  // attempt log (the same 1M rows, the same indexes), one with the extra index, written in turn (A B A B …), each
  // batch as the worker's complete() writes it (200 rows of unnest).
  for (const t of ['bench_attempts_plain', 'bench_attempts_indexed']) {
    await db.query(`CREATE TABLE ${t} (LIKE delivery_attempts INCLUDING ALL)`);
    await db.query(`INSERT INTO ${t} SELECT * FROM delivery_attempts`);
  }
  await db.query('CREATE INDEX ON bench_attempts_indexed (operator_id, started_at)');
  await db.query('VACUUM ANALYZE bench_attempts_plain, bench_attempts_indexed');
  const insertBatch = async (table, i) => {
    const ids = Array.from({ length: 200 }, (_, k) => `dlv_x${i}_${k}`);
    await db.query(`INSERT INTO ${table} (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, error_code, response_excerpt, outcome)
      SELECT 'op_' || (1 + k % ${OPS}), id, 1, 'w1', $2::timestamptz + k * interval '1 millisecond', 25, 200, NULL, NULL, 'succeeded'
        FROM unnest($1::text[]) WITH ORDINALITY AS u(id, k)`, [ids, new Date()]);
  };
  const BATCHES = Number(process.env.BENCH_CHARTS_BATCHES ?? 1000);
  const plain = [];
  const indexed = [];
  for (let i = 0; i < BATCHES; i++) {
    for (const [table, out] of i % 2 === 0 ? [['bench_attempts_plain', plain], ['bench_attempts_indexed', indexed]] : [['bench_attempts_indexed', indexed], ['bench_attempts_plain', plain]]) {
      const t1 = process.hrtime.bigint();
      await insertBatch(table, i);
      out.push(ms(t1));
    }
  }
  const ratios = plain.map((p, i) => indexed[i] / p);
  for (const [title, t] of [['attempt insert, batch of 200 (as today)', plain], ['attempt insert, batch of 200 (+ index operator_id, started_at)', indexed]]) {
    const row = { title, rps: Math.round((200 * 1000) / median(t)), p50: Number(median(t).toFixed(2)), p99: Number(pct(t, 0.99).toFixed(2)), non2xx: 0, errors: 0, total: BATCHES };
    console.log(`${title}: median ${row.p50} ms, p99 ${row.p99} ms (${BATCHES} batches; ${row.rps.toLocaleString('en-US')} attempts/s at the median)`);
    rows.push(row);
  }
  console.log(`  paired ratio indexed/plain: median ${median(ratios).toFixed(2)}`);
  await db.query('DROP TABLE bench_attempts_plain, bench_attempts_indexed');
} finally {
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
const result = { bench: 'charts', machine: machineInfo(pgVersion), rows };
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(result, null, 2));
console.log('\n| benchmark | median ms | max ms | runs |\n|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.title} | ${r.p50} | ${r.p99} | ${r.total} |`);
