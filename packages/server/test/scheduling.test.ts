/**
 * Fair scheduling (issue: no tenant or endpoint can starve another). Real PostgreSQL, real HTTP, real worker processes
 * where processes matter:
 * - claims are round robin across operators, then across the destinations of each operator;
 * - a destination at its cap costs no claims, and its cap holds across worker processes;
 * - a payment URL's origin has a circuit breaker;
 * - a fifo endpoint delivers in event order, one at a time, through a failing head;
 * - a worker that goes to sleep while a producer's transaction is open is woken by its commit;
 * - two workers whose clocks disagree by more than the lease margin never have one attempt in flight twice.
 * Needs the build (the worker-process test spawns the CLI): `npx tsc -b packages/webhooks packages/server`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { grant, lanesToTry, laneKey, type LaneState, type LaneView } from '../src/delivery/admission.js';
import { claim } from '../src/delivery/queue.js';
import { createWorker, type WorkerOptions } from '../src/delivery/worker.js';
import { withTx } from '../src/db/pool.js';
import { DEFAULT_HEALTH_POLICY } from '../src/domain/health.js';
import { insertTenantEvent } from '../src/store/events.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { inFlightPeak, startReceiver } from './receiver.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');

let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer();
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

const at = (p: string) => rx.received.filter((r) => r.path === p);
/** The event a webhook carries (pushcash: in the x-webhook-id header). */
const eventOf = (r: { headers: Record<string, unknown> }) => String(r.headers['x-webhook-id']);
const db = () => s.running.deps.db;

async function tenant(name: string) {
  const keys = await newOperator(s, name);
  const api = client(s.url, keys.sandbox);
  return { id: keys.id, api, user: await newUser(api) };
}

async function endpoint(api: Api, p: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/webhook/endpoints', { url: rx.url + p, events: ['intent.approved'], ...body });
  expect(r.status).toBe(201);
  return r.body as { id: string; ordering: string };
}

/** An approved payment: its intent.approved event goes to the registered endpoints, or to `webhook_url`. */
async function payment(t: { api: Api; user: string }, amount: number, webhookUrl?: string) {
  const { intent } = await payThroughPage(s, t.api, { direction: 'cash_in', user_id: t.user, amount, ...(webhookUrl ? { webhook_url: webhookUrl } : {}) });
  const ev = (await t.api.get(`/events?intent_id=${intent.id}&type=intent.approved`)).body.data[0];
  return ev.id as string;
}

