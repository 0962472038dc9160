import { createHmac } from 'node:crypto';
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerOptions } from '../src/delivery/worker.js';
import { pruneOnce } from '../src/jobs/retention.js';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { inFlightPeak, startReceiver, type Received } from './receiver.js';

const DAY = 86_400_000;
let s: TestServer;
let api: Api;
let userId: string;
let harness: ReturnType<typeof testWorkers>;
let rx: Awaited<ReturnType<typeof startReceiver>>;

/** Answers a public address the first time a name is asked, loopback after: DNS rebinding. */
let lookups = 0;
const rebinding: LookupFn = (_host, options, cb) => {
  const address = lookups++ === 0 ? '93.184.216.34' : '127.0.0.1';
  return options.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4);
};

beforeAll(async () => {
  s = await startTestServer({}, undefined, { resolver: rebinding });
  rx = await startReceiver();
  harness = testWorkers(s, { resolver: rebinding, totalTimeoutMs: 500 });
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

async function freshOperator() {
  api = client(s.url, (await newOperator(s)).sandbox);
  userId = await newUser(api);
}

function worker(o: Partial<WorkerOptions> = {}) {
  return harness.make(o);
}

async function endpoint(path: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/webhook/endpoints', { url: rx.url + path, events: ['*'], ...body });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string };
}

/** An approved payment with no webhook_url: its event fans out to the registered endpoints. */
async function payment(amount = 100) {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount });
  return intent.id as string;
}

const at = (path: string) => rx.received.filter((r) => r.path === path);
const hmacHex = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');
const standardSigs = (secret: string, r: Received) => {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return createHmac('sha256', key).update(`${r.headers['webhook-id']}.${r.headers['webhook-timestamp']}.${r.body}`).digest('base64');
};

