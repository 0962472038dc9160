/**
 * Chaos: 2,000 events, four flaky receivers, two worker processes (`cashwire worker`) on their own embedded
 * PostgreSQL. While attempts are in flight, a worker is SIGKILLed three times (a replacement is started each
 * time) and PostgreSQL is restarted once. Every event must still arrive, signed, at least once; the leases
 * left by the killed workers must be reclaimed; every delivery must end `succeeded` (none `dead`, none in any
 * other status).
 *
 * The receivers also answer the way real, misbehaving ones do: 200s whose bodies hold NUL bytes, are gzipped
 * (`content-encoding: gzip`, whatever the request accepted) or are not UTF-8; 500s with 64 KB of random bytes;
 * and 200s whose body trickles in, a byte every 200 ms, for longer than the worker's timeout (the status line,
 * written at once, decides). Those outcomes must be recorded like any other: the attempt log must hold the
 * successes that came from them.
 *
 * Bounded: every wait has a deadline well inside the test's timeout, and cleanup always runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
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
// Garbage answers, on top of the ones above. The 200s succeed; the 500 is a failure like any other.
const P_NUL = 0.05; // 200, a body with NUL bytes
const P_GZIP = 0.05; // 200, a gzipped body with content-encoding: gzip
const P_BAD_UTF8 = 0.05; // 200, a body that is not UTF-8
const P_RANDOM_500 = 0.05; // 500, 64 KB of random bytes
const P_TRICKLE = 0.03; // 200 written at once, then a body of TRICKLE_BYTES, one byte every TRICKLE_EVERY_MS
const TRICKLE_BYTES = 20;
const TRICKLE_EVERY_MS = 200; // 20 bytes: about 4 s, longer than CASHWIRE_WEBHOOK_TIMEOUT_MS
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
  // A third of the answers fail: the origins' circuits open now and then. A short wait keeps them opening and
  // probing (through the kills and the restart) within the run.
  CASHWIRE_CIRCUIT_COOLDOWN_MS: '300',
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

/** What a 2xx answer's body was. */
type OkKind = 'plain' | 'nul' | 'gzip' | 'badUtf8' | 'trickle';
const GARBAGE_KINDS = ['nul', 'gzip', 'badUtf8', 'trickle'] as const;

interface Ledger {
  /** Event id → how many 2xx answers the receivers gave for it. */
  ok: Map<string, number>;
  /** Event id → the kinds of 2xx answers it was given. */
  okKinds: Map<string, Set<OkKind>>;
  requests: number;
  verified: number;
  badSignature: number;
  hung: number;
  failed500: number;
  destroyed: number;
  /** 2xx answers with a garbage body, written to a live connection, by kind. */
  garbage: { nul: number; gzip: number; badUtf8: number };
  /** 500s with 64 KB of random bytes. */
  random500: number;
  /** 200s whose status line and headers were written to a live connection, their body then trickling. */
  trickled: number;
  /** Trickling bodies cut short: the sender closed the connection first (its timeout). */
  trickleCut: number;
}

const newLedger = (): Ledger => ({
  ok: new Map(), okKinds: new Map(), requests: 0, verified: 0, badSignature: 0, hung: 0, failed500: 0, destroyed: 0,
  garbage: { nul: 0, gzip: 0, badUtf8: 0 }, random500: 0, trickled: 0, trickleCut: 0,
});

function countOk(ledger: Ledger, id: string, kind: OkKind) {
  ledger.ok.set(id, (ledger.ok.get(id) ?? 0) + 1);
  const kinds = ledger.okKinds.get(id) ?? new Set<OkKind>();
  kinds.add(kind);
  ledger.okKinds.set(id, kinds);
}

// The garbage bodies, as raw bytes.
const NUL_BODY = Buffer.from('ok\0\0\xff\xfe', 'latin1'); // 6f 6b 00 00 ff fe
const BAD_UTF8_BODY = Buffer.from([0xc3, 0x28, 0xa0, 0xa1]);

