/**
 * Test events (delivery/test-event.ts, POST /webhook/endpoints/{id}/test): a real event row of the chosen type with
 * example data whose ids say test, delivered to that endpoint only (not fanned out), signed in its format (verified
 * with the SDK's verify, which also parses it as a receiver would), for every type of the catalog; an unknown type,
 * a missing one, another environment's endpoint; an endpoint not subscribed to the type; a disabled endpoint's test
 * delivery held until it is enabled.
 */
import { EVENT_TYPES, verify, type Format } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exampleData, sendTestEvent, TEST_EVENT_TYPES } from '../src/delivery/test-event.js';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Test Event Co');
  api = client(s.url, keys.sandbox);
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(async () => harness.reset(rx));
afterAll(async () => {
  await harness?.reset(rx);
  await rx?.close();
  await s?.stop();
});

async function endpoint(path: string, format: Format, events: string[] = ['intent.approved']) {
  const r = await api.post('/webhook/endpoints', { url: `${rx.url}${path}`, events, format });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string };
}

describe('test events', () => {
  it('delivers to that endpoint only, signed in its format, for every type of the catalog', async () => {
    const std = await endpoint('/std', 'standard', ['*']);
    const push = await endpoint('/push', 'pushcash', ['intent.approved']);
    // Another endpoint subscribed to everything: a test event is not fanned out to it.
    const bystander = await endpoint('/bystander', 'standard', ['*']);
    const worker = harness.make();
    for (const [ep, format] of [[std, 'standard'], [push, 'pushcash']] as const) {
      for (const type of EVENT_TYPES) {
        rx.received.length = 0;
        const r = await api.post(`/webhook/endpoints/${ep.id}/test`, { type });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body).toMatchObject({ type, endpoint_id: ep.id, format, held: false });
        expect(r.body.event_id).toMatch(/^evt_/);
        expect(r.body.subscribed).toBe(format === 'standard' || type === 'intent.approved');
        expect(await worker.tick()).toBe(1);
        expect(rx.received.map((x) => x.path)).toEqual([format === 'standard' ? '/std' : '/push']);
        const got = rx.received[0]!;
        const event = await verify(format, { body: got.body, headers: got.headers as Record<string, string>, secrets: ep.secret, now: s.clock.now() });
        expect(event.type).toBe(type);
        // Marked by its data: the ids in it say test.
        expect(got.body).toMatch(/_test_/);
        const ev = await api.get(`/events/${r.body.event_id}`);
        expect(ev.status).toBe(200);
        expect(ev.body.type).toBe(type);
        expect(ev.body.deliveries.map((d: { endpoint_id: string; status: string }) => [d.endpoint_id, d.status])).toEqual([[ep.id, 'succeeded']]);
      }
    }
    const { rows } = await s.running.deps.db.query('SELECT 1 FROM deliveries WHERE endpoint_id = $1', [bystander.id]);
    expect(rows).toHaveLength(0);
  });

  it('sends Payment.Status to a sendcash endpoint, verified as Sendcash', async () => {
    const ep = await endpoint('/sc', 'sendcash', ['Payment.Status']);
    const r = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'Payment.Status' });
    expect(r.status).toBe(200);
    expect(await harness.make().tick()).toBe(1);
    const got = rx.received[0]!;
    const event = await verify('sendcash', { body: got.body, headers: got.headers as Record<string, string>, secrets: ep.secret });
    expect(JSON.parse(got.body)).toMatchObject({ event: 'Payment.Status', data: { status: 'Completed', paymentReference: expect.stringMatching(/^test_/) } });
    expect(event).toBeTruthy();
  });

  it('refuses an unknown or missing type with 400, another environment\'s endpoint with 404, no key with 401', async () => {
    const ep = await endpoint('/refuse', 'standard');
    const unknown = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.exploded' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_event_type', field: 'type' });
    const missing = await api.post(`/webhook/endpoints/${ep.id}/test`, {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBeTruthy();
    const long = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'x'.repeat(10_000) });
    expect(long.status).toBe(400);
    const prod = await client(s.url, keys.production).post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.approved' });
    expect(prod.status).toBe(404);
    expect(prod.body.error.code).toBe('endpoint_not_found');
    expect((await client(s.url).post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.approved' })).status).toBe(401);
    // Nothing was written by the refusals.
    const { rows } = await s.running.deps.db.query('SELECT 1 FROM deliveries WHERE endpoint_id = $1', [ep.id]);
    expect(rows).toHaveLength(0);
  });

  it('holds a disabled endpoint\'s test delivery until it is enabled', async () => {
    const ep = await endpoint('/held', 'pushcash');
    expect((await api.post(`/webhook/endpoints/${ep.id}/disable`)).status).toBe(200);
    const r = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'refund.approved' });
    expect(r.body).toMatchObject({ held: true, subscribed: false });
    // (The earlier tests' `*` endpoints get this endpoint's endpoint.disabled event: only /held matters here.)
    const worker = harness.make();
    await worker.tick();
    expect(rx.received.filter((x) => x.path === '/held')).toHaveLength(0);
    expect((await api.post(`/webhook/endpoints/${ep.id}/enable`)).status).toBe(200);
    await worker.tick();
    expect(rx.received.filter((x) => x.path === '/held')).toHaveLength(1);
    expect(JSON.parse(rx.received.find((x) => x.path === '/held')!.body).type).toBe('refund.approved');
  });

  it('the service: one event and one delivery in one transaction, fresh test ids each time', async () => {
    const ep = await endpoint('/svc', 'standard');
    const caller = { keyId: 'k', operatorId: keys.id, operatorName: 'Test Event Co', environment: 'sandbox' as const, settings: {} };
    const a = await sendTestEvent(s.running.deps, caller, ep.id, 'intent.approved');
    const b = await sendTestEvent(s.running.deps, caller, ep.id, 'intent.approved');
    const { rows } = await s.running.deps.db.query<{ id: string; data: { id: string; tag: string }; intent_id: string | null }>(
      'SELECT id, data, intent_id FROM events WHERE id = ANY($1) ORDER BY seq', [[a.event_id, b.event_id]]);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.intent_id).toBeNull();
    expect(rows[0]!.data.id).toMatch(/^int_test_/);
    expect(rows[0]!.data.id).not.toBe(rows[1]!.data.id);
    expect(rows[0]!.data.tag).toBe('cashwire_test_event');
    await expect(sendTestEvent(s.running.deps, caller, ep.id, 'nope')).rejects.toMatchObject({ code: 'unknown_event_type' });
    await expect(sendTestEvent(s.running.deps, { ...caller, environment: 'production' }, ep.id, 'intent.approved')).rejects.toMatchObject({ code: 'endpoint_not_found' });
    // Every type has example data.
    for (const t of TEST_EVENT_TYPES) expect(exampleData(t, (p) => `${p}x`, new Date(), { id: ep.id, url: 'https://x.example' })).toBeTruthy();
  });
});
