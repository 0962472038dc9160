#!/usr/bin/env node
// The delivery engine: how fast durable webhooks leave, next to what the same machine can do without a database
// (the raw limit) and what a BullMQ sender does; commit-to-receipt latency at a steady rate; the cost of a claim
// with a small and a huge backlog.
//
//   node bench/delivery.js                         (after `npm run build`; about 5 minutes)
//   import { run } from './delivery.js'; await run()   -> rows (the shape bench/run.js prints)
//
// Every part makes its own throw-away database on the machine's PostgreSQL (default durability), runs the
// migrations, and drops it at the end. The receivers (10 `node:http` servers) run in a child process and verify
// every `pushcash` signature; delivery workers are `cashwire worker` child processes.
//
//   1. throughput  50,000 events written with the production insertEvents (500 per transaction), then the workers
//                  start; timed from the first attempt to the moment no delivery is pending (all `succeeded`).
//   2. raw limit   the same 50,000 signed POSTs from memory through an undici Agent: no database.
//   3. BullMQ      50,000 jobs (addBulk) on the local Redis, a BullMQ Worker (child process) that signs and POSTs.
//   4. latency     1,000 events/s for 30 s, one transaction each, workers running: commit-to-receipt.
//   5. backlog     claim() of 200 at the head of a queue of 10,000 and of 1,000,000 pending deliveries.
//
// Environment:
//   BENCH_DATABASE_URL   admin URL used to CREATE/DROP the bench databases (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_REDIS_URL      Redis for part 3 (default redis://127.0.0.1:6379); only keys of a unique queue name are touched
//   BENCH_DELIVERY_PARTS which parts to run, e.g. "1,2" (default all)
//   BENCH_DELIVERY_CONFIGS  worker configs for part 1 as workers:concurrency:batch, comma separated
//                        (default "1:128:200,1:256:200,2:128:200"); part 4 uses the fastest of them
//   BENCH_DELIVERY_EVENTS   events in parts 1-3 (default 50000)
//   BENCH_DELIVERY_LATENCY_SECONDS  length of part 4 (default 30);  BENCH_DELIVERY_BACKLOG  part 5 sizes (default 10000,1000000)
//   BENCH_CPU_PROF=<dir> run the worker children with --cpu-prof, profiles written to <dir>
//   BENCH_RESULT_FILE=<file>  also write { bench, machine, rows } as JSON (bench/run.js reads it)
//   BENCH_PLOT_DIR=<dir> also write latency-percentiles.svg (part 4's commit → receipt percentiles, Vega-Lite) there
import { execFileSync, fork, spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture, isEntry, machineInfo, procTicks, rpc, runEntry, stopChild } from './_common.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const CLI = path.join(ROOT, 'packages/server/dist/cli.js');
const SERVER_DIST = (p) => new URL(`../packages/server/dist/${p}`, import.meta.url).href;
const WEBHOOKS_DIST = new URL('../packages/webhooks/dist/index.js', import.meta.url).href;

const RECEIVERS = 10;
const OPERATOR = 'op_bench';
// Sandbox: production deliveries go through the SSRF guard, which (rightly) refuses 127.0.0.1.
const ENVIRONMENT = 'sandbox';
const EVENT_TYPE = 'intent.approved';
const TICK_MS = 10; // /proc CPU times are in ticks; CLK_TCK is 100 on Linux

const intEnv = (name, fallback) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

export const DEFAULTS = {
  adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  parts: (process.env.BENCH_DELIVERY_PARTS ?? '1,2,3,4,5').split(',').map((s) => Number(s.trim())),
  events: intEnv('BENCH_DELIVERY_EVENTS', 50_000),
  // Part 1: workers:concurrency:batch. The fastest is used again for part 4.
  configs: (process.env.BENCH_DELIVERY_CONFIGS ?? '1:128:200,1:256:200,2:128:200').split(',').map((s) => {
    const [workers, concurrency, batch] = s.split(':').map(Number);
    return { workers, concurrency, batch };
  }),
  enqueueTxSize: 500,
  // Part 2: in-flight requests; undici opens up to inflight / RECEIVERS connections per receiver.
  rawInflight: [50, 100],
  // Part 3: BullMQ Worker concurrency.
  bullConcurrency: [50, 100],
  latency: { rate: 1000, seconds: intEnv('BENCH_DELIVERY_LATENCY_SECONDS', 30), warmupSeconds: 2, producers: 8, history: 100_000 },
  backlog: { sizes: (process.env.BENCH_DELIVERY_BACKLOG ?? '10000,1000000').split(',').map(Number), batch: 200, claims: 200, warmupClaims: 20 },
  cpuProfDir: process.env.BENCH_CPU_PROF,
};

// ---------------------------------------------------------------------------------------------------------------
// Receivers: RECEIVERS node:http servers in one process. Each verifies `x-webhook-signature: sha256=<hex HMAC>` of
// the raw body with its own secret, counts, and (when asked) records the receipt time of every event id.

