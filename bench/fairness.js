#!/usr/bin/env node
// Fair scheduling between tenants: does one operator's backlog delay another operator's fresh webhooks?
//
//   node bench/fairness.js                       (after `npm run build`; about 1 minute)
//   BENCH_ROOT=/path/to/other/checkout node bench/fairness.js    (the same scenario against another build)
//   import { run } from './fairness.js'; await run()   -> rows (the shape bench/run.js prints)
//
// The scenario, on a throw-away `cw_bench_*` database of the machine's PostgreSQL (dropped at the end):
//   - Cashwire runs as real processes of the build under test: the API (that build's dist `start()` with no worker,
//     in a child process) and one `cashwire worker` child process with default settings. BENCH_FAIR_API=start runs
//     `cashwire start` alone instead (the API with the worker it starts itself: a child process in builds since
//     1c35527, inside the API process before).
//   - Operators A and B are made with `cashwire operator create`; everything else goes through the public HTTP API,
//     except A's backlog, written with the build's own production insert path (dist store/events.js insertEvents).
//   - Tenant A registers BENCH_FAIR_ENDPOINTS sandbox endpoints (POST /webhook/endpoints, format pushcash, subscribed
//     to intent.approved), each pointing at a receiver of its own (node:http servers in a child process that verify
//     the signature and answer 200 after BENCH_FAIR_RECEIVER_MS), and disables them (POST …/disable). Then
//     BENCH_FAIR_BACKLOG / endpoints intent.approved events of one A payment without webhook_url are written: each
//     fans out to every endpoint, so the endpoints hold BENCH_FAIR_BACKLOG deliveries, none sent (checked).
//   - The release: POST …/enable for every endpoint at once; the whole backlog is due now.
//   - Right after the release (when the last enable answered), tenant B sends BENCH_FAIR_B payments, one every
//     BENCH_FAIR_GAP_MS, each a POST /authorize with a webhook_url (and webhook_secret) of its own pointing at B's
//     receiver: each emits one intent.approved webhook. B's latency = the receipt time at B's receiver (Date.now() in
//     the receiver process, when the body has arrived) minus the time its POST /authorize answered (Date.now() in
//     this process; same machine, same clock).
//   - Measured as well: A's pending deliveries (status 'pending' in the database) when B's last webhook arrived
//     (queried the moment the receiver reports it; the receivers' own count of A webhooks still to come is given
//     beside it), and A's drain: from the release until the database has no A delivery pending (polled every
//     100 ms), as deliveries/s.
//
// Environment:
//   BENCH_ROOT              checkout whose built CLI and dist modules are used (default: this repository)
//   BENCH_DATABASE_URL      admin URL used to CREATE/DROP the bench database (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_FAIR_BACKLOG      A's held deliveries (default 30000)     BENCH_FAIR_ENDPOINTS  A's endpoints (default 10)
//   BENCH_FAIR_B            B's webhooks (default 20)               BENCH_FAIR_GAP_MS     between B's payments (default 100)
//   BENCH_FAIR_RECEIVER_MS  receivers answer after this (default 20)
//   BENCH_FAIR_API          split (default: API + one `cashwire worker`) or start (`cashwire start` alone)
//   BENCH_CPU_PROF=<dir>    run the `cashwire worker` child with --cpu-prof, its profile written to <dir>
//   BENCH_RESULT_FILE=<file>  also write { bench, machine, rows } as JSON (bench/run.js reads it)
// CASHWIRE_* variables of the calling shell are not passed on: the processes run with the defaults, plus a secret
// key, a data folder, high API rate limits and a one-hour sandbox settlement delay (so that no intent.settled
// webhook joins in).
import { execFile, execFileSync, fork, spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture, freePort, isEntry, machineInfo, procTicks, rpc, runEntry, stopChild } from './_common.js';

const SELF = fileURLToPath(import.meta.url);
const HERE = path.dirname(SELF);
const BENCH_ROOT = path.resolve(process.env.BENCH_ROOT || path.join(HERE, '..'));
const CLI = path.join(BENCH_ROOT, 'packages/server/dist/cli.js');
const DIST = (p) => pathToFileURL(path.join(BENCH_ROOT, 'packages/server/dist', p)).href;

const EVENT_TYPE = 'intent.approved';
const TICK_MS = 10; // /proc CPU times are in ticks; CLK_TCK is 100 on Linux
const HIGH_LIMIT = '100000000';

const intEnv = (name, fallback, min = 1) => {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && process.env[name] !== '' && Number.isInteger(v) && v >= min ? v : fallback;
};

export const DEFAULTS = {
  adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  backlog: intEnv('BENCH_FAIR_BACKLOG', 30_000),
  endpoints: intEnv('BENCH_FAIR_ENDPOINTS', 10),
  b: intEnv('BENCH_FAIR_B', 20),
  gapMs: intEnv('BENCH_FAIR_GAP_MS', 100, 0),
  receiverMs: intEnv('BENCH_FAIR_RECEIVER_MS', 20, 0),
  topology: process.env.BENCH_FAIR_API === 'start' ? 'start' : 'split',
  targetP99Ms: 1000,
  eventsPerTx: 100,
  // Deadlines: the whole run stays within about 3 minutes.
  drainTimeoutMs: 120_000,
  bTimeoutMs: 60_000,
  totalBudgetMs: 170_000,
};

