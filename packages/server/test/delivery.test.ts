import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signHeaders } from '@cashwire/webhooks';
import type { WorkerOptions } from '../src/delivery/worker.js';
import { claim } from '../src/delivery/queue.js';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import pino from 'pino';
import { createWorker } from '../src/delivery/worker.js';
import { DEFAULT_HEALTH_POLICY } from '../src/domain/health.js';

const SECRET = 'whk_test_secret_0123456789abcdefghijklmnopqrstuv';
let s: TestServer;
let api: Api;
let userId: string;
let harness: ReturnType<typeof testWorkers>;
let rx: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  s = await startTestServer();
  api = client(s.url, (await newOperator(s)).sandbox);
  userId = await newUser(api);
  rx = await startReceiver();
  harness = testWorkers(s, { resolver: toLoopback });
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

function worker(o: Partial<WorkerOptions> = {}) {
  return harness.make(o);
}

/** An approved intent whose webhook goes to `path` on the receiver; returns the intent and its event. */
async function approvedTo(path: string, extra: Record<string, unknown> = {}) {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 5000, webhook_url: rx.url + path, webhook_secret: SECRET, tag: 'txn_1', ...extra });
  const ev = await api.get(`/events?intent_id=${intent.id}`);
  return { intent, event: ev.body.data[0] };
}

async function deliveryOf(eventId: string) {
  const r = await api.get(`/events/${eventId}`);
  expect(r.status).toBe(200);
  return r.body.deliveries[0];
}

/** A resolver that answers loopback for every name: production sends must refuse it at connect time. */
const toLoopback: LookupFn = (_host, options, cb) => (options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));

function openssl(args: string[], input: string): string {
  return execFileSync('openssl', ['dgst', '-sha256', ...args], { input }).toString().trim();
}

describe('signatures against independent vectors', () => {
  it('pushcash and sendcash are the hex HMAC-SHA256 of the raw body, as openssl computes it', async () => {
    const body = '{"type":"intent.approved","data":{"amount":5000},"timestamp":"2024-01-14T22:31:02.756096Z"}';
    const expected = openssl(['-hmac', SECRET, '-r'], body).split(' ')[0];
    const push = await signHeaders({ format: 'pushcash', id: 'evt_1', body, secrets: [SECRET], timestamp: new Date() });
    expect(push['x-webhook-signature']).toBe(`sha256=${expected}`);
    expect(push['x-webhook-id']).toBe('evt_1');
    const sendcash = await signHeaders({ format: 'sendcash', id: 'evt_1', body, secrets: [SECRET], timestamp: new Date() });
    expect(sendcash['x-transfers-signature']).toBe(expected);
    const unsigned = await signHeaders({ format: 'pushcash', id: 'evt_1', body, secrets: [], timestamp: new Date() });
    expect(unsigned).toEqual({ 'x-webhook-id': 'evt_1' });
  });

  it('standard signs "{id}.{timestamp}.{body}" with the decoded whsec_ key, one signature per secret', async () => {
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const secret = `whsec_${key.toString('base64')}`;
    const secret2 = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const body = '{"a":1}';
    const at = new Date(1_700_000_000_000);
    const h = await signHeaders({ format: 'standard', id: 'evt_std', body, secrets: [secret, secret2], timestamp: at });
    expect(h['webhook-id']).toBe('evt_std');
    expect(h['webhook-timestamp']).toBe('1700000000');
    const content = `evt_std.1700000000.${body}`;
    const mac = (k: Buffer) => Buffer.from(openssl(['-mac', 'HMAC', '-macopt', `hexkey:${k.toString('hex')}`, '-r'], content).split(' ')[0]!, 'hex').toString('base64');
    expect(h['webhook-signature']).toBe(`v1,${mac(key)} v1,${mac(Buffer.alloc(32, 7))}`);
  });
});