describe('claims', () => {
  it('are round robin across operators, then across the endpoints of each operator, however old each backlog is', async () => {
    const x = await tenant('Old Backlog Co');
    const e1 = await endpoint(x.api, '/rr-x1');
    const e2 = await endpoint(x.api, '/rr-x2');
    for (let i = 0; i < 4; i++) await payment(x, 100 + i); // each event to both of X's endpoints: 8 deliveries, the oldest
    s.clock.advance(1_000);
    const y = await tenant('Newcomer Co');
    const f = await endpoint(y.api, '/rr-y');
    for (let i = 0; i < 4; i++) await payment(y, 200 + i); // 4 deliveries, a second younger than all of X's
    // One delivery per claim, as a worker with one free slot claims.
    const order: { op: string; endpoint: string | null }[] = [];
    for (let i = 0; i < 12; i++) {
      const [c] = await claim(db(), 'rr-test', s.clock.now(), 60_000, 1);
      expect(c, `claim ${i + 1}`).toBeDefined();
      order.push({ op: c!.operator_id, endpoint: c!.endpoint_id });
    }
    expect(await claim(db(), 'rr-test', s.clock.now(), 60_000, 1)).toHaveLength(0);
    // Operators alternate while both have work (the newcomer is not behind the old backlog; which of two operators
    // never served goes first is a tie)...
    expect(order.slice(0, 8).map((o) => (o.op === x.id ? 'X' : 'Y')).join('')).toMatch(/^(XY){4}$|^(YX){4}$/);
    // ...and X's two endpoints alternate within X's turns.
    const xs = order.filter((o) => o.op === x.id).map((o) => (o.endpoint === e1.id ? '1' : o.endpoint === e2.id ? '2' : '?')).join('');
    expect(xs).toMatch(/^(12){4}$|^(21){4}$/);
    expect(order.filter((o) => o.op === y.id).every((o) => o.endpoint === f.id)).toBe(true);
  });

  it('take nothing from a destination at its cap: its backlog is not claimed until an attempt finishes', async () => {
    const t = await tenant('Capped Co');
    const ep = await endpoint(t.api, '/capped', { max_concurrency: 2 });
    for (let i = 0; i < 10; i++) await payment(t, 300 + i);
    const first = await claim(db(), 'cap-a', s.clock.now(), 60_000, 200);
    expect(first.filter((c) => c.endpoint_id === ep.id)).toHaveLength(2);
    // A second worker, and the first again: the two leases are live, nothing more is claimed (or given back later).
    expect((await claim(db(), 'cap-b', s.clock.now(), 60_000, 200)).filter((c) => c.endpoint_id === ep.id)).toHaveLength(0);
    expect((await claim(db(), 'cap-a', s.clock.now(), 60_000, 200)).filter((c) => c.endpoint_id === ep.id)).toHaveLength(0);
    const { rows } = await db().query<{ claimed: number; attempts: number }>(
      `SELECT count(*) FILTER (WHERE leased_by IS NOT NULL)::int AS claimed, sum(attempts)::int AS attempts FROM deliveries WHERE operator_id = $1 AND endpoint_id = $2`,
      [t.id, ep.id],
    );
    expect(rows[0]).toEqual({ claimed: 2, attempts: 2 });
    // When a lease runs out (its worker died), its room is free again.
    s.clock.advance(60_001);
    expect((await claim(db(), 'cap-b', s.clock.now(), 60_000, 200)).filter((c) => c.endpoint_id === ep.id)).toHaveLength(2);
  });

  it("hold an endpoint's rate limit across workers: one bucket in the database, refilled by the clock", async () => {
    const t = await tenant('Rate Limited Co');
    const ep = await endpoint(t.api, '/rate-limited', { rate_limit_per_s: 4 });
    for (let i = 0; i < 12; i++) await payment(t, 350 + i);
    const mine = (cs: { endpoint_id: string | null }[]) => cs.filter((c) => c.endpoint_id === ep.id).length;
    // Two workers claiming at the same instant share the bucket: 4 in all, not 4 each.
    const a = mine(await claim(db(), 'rate-a', s.clock.now(), 60_000, 200));
    const b = mine(await claim(db(), 'rate-b', s.clock.now(), 60_000, 200));
    expect(a + b).toBe(4);
    // Half a second later, two tokens more; a second after that, the bucket is full again (4), never more.
    s.clock.advance(500);
    expect(mine(await claim(db(), 'rate-b', s.clock.now(), 60_000, 200)) + mine(await claim(db(), 'rate-a', s.clock.now(), 60_000, 200))).toBe(2);
    s.clock.advance(5_000);
    expect(mine(await claim(db(), 'rate-a', s.clock.now(), 60_000, 200))).toBe(4);
    expect(mine(await claim(db(), 'rate-b', s.clock.now(), 60_000, 200))).toBe(0);
  });

  it('hold a cap across worker processes: four processes, a cap of 3, never more than 3 at once', async () => {
    // The worker processes run on real time (corrected to the database's): the API's manual clock must agree.
    s.clock.set(Date.now());
    const t = await tenant('Shared Cap Co');
    await endpoint(t.api, '/shared-cap', { max_concurrency: 3 });
    const flight = inFlightPeak('/shared-cap', 60);
    rx.setResponder(flight.responder);
    const N = 40;
    for (let i = 0; i < N; i++) await payment(t, 400 + i);
    const children: ChildProcess[] = [];
    const env = {
      ...process.env, DATABASE_URL: s.running.database.url, CASHWIRE_DATA_DIR: s.running.deps.config.dataDir, CASHWIRE_POLL_MS: '20', LOG_LEVEL: 'warn',
    };
    try {
      for (let i = 0; i < 4; i++) children.push(spawn(process.execPath, [CLI, 'worker'], { env, stdio: 'ignore' }));
      await expect.poll(() => at('/shared-cap').length, { timeout: 30_000, interval: 50 }).toBe(N);
    } finally {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    }
    expect(flight.peak).toBeGreaterThan(1);
    expect(flight.peak).toBeLessThanOrEqual(3);
  });
});

