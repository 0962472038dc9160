#!/usr/bin/env node
// The dashboard's pages on a big account, next to the API's own list of the same events (the baseline).
//
// One run: a throw-away database on the machine's PostgreSQL; Cashwire (`cashwire start`) in a child process; an
// account seeded in SQL with BENCH_DASH_EVENTS events (default 200,000), one delivery each (90% succeeded, 5% failed,
// 3% pending, 2% dead) and one to three attempts each over the last hour; then a dashboard session (the sign-in form) and
// autocannon on the pages an operator opens: the events list, its filters, the live list's refresh, an event with its
// attempts, the charts' data (with no minute of the attempt log counted, then with the minutes counted as the job
// keeps them), the intents list. Prints one row each; any non-2xx fails the run.
//
//   node bench/dashboard.js              (after `npm run build`)
//   BENCH_DATABASE_URL=postgres://...    admin URL used to CREATE/DROP the bench database
//   BENCH_DASH_EVENTS=<n>                events to seed (default 200000)
//   BENCH_RESULT_FILE=<file>             also write the results as JSON (used by bench/run.js)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture, freePort, isEntry, machineInfo, runEntry, stopChild } from './_common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'packages/server/dist/cli.js');
const EVENTS = Math.max(1000, Number(process.env.BENCH_DASH_EVENTS ?? 200_000) || 200_000);
const CONNECTIONS = 10;
const DURATION_S = 8;
const API_KEY = 'sk_sandbox_bench_dash_0123456789abcdefghijklmnopq';
const HIGH = '100000000';

