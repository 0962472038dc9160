/**
 * The dashboard's event page over HTTP: each attempt with the request as sent (signature header, body) and the answer
 * (a failure's headers; an excerpt of NUL bytes and invalid UTF-8 shown safely), Retry now on a pending delivery
 * (due at once, a worker tick sends it), refused on a succeeded one (409) and across environments (404); and the API's
 * POST /webhook/deliveries/{id}/retry (404 delivery_not_found, 409 delivery_not_pending / endpoint_disabled, an open
 * circuit probed).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import { csrfOf, dashboardClient, type Receiver } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let userId: string;
let rx: Receiver;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s);
  api = client(s.url, keys.sandbox);
  userId = await newUser(api);
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

const { post, get, signIn } = dashboardClient(() => s.url);
const escHtml = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const count = (html: string, needle: string) => html.split(needle).length - 1;

/** A payment whose webhook goes to the receiver at `path`; returns its event and delivery ids. */
async function paid(path: string) {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4200, webhook_url: `${rx.url}${path}` });
  const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0] as { id: string };
  const deliveryId = (await api.get(`/events/${ev.id}`)).body.deliveries[0].id as string;
  return { eventId: ev.id, deliveryId };
}
const deliveryRow = async (id: string) =>
  (await s.running.deps.db.query<{ status: string; next_attempt_at: Date }>('SELECT status, next_attempt_at FROM deliveries WHERE id = $1', [id])).rows[0]!;

