/**
 * A test event (POST /webhook/endpoints/{id}/test) reaches only the endpoint it was sent to: its receiver gets it, but
 * GET /events, GET /events/feed and GET /events/stream (what `cashwire listen` and a pulling integration read) never
 * show it, also when it is the newest event (the stream neither skips the normal event after it nor shows it). The
 * dashboard's events list and GET /events/{id} still show it. Against real PostgreSQL, HTTP and a real receiver.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertTenantEvent } from '../src/store/events.js';
import { dashboardClient } from './dashboard-kit.js';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;
const dash = dashboardClient(() => s.url);

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Test Feed Co');
  api = client(s.url, keys.sandbox);
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterAll(async () => {
  await harness?.reset(rx);
  await rx?.close();
  await s?.stop();
});

/** A normal event, as a state change writes it (fanned out to the subscribed endpoints). */
const normalEvent = () => insertTenantEvent(s.running.deps.db, s.running.deps, { operator_id: keys.id, environment: 'sandbox' }, 'intent.approved', {
  id: `int_${Math.random().toString(36).slice(2)}`, tag: 'real', idempotency_key: null, direction: 'cash_in', amount: 1000, currency: 'USD',
  status: 'approved', rail: 'card', type: 'push', decline_category: null, limits_utilization: null, transaction: null,
});

/** The event id of a received standard webhook (its signed `webhook-id` header). */
const eventIdOf = (r: { headers: Record<string, unknown> }) => String(r.headers['webhook-id']);

async function sendTest(endpointId: string): Promise<string> {
  const r = await api.post(`/webhook/endpoints/${endpointId}/test`, { type: 'intent.approved' });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.event_id as string;
}

/** The event ids of a GET /events/stream, as they arrive, on a connection of its own. */
async function openStream(key: string) {
  const u = new URL(`${s.url}/events/stream`);
  const req = http.request({ host: u.hostname, port: Number(u.port), path: u.pathname, agent: false, headers: { authorization: `Bearer ${key}` } });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
  expect(res.statusCode).toBe(200);
  const ids: string[] = [];
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
    for (const m of text.matchAll(/^id: (.+)$/gm)) if (!ids.includes(m[1]!)) ids.push(m[1]!);
  });
  return { ids, connected: () => text.includes(': connected'), close: () => req.destroy() };
}

describe('test events stay out of the API\'s events, feed and stream', () => {
  it('delivers a test event to its endpoint only, and leaves it out of GET /events, the feed and the stream', async () => {
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/hook`, events: ['intent.approved'], format: 'standard' });
    expect(ep.status).toBe(201);
    const worker = harness.make();

    // The test event alone, the newest (and only) event: delivered, but in no list.
    const first = await sendTest(ep.body.id);
    expect(await worker.tick()).toBe(1);
    expect(rx.received).toHaveLength(1);
    expect(eventIdOf(rx.received[0]!)).toBe(first);
    expect(JSON.parse(rx.received[0]!.body)).toMatchObject({ type: 'intent.approved', data: { id: expect.stringMatching(/^int_test_/) } });
    expect((await api.get('/events')).body).toEqual({ data: [], next_cursor: null });
    expect((await api.get('/events/feed')).body).toEqual({ data: [], next_after: null });

    // A stream opened now: the backlog holds the test event only, so nothing comes; then a normal event, a test event
    // (the newest row again) and another normal one: both normal ones arrive, in order, and no test event.
    const st = await openStream(keys.sandbox);
    try {
      await expect.poll(() => st.connected()).toBe(true);
      const a = await normalEvent();
      const second = await sendTest(ep.body.id);
      await expect.poll(() => st.ids).toEqual([a]);
      const b = await normalEvent();
      await expect.poll(() => st.ids).toEqual([a, b]);
      // Read a moment longer (several polls of the stream): the test events never come.
      const third = await sendTest(ep.body.id);
      const c = await normalEvent();
      await expect.poll(() => st.ids).toEqual([a, b, c]);
      for (const t of [first, second, third]) expect(st.ids).not.toContain(t);

      // The feed, whole and from a cursor: the normal events only.
      const feed = await api.get('/events/feed');
      expect(feed.body.data.map((e: { id: string }) => e.id)).toEqual([a, b, c]);
      expect(feed.body.next_after).toBe(c);
      expect((await api.get(`/events/feed?after=${a}&types=intent.approved`)).body.data.map((e: { id: string }) => e.id)).toEqual([b, c]);
      // After the last normal event only a test event would follow: an empty page, the cursor kept.
      const fourth = await sendTest(ep.body.id);
      expect((await api.get(`/events/feed?after=${c}`)).body).toEqual({ data: [], next_after: c });

      // GET /events: the normal events, newest first, also with a type filter and page by page.
      expect((await api.get('/events')).body.data.map((e: { id: string }) => e.id)).toEqual([c, b, a]);
      expect((await api.get('/events?type=intent.approved')).body.data.map((e: { id: string }) => e.id)).toEqual([c, b, a]);
      const p1 = await api.get('/events?limit=2');
      expect(p1.body.data.map((e: { id: string }) => e.id)).toEqual([c, b]);
      expect((await api.get(`/events?limit=2&cursor=${p1.body.next_cursor}`)).body).toEqual({ data: [expect.objectContaining({ id: a })], next_cursor: null });

      // Each test event was delivered to its endpoint (with the normal ones, which it subscribes to).
      await expect.poll(async () => {
        await worker.tick();
        return rx.received.map(eventIdOf).sort();
      }).toEqual([first, second, third, fourth, a, b, c].sort());

      // By its id, GET /events/{id} still answers a test event (the dashboard's event page links to it).
      const one = await api.get(`/events/${second}`);
      expect(one.status).toBe(200);
      expect(one.body.deliveries.map((d: { endpoint_id: string }) => d.endpoint_id)).toEqual([ep.body.id]);
      expect(st.ids).toEqual([a, b, c]);
    } finally {
      st.close();
    }
  });

  it('shows test events in the dashboard\'s events list', async () => {
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/dash`, events: ['refund.approved'], format: 'standard' });
    const id = await sendTest(ep.body.id);
    const { cookie } = await dash.signIn(keys.sandbox);
    const page = await dash.get('/dashboard/events', cookie);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`data-event-id="${id}"`);
    // Marked as a test, and only it: a normal event's row has no badge.
    const row = (h: string, evId: string) => h.slice(h.indexOf(`data-event-id="${evId}"`), h.indexOf('</tr>', h.indexOf(`data-event-id="${evId}"`)));
    expect(row(html, id)).toContain('data-testid="test-badge"');
    // Every row: a badge exactly when the API's own list (which leaves test events out) does not have it.
    const real = new Set((await api.get('/events?limit=100')).body.data.map((e: { id: string }) => e.id));
    const ids = [...html.matchAll(/data-event-id="([^"]+)"/g)].map((m) => m[1]!);
    expect(ids.some((x) => real.has(x))).toBe(true);
    for (const x of ids) expect(row(html, x).includes('test-badge'), x).toBe(!real.has(x));
    // The fragment the live list refreshes itself with too.
    expect(await (await dash.get('/dashboard/events/rows', cookie)).text()).toContain(`data-event-id="${id}"`);
    expect((await api.get('/events')).body.data.map((e: { id: string }) => e.id)).not.toContain(id);
  });
});
