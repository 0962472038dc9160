/**
 * The engine's side of the event page: a failed attempt's response headers (migration 018), bounded (32 headers,
 * 4 KiB, values truncated, any bytes stored safely), none for a success; GET /events/{id} shows them. And the request
 * as it went out: request-view.ts renders an attempt again, byte for byte what a real receiver got (the worker signs
 * at the attempt's started_at), says so when the secret was rotated since, and never shows a secret.
 */
import net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signingOf, deliveriesOf } from '../src/delivery/queue.js';
import { renderRequest } from '../src/delivery/request-view.js';
import { createWorker } from '../src/delivery/worker.js';
import { boundHeaders, MAX_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADERS } from '../src/delivery/sender.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';

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
  harness = testWorkers(s);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

const bytesOf = (h: Record<string, string>) => Object.entries(h).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

/** A raw HTTP server: answers every request with exactly `head` (status line and headers, as bytes) and an empty body. */
async function rawServer(head: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const server = net.createServer((sock) => {
    sock.once('data', () => sock.end(Buffer.concat([head, Buffer.from('content-length: 4\r\n\r\nnope')])));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

async function eventOf(intentId: string) {
  return (await api.get(`/events?intent_id=${intentId}`)).body.data[0] as { id: string };
}

describe('boundHeaders', () => {
  it('keeps at most 32 of 100 headers', () => {
    const h = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h-${i}`, `v${i}`]));
    const out = boundHeaders(h);
    expect(Object.keys(out)).toHaveLength(MAX_RESPONSE_HEADERS);
    expect(out['x-h-0']).toBe('v0');
    expect(out['x-h-31']).toBe('v31');
    expect(out['x-h-32']).toBeUndefined();
  });

  it('truncates a 10 KB value so that everything fits in 4 KiB, and drops what comes after', () => {
    const out = boundHeaders({ 'x-first': 'a', 'x-big': 'é'.repeat(10_000), 'x-after': 'b' });
    expect(out['x-first']).toBe('a');
    expect(out['x-big']!.endsWith('…')).toBe(true);
    expect(out['x-big']!.length).toBeGreaterThan(1000);
    expect(out['x-after']).toBeUndefined();
    expect(bytesOf(out)).toBeLessThanOrEqual(MAX_RESPONSE_HEADER_BYTES);
  });

  it('joins repeated headers, lower-cases names, and writes control bytes (NUL included) as \\xNN', () => {
    const out = boundHeaders({ 'Set-Cookie': ['a=1', 'b=2'], 'x-odd': 'a\u0000b\u0001c\td\u00ff', 'x-none': undefined });
    expect(out).toEqual({ 'set-cookie': 'a=1, b=2', 'x-odd': 'a\\x00b\\x01c\td\u00ff' });
  });
});

describe('response headers of attempts', () => {
  it('a non-2xx answer with 100 headers and a 10 KB header value stores 32 headers in 4 KiB; a later 200 stores none', async () => {
    const lines = [`HTTP/1.1 503 Service Unavailable\r\n`, `x-big: ${'z'.repeat(10_000)}\r\n`];
    for (let i = 0; i < 100; i++) lines.push(`x-h-${i}: value ${i}\r\n`);
    // Bytes that are not UTF-8 (latin1 é and ÿ): undici decodes them one character per byte.
    const head = Buffer.concat([Buffer.from(lines.join('')), Buffer.from('x-latin: caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\r\n')]);
    const raw = await rawServer(head);
    try {
      const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${raw.url}/odd` });
      const w = harness.make();
      expect(await w.tick()).toBe(1);
      const ev = await eventOf(intent.id);
      const got = (await api.get(`/events/${ev.id}`)).body;
      const a = got.deliveries[0].attempt_log[0];
      expect(a.status_code).toBe(503);
      const h = a.response_headers as Record<string, string>;
      expect(Object.keys(h).length).toBeLessThanOrEqual(MAX_RESPONSE_HEADERS);
      expect(bytesOf(h)).toBeLessThanOrEqual(MAX_RESPONSE_HEADER_BYTES);
      expect(h['x-big']!.endsWith('…')).toBe(true);
      expect(h['x-big']!.startsWith('zzzz')).toBe(true);
      const { rows } = await s.running.deps.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM delivery_attempts a, jsonb_object_keys(a.response_headers) WHERE a.delivery_id = $1`, [got.deliveries[0].id]);
      expect(rows[0]!.n).toBe(Object.keys(h).length);
    } finally {
      await raw.close();
    }

    // The latin1 bytes survive when they fit: a small answer.
    const raw2 = await rawServer(Buffer.concat([Buffer.from('HTTP/1.1 500 Oops\r\nx-latin: caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\r\nretry-after: 1\r\n')]));
    try {
      const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${raw2.url}/latin` });
      expect(await harness.make().tick()).toBe(1);
      const got = (await api.get(`/events/${(await eventOf(intent.id)).id}`)).body;
      const h = got.deliveries[0].attempt_log[0].response_headers;
      expect(h['x-latin']).toBe('caf\u00e9\u00ff');
      expect(h['retry-after']).toBe('1');
    } finally {
      await raw2.close();
    }

    // A success stores no headers, even with headers answered.
    rx.setResponder(() => ({ status: 200, headers: { 'x-request-id': 'r-1' }, body: 'ok' }));
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/ok` });
    expect(await harness.make().tick()).toBe(1);
    const got = (await api.get(`/events/${(await eventOf(intent.id)).id}`)).body;
    expect(got.deliveries[0].attempt_log[0]).toMatchObject({ status_code: 200, response_headers: null });
    // A network error (no answer) has none either.
  });

  it('in one tick, a failure keeps its headers and a success beside it none', async () => {
    rx.setResponder((r) => (r.path === '/mix-fail' ? { status: 429, headers: { 'retry-after': '30', 'x-why': 'slow down' } } : { status: 200, headers: { 'x-why': 'fine' } }));
    const a = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/mix-fail` });
    const b = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: `${rx.url}/mix-ok` });
    expect(await harness.make().tick()).toBe(2);
    const fail = (await api.get(`/events/${(await eventOf(a.intent.id)).id}`)).body.deliveries[0].attempt_log[0];
    const ok = (await api.get(`/events/${(await eventOf(b.intent.id)).id}`)).body.deliveries[0].attempt_log[0];
    expect(fail).toMatchObject({ status_code: 429, response_headers: expect.objectContaining({ 'retry-after': '30', 'x-why': 'slow down' }) });
    expect(ok).toMatchObject({ status_code: 200, response_headers: null });
  });

  it('no answer at all stores no headers', async () => {
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100, webhook_url: 'http://127.0.0.1:1/refused' });
    expect(await harness.make().tick()).toBe(1);
    const a = (await api.get(`/events/${(await eventOf(intent.id)).id}`)).body.deliveries[0].attempt_log[0];
    expect(a).toMatchObject({ status_code: null, error_code: 'connection_refused', response_headers: null });
  });
});

