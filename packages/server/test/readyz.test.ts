/**
 * GET /readyz: 200 while deliveries flow, 503 in the documented shape (`database_unavailable`, `no_worker`,
 * `delivery_lagging`) when they do not. The heartbeats (delivery/heartbeat.ts) are written here with beat() and
 * createHeartbeat(), the deliveries made through the API, the time moved with the test server's ManualClock.
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../src/api/app.js';
import { createPool, type Queryable } from '../src/db/pool.js';
import { beat, createHeartbeat, forget, pruneHeartbeats, readiness } from '../src/delivery/heartbeat.js';
import { createSettlementJob } from '../src/jobs/settlement.js';
import { createMetrics } from '../src/metrics.js';
import { client, freePort, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

let s: TestServer;
let api: Api;
let anon: Api;
let userId: string;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

const db = () => s.running.deps.db;
const now = () => s.clock.now();

beforeAll(async () => {
  s = await startTestServer();
  api = client(s.url, (await newOperator(s)).sandbox);
  anon = client(s.url);
  userId = await newUser(api);
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(async () => {
  await harness.reset(rx); // stops workers, ends what a test left pending
  await db().query('DELETE FROM worker_heartbeats');
});
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

/** The documented 503 body: status, checks, and the one error shape with a catalog code. */
function expectNotReady(r: { status: number; body: any; headers: Headers }, code: string) {
  expect(r.status).toBe(503);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(r.body).sort()).toEqual(['checks', 'error', 'status']);
  expect(r.body.status).toBe('not_ready');
  expect(r.body.error).toEqual({ code, message: expect.any(String) });
}

/** An approved payment whose webhook goes to the receiver; its delivery is due at the clock's now. */
async function pendingDelivery() {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 5000, webhook_url: `${rx.url}/hook` });
  const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
  return { intent, eventId: ev.id as string };
}