describe("a payment URL's origin", () => {
  it('has a circuit: after 5 failures in a row nothing is claimed for it until the cooldown, then one probe closes it', async () => {
    const t = await tenant('Black Hole Co');
    let down = true;
    const hits = () => rx.received.filter((r) => r.path.startsWith('/origin-down'));
    rx.setResponder((r) => (r.path.startsWith('/origin-down') && down ? { status: 503 } : { status: 200 }));
    // The receiver's origin, for this operator: 8 payments, each its own URL on that origin.
    for (let i = 0; i < 8; i++) await payment(t, 500 + i, `${rx.url}/origin-down/${i}`);
    // A circuit that waits 5 minutes, so that the retries (sandbox: +1 min) come due while it is open.
    const w = harness.make({ health: { ...DEFAULT_HEALTH_POLICY, cooldownMs: 300_000 } });
    expect(await w.tick()).toBe(8); // all due now: the 8 first attempts (the circuit opens once the fifth has failed)
    const lane = `url:sandbox:${new URL(rx.url).origin}`;
    const { rows } = await db().query('SELECT circuit_state, consecutive_failures FROM delivery_lanes WHERE operator_id = $1 AND lane = $2', [t.id, lane]);
    expect(rows[0]).toMatchObject({ circuit_state: 'open', consecutive_failures: 8 });
    // The retries are due, the circuit is open: nothing is claimed (and nothing is sent).
    s.clock.advance(61_000);
    expect(await claim(db(), 'probe-test', s.clock.now(), 2_000, 200)).toHaveLength(0);
    expect(await w.tick()).toBe(0);
    expect(hits()).toHaveLength(8);
    // Once its wait is over: one probe, alone; its success closes the circuit, and the rest go.
    s.clock.advance(240_000);
    down = false;
    const [probe, ...none] = await claim(db(), 'probe-test', s.clock.now(), 2_000, 200);
    expect(probe).toBeDefined();
    expect(none).toHaveLength(0);
    expect(await claim(db(), 'probe-test-2', s.clock.now(), 2_000, 200)).toHaveLength(0); // one probe at a time, across workers
    await db().query('UPDATE deliveries SET next_attempt_at = $3, leased_by = NULL, attempts = attempts - 1 WHERE operator_id = $1 AND id = $2', [t.id, probe!.id, s.clock.now()]);
    expect(await w.tick()).toBe(8);
    const r2 = await db().query('SELECT circuit_state FROM delivery_lanes WHERE operator_id = $1 AND lane = $2', [t.id, lane]);
    expect(r2.rows[0].circuit_state).toBe('closed');
    const { rows: left } = await db().query("SELECT count(*)::int AS n FROM deliveries WHERE operator_id = $1 AND status = 'pending'", [t.id]);
    expect(left[0].n).toBe(0);
  });

  it("is its own destination: another origin of the same operator is served while one's circuit is open", async () => {
    const t = await tenant('Two Origins Co');
    rx.setResponder((r) => (r.path.startsWith('/dead-origin') ? { status: 500 } : { status: 200 }));
    for (let i = 0; i < 6; i++) await payment(t, 600 + i, `${rx.url}/dead-origin/${i}`);
    const w = harness.make({ health: { ...DEFAULT_HEALTH_POLICY, failureThreshold: 3 } });
    await w.tick();
    // The same receiver under another name: another origin, another lane.
    const other = rx.url.replace('127.0.0.1', 'localhost');
    await payment(t, 700, `${other}/live-origin`);
    expect(await w.tick()).toBe(1);
    expect(at('/live-origin')).toHaveLength(1);
  });
});

