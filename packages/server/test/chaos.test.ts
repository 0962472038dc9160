/**
 * Chaos: 2,000 events, four flaky receivers, two worker processes (`cashwire worker`) on their own embedded
 * PostgreSQL. While attempts are in flight, a worker is SIGKILLed three times (a replacement is started each
 * time) and PostgreSQL is restarted once. Every event must still arrive, signed, at least once; the leases
 * left by the killed workers must be reclaimed; every delivery must end `succeeded`.
 *
 * Bounded: every wait has a deadline well inside the test's timeout, and cleanup always runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { randomIds, systemClock } from '../src/clock.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { createPool, withTx, type Db } from '../src/db/pool.js';
import { insertEvents } from '../src/store/events.js';
import type { IntentRow } from '../src/store/rows.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');

const N = 2_000;
const RECEIVERS = 4;
const BATCH = 100; // events per insert transaction
const INSERT_EVERY_MS = 250; // events arrive over a few seconds, while the workers run
const P_HANG = 0.03;
const P_500 = 0.15;
const P_DESTROY = 0.15;
const TEST_TIMEOUT_MS = 200_000;
/** Everything (setup, chaos, the wait for the last event) must be over by then, or the test fails. */
const RUN_BUDGET_MS = 150_000;

const WORKER_ENV = {
  CASHWIRE_WEBHOOK_TIMEOUT_MS: '1000',
  CASHWIRE_WEBHOOK_CONNECT_TIMEOUT_MS: '500',
  CASHWIRE_LEASE_MS: '2500',
  CASHWIRE_POLL_MS: '200',
  CASHWIRE_WORKER_CONCURRENCY: '16',
  CASHWIRE_WORKER_BATCH: '8',
  CASHWIRE_DRAIN_MS: '500',
  CASHWIRE_PG_POOL_SIZE: '4',
};
/** Fast and long enough that nothing expires during the run. */
const SCHEDULE = { maxAttempts: 1000, firstDelayMs: 200, factor: 1.5, maxDelayMs: 2000, maxAgeMs: 3_600_000, jitter: 0.2 };

/**
 * Loaded into each worker process (node --import): a worker whose parent (this test process) is gone exits,
 * so that a killed test run leaves no worker behind polling forever.
 */
