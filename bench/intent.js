#!/usr/bin/env node
// POST /intent throughput and latency, next to a Fastify hello-world baseline on the same machine.
//
// One run: creates a throw-away database on the machine's PostgreSQL, starts Cashwire (the built CLI) and a
// hello-world Fastify in child processes (the load generator keeps this process's event loop to itself), loads
// each with autocannon, prints a markdown table, then stops the children and drops the database.
//
//   node bench/intent.js                 (after `npm run build`)
//   BENCH_DATABASE_URL=postgres://...    admin URL used to CREATE/DROP the bench database
//   BENCH_USERS=<n>                      spread the intents over n users (default 1)
//   BENCH_CPU_PROF=<dir>                 run the Cashwire child with --cpu-prof, profiles written to <dir>
//   BENCH_RESULT_FILE=<file>             also write the results as JSON (used by bench/run.js)
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { capture, freePort, machineInfo, procTicks, stopChild } from './_common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'packages/server/dist/cli.js');

const CONNECTIONS = 50;
const HELLO = { warmup: 2, duration: 10 };
const INTENT = { warmup: 3, duration: 15 };
// Deposits as a payment page makes them: a card token, then the authorization (issue figures: 32 in parallel, 50 users).
const PAIRS = { parallel: 32, users: 50, endpoints: 10, warmup: 3, duration: 15 };
const API_KEY = 'sk_sandbox_bench_0123456789abcdefghijklmnopqrstuv';
const HIGH_LIMIT = '100000000';
// Intents all go to one user by default. BENCH_USERS=n spreads them over n users (the foreign-key check on
// intents.user_id locks the user row, so one user is the most contended case).
const USERS = Math.max(1, Number(process.env.BENCH_USERS ?? 1) || 1);
const TICK_MS = 10; // /proc CPU times are in ticks; CLK_TCK is 100 on Linux