describe('fifo endpoints', () => {
  it('deliver in event order, one at a time; a failing head holds back its endpoint only, and the API shows what it waits on', async () => {
    const t = await tenant('In Order Co');
    const fifo = await endpoint(t.api, '/fifo', { ordering: 'fifo' });
    expect(fifo.ordering).toBe('fifo');
    await endpoint(t.api, '/unordered');
    let failures = 2;
    const events: string[] = [];
    rx.setResponder((r) => {
      if (r.path !== '/fifo') return { status: 200 };
      const id = eventOf(r);
      if (id === events[0] && failures > 0) {
        failures--;
        return { status: 500 };
      }
      return { status: 200 };
    });
    for (let i = 0; i < 5; i++) events.push(await payment(t, 800 + i));
    const w = harness.make();
    await w.tick();
    // The head failed; nothing behind it went; the other endpoint got all five.
    expect(at('/fifo').map((r) => eventOf(r))).toEqual([events[0]]);
    expect(at('/unordered')).toHaveLength(5);
    const shown = (await t.api.get(`/webhook/endpoints/${fifo.id}`)).body;
    expect(shown.waiting_on).toMatchObject({ event_id: events[0], attempts: 1, in_flight: false, last_status: 500, queued_behind: 4 });
    s.clock.advance(60_000); // sandbox retry: +1 min
    await w.tick();
    s.clock.advance(600_000); // then +10 min
    await w.tick();
    const got = at('/fifo').map((r) => eventOf(r));
    expect(got).toEqual([events[0], events[0], events[0], events[1], events[2], events[3], events[4]]);
    expect((await t.api.get(`/webhook/endpoints/${fifo.id}`)).body.waiting_on).toBeNull();
  });

  it('are chosen with ordering, changed with PATCH, and an unknown ordering is a 400 that changes nothing', async () => {
    const t = await tenant('Ordering Settings Co');
    const ep = await endpoint(t.api, '/ordering-settings');
    expect(ep.ordering).toBe('unordered');
    const bad = await t.api.call('PATCH', `/webhook/endpoints/${ep.id}`, { ordering: 'lifo' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: expect.stringMatching(/^[a-z][a-z0-9_]*$/), message: expect.stringContaining('ordering') });
    expect((await t.api.get(`/webhook/endpoints/${ep.id}`)).body).toMatchObject({ ordering: 'unordered' });
    expect((await t.api.get(`/webhook/endpoints/${ep.id}`)).body).not.toHaveProperty('waiting_on');
    const ok = await t.api.call('PATCH', `/webhook/endpoints/${ep.id}`, { ordering: 'fifo' });
    expect(ok.status).toBe(200);
    expect(ok.body.ordering).toBe('fifo');
    expect((await t.api.get('/webhook/endpoints')).body.data.find((e: { id: string }) => e.id === ep.id).ordering).toBe('fifo');
    expect((await t.api.get(`/webhook/endpoints/${ep.id}`)).body.waiting_on).toBeNull();
  });

  it('claim a lane at its cap again as soon as its outcomes are written, not after the one-second look (polling off)', async () => {
    // The drain's tail: attempts that finish free the worker's slots, but the lane's leases end only once their
    // outcomes are written; a claim in between finds the lane full. Claiming again after the write, eight deliveries
    // one at a time take a few round trips each; waiting for the fallback look, they would take over seven seconds.
    const t = await tenant('Tail Co');
    await endpoint(t.api, '/tail', { max_concurrency: 1 });
    for (let i = 0; i < 8; i++) await payment(t, 500 + i);
    const w = harness.make({ pollMs: 0, listen: false });
    await w.start();
    await expect.poll(() => at('/tail').length, { timeout: 4_000, interval: 20 }).toBe(8);
  });

  it("skip a disabled endpoint's lane: disabling and enabling it rewrite none of its deliveries", async () => {
    const t = await tenant('Outage Co');
    const ep = await endpoint(t.api, '/outage');
    for (let i = 0; i < 3; i++) await payment(t, 600 + i);
    const rows = async () => (await db().query<{ id: string; xmin: string; next_attempt_at: Date }>(
      `SELECT id, xmin::text, next_attempt_at FROM deliveries WHERE operator_id = $1 AND endpoint_id = $2 ORDER BY id`, [t.id, ep.id])).rows;
    const before = await rows();
    expect(before).toHaveLength(3);
    expect((await t.api.post(`/webhook/endpoints/${ep.id}/disable`)).status).toBe(200);
    expect(await rows()).toEqual(before); // not one row written
    expect((await claim(db(), 'outage', s.clock.now(), 60_000, 200)).filter((c) => c.endpoint_id === ep.id)).toHaveLength(0);
    const eventId = (await db().query<{ event_id: string }>('SELECT event_id FROM deliveries WHERE operator_id = $1 AND id = $2', [t.id, before[0]!.id])).rows[0]!.event_id;
    const ev = (await t.api.get(`/events/${eventId}`)).body;
    expect(ev.deliveries[0]).toMatchObject({ status: 'pending', held: true });
    expect((await t.api.post(`/webhook/endpoints/${ep.id}/enable`)).status).toBe(200);
    expect(await rows()).toEqual(before);
    const w = harness.make();
    await w.tick();
    expect(at('/outage')).toHaveLength(3);
  });

  it("hold an open circuit's lane, not its rows: opening it rewrites none of the queued deliveries, closing it sends them", async () => {
    const t = await tenant('Outage By Circuit Co');
    const ep = await endpoint(t.api, '/circuit-outage', { max_concurrency: 1 });
    rx.setResponder((r) => (r.path === '/circuit-outage' ? { status: 500 } : { status: 200 }));
    for (let i = 0; i < 10; i++) await payment(t, 800 + i);
    const queued = async () => (await db().query<{ id: string; xmin: string; next_attempt_at: Date }>(
      `SELECT id, xmin::text, next_attempt_at FROM deliveries WHERE operator_id = $1 AND endpoint_id = $2 AND attempts = 0 ORDER BY id`, [t.id, ep.id])).rows;
    const initial = new Map((await queued()).map((r) => [r.id, r]));
    const w = harness.make({ health: { ...DEFAULT_HEALTH_POLICY, failureThreshold: 3 } });
    const circuit = async () => (await t.api.get(`/webhook/endpoints/${ep.id}`)).body.health;
    for (let i = 0; i < 10 && (await circuit()).circuit === 'closed'; i++) {
      await w.tick();
      s.clock.advance(100);
    }
    const opened = await circuit();
    expect(opened.circuit).toBe('open');
    const before = await queued();
    expect(before.length).toBeGreaterThanOrEqual(5);
    // Not one row was written to hold them (each as it was before the outage), and none is claimed while it is open.
    expect(before).toEqual(before.map((r) => initial.get(r.id)));
    await w.tick();
    expect(await queued()).toEqual(before);
    expect(at('/circuit-outage')).toHaveLength(3);
    // The receiver is back: at the probe time one probe goes out, succeeds, and the rest follow.
    rx.setResponder(() => ({ status: 200 }));
    s.clock.set(new Date(opened.circuit_retry_at).getTime());
    for (let i = 0; i < 20 && (await queued()).length > 0; i++) {
      await w.tick();
      s.clock.advance(100);
    }
    expect(await queued()).toHaveLength(0);
    expect((await circuit()).circuit).toBe('closed');
    expect(w.stats.deferred).toBe(0);
  });

  it('never have two attempts in flight, even with many workers', async () => {
    const t = await tenant('One At A Time Co');
    await endpoint(t.api, '/fifo-slow', { ordering: 'fifo' });
    const flight = inFlightPeak('/fifo-slow', 30);
    rx.setResponder(flight.responder);
    const events: string[] = [];
    for (let i = 0; i < 8; i++) events.push(await payment(t, 900 + i));
    const ws = [harness.make({ pollMs: 10 }), harness.make({ pollMs: 10 }), harness.make({ pollMs: 10 })];
    await Promise.all(ws.map((w) => w.start()));
    await expect.poll(() => at('/fifo-slow').length, { timeout: 15_000, interval: 20 }).toBe(8);
    expect(flight.peak).toBe(1);
    expect(at('/fifo-slow').map((r) => eventOf(r))).toEqual(events);
  });
});