// ---------------------------------------------------------------------------------------------------------------
// Child role: the receivers. A's endpoints (one node:http server each) and B's receiver, in one process. Each
// verifies `x-webhook-signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, records the receipt time (Date.now()
// once the body is in) and answers 200 after `delayMs`. B's receipts are also reported to the parent at once.

function receiverRole() {
  let delayMs = 20;
  let aKeys = [];
  let bKey = Buffer.alloc(0);
  const st = { aReceived: 0, aBad: 0, aDup: 0, aPer: [], aSeen: new Set(), aTimes: [], bReceived: 0, bBad: 0, b: [] };
  const servers = [];
  const verify = (key, body, sig) => {
    const expected = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
    return typeof sig === 'string' && sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
  };
  const answer = (res) => {
    const end = () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    };
    if (delayMs > 0) setTimeout(end, delayMs);
    else end();
  };
  const collect = (req, fn) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => fn(Date.now(), chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
  };
  const aHandler = (i) => (req, res) =>
    collect(req, (at, body) => {
      st.aReceived++;
      st.aPer[i]++;
      if (!verify(aKeys[i] ?? Buffer.alloc(0), body, req.headers['x-webhook-signature'])) st.aBad++;
      const key = `${i}:${req.headers['x-webhook-id']}`;
      if (st.aSeen.has(key)) st.aDup++;
      else {
        st.aSeen.add(key);
        st.aTimes.push(at);
      }
      answer(res);
    });
  const bHandler = (req, res) =>
    collect(req, (at, body) => {
      st.bReceived++;
      const ok = verify(bKey, body, req.headers['x-webhook-signature']);
      if (!ok) st.bBad++;
      let type;
      let intent;
      try {
        const parsed = JSON.parse(body.toString('utf8'));
        type = parsed.type;
        intent = parsed.data?.id;
      } catch {
        /* counted as missing by the parent */
      }
      const r = { id: req.headers['x-webhook-id'], type, intent, at, ok };
      st.b.push(r);
      process.send({ evt: 'b', ...r });
      answer(res);
    });
  const listen = async (handler) => {
    const server = http.createServer({ keepAliveTimeout: 65_000 }, handler);
    server.headersTimeout = 70_000;
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return server.address().port;
  };
  process.on('message', async (m) => {
    const reply = (body) => process.send({ id: m.id, ...body });
    switch (m.cmd) {
      case 'start': {
        delayMs = m.delayMs;
        st.aPer = new Array(m.endpoints).fill(0);
        const aPorts = [];
        for (let i = 0; i < m.endpoints; i++) aPorts.push(await listen(aHandler(i)));
        const bPort = await listen(bHandler);
        reply({ aPorts, bPort });
        break;
      }
      case 'keys':
        aKeys = m.a.map((s) => Buffer.from(s));
        bKey = Buffer.from(m.b);
        reply({});
        break;
      case 'count':
        reply({ aUnique: st.aSeen.size, bReceived: st.bReceived });
        break;
      case 'stats':
        reply({ ...st, aSeen: undefined, aUnique: st.aSeen.size, aTimes: st.aTimes });
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
// Child role: the API of the build under test, without a delivery worker (the worker is a `cashwire worker`).

async function apiRole() {
  const { start, loadConfig } = await import(process.argv[3]);
  const running = await start({ config: loadConfig(), worker: false });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop); // the bench process is gone
  process.send({ ready: true, url: running.url });
}


// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const out = await runAll();
  const { machine, rows, notes, problems } = out;
  console.log(`\n${machineText(machine)}\n`);
  console.log(table(rows));
  if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ bench: 'fairness', machine, rows }, null, 2));
  return out;
}

/** Runs the scenario; returns the table rows (bench/run.js shape: title, rps, p50, p99, non2xx, errors, total). */
export async function run(options = {}) {
  const out = await runAll(options);
  if (out.problems.length) throw new Error(`fairness benchmark failed:\n  ${out.problems.join('\n  ')}`);
  return out.rows;
}