describe('fan-out to registered endpoints', () => {
  beforeAll(freshOperator);

  it('sends each event to every enabled endpoint subscribed to its type, one delivery each, in its own format', async () => {
    const all = await endpoint('/all', { format: 'standard' });
    const approvedOnly = await endpoint('/approved-only', { events: ['intent.approved'] });
    await endpoint('/declined-only', { events: ['intent.declined'] });
    const legacy = await endpoint('/legacy', { events: ['intent.approved'], format: 'sendcash', payload_version: '2023-01' });
    const intentId = await payment(2500);
    await worker().tick();
    expect(at('/all')).toHaveLength(1);
    expect(at('/approved-only')).toHaveLength(1);
    expect(at('/declined-only')).toHaveLength(0);
    const std = at('/all')[0]!;
    expect(std.headers['webhook-signature']).toBe(`v1,${standardSigs(all.secret, std)}`);
    const push = at('/approved-only')[0]!;
    expect(push.headers['x-webhook-signature']).toBe(`sha256=${hmacHex(approvedOnly.secret, push.body)}`);
    const sc = at('/legacy')[0]!;
    expect(sc.headers['x-transfers-signature']).toBe(hmacHex(legacy.secret, sc.body));
    expect(JSON.parse(sc.body).data).toMatchObject({ id: intentId, amount: 25 });
    // One event id everywhere.
    expect(new Set([std.headers['webhook-id'], push.headers['x-webhook-id'], sc.headers['x-webhook-id']]).size).toBe(1);
    // A payment that names a webhook_url goes there only.
    await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/own` });
    rx.received.length = 0;
    await worker().tick();
    expect(rx.received.map((r) => r.path)).toEqual(['/own']);
  });
});

describe('secret rotation, by the clock', () => {
  beforeAll(freshOperator);

  it('standard: old and new secrets both sign during the grace period; after it only the new one', async () => {
    const ep = await endpoint('/rot-std', { format: 'standard' });
    const rotated = await api.post(`/webhook/endpoints/${ep.id}/rotate`, { grace_period_s: 3600 });
    await payment();
    await worker().tick();
    const during = at('/rot-std')[0]!;
    expect(during.headers['webhook-signature']).toBe(`v1,${standardSigs(rotated.body.secret, during)} v1,${standardSigs(ep.secret, during)}`);
    s.clock.advance(3_600_000);
    await payment();
    await worker().tick();
    const after = at('/rot-std')[1]!;
    expect(after.headers['webhook-signature']).toBe(`v1,${standardSigs(rotated.body.secret, after)}`);
    // The receiver SDK agrees: during the grace period either secret verifies; after it, only the new one.
    const check = (r: Received, secret: string) => verify('standard', { body: r.body, headers: r.headers, secrets: [secret], now: new Date(Number(r.headers['webhook-timestamp']) * 1000) });
    await expect(check(during, ep.secret)).resolves.toMatchObject({ type: 'intent.approved' });
    await expect(check(during, rotated.body.secret)).resolves.toMatchObject({ type: 'intent.approved' });
    await expect(check(after, rotated.body.secret)).resolves.toMatchObject({ type: 'intent.approved' });
    await expect(check(after, ep.secret)).rejects.toMatchObject({ code: 'bad_signature' });
  });

  it('pushcash: the new secret signs at once; the old one never signs again', async () => {
    const ep = await endpoint('/rot-push');
    const rotated = await api.post(`/webhook/endpoints/${ep.id}/rotate`, {});
    await payment();
    await worker().tick();
    const r = at('/rot-push')[0]!;
    expect(r.headers['x-webhook-signature']).toBe(`sha256=${hmacHex(rotated.body.secret, r.body)}`);
    expect(r.headers['x-webhook-signature']).not.toBe(`sha256=${hmacHex(ep.secret, r.body)}`);
    // A receiver holding both secrets during the grace period accepts it (SDK); one holding only the old does not.
    const now = new Date(JSON.parse(r.body).timestamp);
    await expect(verify('pushcash', { body: r.body, headers: r.headers, secrets: [ep.secret, rotated.body.secret], now })).resolves.toMatchObject({ type: 'intent.approved' });
    await expect(verify('pushcash', { body: r.body, headers: r.headers, secrets: [ep.secret], now })).rejects.toMatchObject({ code: 'bad_signature' });
    expect((await api.get(`/webhook/endpoints/${ep.id}/secret`)).body.previous_secret).toBe(ep.secret);
    s.clock.advance(DAY);
    expect((await api.get(`/webhook/endpoints/${ep.id}/secret`)).body.previous_secret).toBeNull();
  });
});

describe('endpoint health', () => {
  beforeAll(freshOperator);

  it('opens the circuit after 5 consecutive failures, holds its deliveries, probes after the cooldown, and recovers', async () => {
    // Retries every second for this operator, so nothing expires while the circuit decides.
    await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 100, firstDelayMs: 1_000, factor: 1, maxDelayMs: 1_000 } } });
    const ep = await endpoint('/flaky', { events: ['intent.approved'] });
    await endpoint('/ops', { events: ['endpoint.recovered', 'endpoint.disabled', 'delivery.exhausted'] });
    rx.setResponder((r) => (r.path === '/flaky' ? { status: 500 } : { status: 200 }));
    for (let i = 0; i < 8; i++) await payment(100 + i);
    // One attempt in flight per destination, so each outcome is known before the next attempt starts.
    const w = worker({ destinationConcurrency: 1 });
    const health = async () => (await api.get(`/webhook/endpoints/${ep.id}`)).body.health;
    for (let i = 0; i < 20 && (await health()).circuit === 'closed'; i++) {
      await w.tick();
      s.clock.advance(250);
    }
    // Five consecutive failures opened the circuit; nothing more was sent to it.
    expect(at('/flaky')).toHaveLength(5);
    const opened = await health();
    expect(opened).toMatchObject({ circuit: 'open', consecutive_failures: 5 });
    const retryAt = new Date(opened.circuit_retry_at).getTime();
    s.clock.set(retryAt - 1);
    await w.tick();
    expect(at('/flaky')).toHaveLength(5);
    // At the retry time a single probe goes out; it fails, so the circuit opens again.
    s.clock.set(retryAt);
    await w.tick();
    expect(at('/flaky')).toHaveLength(6);
    expect((await health()).circuit).toBe('open');
    // The receiver is back: the next probe succeeds, the circuit closes, and everything held goes out.
    rx.setResponder(() => ({ status: 200 }));
    s.clock.set(new Date((await health()).circuit_retry_at).getTime());
    const okIds = new Set<string>();
    for (let i = 0; i < 60 && okIds.size < 8; i++) {
      const before = rx.received.length;
      await w.tick();
      for (const r of rx.received.slice(before)) if (r.path === '/flaky') okIds.add(r.headers['x-webhook-id'] as string);
      s.clock.advance(300);
    }
    expect(okIds.size).toBe(8);
    expect(await health()).toMatchObject({ circuit: 'closed', consecutive_failures: 0 });
    await w.tick();
    // The operator heard about it, on an endpoint subscribed to operational events.
    const ops = at('/ops').map((r) => JSON.parse(r.body));
    expect(ops.find((b) => b.type === 'endpoint.recovered')?.data).toMatchObject({ endpoint_id: ep.id, url: `${rx.url}/flaky` });
    await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 3, firstDelayMs: 60_000, factor: 10, maxDelayMs: 600_000 } } });
  });

  it('a hanging endpoint does not take the capacity of a healthy one', async () => {
    await endpoint('/healthy', { events: ['intent.approved'] });
    const hanging = await endpoint('/hangs', { events: ['intent.approved'] });
    rx.setResponder((r) => (r.path === '/hangs' ? { status: 0, hang: true } : { status: 200 }));
    const N = 60;
    for (let i = 0; i < N; i++) await payment(200 + i);
    // 8 attempts in flight in all, at most 3 per destination. The loop runs on its own; the clock moves with it.
    const w = worker({ concurrency: 8, destinationConcurrency: 3, totalTimeoutMs: 400, leaseMs: 2_000, pollMs: 20 });
    const ticker = setInterval(() => s.clock.advance(50), 50);
    await w.start();
    try {
      await expect.poll(() => at('/healthy').length, { timeout: 20_000, interval: 20 }).toBe(N);
      // Its attempts time out; 5 failures open its circuit, after a few rounds of at most 3, far from its 60 events.
      await expect.poll(async () => (await api.get(`/webhook/endpoints/${hanging.id}`)).body.health.circuit, { timeout: 15_000, interval: 50 }).toBe('open');
    } finally {
      clearInterval(ticker);
    }
    expect(at('/hangs').length).toBeGreaterThanOrEqual(5);
    expect(at('/hangs').length).toBeLessThanOrEqual(12);
    // The hanging endpoint's backlog was never claimed while it was at its cap or behind its open circuit: nothing was
    // claimed only to be given back.
    expect(w.stats.deferred).toBe(0);
  });

  it('caps attempts in flight per endpoint at its max_concurrency', async () => {
    await endpoint('/capped', { events: ['intent.approved'], max_concurrency: 2 });
    const flight = inFlightPeak('/capped', 40);
    rx.setResponder(flight.responder);
    for (let i = 0; i < 10; i++) await payment(300 + i);
    const w = worker({ concurrency: 50, pollMs: 20 });
    const ticker = setInterval(() => s.clock.advance(50), 50);
    await w.start();
    try {
      await expect.poll(() => at('/capped').length, { timeout: 20_000, interval: 20 }).toBe(10);
    } finally {
      clearInterval(ticker);
    }
    expect(flight.peak).toBe(2);
  });

  it('starts at most rate_limit_per_s attempts per second to an endpoint, by the clock', async () => {
    await endpoint('/rated', { events: ['intent.approved'], rate_limit_per_s: 2 });
    for (let i = 0; i < 6; i++) await payment(350 + i);
    const w = worker();
    await w.tick();
    expect(at('/rated')).toHaveLength(2); // a full bucket of 2, the rest put back
    s.clock.advance(499);
    await w.tick();
    expect(at('/rated')).toHaveLength(2); // nothing due yet: the next token comes after 500 ms
    s.clock.advance(1);
    await w.tick();
    expect(at('/rated')).toHaveLength(3);
    for (let i = 0; i < 6 && at('/rated').length < 6; i++) {
      s.clock.advance(500);
      await w.tick();
    }
    expect(at('/rated')).toHaveLength(6);
    expect(new Set(at('/rated').map((r) => r.headers['x-webhook-id'])).size).toBe(6);
  });

  it('disables at once on 410, holds that delivery and what comes next, and loses nothing when enabled again', async () => {
    const ep = await endpoint('/gone-then-back', { events: ['intent.approved'] });
    const ops = await endpoint('/ops410', { events: ['endpoint.disabled'] });
    rx.setResponder((r) => (r.path === '/gone-then-back' ? { status: 410 } : { status: 200 }));
    const first = await payment(401);
    const w = worker();
    await w.tick();
    const got = (await api.get(`/webhook/endpoints/${ep.id}`)).body;
    expect(got).toMatchObject({ status: 'disabled', disabled_reason: 'gone' });
    await w.tick(); // the endpoint.disabled event, made by the first pass
    expect(at('/ops410').map((r) => JSON.parse(r.body))).toEqual([expect.objectContaining({ type: 'endpoint.disabled', data: expect.objectContaining({ endpoint_id: ep.id, reason: 'gone' }) })]);
    // Events keep coming while it is disabled: stored, not sent.
    for (let i = 0; i < 3; i++) await payment(402 + i);
    s.clock.advance(DAY);
    await w.tick();
    expect(at('/gone-then-back')).toHaveLength(1);
    // The one that got 410 is held too (pending, not failed), with its attempt logged as `held`.
    const held = await s.running.deps.db.query("SELECT count(*)::int AS n FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'", [ep.id]);
    expect(held.rows[0].n).toBe(4);
    const firstEvent = (await api.get(`/events?intent_id=${first}`)).body.data[0];
    const d = (await api.get(`/events/${firstEvent.id}`)).body.deliveries.find((x: { endpoint_id: string }) => x.endpoint_id === ep.id);
    expect(d).toMatchObject({ status: 'pending', held: true, last_status: 410, attempt_log: [expect.objectContaining({ status_code: 410, outcome: 'held' })] });
    // Enabled: everything held goes out, the first one included.
    rx.setResponder(() => ({ status: 200 }));
    await api.post(`/webhook/endpoints/${ep.id}/enable`);
    await w.tick();
    expect(at('/gone-then-back')).toHaveLength(5);
    const ids = at('/gone-then-back').map((r) => JSON.parse(r.body).data.id);
    expect(ids.filter((x) => x === first)).toHaveLength(2);
    expect(new Set(ids).size).toBe(4);
    const rec = await api.post(`/webhook/endpoints/${ep.id}/recover`, { since: new Date(s.clock.now().getTime() - 2 * DAY).toISOString() });
    expect(rec.body).toEqual({ recovered: 0 }); // nothing was lost
    expect(ops.id).toMatch(/^ep_/);
  });

  it('holds a delivery that failed while its endpoint was being disabled', async () => {
    const ep = await endpoint('/disabled-mid-flight', { events: ['intent.approved'] });
    // The receiver disables its own endpoint while the attempt is in flight, then fails it: the failure sets a retry
    // time after the endpoint's queued deliveries were held.
    rx.setResponder(async (r) => {
      if (r.path === '/disabled-mid-flight') await api.post(`/webhook/endpoints/${ep.id}/disable`);
      return { status: 500 };
    });
    await payment(450);
    const w = worker();
    await w.tick();
    expect(at('/disabled-mid-flight')).toHaveLength(1);
    s.clock.advance(3_600_000);
    await w.tick();
    expect(at('/disabled-mid-flight')).toHaveLength(1); // not sent to a disabled endpoint
    rx.setResponder(() => ({ status: 200 }));
    await api.post(`/webhook/endpoints/${ep.id}/enable`);
    await w.tick();
    expect(at('/disabled-mid-flight')).toHaveLength(2);
  });

  it('disables an endpoint that failed continuously for 5 days', async () => {
    const ep = await endpoint('/dead', { events: ['intent.approved'] });
    rx.setResponder((r) => (r.path === '/dead' ? { status: 503 } : { status: 200 }));
    await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 1000, maxAgeMs: 10 * DAY, firstDelayMs: 3_600_000, factor: 1, maxDelayMs: 3_600_000 } } });
    await payment(500);
    const w = worker();
    for (let i = 0; i < 200; i++) {
      await w.tick();
      const e = (await api.get(`/webhook/endpoints/${ep.id}`)).body;
      if (e.status === 'disabled') break;
      s.clock.advance(3_600_000);
    }
    const e = (await api.get(`/webhook/endpoints/${ep.id}`)).body;
    expect(e).toMatchObject({ status: 'disabled', disabled_reason: 'failing' });
    const failingFor = new Date(e.disabled_at).getTime() - new Date(e.health.failing_since).getTime();
    expect(failingFor).toBeGreaterThanOrEqual(5 * DAY);
    expect(failingFor).toBeLessThan(5 * DAY + 2 * 3_600_000);
    await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 3, maxAgeMs: DAY, firstDelayMs: 60_000, factor: 10, maxDelayMs: 600_000 } } });
  });

  it('tells subscribers when a payment event could not be delivered', async () => {
    await endpoint('/exhausted-target', { events: ['intent.approved'] });
    await endpoint('/ops-exhausted', { events: ['delivery.exhausted'] });
    rx.setResponder((r) => (r.path === '/exhausted-target' ? { status: 500 } : { status: 200 }));
    const intentId = await payment(600);
    const w = worker();
    await w.tick();
    s.clock.advance(60_000);
    await w.tick();
    s.clock.advance(600_000);
    await w.tick(); // the third and last sandbox attempt: expired, and delivery.exhausted written with it
    await w.tick();
    const msgs = at('/ops-exhausted').map((r) => JSON.parse(r.body)).filter((b) => b.type === 'delivery.exhausted');
    expect(msgs).toHaveLength(1);
    const msg = msgs[0];
    expect(msg.data).toMatchObject({ status: 'expired', attempts: 3, last_status: 500, event_type: 'intent.approved' });
    const ev = (await api.get(`/events?intent_id=${intentId}`)).body.data[0];
    expect(msg.data.event_id).toBe(ev.id);
    // Its id is derived from the delivery: written once, however often the write is tried.
    expect(msg.data.delivery_id).toMatch(/^dlv_/);
    expect((await api.get(`/events/evt_exh_${msg.data.delivery_id.slice(4)}`)).status).toBe(200);
  });
});

describe('production addresses, checked where the connection is made', () => {
  it('accepts a name that resolves to a public address, then refuses to send when it resolves to loopback', async () => {
    const op = await newOperator(s, 'Prod');
    const prod = client(s.url, op.production);
    lookups = 0;
    const ep = await prod.post('/webhook/endpoints', { url: `https://rebind.example:${new URL(rx.url).port}/steal`, events: ['*'] });
    expect(ep.status).toBe(201); // the first answer was public
    const u = await newUser(prod);
    await payThroughPage(s, prod, { direction: 'cash_in', user_id: u, amount: 100 });
    await worker().tick();
    expect(at('/steal')).toHaveLength(0);
    const ev = (await prod.get('/events?type=intent.approved')).body.data[0];
    const d = (await prod.get(`/events/${ev.id}`)).body.deliveries[0];
    expect(d).toMatchObject({ status: 'pending', last_error: 'forbidden_address' });
    // And a name that resolves to a private address when registered is refused at once.
    const direct = await prod.post('/webhook/endpoints', { url: 'https://internal.example/h', events: ['*'] });
    expect(direct.body.error.code).toBe('forbidden_address');
  });
});