describe('wake-ups', () => {
  it("a worker that goes to sleep while a producer's transaction is still open is woken by its commit (polling off)", async () => {
    const t = await tenant('Late Commit Co');
    await endpoint(t.api, '/late-commit', { events: ['*'] });
    let commit!: () => void;
    const gate = new Promise<void>((r) => (commit = r));
    let written!: () => void;
    const wrote = new Promise<void>((r) => (written = r));
    // The producer writes its event (fanned out to the endpoint) and holds its transaction open.
    const producer = withTx(db(), async (tx) => {
      await insertTenantEvent(tx, s.running.deps, { operator_id: t.id, environment: 'sandbox' }, 'endpoint.recovered', { endpoint_id: 'ep_x', url: 'x', at: 'x' });
      written();
      await gate;
    });
    await wrote;
    // Only now does a worker start: it finds nothing (the write is not committed), marks itself asleep and sleeps,
    // with polling off. The mark is made after the producer's statement ran, before its COMMIT.
    const w = harness.make({ pollMs: 0, listen: true });
    await w.start();
    await expect.poll(async () => (await db().query('SELECT 1 FROM idle_workers WHERE worker = $1', [w.id])).rowCount, { timeout: 5_000, interval: 20 }).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    commit();
    await producer;
    await expect.poll(() => at('/late-commit').length, { timeout: 5_000, interval: 20 }).toBe(1);
  });
});