describe('GET /readyz', () => {
  it('is 503 no_worker on a fresh database, before any worker beat', async () => {
    const r = await anon.get('/readyz');
    expectNotReady(r, 'no_worker');
    expect(r.body.checks).toEqual({
      database: { ok: true },
      delivery_lag: { ok: true, lag_ms: 0, max_lag_ms: 60_000, oldest_due_at: null },
      workers: { ok: false, seen: 0, newest_beat_age_ms: null, window_ms: 60_000 },
    });
  });

  it('is 200 ready with a fresh heartbeat and nothing due; needs no API key; not in the OpenAPI document', async () => {
    await beat(db(), 'w1', now(), true);
    s.clock.advance(1_500);
    const r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      status: 'ready',
      checks: {
        database: { ok: true },
        delivery_lag: { ok: true, lag_ms: 0, max_lag_ms: 60_000, oldest_due_at: null },
        workers: { ok: true, seen: 1, newest_beat_age_ms: 1_500, window_ms: 60_000 },
      },
    });
    const doc = (await anon.get('/openapi.json')).body;
    expect(Object.keys(doc.paths)).not.toContain('/readyz');
    expect(Object.keys(doc.paths)).not.toContain('/healthz');
  });

  it('is 503 no_worker once the newest heartbeat is older than CASHWIRE_READY_WORKER_MS (the window is inclusive)', async () => {
    await beat(db(), 'w1', now(), false);
    await beat(db(), 'w2', new Date(now().getTime() - 10_000), true);
    expect((await anon.get('/readyz')).body.checks.workers).toMatchObject({ ok: true, seen: 2, newest_beat_age_ms: 0 });
    s.clock.advance(50_000); // w2 is 60 s old: still in the window; w1 50 s
    expect((await anon.get('/readyz')).body.checks.workers).toMatchObject({ ok: true, seen: 2 });
    s.clock.advance(1); // w2 out
    expect((await anon.get('/readyz')).body.checks.workers).toMatchObject({ ok: true, seen: 1, newest_beat_age_ms: 50_001 });
    s.clock.advance(10_000); // w1 out too
    const r = await anon.get('/readyz');
    expectNotReady(r, 'no_worker');
    expect(r.body.checks.workers).toEqual({ ok: false, seen: 0, newest_beat_age_ms: 60_001, window_ms: 60_000 });
    expect(r.body.checks.delivery_lag.ok).toBe(true);
    // A beat brings it back.
    await beat(db(), 'w1', now(), true);
    expect((await anon.get('/readyz')).status).toBe(200);
  });

  it('is 503 delivery_lagging when a pending delivery has been due longer than CASHWIRE_READY_MAX_LAG_MS, and 200 once it is sent', async () => {
    const { eventId } = await pendingDelivery();
    const dueAt = now();
    await beat(db(), 'w1', now(), true);
    let r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body.checks.delivery_lag).toEqual({ ok: true, lag_ms: 0, max_lag_ms: 60_000, oldest_due_at: dueAt.toISOString() });

    s.clock.advance(60_000); // exactly the threshold: still ready
    await beat(db(), 'w1', now(), true);
    expect((await anon.get('/readyz')).body.checks.delivery_lag).toMatchObject({ ok: true, lag_ms: 60_000 });

    s.clock.advance(1);
    await beat(db(), 'w1', now(), true); // a live worker, yet the delivery waits
    r = await anon.get('/readyz');
    expectNotReady(r, 'delivery_lagging');
    expect(r.body.checks).toEqual({
      database: { ok: true },
      delivery_lag: { ok: false, lag_ms: 60_001, max_lag_ms: 60_000, oldest_due_at: dueAt.toISOString() },
      workers: { ok: true, seen: 1, newest_beat_age_ms: 0, window_ms: 60_000 },
    });
    expect(r.body.error.message).toMatch(/60001 ms/);

    // A real worker sends it (the receiver answers 200): ready again.
    expect(await harness.make().tick()).toBe(1);
    expect(rx.received.filter((x) => x.path === '/hook')).toHaveLength(1);
    const shown = (await api.get(`/events/${eventId}`)).body.deliveries[0];
    expect(shown.status).toBe('succeeded');
    r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body.checks.delivery_lag).toEqual({ ok: true, lag_ms: 0, max_lag_ms: 60_000, oldest_due_at: null });
  });

  it('says no_worker rather than delivery_lagging when both fail, and shows both checks', async () => {
    await pendingDelivery();
    await beat(db(), 'w1', now(), true);
    s.clock.advance(120_000);
    const r = await anon.get('/readyz');
    expectNotReady(r, 'no_worker');
    expect(r.body.checks.workers.ok).toBe(false);
    expect(r.body.checks.delivery_lag).toMatchObject({ ok: false, lag_ms: 120_000 });
  });

  it('does not count held deliveries (a disabled endpoint\'s), however long they wait', async () => {
    const ep = (await api.post('/webhook/endpoints', { url: `${rx.url}/held`, events: ['intent.approved'] })).body;
    expect((await api.post(`/webhook/endpoints/${ep.id}/disable`)).status).toBe(200);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 700 });
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
    const d = (await api.get(`/events/${ev.id}`)).body.deliveries;
    expect(d).toEqual([expect.objectContaining({ status: 'pending', held: true })]);
    s.clock.advance(86_400_000);
    await beat(db(), 'w1', now(), true);
    const r = await anon.get('/readyz');
    expect(r.status).toBe(200);
    expect(r.body.checks.delivery_lag).toMatchObject({ ok: true, lag_ms: 0, oldest_due_at: null });
    await api.call('DELETE', `/webhook/endpoints/${ep.id}`);
  });

  it('does not count a delivery waiting for its retry, only from when it is due again', async () => {
    rx.setResponder(() => ({ status: 500, body: 'no' }));
    await pendingDelivery();
    expect(await harness.make().tick()).toBe(1); // attempt 1 fails: the sandbox schedule retries in 1 minute
    s.clock.advance(59_000);
    await beat(db(), 'w1', now(), true);
    expect((await anon.get('/readyz')).body.checks.delivery_lag).toMatchObject({ ok: true, lag_ms: 0, oldest_due_at: null });
    s.clock.advance(62_000); // due again about 1 min after the attempt, now waiting about 61 s
    await beat(db(), 'w1', now(), true);
    expectNotReady(await anon.get('/readyz'), 'delivery_lagging');
  });

  it('is 503 database_unavailable in the same shape when PostgreSQL is unreachable', async () => {
    const dead = createPool(`postgres://postgres@127.0.0.1:${await freePort()}/nowhere`, 1);
    const app = await buildApp({ ...s.running.deps, db: dead });
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({
        status: 'not_ready',
        checks: { database: { ok: false } },
        error: { code: 'database_unavailable', message: 'PostgreSQL is not reachable' },
      });
      // /healthz agrees.
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
    } finally {
      await app.close();
      await dead.end();
    }
  });

  it('follows the configured thresholds (readyMaxLagMs, readyWorkerMs)', async () => {
    const r0 = await readiness(db(), now(), { maxLagMs: 10, workerMs: 5 });
    expect(r0).toMatchObject({ ready: false, failing: 'no_worker' });
    await beat(db(), 'w1', now(), true);
    await pendingDelivery();
    s.clock.advance(5);
    expect(await readiness(db(), now(), { maxLagMs: 10, workerMs: 5 })).toMatchObject({ ready: true, failing: null });
    s.clock.advance(6);
    await beat(db(), 'w1', now(), true);
    const r = await readiness(db(), now(), { maxLagMs: 10, workerMs: 5 });
    expect(r).toMatchObject({ ready: false, failing: 'delivery_lagging', checks: { delivery_lag: { lag_ms: 11, max_lag_ms: 10 }, workers: { window_ms: 5 } } });
  });
});