function receiverRole() {
  const st = { received: 0, bad: 0, duplicates: 0, per: new Array(RECEIVERS).fill(0), seen: new Set(), record: false, times: [] };
  let keys = [];
  const servers = [];
  const handler = (i) => (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const sig = req.headers['x-webhook-signature'];
      const expected = `sha256=${createHmac('sha256', keys[i]).update(body).digest('hex')}`;
      const ok = typeof sig === 'string' && sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
      const id = req.headers['x-webhook-id'];
      st.received++;
      st.per[i]++;
      if (!ok) st.bad++;
      if (st.seen.has(id)) st.duplicates++;
      else st.seen.add(id);
      if (st.record) st.times.push(id, at);
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain', 'content-length': ok ? 2 : 3 });
      res.end(ok ? 'ok' : 'bad');
    });
  };
  process.on('message', async (m) => {
    const reply = (body) => process.send({ id: m.id, ...body });
    switch (m.cmd) {
      case 'start': {
        keys = m.secrets.map((s) => Buffer.from(s));
        for (let i = 0; i < RECEIVERS; i++) {
          const server = http.createServer({ keepAliveTimeout: 65_000 }, handler(i));
          server.headersTimeout = 70_000;
          await new Promise((r) => server.listen(0, '127.0.0.1', r));
          servers.push(server);
        }
        reply({ ports: servers.map((s) => s.address().port) });
        break;
      }
      case 'reset':
        Object.assign(st, { received: 0, bad: 0, duplicates: 0, per: new Array(RECEIVERS).fill(0), seen: new Set(), record: !!m.record, times: [] });
        reply({});
        break;
      case 'stats':
        reply({ received: st.received, bad: st.bad, duplicates: st.duplicates, unique: st.seen.size, per: st.per });
        break;
      case 'times':
        reply({ times: st.times });
        break;
      case 'stop':
        for (const s of servers) s.closeAllConnections?.();
        reply({});
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}


// ---------------------------------------------------------------------------------------------------------------
// Part 3's BullMQ worker: what a Node team usually writes. Renders and signs with the same library as the engine.

async function bullWorkerRole() {
  const { Worker } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { Agent, request } = await import('undici');
  const { renderPayload, signHeaders, DEFAULT_PAYLOAD_VERSION } = await import(WEBHOOKS_DIST);
  const { queue, concurrency, total, redisUrl } = JSON.parse(process.argv[3]);
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  let first;
  let completed = 0;
  let failed = 0;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const started = Date.now();
  const worker = new Worker(
    queue,
    async (job) => {
      first ??= Date.now();
      const { url, secret, event } = job.data;
      const at = new Date();
      const body = renderPayload(event, DEFAULT_PAYLOAD_VERSION, at);
      const headers = { 'content-type': 'application/json', ...(await signHeaders({ format: 'pushcash', id: event.id, body, secrets: [secret], timestamp: at })) };
      const res = await request(url, { method: 'POST', headers, body, dispatcher: agent });
      await res.body.text();
      if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
    },
    { connection, concurrency },
  );
  const done = () => {
    const ended = Date.now();
    // Stays alive until the parent has read its CPU time, then stops on SIGTERM.
    process.send({ started, first, ended, completed, failed });
    process.once('SIGTERM', () => {
      worker.close().finally(() => agent.close()).finally(() => connection.quit()).finally(() => process.exit(0));
    });
  };
  worker.on('completed', () => {
    if (++completed === total) done();
  });
  worker.on('failed', () => {
    failed++;
  });
  worker.on('error', (err) => console.error(`bullmq worker: ${err.message}`));
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const out = await runAll();
  const { machine, rows, notes, problems } = out;
  console.log(`\n${machineText(machine)}\n`);
  console.log(table(rows));
  const cpuRows = rows.filter((r) => r.cpuDetail);
  if (cpuRows.length) console.log(`\nCPU time per delivery (${machine.nproc} cores shared by everything):\n\n${cpuTable(cpuRows)}`);
  if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
  console.log(`\n${goals(rows).map((g) => `- ${g}`).join('\n')}`);
  if (process.env.BENCH_RESULT_FILE) {
    writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ bench: 'delivery', machine, rows: rows.map(({ cpuDetail, ...r }) => r) }, null, 2));
  }
  const lat = rows.find((r) => r.part === 4 && r.quantiles);
  if (process.env.BENCH_PLOT_DIR && lat) {
    const { percentilesSvg } = await import('./_plot.js');
    mkdirSync(process.env.BENCH_PLOT_DIR, { recursive: true });
    const file = path.join(process.env.BENCH_PLOT_DIR, 'latency-percentiles.svg');
    const data = Object.entries(lat.quantiles).map(([percentile, ms]) => ({ scenario: `commit → receipt at ${lat.rps.toLocaleString('en-US')} events/s`, percentile, ms }));
    writeFileSync(file, await percentilesSvg(data, 'Delivery latency, commit → receipt (bench/delivery.js part 4)'));
    console.log(`- plot: ${file}`);
  }
  return out;
}

/** Runs the parts; returns the table rows (bench/run.js shape: title, rps, p50, p99, non2xx, errors, total). */
export async function run(options = {}) {
  const out = await runAll(options);
  if (out.problems.length) throw new Error(`delivery benchmark failed:\n  ${out.problems.join('\n  ')}`);
  return out.rows;
}