// ---------------------------------------------------------------------------------------------------------------
// Child role: the hello-world server. Forked from this same file so the bench stays one file.
if (process.argv[2] === '--hello-server') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.send({ port: app.server.address().port });
  process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  let cashwire;
  try {
    cashwire = await import('../packages/server/dist/index.js');
  } catch (err) {
    throw new Error(`cannot load the built server (${err.message}); run \`npm run build\` first`);
  }
  const { default: autocannon } = await import('autocannon');

  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `cw_bench_${randomBytes(6).toString('hex')}`;
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;

  const children = [];
  let admin;
  let created = false;
  let cleaning;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all(children.map((c) => stopChild(c)));
      if (admin) {
        if (created) await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`drop ${dbName} failed: ${e.message}`));
        await admin.end().catch(() => {});
      }
    })());
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping children and dropping ${dbName}`);
      cleanup().finally(() => process.exit(130));
    });
  }

  try {
    // 0. A benchmark on a busy machine measures the neighbours: say so up front.
    const busyBefore = await quietCheck(dbName);
    if (busyBefore !== undefined) {
      process.stderr.write(`machine busy before the run: ${busyBefore}% of all cores${busyBefore > 10 ? '  <-- WARNING: something else is running; the numbers will be low and noisy' : ''}\n`);
    }

    // 1. A fresh database.
    admin = cashwire.createPool(adminUrl, 1);
    await admin.query(`CREATE DATABASE ${dbName}`);
    created = true;

    // 2. Cashwire in a child process.
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const profDir = process.env.BENCH_CPU_PROF;
    const server = spawn(process.execPath, [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profDir)] : []), CLI, 'start'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: dbUrl.toString(),
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        CASHWIRE_RATE_LIMIT_CREATE: HIGH_LIMIT,
        CASHWIRE_RATE_LIMIT_READ: HIGH_LIMIT,
        CASHWIRE_SANDBOX_API_KEY: API_KEY,
        CASHWIRE_PUBLIC_URL: base,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(server);
    const serverOutput = capture(server);
    await waitHealthy(`${base}/healthz`, server, serverOutput);

    const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
    const userIds = [];
    for (let i = 0; i < USERS; i++) {
      const userRes = await fetch(`${base}/user`, { method: 'POST', headers: auth, body: JSON.stringify(userBody()) });
      const user = await userRes.json();
      if (userRes.status !== 200) throw new Error(`POST /user: ${userRes.status} ${JSON.stringify(user)}`);
      userIds.push(user.id);
    }
    const bodies = userIds.map((id) => JSON.stringify({ direction: 'cash_in', user_id: id, amount: 5000, currency: 'USD' }));
    const intentBody = bodies[0];
    // One request by hand first, so a broken setup fails with the server's own error, not as 750,000 non-2xx.
    const probe = await fetch(`${base}/intent`, { method: 'POST', headers: { ...auth, 'x-idempotency-key': 'bench-probe' }, body: intentBody });
    const probeBody = await probe.json();
    if (probe.status !== 200 || !String(probeBody.id).startsWith('intent_sandbox_')) throw new Error(`POST /intent probe: ${probe.status} ${JSON.stringify(probeBody)}`);

    // 3. Hello-world baseline in its own child.
    const hello = fork(fileURLToPath(import.meta.url), ['--hello-server'], { cwd: ROOT, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(hello);
    const helloPort = await new Promise((resolve, reject) => {
      hello.once('message', (m) => resolve(m.port));
      hello.once('exit', (code) => reject(new Error(`hello-world server exited (${code})`)));
    });

    const rows = [];
    const load = async (title, opts, phase, targetPid) => {
      process.stderr.write(`  ${title}: ${CONNECTIONS} connections, ${phase.duration} s\n`);
      const before = cpuSnapshot(dbName, targetPid);
      const r = await runCannon(autocannon, { connections: CONNECTIONS, ...opts, duration: phase.duration });
      return { title, ...r, cpu: cpuDelta(before, cpuSnapshot(dbName, targetPid), r.ok) };
    };

    const helloOpts = { url: `http://127.0.0.1:${helloPort}/` };
    await load('hello-world warm-up', helloOpts, { duration: HELLO.warmup }, hello.pid);
    rows.push(await load('fastify hello-world', helloOpts, HELLO, hello.pid));
    await stopChild(hello);

    // 4. POST /intent, each request with a key of its own, then without a key.
    const runId = randomBytes(4).toString('hex');
    let seq = 0;
    const keyedOpts = {
      url: `${base}/intent`,
      method: 'POST',
      headers: auth,
      body: intentBody,
      requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-idempotency-key': `bench-${runId}-${++seq}` }, body: bodies[seq % USERS] }) }],
    };
    let turn = 0;
    const plainOpts = { url: `${base}/intent`, method: 'POST', headers: auth, body: intentBody };
    if (USERS > 1) plainOpts.requests = [{ setupRequest: (req) => ({ ...req, body: bodies[++turn % USERS] }) }];

    const keyedWarm = await load('POST /intent (with key) warm-up', keyedOpts, { duration: INTENT.warmup }, server.pid);
    const keyed = await load('POST /intent (with key)', keyedOpts, INTENT, server.pid);
    rows.push(keyed);
    const plainWarm = await load('POST /intent (no key) warm-up', plainOpts, { duration: INTENT.warmup }, server.pid);
    const plain = await load('POST /intent (no key)', plainOpts, INTENT, server.pid);
    rows.push(plain);

    // 5. Deposits: POST /token then POST /authorize, PAIRS.parallel at once over PAIRS.users users, while
    // PAIRS.endpoints registered endpoints subscribed to every event are disabled (their deliveries are held).
    const pairUsers = [];
    for (let i = 0; i < PAIRS.users; i++) {
      const r = await fetch(`${base}/user`, { method: 'POST', headers: auth, body: JSON.stringify(userBody()) });
      const u = await r.json();
      if (r.status !== 200) throw new Error(`POST /user: ${r.status} ${JSON.stringify(u)}`);
      pairUsers.push(u.id);
    }
    for (let i = 0; i < PAIRS.endpoints; i++) {
      const r = await fetch(`${base}/webhook/endpoints`, { method: 'POST', headers: auth, body: JSON.stringify({ url: `http://127.0.0.1:9/bench-${i}`, events: ['*'] }) });
      const e = await r.json();
      if (r.status !== 201) throw new Error(`POST /webhook/endpoints: ${r.status} ${JSON.stringify(e)}`);
      const d = await fetch(`${base}/webhook/endpoints/${e.id}/disable`, { method: 'POST', headers: auth, body: '{}' });
      if (d.status !== 200) throw new Error(`POST /webhook/endpoints/${e.id}/disable: ${d.status}`);
    }
    // Pairs of a token mint and the authorization that spends it, on the three paths a client takes: POST /token (a
    // payment method), POST /tokenize (a card from a PCI-scoped backend), and the Widget (a widget URL, its card form,
    // then the authorization: three requests).
    const CARD = { pan: '5555555555554444', cvv: '123', exp_month: '12', exp_year: '39' };
    const post = async (p, body, headers = auth) => {
      const r = await fetch(`${base}${p}`, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    };
    const PATHS = [
      { name: 'POST /token + POST /authorize', tag: 'bench-pair', mint: async (user) => post('/token', { user_id: user, type: 'card_only' }) },
      { name: 'POST /tokenize + POST /authorize', tag: 'bench-card', mint: async (user) => post('/tokenize', { user_id: user, ...CARD }) },
      {
        name: 'Widget: POST /user/{id}/url + POST /widget/card + POST /authorize', tag: 'bench-widget',
        mint: async (user) => {
          const u = await post(`/user/${user}/url`, { direction: 'cash_in', type: 'card_only' });
          if (u.status !== 200) return u;
          const nonce = new URL(u.body.url).searchParams.get('nonce');
          return post('/widget/card', { nonce, ...CARD }, { 'content-type': 'application/json' });
        },
      },
    ];
    const pairRows = {};
    for (const path of PATHS) {
      const stats = { ok: 0, bad: 0, codes: {}, lat: [] };
      let seqP = 0;
      const loop = async (until, record) => {
        while (Date.now() < until) {
          const k = ++seqP;
          const t0 = performance.now();
          const minted = await path.mint(pairUsers[k % pairUsers.length]);
          let status = minted.status;
          if (status === 200) {
            const ar = await fetch(`${base}/authorize`, { method: 'POST', headers: auth, body: JSON.stringify({ amount: 100 + (k % 50), currency: 'USD', direction: 'cash_in', token: minted.body.token, tag: `${path.tag}-${record ? 'm' : 'w'}-${runId}-${k}` }) });
            await ar.arrayBuffer();
            status = ar.status;
          }
          if (!record) continue;
          if (status === 200) {
            stats.ok++;
            stats.lat.push(performance.now() - t0);
          } else {
            stats.bad++;
            stats.codes[status] = (stats.codes[status] ?? 0) + 1;
          }
        }
      };
      process.stderr.write(`  ${path.name} pairs: ${PAIRS.parallel} in parallel over ${PAIRS.users} users, ${PAIRS.endpoints} endpoints disabled, ${PAIRS.duration} s\n`);
      await Promise.all(Array.from({ length: PAIRS.parallel }, () => loop(Date.now() + PAIRS.warmup * 1000, false)));
      const before = cpuSnapshot(dbName, server.pid);
      const t0 = Date.now();
      await Promise.all(Array.from({ length: PAIRS.parallel }, () => loop(t0 + PAIRS.duration * 1000, true)));
      const secs = (Date.now() - t0) / 1000;
      const lat = stats.lat.sort((x, y) => x - y);
      const pq = (x) => Math.round(lat[Math.min(lat.length - 1, Math.ceil(x * lat.length) - 1)] ?? 0);
      const row = {
        title: `${path.name} pairs (${PAIRS.parallel} in parallel, ${PAIRS.users} users, ${PAIRS.endpoints} endpoints disabled)`,
        rps: Math.round(stats.ok / secs), p50: pq(0.5), p99: pq(0.99), non2xx: stats.bad, errors: 0, timeouts: 0, ok: stats.ok,
        statusCodes: stats.codes, cpu: cpuDelta(before, cpuSnapshot(dbName, server.pid), stats.ok),
      };
      rows.push(row);
      pairRows[path.tag] = row;
    }

    // Every 2xx must be one new intent: no replays, nothing lost.
    const bench = cashwire.createPool(dbUrl.toString(), 1);
    let check;
    try {
      const { rows: [c] } = await bench.query(
        `SELECT count(*) FILTER (WHERE idempotency_key IS NOT NULL)::int AS keyed, count(*) FILTER (WHERE idempotency_key IS NULL AND tag IS NULL)::int AS plain,
                count(*) FILTER (WHERE tag LIKE 'bench-pair-m-%')::int AS paired,
                count(*) FILTER (WHERE tag LIKE 'bench-card-m-%')::int AS carded,
                count(*) FILTER (WHERE tag LIKE 'bench-widget-m-%')::int AS widgeted,
                (SELECT count(*)::int FROM credentials WHERE fingerprint LIKE 'card:%') AS cards,
                (SELECT count(*)::int FROM deliveries WHERE status = 'pending') AS held,
                (SELECT count(*)::int FROM idempotency_keys WHERE scope = 'intent') AS keys,
                (SELECT version()) AS version
           FROM intents`,
      );
      check = c;
    } finally {
      await bench.end();
    }
    const expectKeyed = 1 + keyedWarm.ok + keyed.ok;
    const expectPlain = plainWarm.ok + plain.ok;

    const machine = machineInfo(check.version);
    const result = { bench: 'intent', machine: { ...machine, busyBefore }, rows: rows.map(({ ok, ...r }) => ({ ...r, total: ok })) };
    console.log(`\n${machineText(machine)}\n`);
    console.log(table(result.rows));
    if (rows.some((r) => r.cpu)) console.log(`\nCPU time per request (${machine.nproc} cores shared by all parties):\n\n${cpuTable(rows)}`);
    console.log(`\ntoken+authorize: ${check.paired} intents, tokenize+authorize: ${check.carded}, widget: ${check.widgeted}; ${check.held} deliveries held for the disabled endpoints; ${check.cards} card credentials (one per user: the same card)`);
    console.log(`\nintents in the database: ${check.keyed} with a key (2xx seen: ${expectKeyed}, keys generated: ${seq + 1}), ${check.plain} without (2xx seen: ${expectPlain}); idempotency rows: ${check.keys}`);
    if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(result, null, 2));

    const problems = [];
    for (const r of [...rows, keyedWarm, plainWarm]) {
      if (r.non2xx > 0) problems.push(`${r.title}: ${r.non2xx} non-2xx responses ${JSON.stringify(r.statusCodes)}`);
      if (r.errors > 0) problems.push(`${r.title}: ${r.errors} connection errors (${r.timeouts} timeouts)`);
    }
    // autocannon stops at its deadline with up to one request in flight per connection; the server still completes
    // those, so each of the two runs per variant may leave up to CONNECTIONS more rows than it counted 2xx.
    const slack = 2 * CONNECTIONS;
    if (check.keyed < expectKeyed || check.keyed > expectKeyed + slack || check.keys !== check.keyed || check.keyed > seq + 1) {
      problems.push(`keyed intents: ${check.keyed} rows / ${check.keys} keys for ${expectKeyed} 2xx responses and ${seq} keys generated`);
    }
    if (check.plain < expectPlain || check.plain > expectPlain + slack) problems.push(`unkeyed intents: ${check.plain} rows for ${expectPlain} 2xx responses`);
    for (const [tag, count] of [['bench-pair', check.paired], ['bench-card', check.carded], ['bench-widget', check.widgeted]]) {
      const r = pairRows[tag];
      // The measured loops' 2xx are intents; a loop stopped at its deadline may leave one more in flight each.
      if (count < r.ok || count > r.ok + PAIRS.parallel) problems.push(`${r.title}: ${count} intents for ${r.ok} 2xx`);
    }
    const pairsOk = Object.values(pairRows).reduce((n, r) => n + r.ok, 0);
    if (check.held < pairsOk) problems.push(`pairs: ${check.held} held deliveries for ${pairsOk} authorized intents (each should be held for ${PAIRS.endpoints} endpoints)`);
    if (check.cards !== PAIRS.users) problems.push(`${check.cards} card credentials for ${PAIRS.users} users paying with one card each`);
    if (problems.length) {
      const tail = serverOutput().trim();
      throw new Error(`BENCHMARK FAILED:\n  ${problems.join('\n  ')}${tail ? `\nserver output (tail):\n${tail}` : ''}`);
    }
  } finally {
    await cleanup();
  }
}