async function main() {
  const cashwire = await import('../packages/server/dist/index.js').catch((err) => {
    throw new Error(`cannot load the built server (${err.message}); run \`npm run build\` first`);
  });
  const { default: autocannon } = await import('autocannon');
  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `cw_bench_${randomBytes(6).toString('hex')}`;
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const admin = cashwire.createPool(adminUrl, 1);
  let db;
  let server;
  const problems = [];
  const rows = [];
  try {
    await admin.query(`CREATE DATABASE ${dbName}`);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, [CLI, 'start'], {
      cwd: ROOT,
      env: {
        ...process.env, DATABASE_URL: dbUrl.toString(), PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
        CASHWIRE_RATE_LIMIT_CREATE: HIGH, CASHWIRE_RATE_LIMIT_READ: HIGH, CASHWIRE_RATE_LIMIT_DASHBOARD: HIGH,
        CASHWIRE_SANDBOX_API_KEY: API_KEY, CASHWIRE_PUBLIC_URL: base,
        // The bench counts the attempt log's minutes itself, between the two runs of the charts (below).
        CASHWIRE_COUNT_ATTEMPT_MINUTES: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = capture(server);
    for (let i = 0; ; i++) {
      if (server.exitCode !== null) throw new Error(`cashwire exited: ${output()}`);
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
      if (i > 300) throw new Error(`cashwire not healthy: ${output()}`);
      await sleep(100);
    }
    db = cashwire.createPool(dbUrl.toString(), 2);
    const pg = (await db.query('SHOW server_version')).rows[0].server_version;

    // The account: events, deliveries and attempts of the last hour, written in SQL (the API would take minutes).
    const op = (await db.query("SELECT operator_id FROM api_keys WHERE environment = 'sandbox' LIMIT 1")).rows[0].operator_id;
    const seedStarted = Date.now();
    await db.query(`
      INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at)
      SELECT $1, 'sandbox', 'evt_bench_' || g, (ARRAY['intent.approved','intent.approved','intent.approved','intent.settled','intent.canceled','intent.declined'])[1 + g % 6],
             'intent_sandbox_bench_' || (g / 2), jsonb_build_object('id', 'intent_sandbox_bench_' || (g / 2), 'amount', 1000 + g % 5000, 'currency', 'USD', 'direction', 'cash_in', 'status', 'approved'),
             now() - make_interval(secs => 3600.0 * ($2 - g) / $2)
        FROM generate_series(1, $2) g`, [op, EVENTS]);
    await db.query(`
      INSERT INTO deliveries (operator_id, id, environment, event_id, url, format, payload_version, schedule_name, status, attempts, next_attempt_at, created_at, completed_at, last_status)
      SELECT $1, 'dlv_bench_' || g, 'sandbox', 'evt_bench_' || g, 'http://127.0.0.1:9/hook', 'pushcash', '2025-01-01', 'default',
             s.status, 1 + g % 3, CASE WHEN s.status = 'pending' THEN now() + interval '30 days' ELSE now() END,
             now() - make_interval(secs => 3600.0 * ($2 - g) / $2), CASE WHEN s.status = 'pending' THEN NULL ELSE now() END,
             CASE WHEN s.status = 'succeeded' THEN 200 ELSE 500 END
        FROM generate_series(1, $2) g,
             LATERAL (SELECT CASE WHEN g % 100 < 90 THEN 'succeeded' WHEN g % 100 < 95 THEN 'failed' WHEN g % 100 < 98 THEN 'pending' ELSE 'dead' END AS status) s`, [op, EVENTS]);
    await db.query(`
      INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, error_code, response_excerpt, outcome)
      SELECT $1, 'dlv_bench_' || g, a, 'bench', now() - make_interval(secs => 3600.0 * ($2 - g) / $2) + make_interval(secs => a), 5 + (g * 7 + a) % 400,
             CASE WHEN a = 1 + g % 3 AND g % 100 < 90 THEN 200 ELSE 500 END, NULL, convert_to('ok', 'UTF8'),
             CASE WHEN a < 1 + g % 3 THEN 'retry' WHEN g % 100 < 90 THEN 'succeeded' WHEN g % 100 < 98 THEN 'retry' ELSE 'failed' END
        FROM generate_series(1, $2) g, generate_series(1, 1 + g % 3) a`, [op, EVENTS]);
    await db.query('ANALYZE');
    const seedS = ((Date.now() - seedStarted) / 1000).toFixed(1);
    process.stderr.write(`seeded ${EVENTS.toLocaleString('en-US')} events, their deliveries and attempts in ${seedS} s\n`);

    // A dashboard session, as a browser gets one.
    const signIn = await fetch(`${base}/dashboard/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `key=${API_KEY}` });
    if (signIn.status !== 303) throw new Error(`sign-in: ${signIn.status}`);
    const cookie = signIn.headers.get('set-cookie').split(';')[0];

    const pages = [
      ['API GET /events?limit=50 (baseline)', `/events?limit=50`, { authorization: `Bearer ${API_KEY}` }],
      ['dashboard events list', '/dashboard/events'],
      ['dashboard events list, status=failed', '/dashboard/events?status=failed'],
      ['dashboard events list, status=expired (none in the account)', '/dashboard/events?status=expired'],
      ['dashboard events list, type=intent.declined', '/dashboard/events?type=intent.declined'],
      ['dashboard events list, last 10 minutes', `/dashboard/events?from=${new Date(Date.now() - 600_000).toISOString().slice(0, 19)}`],
      ['dashboard live list refresh (/rows)', '/dashboard/events/rows'],
      ['dashboard event page (3 attempts)', '/dashboard/events/evt_bench_2'],
      ['dashboard charts data, 1 h, no minute counted', '/dashboard/charts/data'],
      ['dashboard charts data, 24 h, no minute counted', '/dashboard/charts/data?window=24h'],
      ['dashboard intents list', '/dashboard/intents'],
      // The minutes counted, as the job keeps them (all but the last two or three).
      'count',
      ['dashboard charts data, 1 h, minutes counted', '/dashboard/charts/data'],
      ['dashboard charts data, 6 h, minutes counted', '/dashboard/charts/data?window=6h'],
      ['dashboard charts data, 24 h, minutes counted', '/dashboard/charts/data?window=24h'],
    ];
    for (const page of pages) {
      if (page === 'count') {
        const { countDueMinutes } = await import('../packages/server/dist/delivery/stats.js');
        const t1 = performance.now();
        let n = 0;
        for (let k; (k = await countDueMinutes(db, new Date(), { max: 500, budgetMs: 600_000 })) > 0;) n += k;
        process.stderr.write(`  counted ${n} minutes in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);
        continue;
      }
      const [title, url, headers] = page;
      // The first request is timed alone (the first view of a page; no cache is warm yet).
      const t0 = performance.now();
      const probe = await fetch(base + url, { redirect: 'manual', headers: headers ?? { cookie } });
      await probe.arrayBuffer();
      const firstMs = Math.round(performance.now() - t0);
      if (probe.status !== 200) {
        problems.push(`${title}: ${probe.status}`);
        process.stderr.write(`  ${title}: ${probe.status}\n`);
        continue;
      }
      process.stderr.write(`  ${title}: ${CONNECTIONS} connections, ${DURATION_S} s\n`);
      const r = await new Promise((resolve, reject) => {
        autocannon({ url: base + url, connections: CONNECTIONS, duration: DURATION_S, headers: headers ?? { cookie }, timeout: 10 }, (err, res) => (err ? reject(err) : resolve(res)));
      });
      const row = { title, firstMs, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, total: r.requests.total };
      if (r.non2xx || r.errors) problems.push(`${title}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      rows.push(row);
    }
    console.log(`\nDashboard pages, ${EVENTS.toLocaleString('en-US')} events in the account (PostgreSQL ${pg}), ${CONNECTIONS} connections:\n`);
    console.log('| page | first request ms | req/s | p50 ms | p99 ms | non-2xx |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) console.log(`| ${r.title} | ${r.firstMs} | ${r.rps.toLocaleString('en-US')} | ${r.p50} | ${r.p99} | ${r.non2xx} |`);
    if (process.env.BENCH_RESULT_FILE) {
      writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ bench: 'dashboard', machine: machineInfo(pg), rows }));
    }
  } finally {
    if (server) await stopChild(server);
    await db?.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`drop ${dbName}: ${e.message}`));
    await admin.end().catch(() => {});
  }
  return { problems };
}

if (isEntry(fileURLToPath(import.meta.url))) await runEntry(main);