describe('wake-ups for held work', () => {
  it("a commit that makes only a disabled endpoint's deliveries wakes no sleeping worker; enabling it does", async () => {
    const t = await tenant('Quiet Outage Co');
    const ep = await endpoint(t.api, '/quiet-outage');
    expect((await t.api.post(`/webhook/endpoints/${ep.id}/disable`)).status).toBe(200);
    const w = harness.make({ pollMs: 0, listen: true });
    await w.start();
    await expect.poll(async () => (await db().query('SELECT 1 FROM idle_workers WHERE worker = $1', [w.id])).rowCount, { timeout: 5_000, interval: 20 }).toBe(1);
    const asleep = w.stats.claims;
    for (let i = 0; i < 3; i++) await payment(t, 700 + i); // each held for the disabled endpoint
    // A NOTIFY would have the worker claim within milliseconds; each of these commits would have woken it to find
    // nothing it may send (the idle worker scanned its lanes at every authorization while endpoints were down).
    await new Promise((r) => setTimeout(r, 300));
    expect(w.stats.claims).toBe(asleep);
    expect(at('/quiet-outage')).toHaveLength(0);
    expect((await t.api.post(`/webhook/endpoints/${ep.id}/enable`)).status).toBe(200);
    await expect.poll(() => at('/quiet-outage').length, { timeout: 5_000, interval: 20 }).toBe(3);
  });
});

describe('clock skew', () => {
  it('two workers 40 s apart (more than the lease margin) never have one attempt in flight twice', async () => {
    s.clock.set(Date.now()); // the API's times, by real time (the workers' clocks are real ones)
    const t = await tenant('Skewed Clocks Co');
    const inFlight = new Map<string, number>();
    let doubled = 0;
    rx.setResponder(async (r) => {
      if (!r.path.startsWith('/skew')) return { status: 200 };
      const id = eventOf(r);
      const n = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, n);
      if (n > 1) doubled++;
      await new Promise((res) => setTimeout(res, 300));
      inFlight.set(id, inFlight.get(id)! - 1);
      return { status: 200 };
    });
    const N = 12;
    for (let i = 0; i < N; i++) await payment(t, 1000 + i, `${rx.url}/skew/${i}`);
    const d = s.running.deps;
    // Real clocks, one of them 40 s ahead; the lease (2 s) minus the total timeout (1 s) leaves a margin of 1 s.
    const skewed = (ms: number) => ({ now: () => new Date(Date.now() + ms) });
    const options: Partial<WorkerOptions> = { connectTimeoutMs: 500, totalTimeoutMs: 1_000, leaseMs: 2_000, pollMs: 20, listen: false, drainMs: 500, concurrency: 4 };
    const make = (ms: number) => createWorker({ db: d.db, clock: skewed(ms), ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: d.secrets }, options);
    const a = make(0);
    const b = make(40_000);
    await a.start();
    await b.start();
    try {
      await expect.poll(async () => (await d.db.query("SELECT count(*)::int AS n FROM deliveries WHERE operator_id = $1 AND status = 'succeeded'", [t.id])).rows[0].n,
        { timeout: 20_000, interval: 50 }).toBe(N);
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(doubled).toBe(0);
    const { rows } = await d.db.query<{ reclaims: number; attempts: number }>('SELECT sum(reclaims)::int AS reclaims, sum(attempts)::int AS attempts FROM deliveries WHERE operator_id = $1', [t.id]);
    expect(rows[0]).toEqual({ reclaims: 0, attempts: N });
    expect(rx.received.filter((r) => r.path.startsWith('/skew/'))).toHaveLength(N);
  });
});