interface ChaosReceiver {
  url: string;
  secret: string;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver: checks each pushcash signature, then fails 35% of the time (500, 500 with 64 KB of
 * random bytes, or the connection destroyed), hangs 3% of the time (never answers: the worker times out),
 * answers 200 with a garbage body 15% of the time (NUL bytes, gzip, invalid UTF-8), 200 with a trickling body
 * 3% of the time, and otherwise a plain 200; every answer after a short, random delay. A 2xx counts only when it
 * was written to a live connection (for a trickle: its status line and headers).
 */
async function startChaosReceiver(secret: string, ledger: Ledger): Promise<ChaosReceiver> {
  const hanging = new Set<http.ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const tickers = new Set<NodeJS.Timeout>();
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
      const live = () => !res.destroyed && !req.socket.destroyed; // else the sender is gone (killed): no answer was given
      let g = P_HANG + P_500 + P_DESTROY;
      if (r < (g += P_RANDOM_500)) {
        ledger.random500++;
        later(5 + Math.random() * 60, () => res.writeHead(500, { 'content-type': 'application/octet-stream' }).end(randomBytes(64 * 1024)));
        return;
      }
      if (r < (g += P_NUL)) {
        later(5 + Math.random() * 120, () => {
          if (!live()) return;
          ledger.garbage.nul++;
          countOk(ledger, id, 'nul');
          res.writeHead(200, { 'content-type': 'text/plain' }).end(NUL_BODY);
        });
        return;
      }
      if (r < (g += P_GZIP)) {
        later(5 + Math.random() * 120, () => {
          if (!live()) return;
          ledger.garbage.gzip++;
          countOk(ledger, id, 'gzip');
          const gz = gzipSync(JSON.stringify({ received: id, ok: true, note: 'compressed whatever you accept' }));
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gz);
        });
        return;
      }
      if (r < (g += P_BAD_UTF8)) {
        later(5 + Math.random() * 120, () => {
          if (!live()) return;
          ledger.garbage.badUtf8++;
          countOk(ledger, id, 'badUtf8');
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(BAD_UTF8_BODY);
        });
        return;
      }
      if (r < (g += P_TRICKLE)) {
        later(5 + Math.random() * 60, () => {
          if (!live()) return;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.flushHeaders(); // the status line and headers now, to a live connection: this 2xx counts
          ledger.trickled++;
          countOk(ledger, id, 'trickle');
          let left = TRICKLE_BYTES;
          const stop = () => {
            clearInterval(tick);
            tickers.delete(tick);
          };
          const tick = setInterval(() => {
            if (res.destroyed) return stop();
            res.write('.');
            if (--left === 0) {
              stop();
              res.end();
            }
          }, TRICKLE_EVERY_MS);
          tickers.add(tick);
          res.on('close', () => {
            if (left > 0) ledger.trickleCut++;
            stop();
          });
        });
        return;
      }
      later(5 + Math.random() * 120, () => {
        if (!live()) return;
        countOk(ledger, id, 'plain');
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
      for (const t of tickers) clearInterval(t);
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
      const ledger = newLedger();
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
      const statuses = async () =>
        Object.fromEntries(
          (await pool.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM deliveries GROUP BY status ORDER BY status'))
            .rows.map((r) => [r.status, r.n]),
        ) as Record<string, number>;
      try {
        await waitFor('every delivery to be recorded as succeeded', async () => {
          const s = await statuses();
          // Ended, but not succeeded (dead, failed, expired): it never will be.
          const ended = Object.entries(s).filter(([status, n]) => status !== 'pending' && status !== 'succeeded' && n > 0);
          if (ended.length) throw new Error(`deliveries ended other than succeeded: ${JSON.stringify(s)}`);
          return (s.succeeded ?? 0) >= N;
        }, deadline, 100);
      } catch (err) {
        // Say where it stood: the deliveries by status, and what the workers last said about recording outcomes.
        const s = await statuses().catch((e: Error) => `(unreadable: ${e.message})`);
        const warnings = workers.flatMap((w) => w.log.filter((l) => /fail|error/i.test(l)).slice(-3).map((l) => `worker ${w.pid}: ${l.slice(0, 400)}`));
        throw new Error(`${(err as Error).message}; deliveries by status ${JSON.stringify(s)}; ${ledger.ok.size} events received ok; ` +
          `workers said:\n${warnings.join('\n') || '(nothing)'}`);
      }
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
      const { rows: [ends] } = await pool.query<{ dead: number; other: number }>(
        `SELECT count(*) FILTER (WHERE status = 'dead')::int AS dead, count(*) FILTER (WHERE status <> 'succeeded')::int AS other FROM deliveries`,
      );

      // The attempt log holds the garbage answers' successes. An event whose every 2xx answer was of one garbage
      // kind ended succeeded through an answer of that kind, so its delivery has a succeeded attempt from one.
      // (Nothing here depends on response_excerpt's type: rows are counted, and the excerpt only tested for NULL.)
      const onlyKind = new Map<OkKind, string[]>();
      for (const [id, kinds] of ledger.okKinds) {
        if (kinds.size !== 1) continue;
        const [kind] = kinds;
        onlyKind.set(kind!, [...(onlyKind.get(kind!) ?? []), id]);
      }
      const pairs = GARBAGE_KINDS.flatMap((kind) => (onlyKind.get(kind) ?? []).map((id) => [id, kind] as const));
      const { rows: recordedRows } = await pool.query<{ kind: OkKind; deliveries: number; attempts: number; with_excerpt: number }>(
        `SELECT k.kind, count(DISTINCT d.id)::int AS deliveries, count(*)::int AS attempts,
                count(*) FILTER (WHERE a.response_excerpt IS NOT NULL)::int AS with_excerpt
           FROM unnest($2::text[], $3::text[]) AS k(event_id, kind)
           JOIN deliveries d ON d.operator_id = $1 AND d.event_id = k.event_id
           JOIN delivery_attempts a ON a.operator_id = d.operator_id AND a.delivery_id = d.id
                                   AND a.outcome = 'succeeded' AND a.status_code BETWEEN 200 AND 299
          GROUP BY k.kind`,
        [operatorId, pairs.map(([id]) => id), pairs.map(([, kind]) => kind)],
      );
      const recorded = Object.fromEntries(
        GARBAGE_KINDS.map((kind) => {
          const row = recordedRows.find((r) => r.kind === kind);
          return [kind, { events: onlyKind.get(kind)?.length ?? 0, deliveries: row?.deliveries ?? 0, attempts: row?.attempts ?? 0, withExcerpt: row?.with_excerpt ?? 0 }];
        }),
      ) as Record<(typeof GARBAGE_KINDS)[number], { events: number; deliveries: number; attempts: number; withExcerpt: number }>;

      const duplicates = [...ledger.ok.values()].reduce((s, c) => s + c - 1, 0);
      console.log(
        `chaos: ${N} events, ${created.size} created, ${receivedOk.size} received ok, missing ${missing.length}, duplicates ${duplicates}, ` +
          `reclaims ${totals!.reclaims}, attempts ${totals!.attempts} (recorded ${totals!.recorded}, requests ${ledger.requests}: ` +
          `${ledger.failed500} x 500, ${ledger.random500} x 500 random, ${ledger.destroyed} destroyed, ${ledger.hung} hung, ` +
          `garbage 200s ${ledger.garbage.nul} NUL / ${ledger.garbage.gzip} gzip / ${ledger.garbage.badUtf8} bad UTF-8, ` +
          `${ledger.trickled} trickled (${ledger.trickleCut} cut short)), bad signatures ${ledger.badSignature}, ` +
          `succeeded attempts recorded for events answered only so (events/deliveries/with excerpt): ` +
          `${GARBAGE_KINDS.map((k) => `${k} ${recorded[k].events}/${recorded[k].deliveries}/${recorded[k].withExcerpt}`).join(', ')}, ` +
          `dead ${ends!.dead}, not succeeded ${ends!.other}, ` +
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
      expect(ends!.dead).toBe(0);
      expect(ends!.other).toBe(0);

      // The garbage answers were given, and their outcomes recorded.
      expect(ledger.random500).toBeGreaterThan(0);
      expect(ledger.trickled).toBeGreaterThan(0);
      for (const kind of GARBAGE_KINDS) {
        const r = recorded[kind];
        expect(r.events, `events answered only with ${kind} 2xx`).toBeGreaterThan(0);
        // Each such delivery has its success in the log (a little slack for an attempt row lost to a reclaim race).
        expect(r.deliveries, `${kind}: deliveries with a recorded success`).toBeGreaterThanOrEqual(Math.ceil(0.9 * r.events));
        // The body answers' responses were stored (a trickle's body may not have been read: not required).
        if (kind !== 'trickle') expect(r.withExcerpt, `${kind}: succeeded attempts with a stored response`).toBeGreaterThan(0);
      }
    } finally {
      await cleanup();
    }
  }, TEST_TIMEOUT_MS);
});