describe('heartbeats', () => {
  /** The database, with a count of the statements that write heartbeats. */
  function counting(): { db: Queryable; writes: () => number } {
    let n = 0;
    const real = db();
    const proxy = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'query') {
          return (...args: unknown[]) => {
            if (typeof args[0] === 'string' && args[0].includes('INSERT INTO worker_heartbeats')) n++;
            return (target.query as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    return { db: proxy as Queryable, writes: () => n };
  }
  const row = async (worker: string) =>
    (await db().query<{ beat_at: Date; claimed_at: Date | null }>('SELECT beat_at, claimed_at FROM worker_heartbeats WHERE worker = $1', [worker])).rows[0];

  it('beat() upserts; claimed_at moves only with a claim; forget() removes the row', async () => {
    const t0 = now();
    await beat(db(), 'w1', t0, false);
    expect(await row('w1')).toEqual({ beat_at: t0, claimed_at: null });
    const t1 = new Date(t0.getTime() + 1_000);
    await beat(db(), 'w1', t1, true);
    expect(await row('w1')).toEqual({ beat_at: t1, claimed_at: t1 });
    const t2 = new Date(t0.getTime() + 2_000);
    await beat(db(), 'w1', t2, false);
    expect(await row('w1')).toEqual({ beat_at: t2, claimed_at: t1 });
    await forget(db(), 'w1');
    expect(await row('w1')).toBeUndefined();
  });

  it('createHeartbeat writes at most once per everyMs, by the clock, and carries a claim to the next write', async () => {
    const c = counting();
    const hb = createHeartbeat({ db: c.db, clock: s.clock, worker: 'hb1' }, 5_000);
    const t0 = now();
    for (let i = 0; i < 20; i++) hb.onClaim();
    await vi.waitFor(async () => expect(await row('hb1')).toEqual({ beat_at: t0, claimed_at: t0 }));
    expect(c.writes()).toBe(1);

    s.clock.advance(4_999);
    for (let i = 0; i < 20; i++) hb.onClaim();
    await new Promise((r) => setTimeout(r, 50));
    expect(c.writes()).toBe(1);
    expect((await row('hb1'))!.beat_at).toEqual(t0);

    s.clock.advance(1); // 5 s after the first write
    hb.onClaim(false); // a keepalive: alive, and the claims seen since the last write are carried
    const t1 = now();
    await vi.waitFor(async () => expect((await row('hb1'))!.beat_at).toEqual(t1));
    expect(c.writes()).toBe(2);
    expect((await row('hb1'))!.claimed_at).toEqual(t1);

    s.clock.advance(5_000);
    hb.onClaim(false); // no claim since: claimed_at stays
    const t2 = now();
    await vi.waitFor(async () => expect((await row('hb1'))!.beat_at).toEqual(t2));
    expect((await row('hb1'))!.claimed_at).toEqual(t1);
    expect(c.writes()).toBe(3);

    // A clock that moved back writes at once instead of waiting for it to catch up.
    s.clock.advance(-60_000);
    hb.onClaim();
    const t3 = now();
    await vi.waitFor(async () => expect((await row('hb1'))!.beat_at).toEqual(t3));
    expect(c.writes()).toBe(4);

    // /readyz sees it; stop() forgets it, and later calls write nothing.
    s.clock.advance(60_000);
    hb.onClaim();
    await hb.stop();
    expect(await row('hb1')).toBeUndefined();
    s.clock.advance(10_000);
    hb.onClaim();
    await new Promise((r) => setTimeout(r, 50));
    expect(await row('hb1')).toBeUndefined();
  });

  it('createHeartbeat never throws and logs a failed write at debug', async () => {
    const failing = { query: () => Promise.reject(new Error('connection refused')) } as unknown as Queryable;
    const debug = vi.fn();
    const hb = createHeartbeat({ db: failing, clock: s.clock, worker: 'hb2', log: { debug } as never }, 5_000);
    expect(() => hb.onClaim()).not.toThrow();
    await vi.waitFor(() => expect(debug).toHaveBeenCalledWith(expect.objectContaining({ worker: 'hb2' }), 'heartbeat not written'));
    // Throttled after a failure too: the next try is everyMs later.
    hb.onClaim();
    await new Promise((r) => setTimeout(r, 20));
    expect(debug).toHaveBeenCalledTimes(1);
    await expect(hb.stop()).resolves.toBeUndefined();
    // Without a logger, silently.
    const quiet = createHeartbeat({ db: failing, clock: { now: () => { throw new Error('clock'); } }, worker: 'hb3' });
    expect(() => quiet.onClaim()).not.toThrow();
    await quiet.stop();
  });

  it('pruneHeartbeats deletes rows older than the cutoff; the periodic job prunes those gone for an hour', async () => {
    await beat(db(), 'old', new Date(now().getTime() - 3_600_001), true);
    await beat(db(), 'recent', new Date(now().getTime() - 3_599_000), true);
    await beat(db(), 'fresh', now(), true);
    expect(await pruneHeartbeats(db(), new Date(now().getTime() - 3_600_000))).toBe(1);
    expect((await db().query('SELECT worker FROM worker_heartbeats ORDER BY worker')).rows.map((r) => r.worker)).toEqual(['fresh', 'recent']);
    s.clock.advance(2_000);
    await createSettlementJob({ ...s.running.deps, log: pino({ level: 'silent' }) }).runOnce();
    expect((await db().query('SELECT worker FROM worker_heartbeats ORDER BY worker')).rows.map((r) => r.worker)).toEqual(['fresh']);
  });
});

describe('cashwire_ready', () => {
  it('is 1 when /readyz would answer 200, 0 otherwise (only with the thresholds given)', async () => {
    const m = createMetrics(db(), s.clock, { maxLagMs: 60_000, workerMs: 60_000 });
    const value = async () => (await m.registry.getSingleMetric('cashwire_ready')!.get()).values[0]!.value;
    expect(await value()).toBe(0);
    await beat(db(), 'w1', now(), true);
    expect(await value()).toBe(1);
    expect(createMetrics(db(), s.clock).registry.getSingleMetric('cashwire_ready')).toBeUndefined();
  });
});