/** The scenario with its details: { machine, rows, notes, problems, drain } (`drain`: A's curve and CPU; bench/recovery.js). */
export async function runAll(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const began = Date.now();
  let lib;
  try {
    lib = { ...(await import(DIST('index.js'))), ...(await import(DIST('store/events.js'))) };
  } catch (err) {
    throw new Error(`cannot load the built server in ${BENCH_ROOT} (${err.message}); run \`npm run build\` there first`);
  }
  for (const name of ['createPool', 'withTx', 'systemClock', 'randomIds', 'insertEvents', 'start', 'loadConfig']) {
    if (!lib[name]) throw new Error(`${BENCH_ROOT}: the built server has no \`${name}\``);
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cashwire-bench-fairness-'));
  const ctx = { o, lib, children: new Set(), admin: undefined, db: undefined, dbName: undefined, receivers: undefined, notes: [], problems: [] };
  let cleaning;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all([...ctx.children].map((c) => stopChild(c)));
      if (ctx.receivers) await stopChild(ctx.receivers);
      await ctx.db?.end().catch(() => {});
      if (ctx.admin) {
        if (ctx.dbName) await ctx.admin.query(`DROP DATABASE IF EXISTS ${ctx.dbName} WITH (FORCE)`).catch((e) => console.error(`drop ${ctx.dbName} failed: ${e.message}`));
        await ctx.admin.end().catch(() => {});
      }
      rmSync(dataDir, { recursive: true, force: true });
    })());
  const onSignal = (sig) => {
    console.error(`\n${sig}: stopping children and dropping the bench database`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let rows = [];
  try {
    const busyBefore = busyCheck(await cpuSample(1000));
    if (busyBefore !== undefined) log(`machine busy before the run: ${busyBefore}% of all cores${busyBefore > 10 ? '  <-- WARNING: something else is running; the numbers will be low and noisy' : ''}`);
    ctx.admin = lib.createPool(o.adminUrl, 1);
    const { rows: [v] } = await ctx.admin.query('SELECT version() AS version');
    ctx.machine = { ...machineInfo(v.version), code: codeOf(BENCH_ROOT), root: BENCH_ROOT, busyBefore };
    log(`Cashwire under test: ${BENCH_ROOT} (${ctx.machine.code}), ${o.topology === 'split' ? 'API + one `cashwire worker`' : '`cashwire start` alone'}`);
    rows = await scenario(ctx, dataDir, began);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { machine: ctx.machine, rows, notes: ctx.notes, problems: ctx.problems, drain: ctx.drain };
}

async function scenario(ctx, dataDir, began) {
  const { o, lib } = ctx;
  const E = o.endpoints;
  const eventsN = Math.ceil(o.backlog / E);
  const expected = eventsN * E;
  const budgetEnd = began + o.totalBudgetMs;

  // 1. The database, migrated by the CLI; the two operators.
  ctx.dbName = `cw_bench_${randomBytes(6).toString('hex')}`;
  await ctx.admin.query(`CREATE DATABASE ${ctx.dbName}`);
  const u = new URL(o.adminUrl);
  u.pathname = `/${ctx.dbName}`;
  const dbUrl = u.toString();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = childEnv({
    DATABASE_URL: dbUrl,
    LOG_LEVEL: 'warn',
    CASHWIRE_DATA_DIR: dataDir,
    CASHWIRE_SECRET_KEY: randomBytes(32).toString('hex'),
    CASHWIRE_RATE_LIMIT_CREATE: HIGH_LIMIT,
    CASHWIRE_RATE_LIMIT_READ: HIGH_LIMIT,
    CASHWIRE_SANDBOX_SETTLE_DELAY_MS: '3600000',
    PORT: String(port),
    HOST: '127.0.0.1',
    CASHWIRE_PUBLIC_URL: base,
  });
  await cli(env, ['migrate']);
  const opA = await cli(env, ['operator', 'create', 'bench tenant A']);
  const opB = await cli(env, ['operator', 'create', 'bench tenant B']);
  if (!opA?.sandbox_key || !opB?.sandbox_key) throw new Error(`cashwire operator create gave no sandbox key: ${JSON.stringify(opA)}`);
  ctx.db = lib.createPool(dbUrl, 6);

  // 2. The receivers.
  ctx.receivers = fork(SELF, ['--receivers'], { cwd: HERE, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { aPorts, bPort } = await rpc(ctx.receivers, { cmd: 'start', endpoints: E, delayMs: o.receiverMs });

  // 3. Cashwire.
  let api;
  let worker;
  if (o.topology === 'split') {
    api = fork(SELF, ['--api', DIST('index.js')], { cwd: BENCH_ROOT, execArgv: [], env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    api.output = capture(api);
    ctx.children.add(api);
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];
    worker = spawn(process.execPath, [...prof, CLI, 'worker'], { cwd: BENCH_ROOT, env: { ...env, CASHWIRE_PARENT_PID: String(process.pid) }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.output = capture(worker);
    ctx.children.add(worker);
  } else {
    api = spawn(process.execPath, [CLI, 'start'], { cwd: BENCH_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    api.output = capture(api);
    ctx.children.add(api);
  }
  await waitHealthy(`${base}/healthz`, api);
  await waitListening(ctx, [api, worker].filter(Boolean));

  const A = client(base, opA.sandbox_key);
  const B = client(base, opB.sandbox_key);

  // 4. Tenant A: endpoints, disabled, and the backlog they hold.
  const endpoints = [];
  for (let i = 0; i < E; i++) {
    const r = await A.post('/webhook/endpoints', { url: `http://127.0.0.1:${aPorts[i]}/hook/a${i}`, events: [EVENT_TYPE], format: 'pushcash', description: `bench tenant A ${i}` });
    expectStatus(r, [200, 201], 'POST /webhook/endpoints');
    endpoints.push(r.body);
  }
  const bSecret = `whsec_bench_${randomBytes(20).toString('hex')}`;
  await rpc(ctx.receivers, { cmd: 'keys', a: endpoints.map((e) => e.secret), b: bSecret });
  for (const e of endpoints) expectStatus(await A.post(`/webhook/endpoints/${e.id}/disable`), [200], `POST /webhook/endpoints/${e.id}/disable`);

  const userA = await A.post('/user', userBody('tenant-a'));
  expectStatus(userA, [200, 201], 'POST /user (A)');
  const intentA = await A.post('/intent', { direction: 'cash_in', user_id: userA.body.id, amount: 5000, currency: 'USD', tag: 'bench-backlog' });
  expectStatus(intentA, [200, 201], 'POST /intent (A)');
  const { rows: [intentRow] } = await ctx.db.query('SELECT * FROM intents WHERE operator_id = $1 AND id = $2', [opA.id, intentA.body.id]);
  if (!intentRow) throw new Error(`intent ${intentA.body.id} not in the database`);
  const backlogIntent = { ...intentRow, status: 'approved', webhook_url: null, webhook_secret: null };
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < eventsN) {
      const count = Math.min(o.eventsPerTx, eventsN - next);
      next += count;
      const events = Array.from({ length: count }, () => ({ intent: backlogIntent, type: EVENT_TYPE }));
      await lib.withTx(ctx.db, (tx) => lib.insertEvents(tx, { clock: lib.systemClock, ids: lib.randomIds }, events));
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));
  const fillSecs = (performance.now() - t0) / 1000;
  await ctx.db.query('ANALYZE');
  await sleep(1500); // longer than the worker's fallback poll: a build that sends held deliveries would show it now
  const pendingA = async () => (await ctx.db.query(`SELECT count(*)::int AS n FROM deliveries WHERE operator_id = $1 AND status = 'pending'`, [opA.id])).rows[0].n;
  const { rows: [held] } = await ctx.db.query(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > now() + interval '1 day')::int AS far
       FROM deliveries WHERE operator_id = $1`,
    [opA.id],
  );
  const early = await rpc(ctx.receivers, { cmd: 'count' });
  log(`A: ${E} endpoints disabled; ${eventsN.toLocaleString('en-US')} events written in ${fillSecs.toFixed(1)} s (insertEvents, ${o.eventsPerTx} per transaction) → ${held.total.toLocaleString('en-US')} deliveries, ${held.pending.toLocaleString('en-US')} pending (${held.far.toLocaleString('en-US')} due in the far future), ${early.aUnique} sent`);
  if (held.total !== expected || held.pending !== expected || early.aUnique !== 0) {
    throw new Error(`the backlog is not held: ${held.total} deliveries, ${held.pending} pending, ${early.aUnique} already received; expected ${expected} pending and none sent`);
  }

  // 5. Tenant B: a user and one card token per payment; one payment before the release checks the path end to end.
  const userB = await B.post('/user', userBody('tenant-b'));
  expectStatus(userB, [200, 201], 'POST /user (B)');
  const tokens = [];
  for (let k = 0; k <= o.b; k++) {
    const t = await B.post('/token', { user_id: userB.body.id, type: 'card_only' });
    expectStatus(t, [200, 201], 'POST /token (B)');
    tokens.push(t.body.token);
  }
  const bArrivals = new Map(); // intent id -> receipt time (first)
  let onB;
  ctx.receivers.on('message', (m) => {
    if (m?.evt !== 'b' || m.type !== EVENT_TYPE || !m.intent) return;
    if (!bArrivals.has(m.intent)) bArrivals.set(m.intent, m.at);
    onB?.(m);
  });
  const authorize = (k) => B.post('/authorize', {
    amount: 100 + k, currency: 'USD', direction: 'cash_in', token: tokens[k], tag: `bench-b-${k}`,
    webhook_url: `http://127.0.0.1:${bPort}/hook/b`, webhook_secret: bSecret,
  });
  const probe = await authorize(o.b);
  expectStatus(probe, [200], 'POST /authorize (B probe)');
  const probeAnswered = Date.now();
  for (const until = Date.now() + 15_000; !bArrivals.has(probe.body.id); await sleep(10)) {
    if (Date.now() > until) throw new Error(`B's probe webhook did not arrive in 15 s (before the release)`);
  }
  log(`B: probe payment ${probe.body.id} delivered ${bArrivals.get(probe.body.id) - probeAnswered} ms after its POST /authorize answered`);

  // 6. The release, then B's payments, while A's drain is watched.
  const xacts = async () => (await ctx.db.query('SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0].n;
  const x0 = await xacts();
  const procs = [api, worker].filter(Boolean);
  const watched = () => [...procs.map((p) => treeTicks(p.pid)), procTicks(ctx.receivers.pid), procTicks(process.pid), postgresTicks()];
  const ticks0 = watched();
  const cpu0 = await cpuSample(0);
  const tRelease = Date.now();
  const enabled = await Promise.all(endpoints.map((e) => A.post(`/webhook/endpoints/${e.id}/enable`)));
  const tReleased = Date.now();
  for (const r of enabled) expectStatus(r, [200], 'POST /webhook/endpoints/{id}/enable');

  const sends = [];
  const bIntents = new Set(); // B's payments whose POST /authorize answered 200
  let answersDone = false;
  let lastB;
  let resolveAllB;
  const allB = new Promise((r) => { resolveAllB = r; });
  onB = () => {
    if (lastB) return;
    const complete = answersDone ? bIntents.size > 0 : bIntents.size === o.b;
    if (!complete || ![...bIntents].every((id) => bArrivals.has(id))) return;
    lastB = { at: Math.max(...[...bIntents].map((id) => bArrivals.get(id))) };
    // The moment B's last webhook arrived: A's pending deliveries, as the database says (queried now) and as the
    // receivers say (A webhooks not yet received at that receipt time, computed afterwards).
    const asked = Date.now();
    lastB.lagMs = asked - lastB.at;
    pendingA().then((n) => { lastB.pendingDb = n; lastB.queriedMs = Date.now() - asked; resolveAllB(); }, (err) => { lastB.error = err.message; resolveAllB(); });
  };
  const sender = (async () => {
    for (let k = 0; k < o.b; k++) {
      const slot = tReleased + k * o.gapMs;
      const wait = slot - Date.now();
      if (wait > 0) await sleep(wait);
      const sentAt = Date.now();
      sends.push(authorize(k).then(
        (r) => {
          const answeredAt = Date.now();
          if (r.status === 200 && r.body?.id) bIntents.add(r.body.id);
          onB();
          return { k, sentAt, answeredAt, status: r.status, intent: r.body?.id, body: r.body };
        },
        (err) => ({ k, sentAt, answeredAt: Date.now(), status: 0, body: String(err?.message ?? err) }),
      ));
    }
    const done = await Promise.all(sends);
    answersDone = true;
    onB(); // some payments failed: the ones that answered 200 decide
    return done;
  })();

  // Every 100 ms: is anything of A still pending; every second also how much is not yet received (for the log).
  const anyPendingA = async () => (await ctx.db.query(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE operator_id = $1 AND status = 'pending') AS p`, [opA.id])).rows[0].p;
  const samples = [[0, expected]];
  let tDrained;
  let lastCount = tRelease;
  const drainDeadline = Math.min(tRelease + o.drainTimeoutMs, budgetEnd);
  // The receivers are asked first (no load on the database under test); once they have every A delivery, the
  // database is asked until it has nothing of A pending (the last outcomes written).
  for (;;) {
    const { aUnique } = await rpc(ctx.receivers, { cmd: 'count' });
    const pending = aUnique < expected || (await anyPendingA());
    const at = Date.now();
    if (!pending) {
      tDrained = at;
      samples.push([at - tRelease, 0]);
      break;
    }
    if (at - lastCount >= 1000) {
      lastCount = at;
      samples.push([at - tRelease, expected - aUnique]);
    }
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`a Cashwire process exited (${dead.exitCode ?? dead.signalCode}):\n${dead.output()}`);
    if (at > drainDeadline) break;
    await sleep(100);
  }
  const cpu1 = await cpuSample(0);
  const ticks1 = watched();
  const x1 = await xacts();
  const answers = await sender;
  const bDeadline = Math.min(Math.max(...answers.map((a) => a.answeredAt)) + o.bTimeoutMs, budgetEnd);
  await Promise.race([allB, sleep(Math.max(0, bDeadline - Date.now()))]);
  await sleep(200); // late duplicates
  const recv = await rpc(ctx.receivers, { cmd: 'stats' });

  // 7. What the database says about both tenants.
  const { rows: aStatus } = await ctx.db.query(
    `SELECT status, count(*)::int AS n, sum(attempts)::int AS attempts, sum(reclaims)::int AS reclaims FROM deliveries WHERE operator_id = $1 GROUP BY status`, [opA.id]);
  const { rows: [aAttempts] } = await ctx.db.query(
    `SELECT count(*)::int AS n, min(started_at) AS first, percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
            percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
       FROM delivery_attempts WHERE operator_id = $1`, [opA.id]);
  const { rows: bRows } = await ctx.db.query(
    `SELECT e.intent_id, e.created_at, d.status, d.attempts,
            (SELECT min(a.started_at) FROM delivery_attempts a WHERE a.operator_id = d.operator_id AND a.delivery_id = d.id) AS first_attempt
       FROM deliveries d JOIN events e ON e.operator_id = d.operator_id AND e.id = d.event_id
      WHERE d.operator_id = $1 AND e.type = $2`, [opB.id, EVENT_TYPE]);
  const bDb = new Map(bRows.map((r) => [r.intent_id, r]));

  // 8. Figures.
  const okAnswers = answers.filter((a) => a.status === 200 && a.intent);
  for (const a of answers.filter((x) => !(x.status === 200 && x.intent))) ctx.problems.push(`B payment ${a.k}: POST /authorize answered ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
  const bLat = [];
  const waits = [];
  const aheadOfB = [];
  const aTimes = recv.aTimes.sort((x, y) => x - y);
  const aBefore = (t) => upperBound(aTimes, t); // A webhooks received by t
  for (const a of okAnswers) {
    const at = bArrivals.get(a.intent);
    if (at === undefined) continue;
    bLat.push(at - a.answeredAt);
    aheadOfB.push(aBefore(at) - aBefore(a.answeredAt));
    const d = bDb.get(a.intent);
    if (d?.first_attempt) waits.push(d.first_attempt.getTime() - d.created_at.getTime());
  }
  const missingB = okAnswers.length - bLat.length;
  if (missingB > 0) ctx.problems.push(`${missingB} of B's ${okAnswers.length} webhooks did not arrive within ${o.bTimeoutMs / 1000} s`);
  const sortedLat = [...bLat].sort((x, y) => x - y);
  const q = (arr, x) => (arr.length ? arr[Math.min(arr.length - 1, Math.max(0, Math.ceil(x * arr.length) - 1))] : null);
  const p50 = q(sortedLat, 0.5);
  const p99 = q(sortedLat, 0.99);
  const max = sortedLat.at(-1) ?? null;
  const pass = missingB === 0 && okAnswers.length === o.b && p99 !== null && p99 < o.targetP99Ms;
  const authMs = answers.map((a) => a.answeredAt - a.sentAt).sort((x, y) => x - y);
  const sortedWaits = waits.sort((x, y) => x - y);
  const sortedAhead = aheadOfB.sort((x, y) => x - y);

  const succeeded = aStatus.find((s) => s.status === 'succeeded')?.n ?? 0;
  const aTotalAttempts = aStatus.reduce((s, r) => s + (r.attempts ?? 0), 0);
  const aReclaims = aStatus.reduce((s, r) => s + (r.reclaims ?? 0), 0);
  const drained = tDrained !== undefined;
  if (!drained) ctx.problems.push(`A still had ${await pendingA()} deliveries pending ${((Date.now() - tRelease) / 1000).toFixed(0)} s after the release`);
  if (recv.aBad) ctx.problems.push(`${recv.aBad} of A's webhooks had a bad signature`);
  if (recv.bBad) ctx.problems.push(`${recv.bBad} of B's webhooks had a bad signature`);
  if (drained && succeeded !== expected) ctx.problems.push(`A: ${succeeded} of ${expected} deliveries succeeded`);
  if (drained && recv.aUnique !== expected) ctx.problems.push(`A's receivers saw ${recv.aUnique} distinct deliveries, expected ${expected}`);
  const drainSecs = drained ? (tDrained - tRelease) / 1000 : null;
  const drainRate = drained ? Math.round(expected / drainSecs) : null;
  const firstA = aTimes[0];
  const lastA = aTimes.at(-1);
  const pendingAtLastB = lastB?.pendingDb ?? null;
  const notYetAtLastB = lastB ? expected - aBefore(lastB.at) : null;
  const wallMs = Math.max(1, (tDrained ?? Date.now()) - tRelease);
  const pct = (i) => Math.round((100 * (ticks1[i] - ticks0[i]) * TICK_MS) / wallMs);
  const cpuNames = [...(o.topology === 'split' ? ['API', 'worker'] : ['cashwire start (with its worker child)']), 'receivers', 'bench process', 'PostgreSQL (all its processes)'];
  const cpuText = cpuNames.map((n, i) => `${n} ${pct(i)}%`).join(', ');
  const busyPct = busyBetween(cpu0, cpu1);
  const perEndpoint = recv.aPer.join('/');

  log(`release: ${E} enables answered in ${tReleased - tRelease} ms; first A webhook ${firstA !== undefined ? firstA - tRelease : '–'} ms after the release, last ${lastA !== undefined ? lastA - tRelease : '–'} ms`);
  log(`A not yet received (ms after release → count): ${thin(samples, 12).map(([t, n]) => `${t}→${n}`).join(', ')}`);
  log(`B: ${bLat.length}/${o.b} arrived; authorize answer → receipt p50 ${p50} ms, p99 ${p99} ms, max ${max} ms; POST /authorize took p50 ${q(authMs, 0.5)} ms, max ${authMs.at(-1)} ms`);
  if (lastB) log(`B's last webhook arrived ${lastB.at - tRelease} ms after the release; A then had ${pendingAtLastB?.toLocaleString('en-US')} deliveries pending in the database (asked ${lastB.lagMs} ms after that receipt, answered in ${lastB.queriedMs} ms), ${notYetAtLastB.toLocaleString('en-US')} not yet received`);
  log(`A: ${drained ? `drained in ${drainSecs.toFixed(2)} s (${drainRate.toLocaleString('en-US')}/s)` : 'NOT drained'}; ${succeeded.toLocaleString('en-US')} succeeded, ${aTotalAttempts.toLocaleString('en-US')} attempts counted, ${aReclaims} reclaims; per endpoint ${perEndpoint}; ${recv.aDup} duplicates`);

  // A's drain in detail, for bench/recovery.js: receipts per 100 ms from the release, CPU per delivery of each party.
  const slots = [];
  for (const at of aTimes) {
    const k = Math.max(0, Math.floor((at - tRelease) / 100));
    while (slots.length <= k) slots.push(0);
    slots[k]++;
  }
  ctx.drain = {
    expected, succeeded, drained, drainSecs, releaseMs: tReleased - tRelease, firstMs: firstA - tRelease, lastMs: lastA - tRelease, per100ms: slots,
    cpuUsPerDelivery: Object.fromEntries(cpuNames.map((n, i) => [n, Math.round(((ticks1[i] - ticks0[i]) * TICK_MS * 1000) / Math.max(1, succeeded))])),
    busyPct, transactions: x1 - x0, reclaims: aReclaims, duplicates: recv.aDup, badSignatures: recv.aBad, attempts: aTotalAttempts,
  };

  const verdict = pass ? 'PASS' : 'FAIL';
  const fairness = fairnessNote({ lastB, pendingAtLastB, expected, drained, drainSecs, max, p99, sortedAhead, bCount: bLat.length, o });
  ctx.notes.push(`B latency target: p99 < ${o.targetP99Ms} ms → ${verdict} (p99 ${p99} ms, nearest rank of ${bLat.length} samples)`);
  ctx.notes.push(`fairness: ${fairness}`);
  ctx.notes.push(`topology: ${o.topology === 'split' ? 'API process (dist start() without worker) + one `cashwire worker` process, default settings' : '`cashwire start` alone (its own worker)'}; receivers answer after ${o.receiverMs} ms; ${E} A endpoints × ${eventsN.toLocaleString('en-US')} events`);
  ctx.notes.push(`during the drain: ${(x1 - x0).toLocaleString('en-US')} committed transactions in the bench database (all clients, polling included); CPU (% of one core) ${cpuText}${busyPct !== undefined ? `; the whole machine (${os.availableParallelism()} cores, everything included) ${busyPct}% busy` : ''}`);

  return [
    {
      title: `B: ${o.b} webhooks ${o.gapMs} ms apart right after A's release, POST /authorize answer → receipt (p99 < 1 s: ${verdict})`,
      rps: null, p50, p99, max, non2xx: recv.bBad, errors: missingB + (o.b - okAnswers.length), total: bLat.length,
      detail: `${verdict}; POST /authorize p50 ${q(authMs, 0.5)} ms, max ${authMs.at(-1)} ms; event commit → first attempt p50 ${q(sortedWaits, 0.5)} ms, max ${sortedWaits.at(-1) ?? '–'} ms; A webhooks received while a B webhook waited: median ${q(sortedAhead, 0.5) ?? '–'}, max ${sortedAhead.at(-1) ?? '–'}`,
      pass,
    },
    {
      title: `A: deliveries pending when B's last webhook arrived (of ${expected.toLocaleString('en-US')})`,
      rps: null, p50: null, p99: null, non2xx: null, errors: null, total: pendingAtLastB,
      detail: lastB ? `database, asked ${lastB.lagMs} ms after the receipt (answered in ${lastB.queriedMs} ms); receivers: ${notYetAtLastB.toLocaleString('en-US')} not yet received; B's last arrived ${lastB.at - tRelease} ms after the release` : 'B did not complete',
    },
    {
      title: `A: drain of ${expected.toLocaleString('en-US')} held deliveries to ${E} endpoints, release → none pending`,
      rps: drainRate, p50: aAttempts.p50, p99: aAttempts.p99, non2xx: recv.aBad, errors: expected - succeeded, total: succeeded, seconds: drainSecs,
      detail: drained
        ? `${drainSecs.toFixed(2)} s (first A webhook after ${firstA - tRelease} ms, last after ${lastA - tRelease} ms); ${aTotalAttempts.toLocaleString('en-US')} attempts, ${aReclaims} reclaims, ${recv.aDup} duplicates; per endpoint ${perEndpoint}; p50/p99 = HTTP attempt ms`
        : `not drained within ${Math.round((drainDeadline - tRelease) / 1000)} s`,
    },
    { title: `fairness: ${fairness}`, rps: null, p50: null, p99: null, non2xx: null, errors: null, total: null },
  ];
}

function fairnessNote({ lastB, pendingAtLastB, expected, drained, drainSecs, max, p99, sortedAhead, bCount, o }) {
  if (!lastB || pendingAtLastB === null) return `B did not get all its webhooks (${bCount}/${o.b})`;
  const ahead = sortedAhead.length ? sortedAhead[Math.floor((sortedAhead.length - 1) / 2)] : 0;
  const drain = drained ? `A drained in ${drainSecs.toFixed(1)} s` : 'A did not drain';
  const left = `${pendingAtLastB.toLocaleString('en-US')} of A's ${expected.toLocaleString('en-US')} still pending at B's last receipt`;
  const sent = `median ${ahead.toLocaleString('en-US')} A webhooks went out while a B webhook waited`;
  if (pendingAtLastB === 0) return `B waited behind A's whole backlog: its last webhook arrived after A had nothing pending (B max ${max} ms, ${drain}); ${sent}`;
  if (p99 !== null && p99 < o.targetP99Ms) return `B was served alongside A's backlog (${left}; B max ${max} ms, ${drain}); ${sent}`;
  return `B was held up by A's backlog, though not behind all of it (B max ${max} ms; ${left}; ${drain}); ${sent}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The environment of Cashwire's processes: the caller's, without its CASHWIRE_* settings, plus `extra`. */
function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('CASHWIRE_') || ['DATABASE_URL', 'PORT', 'HOST', 'LOG_LEVEL'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A `cashwire` CLI command of the build under test; its JSON output. */
function cli(env, args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { cwd: BENCH_ROOT, env, timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`cashwire ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      try {
        resolve(stdout.trim() ? JSON.parse(stdout) : undefined);
      } catch {
        reject(new Error(`cashwire ${args.join(' ')}: output is not JSON: ${stdout.slice(0, 500)}`));
      }
    });
  });
}

function client(base, key) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const call = async (method, p, body) => {
    const res = await fetch(`${base}${p}`, { method, headers: body === undefined ? { authorization: headers.authorization } : headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  return { post: (p, body) => call('POST', p, body ?? (p.endsWith('/enable') || p.endsWith('/disable') ? undefined : {})), get: (p) => call('GET', p) };
}

function expectStatus(r, ok, what) {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
}

function userBody(tag) {
  return {
    name: { first: 'Ada', last: 'Lovelace' }, email: `${tag}@example.com`, phone_number: '+12125550123',
    address: { address_line_1: '1 Main St', locality: 'Albany', administrative_area: 'NY', postal_code: '12207', country: 'US' },
    date_of_birth: '1990-12-10', government_id: { type: 'drivers_license', last4: '1234', state: 'NY' }, identity_verified: true, tag,
  };
}


async function waitHealthy(url, child) {
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Cashwire exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${child.output()}`);
    try {
      const r = await fetch(url);
      await r.text();
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`Cashwire not healthy after 30 s:\n${child.output()}`);
    await sleep(100);
  }
}

/** Waits (at most 15 s) until a worker LISTENs on the bench database; a build that does not LISTEN just gets a note. */
async function waitListening(ctx, procs) {
  const until = Date.now() + 15_000;
  for (;;) {
    const { rows: [r] } = await ctx.db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`);
    if (r.n >= 1) return;
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`a Cashwire process exited (${dead.exitCode ?? dead.signalCode}) at start:\n${dead.output()}`);
    if (Date.now() > until) {
      ctx.notes.push('no worker was seen LISTENing within 15 s of the start; the run went on');
      return;
    }
    await sleep(50);
  }
}

/** The commit of a checkout, and whether its packages/ has uncommitted changes. */
function codeOf(root) {
  try {
    const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'packages') ? ' + uncommitted changes in packages/' : '');
  } catch {
    return 'unknown';
  }
}

/** Number of elements of the sorted array `a` that are ≤ t. */
function upperBound(a, t) {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** At most n evenly spread samples, the first and the last included. */
function thin(samples, n) {
  if (samples.length <= n) return samples;
  const out = [];
  for (let i = 0; i < n; i++) out.push(samples[Math.round((i * (samples.length - 1)) / (n - 1))]);
  return out;
}

/** /proc/stat totals after waiting `ms`; undefined off Linux. */
async function cpuSample(ms) {
  const read = () => {
    try {
      const c = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      return { idle: c[3] + c[4], busy: c[0] + c[1] + c[2] + c[5] + c[6] + c[7] };
    } catch {
      return undefined;
    }
  };
  if (!ms) return read();
  const a = read();
  await sleep(ms);
  const b = read();
  return a && b ? { a, b } : undefined;
}

/** CPU ticks of a process and its direct children (`cashwire start`'s worker process). */
function treeTicks(pid) {
  let t = procTicks(pid);
  try {
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const st = readFileSync(`/proc/${p}/stat`, 'utf8');
        if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) t += procTicks(p);
      } catch {
        /* gone */
      }
    }
  } catch {
    /* not Linux */
  }
  return t;
}