async function runAll(options = {}) {
  const o = { ...DEFAULTS, ...options };
  let lib;
  try {
    lib = {
      ...(await import(SERVER_DIST('index.js'))),
      ...(await import(SERVER_DIST('store/events.js'))),
      ...(await import(SERVER_DIST('delivery/queue.js'))),
      webhooks: await import(WEBHOOKS_DIST),
    };
  } catch (err) {
    throw new Error(`cannot load the built server (${err.message}); run \`npm run build\` first`);
  }
  const ctx = { o, lib, secretKey: randomBytes(32).toString('hex'), dbs: new Set(), children: new Set(), admin: undefined, receivers: undefined, notes: [], problems: [] };
  let cleaning;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all([...ctx.children].map((c) => stopChild(c)));
      if (ctx.receivers) await stopChild(ctx.receivers);
      if (ctx.admin) {
        for (const name of ctx.dbs) await ctx.admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((e) => console.error(`drop ${name} failed: ${e.message}`));
        await ctx.admin.end().catch(() => {});
      }
    })());
  const onSignal = (sig) => {
    console.error(`\n${sig}: stopping children and dropping the bench databases`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const rows = [];
  try {
    const busyBefore = await quietCheck();
    if (busyBefore !== undefined) {
      log(`machine busy before the run: ${busyBefore}% of all cores${busyBefore > 10 ? '  <-- WARNING: something else is running; the numbers will be low and noisy' : ''}`);
    }
    ctx.admin = lib.createPool(o.adminUrl, 1);
    const { rows: [v] } = await ctx.admin.query('SELECT version() AS version, pg_backend_pid() AS pid');
    postmasterPid = parentPid(v.pid); // only this server's processes count as PostgreSQL (not other clusters on the machine)
    ctx.machine = { ...machineInfo(v.version), busyBefore };

    // The receivers, with one secret each.
    ctx.secrets = Array.from({ length: RECEIVERS }, () => `whsec_bench_${randomBytes(16).toString('hex')}`);
    ctx.receivers = fork(SELF, ['--receivers'], { cwd: ROOT, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const { ports } = await rpc(ctx.receivers, { cmd: 'start', secrets: ctx.secrets });
    ctx.targets = ports.map((port, i) => ({ origin: `http://127.0.0.1:${port}`, url: `http://127.0.0.1:${port}/hook`, secret: ctx.secrets[i] }));

    let best;
    if (o.parts.includes(1)) {
      for (const cfg of o.configs) {
        const r = await partThroughput(ctx, cfg);
        rows.push(r);
        if (!best || r.rps > best.rps) best = r;
      }
      best.best = true;
      ctx.notes.push(`part 1 best config: ${best.config.workers} worker process(es), CASHWIRE_WORKER_CONCURRENCY=${best.config.concurrency}, CASHWIRE_WORKER_BATCH=${best.config.batch}`);
    }
    if (o.parts.includes(2)) rows.push(bestOf(await seriesOf(o.rawInflight, (n) => partRaw(ctx, n)), ctx, 'raw'));
    if (o.parts.includes(3)) rows.push(bestOf(await seriesOf(o.bullConcurrency, (n) => partBull(ctx, n)), ctx, 'BullMQ'));
    if (o.parts.includes(4)) {
      // One worker process: with two, every NOTIFY wakes both and both claim, doubling the claim commits that
      // compete with the producers' (see 4b/4c).
      const single = rows.filter((r) => r.part === 1 && r.config.workers === 1).reduce((a, b) => (!a || b.rps > a.rps ? b : a), undefined);
      rows.push(await partLatency(ctx, single?.config ?? o.configs.find((c) => c.workers === 1) ?? o.configs[0]));
      rows.push(...(await partCommitCeiling(ctx)));
    }
    if (o.parts.includes(5)) rows.push(...(await partBacklog(ctx)));
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { machine: ctx.machine, rows, notes: ctx.notes, problems: ctx.problems };
}

async function seriesOf(values, fn) {
  const out = [];
  for (const v of values) out.push(await fn(v));
  return out;
}

function bestOf(rs, ctx, what) {
  const best = rs.reduce((a, b) => (b.rps > a.rps ? b : a));
  ctx.notes.push(`${what}: ${rs.map((r) => `${r.setting} → ${r.rps.toLocaleString('en-US')}/s`).join(', ')}; the table shows the best`);
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Databases and fixtures

async function freshDb(ctx, poolSize = 8) {
  const name = `cw_bench_${randomBytes(6).toString('hex')}`;
  await ctx.admin.query(`CREATE DATABASE ${name}`);
  ctx.dbs.add(name);
  const u = new URL(ctx.o.adminUrl);
  u.pathname = `/${name}`;
  const db = ctx.lib.createPool(u.toString(), poolSize);
  await ctx.lib.migrate(db);
  return {
    name,
    url: u.toString(),
    db,
    async drop() {
      await db.end().catch(() => {});
      await ctx.admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      ctx.dbs.delete(name);
    },
  };
}

/** An operator, a user and one intent per receiver (its webhook_url and webhook_secret). Returns the intent rows. */
async function seed(ctx, db) {
  const now = new Date();
  await db.query(`INSERT INTO operators (id, name, settings, created_at) VALUES ($1, 'bench', '{}', $2)`, [OPERATOR, now]);
  await db.query(
    `INSERT INTO users (operator_id, environment, id, tag, status, daily_limit, data, created_at)
     VALUES ($1, $2, 'user_bench', NULL, 'enabled', 100000000, '{}', $3)`,
    [OPERATOR, ENVIRONMENT, now],
  );
  const utilization = { daily_cash_in: 5000, daily_cash_out: 0, monthly_cash_in: 125000, monthly_cash_out: 30000 };
  for (let i = 0; i < RECEIVERS; i++) {
    await db.query(
      `INSERT INTO intents (operator_id, environment, id, user_id, direction, amount, currency, status, approval_mode, rail, type, tag,
                            webhook_url, webhook_secret, session_token, limits_utilization, decided_at, created_at, updated_at)
       VALUES ($1, $2, $3, 'user_bench', 'cash_in', 5000, 'USD', 'approved', 'automatic', 'ach', 'push', $4, $5, $6, $7, $8, $9, $9, $9)`,
      [OPERATOR, ENVIRONMENT, `intent_${ENVIRONMENT}_bench${String(i).padStart(2, '0')}`, `order-${i}`, ctx.targets[i].url, ctx.secrets[i],
        randomBytes(18).toString('base64url'), JSON.stringify(utilization), now],
    );
  }
  const { rows } = await db.query('SELECT * FROM intents WHERE operator_id = $1 ORDER BY id', [OPERATOR]);
  return rows; // rows[i] goes to receiver i
}

/** Events (and their deliveries) through the production insertEvents, `txSize` per transaction. */
async function enqueue(ctx, db, intents, n) {
  const { insertEvents, withTx, systemClock, randomIds } = ctx.lib;
  const deps = { clock: systemClock, ids: randomIds };
  const txSize = ctx.o.enqueueTxSize;
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const start = next;
      const count = Math.min(txSize, n - start);
      next += count;
      const events = [];
      for (let k = 0; k < count; k++) events.push({ intent: intents[(start + k) % intents.length], type: EVENT_TYPE });
      await withTx(db, (tx) => insertEvents(tx, deps, events));
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 4 }, lane));
  return (performance.now() - t0) / 1000;
}

function startWorkers(ctx, dbUrl, cfg) {
  const procs = [];
  for (let w = 0; w < cfg.workers; w++) {
    const prof = ctx.o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(ctx.o.cpuProfDir)] : [];
    const child = spawn(process.execPath, [...prof, CLI, 'worker'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl,
        LOG_LEVEL: 'warn',
        CASHWIRE_WORKER_CONCURRENCY: String(cfg.concurrency),
        CASHWIRE_WORKER_BATCH: String(cfg.batch),
        // A key of its own, so the worker does not make one in a data folder.
        CASHWIRE_SECRET_KEY: ctx.secretKey,
        CASHWIRE_DATA_DIR: path.join(os.tmpdir(), 'cashwire-bench-delivery'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.output = capture(child);
    ctx.children.add(child);
    procs.push(child);
  }
  return procs;
}

async function stopWorkers(ctx, procs) {
  await Promise.all(procs.map((c) => stopChild(c)));
  for (const c of procs) {
    ctx.children.delete(c);
    const tail = c.output().trim();
    if (tail) log(`  worker ${c.pid} said:\n${tail.split('\n').slice(-5).join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 1: durable throughput

async function partThroughput(ctx, cfg) {
  const n = ctx.o.events;
  const title = `1. engine: ${n.toLocaleString('en-US')} deliveries, ${cfg.workers} worker${cfg.workers > 1 ? 's' : ''} × concurrency ${cfg.concurrency}, batch ${cfg.batch}`;
  log(title);
  const d = await freshDb(ctx);
  try {
    const intents = await seed(ctx, d.db);
    const enqueueSecs = await enqueue(ctx, d.db, intents, n);
    log(`  enqueued ${n} events + deliveries in ${enqueueSecs.toFixed(1)} s (${Math.round(n / enqueueSecs).toLocaleString('en-US')}/s, ${ctx.o.enqueueTxSize} per transaction)`);
    await d.db.query('ANALYZE');
    await rpc(ctx.receivers, { cmd: 'reset' });

    const xacts = async () => (await d.db.query('SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n;
    const x0 = await xacts();
    const cpu0 = cpuSnapshot(d.name, [ctx.receivers.pid, process.pid]);
    const spawned = Date.now();
    const procs = startWorkers(ctx, d.url, cfg);
    const groups = { sender: procs.map((p) => p.pid), receivers: [ctx.receivers.pid], bench: [process.pid] };
    let ended;
    const deadline = spawned + 120_000;
    for (;;) {
      // The receivers first (no load on the database under test), then the database, until nothing is pending.
      const { unique } = await rpc(ctx.receivers, { cmd: 'stats' });
      const pending = unique < n || (await d.db.query(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE status = 'pending') AS pending`)).rows[0].pending;
      if (!pending) {
        ended = Date.now();
        break;
      }
      const dead = procs.find((p) => p.exitCode !== null);
      if (dead) throw new Error(`worker exited (${dead.exitCode}):\n${dead.output()}`);
      if (Date.now() > deadline) throw new Error(`deliveries still pending after 120 s`);
      await sleep(20);
    }
    const cpu = cpuDelta(cpu0, cpuSnapshot(d.name), groups, n);
    await sleep(600); // pg_stat_database is flushed at most every 500 ms
    const statements = (await xacts()) - x0;
    await stopWorkers(ctx, procs);
    const { rows: [c] } = await d.db.query(
      `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded, count(*)::int AS total, sum(reclaims)::int AS reclaims,
              (SELECT count(*)::int FROM delivery_attempts) AS attempts,
              (SELECT min(started_at) FROM delivery_attempts) AS first,
              (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) FROM delivery_attempts) AS http_p50,
              (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) FROM delivery_attempts) AS http_p99
         FROM deliveries`,
    );
    const recv = await rpc(ctx.receivers, { cmd: 'stats' });
    const secs = (ended - c.first.getTime()) / 1000;
    const rps = Math.round(n / secs);
    log(`  ${c.succeeded} succeeded in ${secs.toFixed(2)} s from the first attempt (${rps.toLocaleString('en-US')}/s); ${((ended - spawned) / 1000).toFixed(2)} s from spawning the workers (${Math.round(n / ((ended - spawned) / 1000)).toLocaleString('en-US')}/s)`);
    log(`  receivers: ${recv.received} received, ${recv.unique} distinct, ${recv.bad} bad signatures; attempts ${c.attempts}, reclaims ${c.reclaims}; ${statements} transactions in the database (${round(statements / n, 3)} per delivery)`);
    check(ctx, title, [
      [c.succeeded === n && c.total === n, `${c.succeeded}/${c.total} deliveries succeeded, expected ${n}`],
      [recv.bad === 0, `${recv.bad} bad signatures`],
      [recv.unique === n, `receivers saw ${recv.unique} distinct events, expected ${n}`],
    ]);
    return {
      part: 1,
      title,
      rps,
      p50: c.http_p50,
      p99: c.http_p99,
      non2xx: recv.bad,
      errors: n - c.succeeded,
      total: c.succeeded,
      seconds: round(secs, 2),
      detail: `${recv.received.toLocaleString('en-US')} received (${recv.duplicates} duplicates), 0 pending; ${round((ended - spawned) / 1000, 2)} s incl. worker start (${Math.round(n / ((ended - spawned) / 1000)).toLocaleString('en-US')}/s); p50/p99 = HTTP attempt ms`,
      config: cfg,
      cpu: cpu && toRunCpu(cpu),
      cpuDetail: cpu,
    };
  } finally {
    await d.drop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 2: the raw limit (no database)

function makeEvents(ctx, intents, n) {
  const { intentEventData, randomIds } = ctx.lib;
  const data = intents.map((i) => intentEventData(i));
  return Array.from({ length: n }, (_, k) => ({ id: randomIds.next('evt_'), type: EVENT_TYPE, data: data[k % data.length] }));
}

/** Intent rows as the database returns them, without a database (parts 2 and 3). */
function fakeIntents(ctx) {
  const now = new Date();
  return ctx.targets.map((t, i) => ({
    operator_id: OPERATOR, environment: ENVIRONMENT, id: `intent_${ENVIRONMENT}_bench${String(i).padStart(2, '0')}`, user_id: 'user_bench',
    direction: 'cash_in', amount: 5000, currency: 'USD', status: 'approved', decline_category: null, approval_mode: 'automatic', rail: 'ach',
    type: 'push', tag: `order-${i}`, idempotency_key: null, webhook_url: t.url, webhook_secret: t.secret,
    limits_utilization: { daily_cash_in: 5000, daily_cash_out: 0, monthly_cash_in: 125000, monthly_cash_out: 30000 }, created_at: now, updated_at: now,
  }));
}

async function partRaw(ctx, inflight) {
  const { Agent } = await import('undici');
  const { renderPayload, signHeaders, DEFAULT_PAYLOAD_VERSION } = ctx.lib.webhooks;
  const n = ctx.o.events;
  const title = `2. raw limit: ${n.toLocaleString('en-US')} signed POSTs from memory, undici, no database`;
  log(`${title} (${inflight} in flight)`);
  const events = makeEvents(ctx, fakeIntents(ctx), n);
  const now = new Date();
  const bodies = events.map((e) => renderPayload(e, DEFAULT_PAYLOAD_VERSION, now));
  const agent = new Agent({ connections: Math.ceil(inflight / RECEIVERS), pipelining: 1, keepAliveTimeout: 10_000 });
  const blast = async (from, to) => {
    let next = from;
    let ok = 0;
    let bad = 0;
    let errors = 0;
    const lane = async () => {
      while (next < to) {
        const i = next++;
        const t = ctx.targets[i % RECEIVERS];
        const body = bodies[i];
        const headers = {
          'content-type': 'application/json',
          'user-agent': 'Cashwire-Webhooks/0.1 (+https://github.com/cashwire/cashwire)',
          ...(await signHeaders({ format: 'pushcash', id: events[i].id, body, secrets: [t.secret], timestamp: now })),
        };
        try {
          const res = await agent.request({ origin: t.origin, path: '/hook', method: 'POST', headers, body });
          await res.body.text();
          if (res.statusCode < 300) ok++;
          else bad++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: inflight }, lane));
    return { ok, bad, errors };
  };
  const warm = Math.min(2000, Math.floor(n / 10));
  await blast(0, warm); // connections open, JIT warm: the limit is the steady state
  await rpc(ctx.receivers, { cmd: 'reset' });
  const cpu0 = cpuSnapshot(undefined, [ctx.receivers.pid, process.pid]);
  const t0 = performance.now();
  const r = await blast(0, n);
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(), { sender: [process.pid], receivers: [ctx.receivers.pid], bench: [] }, n);
  await agent.close();
  const recv = await rpc(ctx.receivers, { cmd: 'stats' });
  const rps = Math.round(n / secs);
  log(`  ${r.ok} ok in ${secs.toFixed(2)} s (${rps.toLocaleString('en-US')}/s); receivers: ${recv.received} received, ${recv.bad} bad`);
  check(ctx, title, [
    [r.ok === n && recv.received === n, `${r.ok} ok, ${recv.received} received, expected ${n}`],
    [recv.bad === 0, `${recv.bad} bad signatures`],
  ]);
  return {
    part: 2, title, rps, p50: '', p99: '', non2xx: recv.bad + r.bad, errors: r.errors, total: r.ok, seconds: round(secs, 2),
    setting: `${inflight} in flight`, detail: `${inflight} in flight, ${Math.ceil(inflight / RECEIVERS)} connections per receiver, after a ${warm}-request warm-up`,
    cpu: cpu && toRunCpu(cpu), cpuDetail: cpu,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Part 3: BullMQ

async function delKeys(redis, pattern) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

async function partBull(ctx, concurrency) {
  const { Queue } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const n = ctx.o.events;
  const title = `3. BullMQ sender: ${n.toLocaleString('en-US')} jobs, Redis (not durable), undici`;
  log(`${title} (concurrency ${concurrency})`);
  const queueName = `cw_bench_${randomBytes(6).toString('hex')}`;
  const pattern = `bull:${queueName}:*`;
  const redis = new Redis(ctx.o.redisUrl, { maxRetriesPerRequest: null });
  let queue;
  let child;
  try {
    await delKeys(redis, pattern);
    queue = new Queue(queueName, { connection: redis });
    const events = makeEvents(ctx, fakeIntents(ctx), n);
    const t0 = performance.now();
    const chunk = 5000;
    for (let i = 0; i < n; i += chunk) {
      await queue.addBulk(events.slice(i, i + chunk).map((event, k) => {
        const t = ctx.targets[(i + k) % RECEIVERS];
        return { name: 'deliver', data: { url: t.url, secret: t.secret, event }, opts: { attempts: 5, backoff: { type: 'exponential', delay: 1000 } } };
      }));
    }
    log(`  added ${n} jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await rpc(ctx.receivers, { cmd: 'reset' });
    const cpu0 = cpuSnapshot(undefined, [ctx.receivers.pid, process.pid]);
    child = fork(SELF, ['--bullmq-worker', JSON.stringify({ queue: queueName, concurrency, total: n, redisUrl: ctx.o.redisUrl })], {
      cwd: ROOT, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    ctx.children.add(child);
    const res = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('BullMQ worker did not finish in 120 s')), 120_000);
      child.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      child.once('exit', (code) => reject(new Error(`BullMQ worker exited (${code})`)));
    });
    const cpu = cpuDelta(cpu0, cpuSnapshot(), { sender: [child.pid], receivers: [ctx.receivers.pid], bench: [process.pid] }, n);
    await stopChild(child);
    ctx.children.delete(child);
    const recv = await rpc(ctx.receivers, { cmd: 'stats' });
    const secs = (res.ended - res.first) / 1000;
    const rps = Math.round(n / secs);
    log(`  ${res.completed} completed in ${secs.toFixed(2)} s from the first job (${rps.toLocaleString('en-US')}/s), ${((res.ended - res.started) / 1000).toFixed(2)} s from new Worker(); receivers: ${recv.received} received, ${recv.bad} bad`);
    check(ctx, title, [
      [res.completed === n && recv.unique === n, `${res.completed} completed, ${recv.unique} distinct received, expected ${n}`],
      [recv.bad === 0, `${recv.bad} bad signatures`],
    ]);
    return {
      part: 3, title, rps, p50: '', p99: '', non2xx: recv.bad, errors: res.failed, total: res.completed, seconds: round(secs, 2),
      setting: `concurrency ${concurrency}`,
      detail: `Worker concurrency ${concurrency}; ${round((res.ended - res.started) / 1000, 2)} s from new Worker() (${Math.round(n / ((res.ended - res.started) / 1000)).toLocaleString('en-US')}/s)`,
      cpu: cpu && toRunCpu(cpu), cpuDetail: cpu,
    };
  } finally {
    if (child) {
      await stopChild(child);
      ctx.children.delete(child);
    }
    await queue?.obliterate({ force: true }).catch(() => {});
    await queue?.close().catch(() => {});
    await delKeys(redis, pattern).catch(() => {});
    await redis.quit().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 4: commit-to-receipt latency at a steady rate

async function partLatency(ctx, cfg) {
  const { rate, seconds, warmupSeconds, producers } = ctx.o.latency;
  const { insertEvents, systemClock, randomIds } = ctx.lib;
  const title = `4. latency: ${rate.toLocaleString('en-US')} events/s for ${seconds} s, one transaction each, commit → receipt`;
  log(`${title} (${cfg.workers} worker(s) × ${cfg.concurrency}, batch ${cfg.batch})`);
  const d = await freshDb(ctx, producers + 2);
  try {
    const intents = await seed(ctx, d.db);
    // A running system has history: delivered events, and statistics that say so. (On an empty, never analyzed
    // database the planner joins the claim to events through the wrong index and each claim costs O(events).)
    const history = ctx.o.latency.history;
    for (let from = 1; from <= history; from += 100_000) {
      await bulkDeliveries(ctx, d.db, intents[0], from, Math.min(history, from + 99_999), `now() - interval '1 hour'`, 'succeeded');
    }
    await d.db.query('ANALYZE');
    await rpc(ctx.receivers, { cmd: 'reset', record: true });
    const procs = startWorkers(ctx, d.url, cfg);
    // Ready when every worker is LISTENing.
    const ready = Date.now() + 30_000;
    for (;;) {
      const { rows: [r] } = await d.db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`);
      if (r.n >= cfg.workers) break;
      const dead = procs.find((p) => p.exitCode !== null);
      if (dead) throw new Error(`worker exited (${dead.exitCode}):\n${dead.output()}`);
      if (Date.now() > ready) throw new Error('workers not listening after 30 s');
      await sleep(50);
    }

    const warm = rate * warmupSeconds;
    const total = warm + rate * seconds;
    const commits = new Map();
    let next = 0;
    let maxLag = 0;
    let lateSlots = 0;
    const interval = 1000 / rate;
    const t0 = performance.now() + 100;
    const producer = async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const due = t0 + i * interval;
        const wait = due - performance.now();
        if (wait > 0.5) await sleep(wait);
        const lag = performance.now() - due;
        if (i >= warm) {
          maxLag = Math.max(maxLag, lag);
          if (lag > 5) lateSlots++;
        }
        let eventId;
        const ids = { next: (p) => { const v = randomIds.next(p); if (p === 'evt_') eventId = v; return v; }, secret: (b) => randomIds.secret(b) };
        const client = await d.db.connect();
        try {
          await client.query('BEGIN');
          await insertEvents(client, { clock: systemClock, ids }, [{ intent: intents[i % RECEIVERS], type: EVENT_TYPE }]);
          await client.query('COMMIT');
          const committed = Date.now();
          if (i >= warm) commits.set(eventId, committed);
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          client.release();
        }
      }
    };
    const cpu0 = cpuSnapshot(d.name, [ctx.receivers.pid, process.pid, ...procs.map((p) => p.pid)]);
    const groups = { sender: procs.map((p) => p.pid), receivers: [ctx.receivers.pid], bench: [process.pid] };
    await Promise.all(Array.from({ length: producers }, producer));
    const produceSecs = (performance.now() - t0) / 1000;
    // Stragglers: wait until everything arrived, at most 10 s.
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const s = await rpc(ctx.receivers, { cmd: 'stats' });
      if (s.unique >= total) break;
      await sleep(100);
    }
    const cpu = cpuDelta(cpu0, cpuSnapshot(d.name), groups, total);
    const { times } = await rpc(ctx.receivers, { cmd: 'times' });
    const recv = await rpc(ctx.receivers, { cmd: 'stats' });
    await stopWorkers(ctx, procs);
    const lat = [];
    const seen = new Set();
    for (let k = 0; k < times.length; k += 2) {
      const id = times[k];
      if (seen.has(id)) continue;
      seen.add(id);
      const c = commits.get(id);
      if (c !== undefined) lat.push(times[k + 1] - c);
    }
    lat.sort((a, b) => a - b);
    const measured = commits.size;
    const p = (q) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] : NaN);
    const achieved = Math.round(total / produceSecs);
    log(`  produced ${total} (${warm} warm-up) in ${produceSecs.toFixed(1)} s (${achieved}/s), max pacing lag ${maxLag.toFixed(1)} ms, ${lateSlots} slots > 5 ms late`);
    log(`  arrived ${lat.length}/${measured}; commit → receipt p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, p99 ${p(0.99)} ms, p99.9 ${p(0.999)} ms, max ${lat.at(-1)} ms, min ${lat[0]} ms`);
    check(ctx, title, [
      [lat.length === measured, `${measured - lat.length} of ${measured} events did not arrive`],
      [recv.bad === 0, `${recv.bad} bad signatures`],
    ]);
    return {
      part: 4, title, rps: achieved, p50: p(0.5), p99: p(0.99), max: lat.at(-1), non2xx: recv.bad, errors: measured - lat.length, total: lat.length,
      quantiles: { p50: p(0.5), p90: p(0.9), p99: p(0.99), 'p99.9': p(0.999), max: lat.at(-1) },
      detail: `${lat.length.toLocaleString('en-US')}/${measured.toLocaleString('en-US')} arrived; p90 ${p(0.9)} ms, p99.9 ${p(0.999)} ms, max ${lat.at(-1)} ms; ${producers} producers, max pacing lag ${round(maxLag, 1)} ms; ${cfg.workers} worker(s) × ${cfg.concurrency}, batch ${cfg.batch}; ${warmupSeconds} s warm-up not counted; ${history.toLocaleString('en-US')} delivered events of history, ANALYZEd`,
      cpu: cpu && toRunCpu(cpu), cpuDetail: cpu,
    };
  } finally {
    await d.drop();
  }
}

