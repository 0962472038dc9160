/**
 * `cashwire start` runs its delivery worker in a child process of its own, so that a request holding the API's event
 * loop does not stop webhooks. Real processes: the built CLI on a test database, a real receiver. The API process is
 * made to hold its event loop for 3 s (a module loaded into it with --import busy-loops on SIGUSR2, standing in for
 * any request that burns CPU); a /healthz sent at that moment answers only when the block ends, and the attempts the
 * worker started in between (its own attempt log) are counted. With the worker inline (CASHWIRE_WORKER_MODE=inline),
 * none can start: the contrast shows the test can fail.
 * Needs the build: `npx tsc -b packages/webhooks packages/server`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, createTestDatabase, freePort, userBody } from './helpers.js';
import { startReceiver } from './receiver.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const KEY = 'sk_sandbox_worker_process_test_fixed_key';
const BLOCK_MS = 3_000;
const PAYMENTS = 40;
/** Loaded into the API process only (the worker child is spawned without it). */
const BLOCKER = `data:text/javascript,${encodeURIComponent(
  // stderr is a pipe: its writes are synchronous on Linux, so the markers are out before and after the block.
  `process.on('SIGUSR2', () => { process.stderr.write('cw-block-start\\n'); const t = Date.now(); while (Date.now() - t < ${BLOCK_MS}); process.stderr.write('cw-block-end ' + Date.now() + '\\n'); });`,
)}`;

let rx: Awaited<ReturnType<typeof startReceiver>>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  // A receiver that takes a little time, so that the backlog lasts through the block.
  rx = await startReceiver(async () => {
    await new Promise((r) => setTimeout(r, 15));
    return { status: 200, body: 'ok' };
  });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await rx?.close();
});


/** The pids of a process's children. */
const childrenOf = (pid: number): number[] => {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).toString().trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there are none
  }
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `cashwire start`, makes a held backlog, releases it, blocks the API; returns the arrivals during the block. */
async function scenario(mode: 'process' | 'inline') {
  const db = await createTestDatabase();
  const port = await freePort();
  let err = '';
  const child = spawn(process.execPath, ['--import', BLOCKER, CLI, 'start'], {
    env: {
      ...process.env, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', CASHWIRE_SANDBOX_API_KEY: KEY, CASHWIRE_WORKER_MODE: mode,
      CASHWIRE_RATE_LIMIT_CREATE: '1000000', CASHWIRE_RATE_LIMIT_READ: '1000000', CASHWIRE_POLL_MS: '100', LOG_LEVEL: 'warn',
      CASHWIRE_SANDBOX_SETTLE_DELAY_MS: '3600000',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = `http://127.0.0.1:${port}`;
  const api = client(base, KEY);
  try {
    await until('the API and its sandbox key', async () => (await fetch(`${base}/webhook/endpoints`, { headers: { authorization: `Bearer ${KEY}` } }).catch(() => undefined))?.status === 200);
    const workerPids = mode === 'process' ? childrenOf(child.pid!) : [];
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/${mode}`, events: ['intent.approved'], max_concurrency: 1 });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    await api.post(`/webhook/endpoints/${ep.body.id}/disable`);
    const user = (await api.post('/user', userBody())).body.id;
    for (let i = 0; i < PAYMENTS; i++) {
      const t = await api.post('/token', { user_id: user, type: 'card_only' });
      const a = await api.post('/authorize', { amount: 100 + i, currency: 'USD', direction: 'cash_in', token: t.body.token });
      expect(a.status, JSON.stringify(a.body)).toBe(200);
    }
    const at = () => rx.received.filter((r) => r.path === `/${mode}`);
    expect(at()).toHaveLength(0); // held
    await api.post(`/webhook/endpoints/${ep.body.id}/enable`);
    await until('the first delivery', () => at().length > 0);
    // The API's event loop is held; a /healthz sent now answers when it is free again.
    const before = at().length;
    child.kill('SIGUSR2');
    // The signal is handled on the API's event loop, a moment later: wait until the block has begun.
    await until('the API to be held', () => err.includes('cw-block-start'));
    const sent = Date.now();
    const health = await fetch(`${base}/healthz`);
    const answered = Date.now();
    // The answer came once the block was over; the window below ends where the block did (by the API's own clock).
    const ended = Number(/cw-block-end (\d+)/.exec(err)?.[1]);
    expect(ended).toBeGreaterThan(sent);
    const received = at().filter((r) => r.at > sent && r.at < ended).length;
    // Attempts the worker started while the API was held, as the worker itself logged them (its clock is real time).
    const pool = new pg.Client({ connectionString: db.url });
    await pool.connect();
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM delivery_attempts WHERE started_at > $1 AND started_at < $2', [new Date(sent), new Date(ended)]);
    await pool.end();
    const during = rows[0].n as number;
    console.log(`[${mode}] received before the block ${before}; while it lasted ${answered - sent} ms: ${during} attempts started, ${received} received`);
    expect(health.status).toBe(200);
    await until('every delivery', () => at().length >= PAYMENTS, 60_000);
    let restarted: number[] = [];
    if (mode === 'process') {
      // A worker that dies is started again by its parent.
      process.kill(workerPids[0]!, 'SIGKILL');
      await until('a new worker process', () => (restarted = childrenOf(child.pid!).filter((p) => !workerPids.includes(p))).length === 1);
      workerPids.push(...restarted);
    }
    // Shutdown leaves no worker process behind.
    child.kill('SIGTERM');
    await exited;
    for (const pid of workerPids) await until(`worker ${pid} to exit`, () => !alive(pid), 15_000);
    return { during, workerPids, restarted, log: `received before ${before}; during the block (${answered - sent} ms): ${during} attempts started, ${received} received; stderr: ${err.slice(-2000)}` };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- stderr of cashwire start ---\n${err.slice(-4000)}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await db.drop();
  }
}

describe('cashwire start: the delivery worker in its own process', () => {
  it('webhooks keep flowing while the API process is held for 3 s; stopping leaves no worker behind', async () => {
    const r = await scenario('process');
    expect(r.workerPids).toHaveLength(2); // the first, and the one started after it was killed
    expect(r.restarted).toHaveLength(1);
    expect(r.during, r.log).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('a worker whose parent was killed (SIGKILL: it could not stop its child) exits by itself', async () => {
    const db = await createTestDatabase();
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'start'], {
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', CASHWIRE_SANDBOX_API_KEY: KEY, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    children.push(child);
    try {
      await until('the API', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200);
      let workers: number[] = [];
      await until('its worker process', () => (workers = childrenOf(child.pid!)).length === 1);
      child.kill('SIGKILL');
      await until(`worker ${workers[0]} to notice and exit`, () => !alive(workers[0]!), 15_000);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await db.drop();
    }
  }, 60_000);

  it('(the contrast) with the worker inline, no attempt starts while the API is held', async () => {
    const r = await scenario('inline');
    expect(r.during, r.log).toBe(0);
  }, 120_000);
});