/** CPU ticks of every process named postgres (the server's background processes and all backends). */
function postgresTicks() {
  let t = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') t += procTicks(pid);
      } catch {
        /* gone */
      }
    }
  } catch {
    /* not Linux */
  }
  return t;
}

function busyCheck(s) {
  return s ? busyBetween(s.a, s.b) : undefined;
}

function busyBetween(a, b) {
  if (!a || !b) return undefined;
  const all = b.busy - a.busy + b.idle - a.idle;
  return all > 0 ? Math.round((100 * (b.busy - a.busy)) / all) : undefined;
}

function table(rows) {
  const head = '| benchmark | rate /s | p50 ms | p99 ms | max ms | count | bad sig. | missing | notes |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---:|---|';
  const fmt = (v) => (v === undefined || v === null ? '' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  return [head, sep, ...rows.map((r) => `| ${r.title} | ${fmt(r.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${fmt(r.total)} | ${fmt(r.non2xx)} | ${fmt(r.errors)} | ${r.detail ?? ''} |`)].join('\n');
}

function machineText(m) {
  return [
    `- CPU: ${m.cpu}, nproc ${m.nproc}, ${m.memoryGiB} GiB RAM, ${m.kernel}`,
    `- Node.js ${m.node}`,
    `- ${m.postgres}`,
    `- Cashwire ${m.code} (${m.root})`,
    ...(m.busyBefore !== undefined ? [`- rest of the machine busy before the run: ${m.busyBefore}% of all cores`] : []),
  ].join('\n');
}

function log(line) {
  process.stderr.write(`${line}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Roles (at the end, so that every top-level binding above exists first).
const role = process.argv[2];
if (role === '--receivers') {
  receiverRole();
} else if (role === '--api') {
  await apiRole();
} else if (isEntry(SELF)) {
  await runEntry(main);
}