/**
 * Why part 4 looks the way it does: how many one-event transactions PostgreSQL commits per second with the
 * production insertEvents (which NOTIFYs), against the same two rows inserted without the NOTIFY. No workers run;
 * one connection LISTENs, as a worker's would. A NOTIFYing commit holds a database-wide lock until its WAL flush is
 * done, so such commits cannot share a flush: their rate is bounded by the disk's flush latency.
 */
async function partCommitCeiling(ctx) {
  const { insertEvents, systemClock, randomIds, intentEventData } = ctx.lib;
  const producers = ctx.o.latency.producers;
  const seconds = 4;
  const d = await freshDb(ctx, producers + 1);
  const rows = [];
  try {
    const intents = await seed(ctx, d.db);
    const listener = await d.db.connect();
    await listener.query('LISTEN cashwire_deliveries');
    const data = intents.map((i) => JSON.stringify(intentEventData(i)));
    const variants = [
      ['4b. ceiling: one-event transactions, insertEvents (with NOTIFY), no workers', (tx, i) => insertEvents(tx, { clock: systemClock, ids: randomIds }, [{ intent: intents[i % RECEIVERS], type: EVENT_TYPE }])],
      ['4c. ceiling: the same event + delivery rows without NOTIFY', (tx, i) => {
        const intent = intents[i % RECEIVERS];
        const ev = randomIds.next('evt_');
        return tx.query(
          `WITH ev AS (INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7))
           INSERT INTO deliveries (operator_id, id, environment, event_id, lane, url, format, payload_version, secret, schedule_name, next_attempt_at, created_at)
           VALUES ($1, $8, $2, $3, cw_lane(NULL, $2, $9), $9, 'pushcash', $10, $11, $2, $7, $7)`,
          [OPERATOR, ENVIRONMENT, ev, EVENT_TYPE, intent.id, data[i % RECEIVERS], new Date(), randomIds.next('dlv_'), intent.webhook_url,
            ctx.lib.webhooks.DEFAULT_PAYLOAD_VERSION, intent.webhook_secret],
        );
      }],
    ];
    for (const [title, write] of variants) {
      log(title);
      let n = 0;
      const until = performance.now() + seconds * 1000;
      const lat = [];
      const t0 = performance.now();
      await Promise.all(Array.from({ length: producers }, async () => {
        const client = await d.db.connect();
        try {
          while (performance.now() < until) {
            const a = performance.now();
            await client.query('BEGIN');
            await write(client, n++);
            await client.query('COMMIT');
            lat.push(performance.now() - a);
          }
        } finally {
          client.release();
        }
      }));
      const secs = (performance.now() - t0) / 1000;
      lat.sort((a, b) => a - b);
      const q = (x) => round(lat[Math.min(lat.length - 1, Math.ceil(x * lat.length) - 1)], 2);
      const rps = Math.round(lat.length / secs);
      log(`  ${rps}/s over ${producers} connections; transaction p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
      rows.push({ part: 4, title, rps, p50: q(0.5), p99: q(0.99), max: q(1), non2xx: 0, errors: 0, total: lat.length,
        detail: `${producers} connections, unpaced, ${seconds} s; p50/p99/max = BEGIN…COMMIT ms` });
    }
    listener.release();
  } finally {
    await d.drop();
  }
  return rows;
}

/**
 * Events and their deliveries for ids from..to, in one statement (generate_series): ids as random as real ones,
 * `dueExpr` over g for next_attempt_at. `succeeded` rows are history: done, with their one attempt recorded.
 */
async function bulkDeliveries(ctx, db, intent, from, to, dueExpr, status) {
  const data = JSON.stringify(ctx.lib.intentEventData(intent));
  const done = status === 'succeeded';
  await db.query(
    `WITH g AS (SELECT g, md5(g::text) AS h FROM generate_series($1::int, $2::int) g),
          ev AS (INSERT INTO events (operator_id, environment, id, type, intent_id, data, created_at)
                 SELECT $3, $4, 'evt_' || substr(h, 1, 22), $5, $6, $7::jsonb, now() FROM g),
          dl AS (INSERT INTO deliveries (operator_id, id, environment, event_id, lane, url, format, payload_version, secret, schedule_name, next_attempt_at,
                                         created_at, status, attempts, last_status, completed_at)
                 SELECT $3, 'dlv_' || substr(h, 11, 22), $4, 'evt_' || substr(h, 1, 22), cw_lane(NULL, $4, $8), $8, 'pushcash', $9, $10, $4, ${dueExpr},
                        now(), $11, ${done ? 1 : 0}, ${done ? 200 : 'NULL'}, ${done ? 'now()' : 'NULL'} FROM g)
     INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, outcome)
     SELECT $3, 'dlv_' || substr(h, 11, 22), 1, 'history', now(), 1, 200, 'succeeded' FROM g WHERE $11 = 'succeeded'`,
    [from, to, OPERATOR, ENVIRONMENT, EVENT_TYPE, intent.id, data, intent.webhook_url, ctx.lib.webhooks.DEFAULT_PAYLOAD_VERSION, intent.webhook_secret, status],
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Part 5: claim cost against the size of the backlog

async function partBacklog(ctx) {
  const { claim, complete } = ctx.lib;
  const { sizes, batch, claims, warmupClaims } = ctx.o.backlog;
  const d = await freshDb(ctx, 2);
  const rows = [];
  try {
    const [intent] = await seed(ctx, d.db);
    let seq = 0;
    // Events and their deliveries, n at a time, due in the past in insertion order (ids as random as real ones).
    const add = async (n, dueExpr) => {
      const from = seq + 1;
      seq += n;
      await bulkDeliveries(ctx, d.db, intent, from, seq, dueExpr, 'pending');
    };
    for (const size of sizes) {
      const title = `5. claim(): ${batch} at the head of ${size.toLocaleString('en-US')} pending`;
      log(title);
      await d.db.query('TRUNCATE delivery_attempts, deliveries, events');
      const t0 = performance.now();
      const step = 250_000;
      for (let done = 0; done < size; done += step) {
        // Due in the past, 10 µs apart, oldest first.
        await add(Math.min(step, size - done), `now() - interval '1 day' + (g * interval '10 microseconds')`);
      }
      const fillSecs = (performance.now() - t0) / 1000;
      // Settle what the fill left for the background (autovacuum of the new rows, a checkpoint): the same for both
      // sizes, so the claims are not measured against a vacuum or a checkpoint of the fill.
      const s0 = performance.now();
      await d.db.query('VACUUM ANALYZE events, deliveries, delivery_attempts');
      await d.db.query('CHECKPOINT');
      const settleSecs = (performance.now() - s0) / 1000;
      const { rows: [pend] } = await d.db.query(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending'`);
      log(`  filled ${pend.n.toLocaleString('en-US')} pending in ${fillSecs.toFixed(1)} s, VACUUM ANALYZE + CHECKPOINT ${settleSecs.toFixed(1)} s`);
      // Each claim is followed (untimed) by completing what it took and adding as many new deliveries at the tail:
      // the queue stays at `size` and every claim reads its head, as in steady state.
      const times = [];
      let claimed = 0;
      for (let k = 0; k < warmupClaims + claims; k++) {
        const t = performance.now();
        // One destination: its cap raised to the batch, so that each claim takes a whole batch at the head.
        const got = await claim(d.db, 'bench-claimer', new Date(), 30_000, batch, { destinationConcurrency: batch });
        const ms = performance.now() - t;
        if (k >= warmupClaims) {
          times.push(ms);
          claimed += got.length;
        }
        const at = new Date();
        await complete(d.db, 'bench-claimer', got.map((g) => ({
          operator_id: g.operator_id, id: g.id, attempt: g.attempts, status: 'succeeded', outcome: 'succeeded', next_attempt_at: at,
          started_at: at, latency_ms: 1, status_code: 200, error_code: null, excerpt: Buffer.from('ok'),
        })));
        await add(got.length, 'clock_timestamp()');
      }
      const { rows: [after] } = await d.db.query(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending'`);
      times.sort((a, b) => a - b);
      const q = (x) => times[Math.min(times.length - 1, Math.ceil(x * times.length) - 1)];
      const med = q(0.5);
      log(`  ${claims} claims of ${batch}: median ${med.toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${times.at(-1).toFixed(2)} ms (${claimed} rows; ${after.n} pending after)`);
      check(ctx, title, [[claimed === claims * batch, `claimed ${claimed} rows in ${claims} claims of ${batch}`]]);
      rows.push({
        part: 5, title, rps: Math.round(1000 / med), p50: round(med, 2), p99: round(q(0.99), 2), max: round(times.at(-1), 2), non2xx: 0, errors: 0, total: claims,
        detail: `${claims} claims (after ${warmupClaims} warm-up), ${claimed.toLocaleString('en-US')} rows; median ${round(med / batch * 1000, 1)} µs per row; fill ${round(fillSecs, 1)} s, then VACUUM ANALYZE + CHECKPOINT; rate = claims/s at the median`,
        size,
      });
    }
    const [small, big] = [rows[0], rows.at(-1)];
    if (rows.length > 1) ctx.notes.push(`claim cost at ${big.size.toLocaleString('en-US')} / at ${small.size.toLocaleString('en-US')}: median ×${round(big.p50 / small.p50, 2)}, p99 ×${round(big.p99 / small.p99, 2)}`);
  } finally {
    await d.drop();
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting

function check(ctx, title, conditions) {
  for (const [ok, message] of conditions) if (!ok) ctx.problems.push(`${title}: ${message}`);
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function table(rows) {
  const head = '| benchmark | rate /s | p50 ms | p99 ms | max ms | count | bad sig. | notes |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---|';
  const fmt = (v) => (v === '' || v === undefined || v === null ? '' : String(v));
  const body = rows.map((r) => `| ${r.title}${r.best ? ' **(best)**' : ''} | ${r.rps.toLocaleString('en-US')} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${r.total.toLocaleString('en-US')} | ${r.part === 5 ? '' : r.non2xx} | ${r.detail ?? ''} |`);
  return [head, sep, ...body].join('\n');
}

function goals(rows) {
  const best = rows.filter((r) => r.part === 1).reduce((a, b) => (!a || b.rps > a.rps ? b : a), undefined);
  const raw = rows.find((r) => r.part === 2);
  const bull = rows.find((r) => r.part === 3);
  const lat = rows.find((r) => r.part === 4);
  const claims = rows.filter((r) => r.part === 5);
  const out = [];
  const mark = (ok) => (ok ? 'met' : 'NOT met');
  if (best && raw) out.push(`durable throughput ≥ ½ raw limit: ${best.rps.toLocaleString('en-US')} vs ${raw.rps.toLocaleString('en-US')} = ${round(best.rps / raw.rps, 2)}× (${mark(best.rps >= raw.rps / 2)})`);
  if (best && bull) out.push(`durable throughput ≥ 1.5× BullMQ: ${best.rps.toLocaleString('en-US')} vs ${bull.rps.toLocaleString('en-US')} = ${round(best.rps / bull.rps, 2)}× (${mark(best.rps >= 1.5 * bull.rps)})`);
  if (lat) {
    const held = lat.rps >= 0.97 * 1000;
    out.push(`p99 commit → receipt < 50 ms at 1,000/s: ${lat.p99} ms at ${lat.rps.toLocaleString('en-US')} events/s achieved${held ? '' : ' (the producers did not hold 1,000/s)'} (${mark(lat.p99 < 50 && held)}), ${lat.errors} missing`);
  }
  if (claims.length > 1) {
    const [a, b] = [claims[0], claims.at(-1)];
    out.push(`claim at ${b.size.toLocaleString('en-US')} ≤ 1.5× at ${a.size.toLocaleString('en-US')}: median ${b.p50} vs ${a.p50} ms = ${round(b.p50 / a.p50, 2)}× (${mark(b.p50 <= 1.5 * a.p50)})`);
  }
  return out;
}

function cpuTable(rows) {
  const head = '| benchmark | sender µs | store µs (PostgreSQL or Redis) | receivers µs | bench process µs | kernel irq µs | rest of machine busy | idle |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---:|';
  const body = rows.map((r) => {
    const c = r.cpuDetail;
    return `| ${r.title}${r.setting ? ` (${r.setting})` : ''} | ${c.sender} | ${c.postgres + c.redis} | ${c.receivers} | ${c.bench} | ${c.irq} | ${c.othersPct}% | ${c.idlePct}% |`;
  });
  return [head, sep, ...body].join('\n');
}

/** The CPU columns bench/run.js prints: "server" is the sender, "load generator" the receivers plus this process. */
function toRunCpu(c) {
  return { serverUs: c.sender, pgUs: c.postgres + c.redis, loadgenUs: c.receivers + c.bench, irqUs: c.irq, othersPct: c.othersPct, idlePct: c.idlePct };
}


function machineText(m) {
  return [
    `- CPU: ${m.cpu}, nproc ${m.nproc}, ${m.memoryGiB} GiB RAM, ${m.kernel}`,
    `- Node.js ${m.node}`,
    `- ${m.postgres}`,
    ...(m.busyBefore !== undefined ? [`- rest of the machine busy before the run: ${m.busyBefore}% of all cores`] : []),
  ].join('\n');
}

function log(line) {
  process.stderr.write(`${line}\n`);
}

// --- CPU accounting (Linux /proc; elsewhere the CPU columns are left empty) -------------------------------------

let postmasterPid;

function parentPid(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(t.slice(t.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}


/** Machine totals, the server's PostgreSQL processes (its background processes and the bench database's backends), and Redis. */
function cpuSnapshot(dbName, trackPids = []) {
  try {
    const c = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const pg = new Map();
    const redis = new Map();
    for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      let comm;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm === 'redis-server') redis.set(pid, procTicks(pid));
      if (comm !== 'postgres') continue;
      if (postmasterPid && Number(pid) !== postmasterPid && parentPid(pid) !== postmasterPid) continue; // another cluster
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      const backend = /^postgres: (?:\S+: )?\S+ (\S+) [\d.:a-f]+\(\d+\)/.exec(cmd);
      if (!backend || backend[1] === dbName) pg.set(pid, procTicks(pid));
    }
    const procs = new Map(trackPids.map((p) => [p, procTicks(p)]));
    return { idle: c[3] + c[4], busy: c[0] + c[1] + c[2] + c[5] + c[6] + c[7], irq: c[5] + c[6], pg, redis, procs };
  } catch {
    return undefined;
  }
}

/** µs of CPU per unit of work for each group of processes, PostgreSQL, Redis and interrupts. */
function cpuDelta(a, b, groups, units) {
  if (!a || !b || !units) return undefined;
  const sum = (m0, m1) => {
    let t = 0;
    for (const [pid, v] of m1) t += v - (m0.get(pid) ?? 0);
    return Math.max(0, t) * TICK_MS;
  };
  const per = (ms) => Math.round((ms * 1000) / units);
  const all = (b.busy - a.busy + b.idle - a.idle) * TICK_MS;
  // Processes not tracked in `a` (started since: the workers) count from zero; their ticks are read now.
  const out = {};
  let groupsMs = 0;
  for (const [name, pids] of Object.entries(groups)) {
    const ms = pids.reduce((s, p) => s + procTicks(p) - (a.procs.get(p) ?? 0), 0) * TICK_MS;
    out[name] = per(ms);
    groupsMs += ms;
  }
  const pgMs = sum(a.pg, b.pg);
  const redisMs = sum(a.redis, b.redis);
  const irqMs = (b.irq - a.irq) * TICK_MS;
  out.postgres = per(pgMs);
  out.redis = per(redisMs);
  out.irq = per(irqMs);
  out.othersPct = Math.max(0, Math.round((100 * ((b.busy - a.busy) * TICK_MS - irqMs - pgMs - redisMs - groupsMs)) / all));
  out.idlePct = Math.round((100 * (b.idle - a.idle) * TICK_MS) / all);
  return out;
}

async function quietCheck() {
  const a = cpuSnapshot();
  await sleep(2000);
  const b = cpuSnapshot();
  if (!a || !b) return undefined;
  return Math.round((100 * (b.busy - a.busy)) / (b.busy - a.busy + b.idle - a.idle));
}

// --- children ----------------------------------------------------------------------------------------------------



// ---------------------------------------------------------------------------------------------------------------
// Roles (at the end, so that every top-level binding above exists first). The receivers and the BullMQ worker are forked from this same file so the bench stays one file.
const role = process.argv[2];
if (role === '--receivers') {
  receiverRole();
} else if (role === '--bullmq-worker') {
  await bullWorkerRole();
} else if (isEntry(SELF)) {
  await runEntry(main);
}
