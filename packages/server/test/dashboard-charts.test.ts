/**
 * The charts over HTTP (api/routes/dashboard/charts.ts, api/routes/stats.ts): real deliveries through a worker to a
 * real receiver (one failing, then succeeding), the series answered as JSON to a dashboard session and to a key; a
 * production session never sees sandbox numbers; the empty window says so; bad windows and foreign endpoints are
 * 4xx HTML pages; without a session, a redirect to the sign-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createQueueSampler } from '../src/jobs/queue-sampler.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import { dashboardClient, type Receiver } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let other: Keys;
let api: Api;
let rx: Receiver;
let harness: ReturnType<typeof testWorkers>;
let endpointId: string;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s);
  other = await newOperator(s, 'Other');
  api = client(s.url, keys.sandbox);
  rx = await startReceiver();
  harness = testWorkers(s);
  const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/ep`, events: ['*'] });
  expect(ep.status).toBe(201);
  endpointId = ep.body.id;
  // Two payments with their own webhook_url and two without (delivered to the endpoint): the first round of ticks
  // fails every delivery (500), the second (after the retry's delay) succeeds.
  const userId = await newUser(api);
  rx.setResponder(() => ({ status: 500, body: 'down' }));
  for (const amount of [100, 200]) await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount, webhook_url: `${rx.url}/own` });
  for (const amount of [300, 400]) await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount });
  const w = harness.make();
  const drain = async () => {
    let n = 0;
    for (let k; (k = await w.tick()) > 0;) n += k;
    return n;
  };
  expect(await drain()).toBe(4);
  rx.setResponder(() => ({ status: 200, body: 'ok' }));
  s.clock.advance(3 * 60_000);
  expect(await drain()).toBe(4);
  // A queue sample of this minute (nothing pending now: zeros).
  await createQueueSampler({ ...s.running.deps, log: pino({ level: 'silent' }) }).runOnce();
});
afterAll(async () => {
  await harness?.reset(rx);
  await rx?.close();
  await s?.stop();
});

const { get, signIn } = dashboardClient(() => s.url);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('dashboard charts', () => {
  it('answers the series as JSON to a session: attempts by outcome, latency, queue samples', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const r = await get('/dashboard/charts/data', cookie);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const d = await r.json();
    expect(d.window).toBe('1h');
    expect(d.buckets).toHaveLength(60);
    expect(sum(d.attempts.retry)).toBe(4);
    expect(sum(d.attempts.succeeded)).toBe(4);
    expect(d.totals.attempts).toBe(8);
    // The two ticks were three minutes apart (the ManualClock): the retries and the successes are in different buckets.
    const retryAt = d.attempts.retry.findIndex((n: number) => n > 0);
    const okAt = d.attempts.succeeded.findIndex((n: number) => n > 0);
    expect(okAt - retryAt).toBe(3);
    expect(typeof d.latency.p50[okAt]).toBe('number');
    expect(d.latency.p99[okAt]).toBeGreaterThanOrEqual(d.latency.p50[okAt]);
    expect(d.latency.p50[okAt - 1]).toBeNull();
    expect(d.queue.pending[59]).toBe(0);
    expect(d.totals.samples).toBe(1);

    const one = await (await get(`/dashboard/charts/data?window=6h&endpoint=${endpointId}`, cookie)).json();
    expect([one.endpoint, one.buckets.length, sum(one.attempts.retry), sum(one.attempts.succeeded)]).toEqual([endpointId, 72, 2, 2]);
  });

  it('shows the page with its canvases, the script and the data URL, and the same numbers as text', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const r = await get(`/dashboard/charts?window=1h&endpoint=${endpointId}`, cookie);
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('<script src="/dashboard/assets/chart.umd.min.js" defer></script><script src="/dashboard/assets/charts.js" defer></script>');
    expect(html).toContain(`data-url="/dashboard/charts/data?window=1h&#38;endpoint=${endpointId}"`);
    for (const id of ['chart-outcomes', 'chart-latency', 'chart-queue']) expect(html).toContain(`<canvas id="${id}"`);
    expect(html).toMatch(/data-testid="total-succeeded">2</);
    expect(html).toMatch(/data-testid="chart-outcomes-empty" data-empty-for="chart-outcomes" hidden/);
    expect(html).toContain(`<option value="${endpointId}" selected>`);
    const js = await get('/dashboard/assets/charts.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
  });

  it('a production session never sees sandbox numbers, and says there were no deliveries', async () => {
    const { cookie } = await signIn(keys.production);
    const d = await (await get('/dashboard/charts/data?window=24h', cookie)).json();
    expect(d.totals.attempts).toBe(0);
    expect(d.buckets).toHaveLength(96);
    expect(d.queue.pending[95]).toBe(0);
    const html = await (await get('/dashboard/charts', cookie)).text();
    expect(html).toMatch(/data-testid="chart-outcomes-empty" data-empty-for="chart-outcomes">No deliveries in this window\./);
    expect(html).toContain('PRODUCTION');
    // Nor another operator's.
    expect((await (await get('/dashboard/charts/data', (await signIn(other.sandbox)).cookie)).json()).totals.attempts).toBe(0);
    // A sandbox endpoint is not one of production's.
    const foreign = await get(`/dashboard/charts/data?endpoint=${endpointId}`, cookie);
    expect(foreign.status).toBe(404);
    expect(foreign.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('moves with the clock: an hour later the window is empty', async () => {
    const { cookie } = await signIn(keys.sandbox);
    s.clock.advance(61 * 60_000);
    try {
      const d = await (await get('/dashboard/charts/data', cookie)).json();
      expect(d.totals.attempts).toBe(0);
      expect((await (await get('/dashboard/charts/data?window=6h', cookie)).json()).totals.attempts).toBe(8);
    } finally {
      s.clock.advance(-61 * 60_000);
    }
  });

  it('refuses a bad window with an HTML page; without a session, redirects to the sign-in', async () => {
    const { cookie } = await signIn(keys.sandbox);
    for (const path of ['/dashboard/charts?window=7d', '/dashboard/charts/data?window=%00', '/dashboard/charts?endpoint=ep_nope']) {
      const r = await get(path, cookie);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await r.text()).toMatch(/^<!doctype html>/);
    }
    for (const path of ['/dashboard/charts', '/dashboard/charts/data']) {
      const r = await get(path);
      expect(r.status).toBe(303);
      expect(r.headers.get('location')).toBe('/dashboard/sign-in');
    }
  });

  it('GET /webhook/stats answers the same series to a key', async () => {
    const r = await api.get('/webhook/stats?window=1h');
    expect(r.status).toBe(200);
    expect([r.body.totals.attempts, sum(r.body.attempts.succeeded)]).toEqual([8, 4]);
    const ep = await api.get(`/webhook/stats?endpoint_id=${endpointId}`);
    expect(ep.body.totals.attempts).toBe(4);
    expect((await client(s.url, keys.production).get('/webhook/stats')).body.totals.attempts).toBe(0);
    const missing = await api.get('/webhook/stats?endpoint_id=ep_nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('endpoint_not_found');
    expect((await api.get('/webhook/stats?window=7d')).status).toBe(400);
    expect((await client(s.url).get('/webhook/stats')).status).toBe(401);
  });
});