describe('the request as sent', () => {
  /** Renders every attempt of the event's first delivery again. */
  async function rendered(eventId: string) {
    const { rows: [ev] } = await s.running.deps.db.query<{ id: string; type: string; data: unknown; operator_id: string }>('SELECT id, type, data, operator_id FROM events WHERE id = $1', [eventId]);
    const { attempts } = await deliveriesOf(s.running.deps.db, ev!.operator_id, eventId);
    const signing = await signingOf(s.running.deps.db, ev!.operator_id, eventId);
    return attempts.map((a) => renderRequest(signing.find((x) => x.id === a.delivery_id)!, { id: ev!.id, type: ev!.type, data: ev!.data } as never, a.started_at, s.running.deps.secrets));
  }

  function expectSame(view: ReturnType<typeof renderRequest>, got: Received) {
    expect(view.exact).toBe(true);
    expect(view.body).toBe(got.body);
    for (const [k, v] of view.headers) expect([k, got.headers[k]]).toEqual([k, v]);
    // Every header the worker set is shown (the receiver's extras are Node's: connection).
    const shown = new Set(view.headers.map(([k]) => k));
    expect(Object.keys(got.headers).filter((k) => !shown.has(k))).toEqual(['connection']);
  }

  it('pushcash to a payment URL: body and headers byte for byte, across a retry at a later time', async () => {
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4200, webhook_url: `${rx.url}/p` });
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    s.clock.advance(10 * 60_000);
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    expect(rx.received).toHaveLength(2);
    const ev = await eventOf(intent.id);
    const views = await rendered(ev.id);
    expect(views).toHaveLength(2);
    expectSame(views[0]!, rx.received[0]!);
    expectSame(views[1]!, rx.received[1]!);
    // The two bodies differ by their timestamp: each is its own attempt's.
    expect(rx.received[0]!.body).not.toBe(rx.received[1]!.body);
  });

  it('with a clock that moves between readings, started_at is still the instant the request was signed with', async () => {
    // Not a ManualClock (so it is a clock the worker could correct) that moves 1 ms at every reading: had the worker
    // read it once for started_at and again for the signature, the body's timestamp would not be started_at's.
    let t = s.clock.now().getTime() + 60_000;
    const ticking = { now: () => new Date(t++) };
    const d = s.running.deps;
    const w = createWorker({ db: d.db, clock: ticking, ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: d.secrets },
      { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs: 2_000, pollMs: 0, listen: false, drainMs: 300, clockSync: false, connectionString: s.running.database.url });
    try {
      const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 777, webhook_url: `${rx.url}/tick` });
      expect(await w.tick()).toBe(1);
      const got = rx.received.find((r) => r.path === '/tick')!;
      const [view] = await rendered((await eventOf(intent.id)).id);
      expectSame(view!, got);
    } finally {
      await w.stop();
    }
  });

  it('standard to an endpoint: the signing timestamp too; after a rotation the signature is not shown and the page is told why', async () => {
    const ep = (await api.post('/webhook/endpoints', { url: `${rx.url}/std`, events: ['*'], format: 'standard' })).body as { id: string; secret: string };
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100 });
    expect(await harness.make().tick()).toBe(1);
    const got = rx.received.find((r) => r.path === '/std')!;
    const ev = await eventOf(intent.id);
    const [view] = await rendered(ev.id);
    expectSame(view!, got);
    expect(view!.headers.find(([k]) => k === 'webhook-timestamp')![1]).toBe(got.headers['webhook-timestamp']);
    // No secret anywhere in what is shown.
    expect(JSON.stringify(view)).not.toContain(ep.secret);
    expect(JSON.stringify(view)).not.toContain(ep.secret.slice('whsec_'.length));

    s.clock.advance(1_000);
    expect((await api.post(`/webhook/endpoints/${ep.id}/rotate`, { grace_period_s: 0 })).status).toBe(200);
    const [after] = await rendered(ev.id);
    expect(after!.exact).toBe(false);
    expect(after!.note).toMatch(/rotated after this attempt/);
    expect(after!.headers.find(([k]) => k === 'webhook-signature')).toBeUndefined();
    expect(after!.body).toBe(got.body);
    await api.call('DELETE', `/webhook/endpoints/${ep.id}`);
  });
});
