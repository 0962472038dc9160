#!/usr/bin/env node
// POST /intent throughput and latency, next to a Fastify hello-world baseline on the same machine.
//
// One run: creates a throw-away database on the machine's PostgreSQL, starts Cashwire (the built CLI) and a
// hello-world Fastify in child processes (the load generator keeps this process's event loop to itself), loads
// each with autocannon, prints a markdown table, then stops the children and drops the database.
//
//   node bench/intent.js                 (after `npm run build`)
//   BENCH_DATABASE_URL=postgres://...    admin URL used to CREATE/DROP the bench database
//   BENCH_CPU_PROF=<dir>                 run the Cashwire child with --cpu-prof, profiles written to <dir>
//   BENCH_RESULT_FILE=<file>             also write the results as JSON (used by bench/run.js)
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'packages/server/dist/cli.js');

const CONNECTIONS = 50;
const HELLO = { warmup: 2, duration: 10 };
const INTENT = { warmup: 3, duration: 15 };
const API_KEY = 'sk_sandbox_bench_0123456789abcdefghijklmnopqrstuv';
const HIGH_LIMIT = '100000000';

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
    const userRes = await fetch(`${base}/user`, { method: 'POST', headers: auth, body: JSON.stringify(userBody()) });
    const user = await userRes.json();
    if (userRes.status !== 200) throw new Error(`POST /user: ${userRes.status} ${JSON.stringify(user)}`);
    const intentBody = JSON.stringify({ direction: 'cash_in', user_id: user.id, amount: 5000, currency: 'USD' });
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
    const load = (title, opts, phase) =>
      runCannon(autocannon, { connections: CONNECTIONS, ...opts, duration: phase.duration }).then((r) => ({ title, ...r }));

    const helloOpts = { url: `http://127.0.0.1:${helloPort}/` };
    await load('hello warm-up', helloOpts, { duration: HELLO.warmup });
    rows.push(await load('fastify hello-world', helloOpts, HELLO));
    await stopChild(hello);

    // 4. POST /intent, each request with a key of its own, then without a key.
    const runId = randomBytes(4).toString('hex');
    let seq = 0;
    const keyedOpts = {
      url: `${base}/intent`,
      method: 'POST',
      headers: auth,
      body: intentBody,
      requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-idempotency-key': `bench-${runId}-${++seq}` } }) }],
    };
    const plainOpts = { url: `${base}/intent`, method: 'POST', headers: auth, body: intentBody };

    const keyedWarm = await load('keyed warm-up', keyedOpts, { duration: INTENT.warmup });
    const keyed = await load('POST /intent (with key)', keyedOpts, INTENT);
    rows.push(keyed);
    const plainWarm = await load('plain warm-up', plainOpts, { duration: INTENT.warmup });
    const plain = await load('POST /intent (no key)', plainOpts, INTENT);
    rows.push(plain);

    // Every 2xx must be one new intent: no replays, nothing lost.
    const bench = cashwire.createPool(dbUrl.toString(), 1);
    let check;
    try {
      const { rows: [c] } = await bench.query(
        `SELECT count(*) FILTER (WHERE idempotency_key IS NOT NULL)::int AS keyed, count(*) FILTER (WHERE idempotency_key IS NULL)::int AS plain,
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
    const result = { bench: 'intent', machine, rows: rows.map(({ ok, ...r }) => ({ ...r, total: ok })) };
    console.log(`\n${machineText(machine)}\n`);
    console.log(table(result.rows));
    console.log(`\nintents in the database: ${check.keyed} with a key (expected ${expectKeyed}), ${check.plain} without (expected ${expectPlain}); idempotency rows: ${check.keys}`);
    if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(result, null, 2));

    const problems = [];
    for (const r of [...rows, keyedWarm, plainWarm]) {
      if (r.non2xx > 0) problems.push(`${r.title}: ${r.non2xx} non-2xx responses ${JSON.stringify(r.statusCodes)}`);
      if (r.errors > 0) problems.push(`${r.title}: ${r.errors} connection errors (${r.timeouts} timeouts)`);
    }
    if (check.keyed !== expectKeyed || check.keys !== expectKeyed) problems.push(`keyed intents: ${check.keyed} rows / ${check.keys} keys for ${expectKeyed} 2xx responses`);
    if (check.plain !== expectPlain) problems.push(`unkeyed intents: ${check.plain} rows for ${expectPlain} 2xx responses`);
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

function machineInfo(pgVersion) {
  let nproc;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    nproc = os.availableParallelism();
  }
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  return { nproc, cpu, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres: pgVersion, kernel: `${os.type()} ${os.release()}` };
}

function machineText(m) {
  return [`- CPU: ${m.cpu}, nproc ${m.nproc}, ${m.memoryGiB} GiB RAM, ${m.kernel}`, `- Node.js ${m.node}`, `- ${m.postgres}`].join('\n');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Keeps the last 8 KiB a child wrote, for error messages. */
function capture(child) {
  let out = '';
  const keep = (d) => {
    out = (out + d).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
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

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
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