/** Runs autocannon once; returns the numbers the table needs. */
function runCannon(autocannon, opts) {
  return new Promise((resolve, reject) => {
    autocannon({ ...opts, timeout: 10 }, (err, r) => {
      if (err) return reject(err);
      const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
      resolve({
        rps: Math.round(r.requests.average),
        p50: r.latency.p50,
        p99: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        ok: r['2xx'],
        seconds: r.duration,
        statusCodes,
      });
    });
  });
}

function table(rows) {
  const head = '| benchmark | req/s | p50 ms | p99 ms | non-2xx | errors | requests |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|';
  const body = rows.map((r) => `| ${r.title} | ${r.rps.toLocaleString('en-US')} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.total.toLocaleString('en-US')} |`);
  return [head, sep, ...body].join('\n');
}


function machineText(m) {
  return [`- CPU: ${m.cpu}, nproc ${m.nproc}, ${m.memoryGiB} GiB RAM, ${m.kernel}`, `- Node.js ${m.node}`, `- ${m.postgres}`, `- Cashwire ${m.code}`].join('\n');
}

// --- CPU accounting (Linux /proc; elsewhere the CPU columns are left empty) -------------------------------------
// Who burnt the machine's CPU during a phase: the process under load, PostgreSQL (the bench database's backends
// plus the server's own background processes), this load generator, and everything else on the machine (which
// should be ~0: a busy neighbour makes the numbers worthless).