const WATCHDOG = `data:text/javascript,${encodeURIComponent(
  'const p = process.ppid; setInterval(() => { if (process.ppid !== p) process.kill(process.pid, "SIGKILL"); }, 1000).unref();',
)}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ledger {
  /** Event id → how many 2xx answers the receivers gave for it. */
  ok: Map<string, number>;
  requests: number;
  verified: number;
  badSignature: number;
  hung: number;
  failed500: number;
  destroyed: number;
}

interface ChaosReceiver {
  url: string;
  secret: string;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver: checks each pushcash signature, then fails 30% of the time (500, or the connection
 * destroyed), hangs 3% of the time (never answers: the worker times out), and otherwise answers 200 after a
 * short, random delay. A 2xx counts only when it was written to a live connection.
 */
async function startChaosReceiver(secret: string, ledger: Ledger): Promise<ChaosReceiver> {
  const hanging = new Set<http.ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      ledger.requests++;
      const body = Buffer.concat(chunks);
      const id = req.headers['x-webhook-id'];
      const got = Buffer.from(String(req.headers['x-webhook-signature'] ?? ''));
      const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
      if (typeof id !== 'string' || !id || got.length !== want.length || !timingSafeEqual(got, want)) {
        ledger.badSignature++;
        res.writeHead(400).end('bad signature');
        return;
      }
      ledger.verified++;
      const r = Math.random();
      if (r < P_HANG) {
        ledger.hung++;
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if (r < P_HANG + P_500) {
        ledger.failed500++;
        later(5 + Math.random() * 60, () => res.writeHead(500).end('flaky'));
        return;
      }
      if (r < P_HANG + P_500 + P_DESTROY) {
        ledger.destroyed++;
        later(Math.random() * 40, () => req.socket.destroy());
        return;
      }
      later(5 + Math.random() * 120, () => {
        if (res.destroyed || req.socket.destroyed) return; // the sender is gone (killed): no answer was given
        ledger.ok.set(id, (ledger.ok.get(id) ?? 0) + 1);
        res.writeHead(200).end('ok');
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    secret,
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Polls `cond` until it holds; throws at the deadline. */
async function waitFor(what: string, cond: () => boolean | Promise<boolean>, deadline: number, everyMs = 50): Promise<void> {
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface Worker {
  child: ChildProcess;
  pid: number;
  log: string[];
  killedByUs: boolean;
}

// Everything the cleanup needs, whatever stage the test reached.
let tmp: string | undefined;
let pgServer: EmbeddedPostgres | undefined;
let db: Db | undefined;
const receivers: ChaosReceiver[] = [];
const workers: Worker[] = [];
const unexpectedExits: string[] = [];

async function cleanup() {
  for (const w of workers) {
    w.killedByUs = true;
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }
  workers.length = 0;
  await Promise.all(receivers.splice(0).map((r) => r.close().catch(() => {})));
  await db?.end().catch(() => {});
  db = undefined;
  if (pgServer) {
    const pg = pgServer;
    pgServer = undefined;
    const stopped = await Promise.race([pg.stop().then(() => true, () => false), sleep(20_000).then(() => false)]);
    if (!stopped) {
      try {
        process.kill(pg.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  if (tmp) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    tmp = undefined;
  }
}

afterAll(cleanup, 60_000);

describe('chaos', () => {
  it(`delivers ${N} events through killed workers and a PostgreSQL restart`, async () => {
    const t0 = Date.now();
    const deadline = t0 + RUN_BUDGET_MS;
    try {
      // --- the database: our own embedded PostgreSQL, in a folder the `postgres` OS user can reach
      tmp = await mkdtemp('/tmp/cashwire-chaos-');
      await chmod(tmp, 0o755);
      const dataDir = tmp;
      const port = await freePort();
      pgServer = await startEmbeddedPostgres({ dataDir, port });
      const url = pgServer.url;
      db = createPool(url, 6);
      const pool = db;
      await migrate(pool);

      const operatorId = randomIds.next('op_');
      await pool.query('INSERT INTO operators (id, name, settings, created_at) VALUES ($1, $2, $3, now())', [
        operatorId, 'Chaos Casino', JSON.stringify({ retry_schedules: { sandbox: SCHEDULE } }),
      ]);
      const userId = randomIds.next('user_');
      await pool.query(
        `INSERT INTO users (operator_id, environment, id, tag, status, daily_limit, data, created_at)
         VALUES ($1, 'sandbox', $2, NULL, 'enabled', 100000000, '{}', now())`,
        [operatorId, userId],
      );

      // --- the receivers
      const ledger: Ledger = { ok: new Map(), requests: 0, verified: 0, badSignature: 0, hung: 0, failed500: 0, destroyed: 0 };
      for (let i = 0; i < RECEIVERS; i++) receivers.push(await startChaosReceiver(`whk_chaos_${i}_${randomIds.secret(18)}`, ledger));

      // --- the workers: child processes, `cashwire worker`
      const spawnWorker = async (): Promise<Worker> => {
        const child = spawn(process.execPath, ['--import', WATCHDOG, CLI, 'worker'], {
          env: { ...process.env, ...WORKER_ENV, DATABASE_URL: url, PORT: '0', LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const w: Worker = { child, pid: child.pid!, log: [], killedByUs: false };
        workers.push(w);
        const keep = (c: Buffer) => {
          w.log.push(...c.toString().split('\n').filter(Boolean));
          if (w.log.length > 200) w.log.splice(0, w.log.length - 200);
        };
        child.stdout!.on('data', keep);
        child.stderr!.on('data', keep);
        child.once('exit', (code, signal) => {
          if (!w.killedByUs) unexpectedExits.push(`worker ${w.pid} exited (${code ?? signal}):\n${w.log.slice(-20).join('\n')}`);
        });
        await waitFor(`worker ${w.pid} to start`, () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker ${w.pid} died on start:\n${w.log.join('\n')}`);
          return w.log.some((l) => l.includes('delivery worker running'));
        }, Math.min(deadline, Date.now() + 30_000));
        return w;
      };
      await Promise.all([spawnWorker(), spawnWorker()]);

      // --- the events: intents with a webhook_url, and their events through the production insertEvents()
      const insertBatch = async (first: number, count: number) => {
        const ids = Array.from({ length: count }, () => randomIds.next('intent_sandbox_'));
        const rx = ids.map((_, k) => receivers[(first + k) % RECEIVERS]!);
        for (let tries = 0; ; tries++) {
          try {
            await withTx(pool, async (tx) => {
              const { rows } = await tx.query<IntentRow>(
                `INSERT INTO intents (operator_id, environment, id, user_id, direction, amount, currency, status, approval_mode, rail, type,
                                      tag, webhook_url, webhook_secret, session_token, decided_at, created_at, updated_at)
                 SELECT $1, 'sandbox', t.id, $2, 'cash_in', 100 + t.n, 'USD', 'approved', 'automatic', 'ach', 'push',
                        'chaos_' || t.n, t.url, t.secret, md5(t.id), now(), now(), now()
                   FROM unnest($3::text[], $4::int[], $5::text[], $6::text[]) AS t(id, n, url, secret)
                 RETURNING *`,
                [operatorId, userId, ids, ids.map((_, k) => first + k), rx.map((r) => `${r.url}/hook`), rx.map((r) => r.secret)],
              );
              await insertEvents(tx, { clock: systemClock, ids: randomIds }, rows.map((intent) => ({ intent, type: 'intent.approved' as const })));
            });
            return;
          } catch (err) {
            // PostgreSQL restarting. A commit whose answer was lost must not be made twice.
            const { rows } = await pool
              .query<{ n: number }>('SELECT count(*)::int AS n FROM intents WHERE operator_id = $1 AND id = ANY($2)', [operatorId, ids])
              .catch(() => ({ rows: [{ n: -1 }] }));
            if (rows[0]!.n === count) return;
            if (Date.now() > deadline) throw err;
            await sleep(Math.min(1000, 100 * 2 ** tries));
          }
        }
      };
      const inserting = (async () => {
        for (let i = 0; i < N; i += BATCH) {
          await insertBatch(i, Math.min(BATCH, N - i));
          await sleep(INSERT_EVERY_MS);
        }
      })();
      inserting.catch(() => {}); // awaited below; a rejection before that must not go unhandled

      // --- the chaos, spaced out by progress
      const leasesOf = async (pid: number) => {
        const { rows } = await pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending' AND leased_by LIKE $1",
          [`%:${pid}:%`],
        );
        return rows[0]!.n;
      };
      const kills: { pid: number; leases: number; atEvents: number; atMs: number }[] = [];
      const killOne = async () => {
        // The victim is a worker with claims in flight: the ones it had leased must be reclaimed by the others.
        let victim: Worker | undefined;
        let leases = 0;
        await waitFor('a worker with claims in flight', async () => {
          for (const w of workers) {
            const n = await leasesOf(w.pid).catch(() => 0);
            if (n > leases) [victim, leases] = [w, n];
          }
          return leases > 0;
        }, Math.min(deadline, Date.now() + 10_000), 20);
        const w = victim!;
        w.killedByUs = true;
        const exited = new Promise((r) => w.child.once('exit', r));
        w.child.kill('SIGKILL');
        await exited;
        workers.splice(workers.indexOf(w), 1);
        kills.push({ pid: w.pid, leases, atEvents: ledger.ok.size, atMs: Date.now() - t0 });
        await spawnWorker();
      };
      let restartAt = 0;
      const restartPostgres = async () => {
        restartAt = ledger.ok.size;
        await pgServer!.stop();
        pgServer = undefined;
        await sleep(1_000); // down for a while: claims and completions fail and are retried
        pgServer = await startEmbeddedPostgres({ dataDir, port });
        expect(pgServer.url).toBe(url);
      };
      const plan: [number, () => Promise<void>][] = [
        [0.15, killOne],
        [0.35, killOne],
        [0.48, restartPostgres],
        [0.6, killOne],
      ];
      for (const [fraction, act] of plan) {
        await waitFor(`${fraction * 100}% of the events`, () => {
          if (unexpectedExits.length) throw new Error(unexpectedExits.join('\n\n'));
          return ledger.ok.size >= fraction * N;
        }, deadline);
        await act();
      }
      await inserting;

      // --- every event arrives; every delivery ends succeeded
      await waitFor('every event to be received', () => {
        if (unexpectedExits.length) throw new Error(unexpectedExits.join('\n\n'));
        return ledger.ok.size >= N;
      }, deadline, 100);
      const succeeded = async () =>
        (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE status = 'succeeded'")).rows[0]!.n;
      await waitFor('every delivery to be recorded as succeeded', async () => (await succeeded()) >= N, deadline, 100);
      const runMs = Date.now() - t0;

      const created = new Set((await pool.query<{ id: string }>('SELECT id FROM events WHERE operator_id = $1', [operatorId])).rows.map((r) => r.id));
      const receivedOk = new Set(ledger.ok.keys());
      const missing = [...created].filter((id) => !receivedOk.has(id));
      const unknown = [...receivedOk].filter((id) => !created.has(id));
      const { rows: [totals] } = await pool.query<{ deliveries: number; succeeded: number; reclaims: number; attempts: number; recorded: number }>(
        `SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
                coalesce(sum(reclaims), 0)::int AS reclaims, coalesce(sum(attempts), 0)::int AS attempts,
                (SELECT count(*)::int FROM delivery_attempts) AS recorded
           FROM deliveries`,
      );
      const duplicates = [...ledger.ok.values()].reduce((s, c) => s + c - 1, 0);
      console.log(
        `chaos: ${N} events, ${created.size} created, ${receivedOk.size} received ok, missing ${missing.length}, duplicates ${duplicates}, ` +
          `reclaims ${totals!.reclaims}, attempts ${totals!.attempts} (recorded ${totals!.recorded}, requests ${ledger.requests}: ` +
          `${ledger.failed500} x 500, ${ledger.destroyed} destroyed, ${ledger.hung} hung), bad signatures ${ledger.badSignature}, ` +
          `kills ${kills.map((k) => `${k.atEvents}ev/${k.leases} leases`).join(', ')}, pg restart at ${restartAt}ev, time ${(runMs / 1000).toFixed(1)} s`,
      );

      expect(unexpectedExits).toEqual([]);
      expect(created.size).toBe(N);
      expect(missing).toEqual([]);
      expect(unknown).toEqual([]);
      expect(receivedOk).toEqual(created);
      expect(ledger.badSignature).toBe(0);
      expect(ledger.verified).toBe(ledger.requests);
      expect(kills).toHaveLength(3);
      for (const k of kills) expect(k.leases).toBeGreaterThan(0);
      expect(totals!.reclaims).toBeGreaterThan(0);
      expect(totals!.deliveries).toBe(N);
      expect(totals!.succeeded).toBe(N);
    } finally {
      await cleanup();
    }
  }, TEST_TIMEOUT_MS);
});