describe('metrics and retention', () => {
  beforeAll(freshOperator);

  it('exposes Prometheus metrics that parse', async () => {
    await endpoint('/metered', { events: ['intent.approved'] });
    await payment(700);
    await worker().tick();
    const r = await fetch(`${s.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+]+|NaN|[+-]Inf)$/.exec(line);
      expect(m, line).not.toBeNull();
      samples.set(m![1]!, Number(m![2]));
    }
    expect(samples.get('cashwire_delivery_attempts_total{outcome="succeeded"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('cashwire_delivery_attempt_duration_seconds_count{result="2xx"}')).toBeGreaterThanOrEqual(1);
    expect(samples.has('cashwire_queue_depth')).toBe(true);
    expect(samples.has('cashwire_oldest_pending_age_seconds')).toBe(true);
    expect(samples.get('cashwire_endpoints{state="closed"}')).toBeGreaterThanOrEqual(1);
  });

  it('prunes events and attempts past the retention age, in batches, keeping pending deliveries', async () => {
    await endpoint('/old', { events: ['intent.approved'] });
    const oldIntent = await payment(800);
    await worker().tick();
    s.clock.advance(31 * DAY);
    const fresh = await payment(801);
    const idleLanes = async () => (await s.running.deps.db.query(
      `SELECT count(*)::int AS n FROM delivery_lanes l WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = l.operator_id AND d.lane = l.lane AND d.status = 'pending')
          AND l.circuit_state = 'closed' AND l.consecutive_failures = 0`,
    )).rows[0].n as number;
    expect(await idleLanes()).toBeGreaterThanOrEqual(1); // /old's lane, served once, nothing pending now
    const pruned = await pruneOnce(s.running.deps, 30 * DAY, 2);
    expect(pruned.attempts).toBeGreaterThanOrEqual(1);
    expect(pruned.events).toBeGreaterThanOrEqual(1);
    expect((await api.get(`/events?intent_id=${oldIntent}`)).body.data).toEqual([]);
    expect((await api.get(`/events?intent_id=${fresh}`)).body.data).toHaveLength(1);
    // Lanes with nothing pending and a healthy circuit are forgotten (in batches of 2 here).
    expect(pruned.lanes).toBeGreaterThanOrEqual(1);
    expect(await idleLanes()).toBe(0);
  });
});