describe('delivering an event', () => {
  it('POSTs the body rendered at the attempt, signed, with the stable event id and a Cashwire User-Agent', async () => {
    const { intent, event } = await approvedTo('/hook');
    rx.setResponder(() => ({ status: 500, body: 'try later' }));
    const w = worker();
    expect(await w.tick()).toBe(1);
    s.clock.advance(60_000);
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    expect(rx.received).toHaveLength(2);
    const [first, second] = rx.received;
    for (const r of [first!, second!]) {
      expect(r.path).toBe('/hook');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toMatch(/^Cashwire/);
      expect(r.headers['x-webhook-id']).toBe(event.id);
      const expected = openssl(['-hmac', SECRET, '-r'], r.body).split(' ')[0];
      expect(r.headers['x-webhook-signature']).toBe(`sha256=${expected}`);
    }
    const b1 = JSON.parse(first!.body);
    const b2 = JSON.parse(second!.body);
    expect(b1).toEqual({ type: 'intent.approved', data: { ...event.data }, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/) });
    expect(b1.data).toMatchObject({ id: intent.id, tag: 'txn_1', amount: 5000, status: 'approved', rail: 'ach', type: 'push' });
    // Each attempt carries its own time.
    expect(new Date(b2.timestamp).getTime() - new Date(b1.timestamp).getTime()).toBe(60_000);
    const d = await deliveryOf(event.id);
    expect(d).toMatchObject({ status: 'succeeded', attempts: 2, format: 'pushcash', url: rx.url + '/hook' });
    expect(d.attempt_log).toEqual([
      expect.objectContaining({ attempt: 1, status_code: 500, outcome: 'retry', response: 'try later', latency_ms: expect.any(Number) }),
      expect.objectContaining({ attempt: 2, status_code: 200, outcome: 'succeeded', response: 'ok' }),
    ]);
  });

  it('renders the older payload version (float dollars, idempotency_key) when the operator chose it', async () => {
    const op = await newOperator(s, 'Legacy Co');
    await s.running.deps.db.query(`UPDATE operators SET settings = settings || '{"payload_version":"2023-01"}' WHERE id = $1`, [op.id]);
    const legacy = client(s.url, op.sandbox);
    const u = await newUser(legacy);
    await payThroughPage(s, legacy, { direction: 'cash_in', user_id: u, amount: 1234, webhook_url: `${rx.url}/legacy`, webhook_secret: SECRET }, 'approve')
      .then(() => undefined);
    await worker().tick();
    const body = JSON.parse(rx.received.find((r) => r.path === '/legacy')!.body);
    expect(body.data).toMatchObject({ amount: 12.34, limits_utilization: { daily_cash_in: '12.34' } });
    expect(body.data).toHaveProperty('idempotency_key');
    expect(body.data).not.toHaveProperty('tag');
  });

  it('sends no signature header without a secret', async () => {
    await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/nosecret` });
    await worker().tick();
    const r = rx.received.find((x) => x.path === '/nosecret')!;
    expect(r.headers['x-webhook-signature']).toBeUndefined();
    expect(r.headers['x-webhook-id']).toMatch(/^evt_/);
  });

  it('sends every state change of a payment to its webhook_url, and only there', async () => {
    const { intent } = await approvedTo('/lifecycle');
    await api.post(`/simulate/intent/${intent.id}/settle`);
    await worker().tick();
    const types = rx.received.filter((r) => r.path === '/lifecycle').map((r) => JSON.parse(r.body).type);
    expect(types.sort()).toEqual(['intent.approved', 'intent.settled']);
    const settled = JSON.parse(rx.received.find((r) => JSON.parse(r.body).type === 'intent.settled')!.body);
    expect(settled.data.transaction).toMatchObject({ amount: 5000, status: 'settled', currency: 'USD' });
  });
});

describe('status codes', () => {
  it('treats 3xx as a failure and never follows it', async () => {
    const { event } = await approvedTo('/redirect');
    rx.setResponder((r) => (r.path === '/redirect' ? { status: 302, headers: { location: `${rx.url}/elsewhere` } } : { status: 200 }));
    await worker().tick();
    expect(rx.received.map((r) => r.path)).toEqual(['/redirect']);
    expect(await deliveryOf(event.id)).toMatchObject({ status: 'pending', attempts: 1, last_status: 302 });
  });

  it('retries a 410 from a payment webhook_url on its schedule, then expires it; a sibling to the same URL is untouched', async () => {
    const a = await approvedTo('/gone');
    const b = await approvedTo('/gone');
    rx.setResponder((r) => (JSON.parse(r.body).data.id === a.intent.id ? { status: 410 } : { status: 200 }));
    const w = worker({ batchSize: 1 }); // one at a time: an answer to the first must not decide the second
    await w.tick();
    expect(await deliveryOf(a.event.id)).toMatchObject({ status: 'pending', attempts: 1, last_status: 410, last_error: null });
    expect(await deliveryOf(b.event.id)).toMatchObject({ status: 'succeeded', attempts: 1, last_status: 200 });
    s.clock.advance(60_000);
    await w.tick();
    expect(await deliveryOf(a.event.id)).toMatchObject({ status: 'pending', attempts: 2, last_status: 410 });
    s.clock.advance(600_000);
    await w.tick();
    expect(await deliveryOf(a.event.id)).toMatchObject({ status: 'expired', attempts: 3, last_status: 410 });
    expect(rx.received.filter((r) => JSON.parse(r.body).data.id === a.intent.id)).toHaveLength(3);
  });

  it('retries 413 like any failure', async () => {
    const { event } = await approvedTo('/too-large');
    rx.setResponder(() => ({ status: 413 }));
    const w = worker();
    await w.tick();
    expect(await deliveryOf(event.id)).toMatchObject({ status: 'pending', attempts: 1, last_status: 413 });
    s.clock.advance(60_000);
    rx.setResponder(() => ({ status: 200 }));
    await w.tick();
    expect(await deliveryOf(event.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('honours Retry-After on 429 and 503, capped at an hour; 429, 502, 503 and 504 without it wait twice the step', async () => {
    const a = await approvedTo('/slow-down');
    rx.setResponder(() => ({ status: 429, headers: { 'retry-after': '600' } }));
    // Seven failures in a row at one origin would open its circuit after five: this test is about the schedule.
    const w = worker({ health: { ...DEFAULT_HEALTH_POLICY, failureThreshold: 100 } });
    const t0 = s.clock.now().getTime();
    await w.tick();
    expect(new Date((await deliveryOf(a.event.id)).next_attempt_at).getTime()).toBe(t0 + 600_000);
    const b = await approvedTo('/unavailable');
    rx.setResponder(() => ({ status: 503, headers: { 'retry-after': '86400' } }));
    await w.tick();
    expect(new Date((await deliveryOf(b.event.id)).next_attempt_at).getTime()).toBe(t0 + 3_600_000);
    // Without Retry-After, an overloaded answer waits twice the schedule's step (sandbox: 1 minute after the first
    // attempt, so 2 minutes); any other failure waits the step.
    for (const status of [429, 502, 503, 504, 500]) {
      const c = await approvedTo(`/plain-${status}`);
      rx.setResponder(() => ({ status }));
      await w.tick();
      expect(new Date((await deliveryOf(c.event.id)).next_attempt_at).getTime() - t0, `status ${status}`).toBe(status === 500 ? 60_000 : 120_000);
    }
  });

  it('retries network errors and timeouts, recording their codes', async () => {
    const hang = await approvedTo('/hang');
    rx.setResponder(() => ({ status: 0, hang: true }));
    const w = worker();
    await w.tick();
    const d = await deliveryOf(hang.event.id);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_error: 'timeout', last_status: null });
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: 'http://127.0.0.1:9/closed' });
    await w.tick();
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
    expect((await deliveryOf(ev.id)).last_error).toBe('connection_refused');
  });
});

describe('retry schedules, by the clock', () => {
  it('sandbox: 3 attempts (now, +1 min, +10 min), then expired', async () => {
    const { event } = await approvedTo('/always-500');
    rx.setResponder(() => ({ status: 500 }));
    const w = worker();
    expect(await w.tick()).toBe(1);
    s.clock.advance(59_999);
    expect(await w.tick()).toBe(0);
    s.clock.advance(1);
    expect(await w.tick()).toBe(1);
    s.clock.advance(599_999);
    expect(await w.tick()).toBe(0);
    s.clock.advance(1);
    expect(await w.tick()).toBe(1);
    s.clock.advance(86_400_000);
    expect(await w.tick()).toBe(0);
    const d = await deliveryOf(event.id);
    expect(d).toMatchObject({ status: 'expired', attempts: 3 });
    expect(d.attempt_log.map((a: { outcome: string }) => a.outcome)).toEqual(['retry', 'retry', 'expired']);
    expect((await api.get('/events?delivery_status=expired')).body.data.map((e: { id: string }) => e.id)).toContain(event.id);
  });

  it('production: 40 attempts over about 3 days, then expired', async () => {
    const op = await newOperator(s, 'Prod Co');
    const prod = client(s.url, op.production);
    const u = await newUser(prod);
    // A public-looking name that resolves to loopback at send time: refused on the address (forbidden_address), retried.
    const { intent } = await payThroughPage(s, prod, { direction: 'cash_in', user_id: u, amount: 100, webhook_url: 'https://hooks.prod.example/500' });
    const ev = (await prod.get(`/events?intent_id=${intent.id}`)).body.data[0];
    const w = worker();
    const start = s.clock.now().getTime();
    const times: number[] = [];
    for (let i = 0; i < 60; i++) {
      const n = await w.tick();
      if (n) times.push(s.clock.now().getTime() - start);
      const d = (await prod.get(`/events/${ev.id}`)).body.deliveries[0];
      if (d.status !== 'pending') break;
      s.clock.set(new Date(d.next_attempt_at));
    }
    const d = (await prod.get(`/events/${ev.id}`)).body.deliveries[0];
    expect(d).toMatchObject({ status: 'expired', attempts: 40, last_error: 'forbidden_address' });
    expect(rx.received.filter((r) => r.path === '/500')).toHaveLength(0);
    expect(times).toHaveLength(40);
    expect(times.slice(0, 5)).toEqual([0, 5_000, 15_000, 35_000, 75_000]);
    const hours = times[39]! / 3_600_000;
    expect(hours).toBeGreaterThan(60);
    expect(hours).toBeLessThanOrEqual(72);
  });
});

describe('the worker', () => {
  it('is woken by NOTIFY with polling switched off', async () => {
    const w = worker({ listen: true, pollMs: 0 });
    await w.start();
    await approvedTo('/notified');
    await expect.poll(() => rx.received.filter((r) => r.path === '/notified').length, { timeout: 10_000, interval: 20 }).toBe(1);
  });

  it('with polling off and no NOTIFY, a retry due later is still picked up: the worker wakes at the next due time', async () => {
    // A real clock for the worker (the wake-up is a real timer), a fast schedule for an operator of its own.
    const op = await newOperator(s, 'Wake-up Co');
    const own = client(s.url, op.sandbox);
    expect((await own.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { firstDelayMs: 300, factor: 1, maxDelayMs: 300 } } })).status).toBe(200);
    const u = await newUser(own);
    rx.setResponder((r) => (r.path === '/wake-later' && rx.received.filter((x) => x.path === '/wake-later').length === 1 ? { status: 500 } : { status: 200 }));
    await payThroughPage(s, own, { direction: 'cash_in', user_id: u, amount: 4200, webhook_url: rx.url + '/wake-later' });
    const d = s.running.deps;
    // Real time, from where the test server's manual clock stands now (the API's clock: not corrected against the
    // database's, as the API's manual clock is not).
    const offset = s.clock.now().getTime() - Date.now();
    const running = { now: () => new Date(Date.now() + offset) };
    const w = createWorker(
      { db: d.db, clock: running, ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: d.secrets },
      { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs: 2_000, pollMs: 0, listen: false, drainMs: 300, clockSync: false },
    );
    await w.start();
    try {
      // The first attempt fails; nothing commits after it, nothing polls: only the wake-up at its retry time is left.
      await expect.poll(() => rx.received.filter((r) => r.path === '/wake-later').length, { timeout: 10_000, interval: 20 }).toBe(2);
    } finally {
      await w.stop();
    }
  });

  it('reclaims a lease left by a dead worker once it runs out', async () => {
    const { event } = await approvedTo('/reclaim');
    // A worker that claims and dies before sending.
    const dead = await claim(s.running.deps.db, 'dead-worker', s.clock.now(), 2_000, 10);
    expect(dead.map((d) => d.event.id)).toContain(event.id);
    const w = worker();
    expect(await w.tick()).toBe(0); // still leased
    s.clock.advance(2_000);
    expect(await w.tick()).toBe(1);
    const { rows } = await s.running.deps.db.query('SELECT reclaims, attempts, status FROM deliveries WHERE event_id = $1', [event.id]);
    expect(rows[0]).toEqual({ reclaims: 1, attempts: 2, status: 'succeeded' });
  });

  it('on stop lets in-flight attempts finish, then aborts and releases the rest', async () => {
    const { event } = await approvedTo('/stuck');
    rx.setResponder(() => ({ status: 0, hang: true }));
    const w = worker({ totalTimeoutMs: 30_000, leaseMs: 60_000, drainMs: 200, listen: true, pollMs: 50 });
    await w.start();
    await expect.poll(() => rx.received.filter((r) => r.path === '/stuck').length, { timeout: 10_000, interval: 20 }).toBe(1);
    await w.stop();
    const { rows } = await s.running.deps.db.query('SELECT attempts, status, leased_by, next_attempt_at FROM deliveries WHERE event_id = $1', [event.id]);
    expect(rows[0]).toMatchObject({ attempts: 0, status: 'pending', leased_by: null });
    expect(rows[0].next_attempt_at.getTime()).toBeLessThanOrEqual(s.clock.now().getTime());
  });

  it('resends an event with the same id on request', async () => {
    const { event } = await approvedTo('/resend');
    const w = worker();
    await w.tick();
    const r = await api.post(`/events/${event.id}/resend`);
    expect(r.status).toBe(200);
    expect(r.body.deliveries).toHaveLength(2);
    await w.tick();
    const got = rx.received.filter((x) => x.path === '/resend');
    expect(got).toHaveLength(2);
    expect(got[1]!.headers['x-webhook-id']).toBe(got[0]!.headers['x-webhook-id']);
    const none = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100 });
    const ev = (await api.get(`/events?intent_id=${none.intent.id}`)).body.data[0];
    expect((await api.post(`/events/${ev.id}/resend`)).status).toBe(409);
    expect((await api.post('/events/evt_nope/resend')).status).toBe(404);
  });
});