function cpuSnapshot(dbName, targetPid) {
  try {
    const c = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = c[3] + c[4];
    const busy = c[0] + c[1] + c[2] + c[5] + c[6] + c[7];
    const irq = c[5] + c[6]; // interrupt and softirq time (loopback TCP is mostly this) belongs to no process
    const pg = new Map();
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmd;
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      // Ours: a backend or autovacuum worker of the bench database ("postgres: 15/main: postgres cw_bench_… 127.0.0.1(…)").
      // Shared: the postmaster and the background processes every commit depends on. Anything else (other
      // databases' backends) belongs to the rest of the machine.
      const ours = ` ${cmd} `.includes(` ${dbName} `);
      const shared = !cmd.startsWith('postgres:') || /: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher)\s*$/.test(cmd);
      if (ours || shared) pg.set(pid, procTicks(pid));
    }
    return { at: Date.now(), idle, busy, irq, target: procTicks(targetPid), loadgen: procTicks(process.pid), pg };
  } catch {
    return undefined;
  }
}

/** CPU ms per request for each party, and how busy the rest of the machine was (% of all cores). */
function cpuDelta(a, b, requests) {
  if (!a || !b || !requests) return undefined;
  const d = (k) => (b[k] - a[k]) * TICK_MS;
  // PostgreSQL processes come and go: count each one's ticks since the first snapshot (or since it started).
  let pgTicks = 0;
  for (const [pid, t] of b.pg) pgTicks += t - (a.pg.get(pid) ?? 0);
  const pgMs = Math.max(0, pgTicks) * TICK_MS;
  const all = d('busy') + d('idle');
  const perReq = (ms) => Math.round((ms * 1000) / requests); // µs
  return {
    serverUs: perReq(d('target')),
    pgUs: perReq(pgMs),
    loadgenUs: perReq(d('loadgen')),
    irqUs: perReq(d('irq')),
    othersPct: Math.max(0, Math.round((100 * (d('busy') - d('irq') - d('target') - pgMs - d('loadgen'))) / all)),
    idlePct: Math.round((100 * d('idle')) / all),
  };
}