describe('the event page', () => {
  it('shows both attempts of a 500-then-200 delivery: the failure\'s headers, the request\'s signature header and body', async () => {
    rx.setResponder(() => ({ status: 500, headers: { 'x-debug-id': 'dbg-<42>', 'retry-after': '120' }, body: 'receiver down' }));
    // A registered endpoint: its deliveries are signed (a payment's own URL is signed only with a webhook secret).
    const ep = (await api.post('/webhook/endpoints', { url: `${rx.url}/hook`, events: ['intent.approved'] })).body as { id: string; secret: string };
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4200 });
    const eventId = ((await api.get(`/events?intent_id=${intent.id}`)).body.data[0] as { id: string }).id;
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    s.clock.advance(10 * 60_000);
    rx.setResponder(() => ({ status: 200, headers: { 'x-on-success': 'not-kept' }, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    expect(rx.received).toHaveLength(2);

    const { cookie } = await signIn(keys.sandbox);
    const r = await get(`/dashboard/events/${eventId}`, cookie);
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(count(html, 'data-testid="attempt"')).toBe(2);
    expect(count(html, '<details class="io"')).toBe(2);
    expect(html).toContain('HTTP 500');
    expect(html).toContain('HTTP 200');
    // The failure's headers (escaped), not the success's.
    expect(html).toContain('x-debug-id');
    expect(html).toContain('dbg-&#60;42&#62;');
    expect(html).not.toContain('x-on-success');
    // The request as sent: each attempt's own signature header and body.
    // Each attempt's own: its signature header and its body (timestamp included), pretty-printed and escaped.
    expect(rx.received[0]!.body).not.toBe(rx.received[1]!.body);
    for (const got of rx.received) {
      expect(html).toContain(String(got.headers['x-webhook-signature']));
      expect(html).toContain(escHtml(JSON.stringify(JSON.parse(got.body), null, 2)));
    }
    expect(html).toContain('x-webhook-signature');
    expect(html).toContain('data-testid="request-body"');
    expect(html).not.toContain('data-testid="request-note"');
    // The secret itself is never on the page.
    expect(html).not.toContain(ep.secret);
    // Succeeded: no Retry now.
    expect(html).not.toContain('data-testid="retry-now"');
    await api.call('DELETE', `/webhook/endpoints/${ep.id}`);
  });

  it('an excerpt with NUL bytes and invalid UTF-8 renders as text with replacement characters and a note', async () => {
    rx.setResponder(() => ({ status: 502, body: Buffer.from([0x00, 0x61, 0x62, 0x63, 0xff, 0xfe, 0x0a, 0x3c, 0x62, 0x3e, 0x01]) }));
    const { eventId } = await paid('/binary');
    expect(await harness.make().tick()).toBe(1);
    const { cookie } = await signIn(keys.sandbox);
    const r = await get(`/dashboard/events/${eventId}`, cookie);
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).not.toContain('\u0000');
    expect(html).not.toContain('\u0001');
    expect(html).toContain('\u2400abc\uFFFD\uFFFD\n&#60;b&#62;\u2401');
    expect(html).toContain('not valid UTF-8');
    expect(html).toContain('data-testid="excerpt-note"');
    expect(html).toMatch(/<\/html>$/);
  });

  it('Retry now makes a pending delivery due at once, and a worker tick sends it', async () => {
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { eventId, deliveryId } = await paid('/retry');
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    expect((await deliveryRow(deliveryId)).next_attempt_at.getTime()).toBeGreaterThan(s.clock.now().getTime());
    // Not due: a tick sends nothing.
    expect(await w.tick()).toBe(0);

    const { cookie } = await signIn(keys.sandbox);
    const html = await (await get(`/dashboard/events/${eventId}`, cookie)).text();
    expect(html).toContain('data-testid="retry-now"');
    expect(html).toContain(`action="/dashboard/deliveries/${deliveryId}/retry"`);
    const r = await post(`/dashboard/deliveries/${deliveryId}/retry`, { csrf: csrfOf(html) }, cookie);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/dashboard/events/${eventId}?retried=${deliveryId}`);
    expect((await deliveryRow(deliveryId)).next_attempt_at.getTime()).toBe(s.clock.now().getTime());
    const after = await (await get(r.headers.get('location')!, cookie)).text();
    expect(after).toContain('data-testid="notice"');
    expect(after).toContain('Retrying now');

    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    expect(rx.received.filter((x) => x.path === '/retry')).toHaveLength(2);
    expect((await deliveryRow(deliveryId)).status).toBe('succeeded');

    // Now it has succeeded: Retry now is refused with a 409 page, and without a token with a 403.
    const again = await post(`/dashboard/deliveries/${deliveryId}/retry`, { csrf: csrfOf(html) }, cookie);
    expect(again.status).toBe(409);
    const page = await again.text();
    expect(page).toContain('Cannot retry');
    expect(page).toContain('not pending');
    expect((await post(`/dashboard/deliveries/${deliveryId}/retry`, {}, cookie)).status).toBe(403);
    // An unknown delivery: 404.
    expect((await post('/dashboard/deliveries/dlv_nope/retry', { csrf: csrfOf(html) }, cookie)).status).toBe(404);
  });

  it('a production session can neither see nor retry a sandbox delivery', async () => {
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { eventId, deliveryId } = await paid('/env');
    expect(await harness.make().tick()).toBe(1);
    const before = await deliveryRow(deliveryId);
    const { cookie: prod } = await signIn(keys.production);
    const page = await get(`/dashboard/events/${eventId}`, prod);
    expect(page.status).toBe(404);
    const csrf = csrfOf(await (await get('/dashboard/events', prod)).text());
    const r = await post(`/dashboard/deliveries/${deliveryId}/retry`, { csrf }, prod);
    expect(r.status).toBe(404);
    expect(await r.text()).toContain('no such delivery in the production');
    expect((await deliveryRow(deliveryId)).next_attempt_at).toEqual(before.next_attempt_at);
    // Over the API too.
    const apiProd = client(s.url, keys.production);
    const x = await apiProd.post(`/webhook/deliveries/${deliveryId}/retry`);
    expect(x.status).toBe(404);
    expect(x.body.error.code).toBe('delivery_not_found');
  });
});

describe('POST /webhook/deliveries/{id}/retry', () => {
  it('answers the delivery, due now; 409 delivery_not_pending once it succeeded; 404 delivery_not_found', async () => {
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { eventId, deliveryId } = await paid('/api-retry');
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    const r = await api.post(`/webhook/deliveries/${deliveryId}/retry`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: deliveryId, event_id: eventId, status: 'pending', next_attempt_at: s.clock.now().toISOString(), attempts: 1 });
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    const done = await api.post(`/webhook/deliveries/${deliveryId}/retry`);
    expect(done.status).toBe(409);
    expect(done.body.error.code).toBe('delivery_not_pending');
    const none = await api.post('/webhook/deliveries/dlv_unknown/retry');
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('delivery_not_found');
    expect((await client(s.url).post(`/webhook/deliveries/${deliveryId}/retry`)).status).toBe(401);
  });

  it('refuses a delivery held by a disabled endpoint (409 endpoint_disabled)', async () => {
    const ep = (await api.post('/webhook/endpoints', { url: `${rx.url}/held`, events: ['*'] })).body as { id: string };
    expect((await api.post(`/webhook/endpoints/${ep.id}/disable`)).status).toBe(200);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100 });
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0] as { id: string };
    const d = (await api.get(`/events/${ev.id}`)).body.deliveries.find((x: { endpoint_id: string }) => x.endpoint_id === ep.id);
    const r = await api.post(`/webhook/deliveries/${d.id}/retry`);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('endpoint_disabled');
    // The dashboard shows it held, with no Retry now button.
    const { cookie } = await signIn(keys.sandbox);
    const html = await (await get(`/dashboard/events/${ev.id}`, cookie)).text();
    expect(html).toContain('data-testid="held-note"');
    await api.call('DELETE', `/webhook/endpoints/${ep.id}`);
  });

  it("says why a pending delivery waits when its endpoint's circuit is open (no attempt, a due time past)", async () => {
    const ep = (await api.post('/webhook/endpoints', { url: `${rx.url}/circuit-ep`, events: ['intent.approved'] })).body as { id: string };
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4300 });
    const eventId = ((await api.get(`/events?intent_id=${intent.id}`)).body.data[0] as { id: string }).id;
    const { cookie } = await signIn(keys.sandbox);
    // Closed circuit: no note.
    expect(await (await get(`/dashboard/events/${eventId}`, cookie)).text()).not.toContain('data-testid="circuit-note"');
    const retryAt = new Date(s.clock.now().getTime() + 600_000);
    // As the health recorder leaves an endpoint after a run of failures (delivery/health.ts).
    await s.running.deps.db.query(
      `UPDATE endpoints SET circuit_state = 'open', circuit_retry_at = $3, consecutive_failures = 7 WHERE operator_id = $1 AND id = $2`,
      [keys.id, ep.id, retryAt]);
    const html = await (await get(`/dashboard/events/${eventId}`, cookie)).text();
    expect(html).toContain('data-testid="circuit-note"');
    expect(html).toContain('after 7 failures in a row');
    expect(html).toContain(retryAt.toISOString().slice(0, 19).replace('T', ' '));
    expect(html).toContain(`href="/dashboard/endpoints/${ep.id}"`);
    await api.call('DELETE', `/webhook/endpoints/${ep.id}`);
  });

  it('behind an open circuit, Retry now is a manual probe: the circuit\'s wait ends now and the delivery goes', async () => {
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { deliveryId } = await paid('/circuit');
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    const { rows: [lane] } = await s.running.deps.db.query<{ lane: string; operator_id: string }>('SELECT lane, operator_id FROM deliveries WHERE id = $1', [deliveryId]);
    await s.running.deps.db.query(
      `INSERT INTO delivery_lanes (operator_id, lane, circuit_state, circuit_retry_at, consecutive_failures) VALUES ($1, $2, 'open', $3, 5)
       ON CONFLICT (operator_id, lane) DO UPDATE SET circuit_state = 'open', circuit_retry_at = $3, consecutive_failures = 5`,
      [lane!.operator_id, lane!.lane, new Date(s.clock.now().getTime() + 3_600_000)]);
    expect((await api.post(`/webhook/deliveries/${deliveryId}/retry`)).status).toBe(200);
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    expect(await w.tick()).toBe(1);
    expect((await deliveryRow(deliveryId)).status).toBe('succeeded');
  });
});