describe('admission (pure)', () => {
  const o = { destinationConcurrency: 32 };
  const view = (operator_id: string, lane: string, extra: Partial<LaneView> = {}): LaneView => ({
    operator_id, lane, head: new Date(0), served: null, max_concurrency: null, rate_limit_per_s: null, fifo: false, circuit_state: 'closed', circuit_retry_at: null, ...extra,
  });
  const stateOf = (vs: LaneView[], extra: Partial<LaneState> = {}) =>
    new Map(vs.map((v) => [laneKey(v), { operator_id: v.operator_id, lane: v.lane, tokens: null, tokens_at: null, circuit_state: 'closed' as const, circuit_retry_at: null, ...extra }]));

  it('orders lanes round robin: operators least recently served first, each with its least recently served lane', () => {
    const lanes = [view('a', 'ep:1', { served: 10 }), view('a', 'ep:2', { served: 3 }), view('a', 'ep:3', { served: 11 }), view('b', 'ep:9', { served: 5 })];
    const { order } = lanesToTry(lanes, 1_000, 10);
    // a was served last at 11, b at 5: b first; then a's least recently served (ep:2), then a's others in turn.
    expect(order.map((v) => `${v.operator_id}/${v.lane}`)).toEqual(['b/ep:9', 'a/ep:2', 'a/ep:1', 'a/ep:3']);
    expect(lanesToTry(lanes, 1_000, 2).order).toHaveLength(2);
  });

  it('leaves out lanes not due or behind an open circuit, and says when the first of them can give', () => {
    const r = lanesToTry([
      view('a', 'ep:1', { head: new Date(5_000) }),
      view('a', 'url:x', { circuit_state: 'open', circuit_retry_at: new Date(3_000) }),
      view('a', 'ep:2'),
    ], 1_000, 10);
    expect(r.order.map((v) => v.lane)).toEqual(['ep:2']);
    expect(r.wakeAt).toBe(3_000);
  });

  it('grants up to the cap minus what is in flight, shared one at a time, a single probe, and a fifo lane one', () => {
    const lanes = [view('a', 'ep:1', { max_concurrency: 5 }), view('b', 'ep:2'), view('c', 'ep:3', { fifo: true }),
      view('d', 'ep:4', { circuit_state: 'open', circuit_retry_at: new Date(500) })];
    const live = new Map([[laneKey(lanes[0]!), 3]]);
    const { grants } = grant(lanes, stateOf(lanes), live, 1_000, 100, o);
    expect(Object.fromEntries(grants.map((g) => [g.lane, g.n]))).toEqual({ 'ep:1': 2, 'ep:2': 32, 'ep:3': 1, 'ep:4': 1 });
    // A small claim reaches every lane before any gets a second.
    const small = grant(lanes, stateOf(lanes), live, 1_000, 4, o).grants;
    expect(small.map((g) => g.n)).toEqual([1, 1, 1, 1]);
    // A lane whose row another worker holds (not in `state`) gets nothing.
    expect(grant(lanes, new Map(), live, 1_000, 100, o).grants).toEqual([]);
  });

  it('rate-limits by the bucket in the lane row and the time it is handed, and says when a token comes', () => {
    const lanes = [view('a', 'ep:1', { rate_limit_per_s: 2 })];
    const full = grant(lanes, stateOf(lanes), new Map(), 1_000, 100, o);
    expect(full.grants[0]).toMatchObject({ n: 2, tokens: 2 });
    const empty = grant(lanes, stateOf(lanes, { tokens: 0, tokens_at: new Date(1_000) }), new Map(), 1_000, 100, o);
    expect(empty.grants).toEqual([]);
    expect(empty.wakeAt).toBe(1_500);
    const half = grant(lanes, stateOf(lanes, { tokens: 0, tokens_at: new Date(1_000) }), new Map(), 1_500, 100, o);
    expect(half.grants[0]).toMatchObject({ n: 1 });
  });

  it("takes a payment URL's circuit from the lane row read under its lock", () => {
    const lanes = [view('a', 'url:sandbox:https://x.example')];
    const open = grant(lanes, stateOf(lanes, { circuit_state: 'open', circuit_retry_at: new Date(9_000) }), new Map(), 1_000, 10, o);
    expect(open.grants).toEqual([]);
    expect(open.wakeAt).toBe(9_000);
  });
});

describe('lanes', () => {
  it('group payment URLs by environment and origin (scheme, host, port; no credentials, path or query), endpoints by id', async () => {
    const lane = async (endpoint: string | null, env: string, url: string) =>
      (await db().query<{ l: string }>('SELECT cw_lane($1, $2, $3) AS l', [endpoint, env, url])).rows[0]!.l;
    expect(await lane(null, 'sandbox', 'https://A.example/x?y=1')).toBe('url:sandbox:https://a.example');
    expect(await lane(null, 'production', 'https://user:pw@a.example:8443/p#f')).toBe('url:production:https://a.example:8443');
    expect(await lane(null, 'sandbox', 'http://a.example')).toBe('url:sandbox:http://a.example');
    expect(await lane('ep_9', 'sandbox', 'https://a.example/x')).toBe('ep:ep_9');
  });
});