async function quietCheck(dbName) {
  const a = cpuSnapshot(dbName, process.pid);
  await sleep(2000);
  const b = cpuSnapshot(dbName, process.pid);
  if (!a || !b) return undefined;
  const busyPct = Math.round((100 * (b.busy - a.busy)) / (b.busy - a.busy + b.idle - a.idle));
  return busyPct;
}

function cpuTable(rows) {
  const head = '| benchmark | server µs/req | postgres µs/req | load generator µs/req | kernel irq µs/req | rest of machine busy | idle |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|';
  const body = rows.filter((r) => r.cpu).map((r) => `| ${r.title} | ${r.cpu.serverUs} | ${r.cpu.pgUs} | ${r.cpu.loadgenUs} | ${r.cpu.irqUs} | ${r.cpu.othersPct}% | ${r.cpu.idlePct}% |`);
  return [head, sep, ...body].join('\n');
}



async function waitHealthy(url, child, output) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Cashwire exited (${child.exitCode}) before it was healthy:\n${output()}`);
    try {
      const r = await fetch(url);
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`Cashwire was not healthy after 60 s:\n${output()}`);
}


function userBody() {
  return {
    name: { first: 'Ada', last: 'Lovelace' },
    email: 'ada@example.com',
    phone_number: '+12125550123',
    address: { address_line_1: '1 Main St', locality: 'Albany', administrative_area: 'NY', postal_code: '12207', country: 'US' },
    date_of_birth: '1990-12-10',
    government_id: { type: 'drivers_license', last4: '1234', state: 'NY' },
    identity_verified: true,
  };
}
