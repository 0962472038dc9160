import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

let s: TestServer;
let op: Keys;
let api: Api;
let prod: Api;

beforeAll(async () => {
  s = await startTestServer();
  op = await newOperator(s);
  api = client(s.url, op.sandbox);
  prod = client(s.url, op.production);
});
afterAll(() => s?.stop());

describe('registered endpoints: the API', () => {
  it('registers, shows the secret once, lists, gets, updates, disables, enables, deletes', async () => {
    const c = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/hooks', events: ['intent.approved', 'intent.settled'], description: 'main' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ id: expect.stringMatching(/^ep_/), format: 'pushcash', payload_version: '2024-05', status: 'enabled', events: ['intent.approved', 'intent.settled'] });
    expect(c.body.secret).toMatch(/^whsk_.{40,}/);
    const id = c.body.id;
    const got = await api.get(`/webhook/endpoints/${id}`);
    expect(got.body).not.toHaveProperty('secret');
    expect(got.body.health).toEqual({ circuit: 'closed', circuit_retry_at: null, consecutive_failures: 0, failing_since: null });
    expect((await api.get('/webhook/endpoints')).body.data.map((e: { id: string }) => e.id)).toContain(id);
    const revealed = await api.get(`/webhook/endpoints/${id}/secret`);
    expect(revealed.body).toMatchObject({ secret: c.body.secret, previous_secret: null });
    const patched = await api.call('PATCH', `/webhook/endpoints/${id}`, { events: ['*'], max_concurrency: 5, rate_limit_per_s: 10 });
    expect(patched.body).toMatchObject({ events: ['*'], max_concurrency: 5, rate_limit_per_s: 10 });
    expect((await api.post(`/webhook/endpoints/${id}/disable`)).body).toMatchObject({ status: 'disabled', disabled_reason: 'operator' });
    expect((await api.post(`/webhook/endpoints/${id}/enable`)).body).toMatchObject({ status: 'enabled', disabled_reason: null });
    expect((await api.call('DELETE', `/webhook/endpoints/${id}`)).body).toEqual({ id, deleted: true });
    expect((await api.get(`/webhook/endpoints/${id}`)).status).toBe(404);
  });

  it('makes secrets of each format\'s shape, and keeps them sealed at rest', async () => {
    const std = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/std', events: ['*'], format: 'standard' });
    expect(std.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const sc = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/sc', events: ['*'], format: 'sendcash' });
    expect(sc.body.secret).toMatch(/^[0-9a-f]{64}$/);
    const { rows } = await s.running.deps.db.query('SELECT secret FROM endpoints WHERE id = ANY($1)', [[std.body.id, sc.body.id]]);
    for (const r of rows) {
      expect(r.secret).toMatch(/^enc:v1:/);
      expect(r.secret).not.toContain(std.body.secret.slice(6, 20));
      expect(r.secret).not.toContain(sc.body.secret.slice(0, 16));
    }
  });

  it('rotates: a new secret, the old one still revealed until the grace period ends', async () => {
    const c = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/rot', events: ['*'] });
    const r = await api.post(`/webhook/endpoints/${c.body.id}/rotate`, { grace_period_s: 3600 });
    expect(r.body.secret).not.toBe(c.body.secret);
    expect(r.body.secret_rotation.previous_valid_until).toBe(new Date(s.clock.now().getTime() + 3_600_000).toISOString());
    const during = await api.get(`/webhook/endpoints/${c.body.id}/secret`);
    expect(during.body).toMatchObject({ secret: r.body.secret, previous_secret: c.body.secret });
    s.clock.advance(3_600_001);
    const after = await api.get(`/webhook/endpoints/${c.body.id}/secret`);
    expect(after.body).toMatchObject({ secret: r.body.secret, previous_secret: null });
  });

  const bad: [string, Record<string, unknown>, string, string][] = [
    ['no events', { url: 'https://x.example/h', events: [] }, 'invalid_length', 'events'],
    ['unknown event type', { url: 'https://x.example/h', events: ['intent.exploded'] }, 'unknown_event_type', 'events'],
    ['bad format', { url: 'https://x.example/h', events: ['*'], format: 'xml' }, 'invalid_value', 'format'],
    ['relative url', { url: '/h', events: ['*'] }, 'invalid_url', 'url'],
    ['credentials in url', { url: 'https://u:p@x.example/h', events: ['*'] }, 'invalid_url', 'url'],
    ['bad payload version', { url: 'https://x.example/h', events: ['*'], payload_version: '1999' }, 'invalid_value', 'payload_version'],
    ['zero concurrency', { url: 'https://x.example/h', events: ['*'], max_concurrency: 0 }, 'out_of_range', 'max_concurrency'],
  ];
  it.each(bad)('refuses %s', async (_n, body, code, field) => {
    const r = await api.post('/webhook/endpoints', body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code, field });
  });

  it('in production, requires https and refuses loopback, private, link-local and metadata addresses', async () => {
    expect((await prod.post('/webhook/endpoints', { url: 'http://hooks.example.com/h', events: ['*'] })).body.error.code).toBe('https_required');
    for (const host of ['127.0.0.1', 'localhost', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '[::1]', '[fd00::1]', '0.0.0.0', '100.64.0.1']) {
      const r = await prod.post('/webhook/endpoints', { url: `https://${host}/h`, events: ['*'] });
      expect(r.status, host).toBe(400);
      expect(r.body.error.code, host).toBe('forbidden_address');
    }
    expect((await prod.post('/webhook/endpoints', { url: 'https://hooks.example.com/h', events: ['*'] })).status).toBe(201);
    // The same rule applies to a production payment's webhook_url; the sandbox may reach local addresses.
    const u = await prod.post('/user', { name: { first: 'A', last: 'B' }, email: 'a@b.co', address: { address_line_1: '1', locality: 'X', administrative_area: 'NY', postal_code: '12345', country: 'US' }, date_of_birth: '1990-01-01', government_id: { type: 'ssn', last4: '1234' }, identity_verified: true });
    const i = await prod.post('/intent', { direction: 'cash_in', user_id: u.body.id, amount: 100, currency: 'USD', webhook_url: 'https://169.254.169.254/latest' });
    expect(i.body.error).toMatchObject({ code: 'forbidden_address', field: 'webhook_url' });
    expect((await prod.post('/intent', { direction: 'cash_in', user_id: u.body.id, amount: 100, currency: 'USD', webhook_url: 'http://hooks.example.com/h' })).body.error.code).toBe('https_required');
    expect((await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/h', events: ['*'] })).status).toBe(201);
  });

  it('in production, refuses metadata and internal host names up front, whatever they resolve to (or not)', async () => {
    const u = await prod.post('/user', { name: { first: 'A', last: 'B' }, email: 'a@b.co', address: { address_line_1: '1', locality: 'X', administrative_area: 'NY', postal_code: '12345', country: 'US' }, date_of_birth: '1990-01-01', government_id: { type: 'ssn', last4: '1234' }, identity_verified: true });
    for (const host of ['metadata.google.internal', 'METADATA.GOOGLE.INTERNAL.', 'metadata', 'instance-data', 'metadata.azure.com', 'kubernetes.default.svc',
      'db.internal', 'printer.local', 'app.localhost', 'router.lan', 'intranet']) {
      const r = await prod.post('/webhook/endpoints', { url: `https://${host}/computeMetadata/v1/`, events: ['*'] });
      expect([r.status, r.body.error?.code], host).toEqual([400, 'forbidden_address']);
      const i = await prod.post('/intent', { direction: 'cash_in', user_id: u.body.id, amount: 100, currency: 'USD', webhook_url: `https://${host}/x` });
      expect([i.status, i.body.error?.code, i.body.error?.field], host).toEqual([400, 'forbidden_address', 'webhook_url']);
    }
    // Public names that merely contain such words are fine; the sandbox may use any of them.
    expect((await prod.post('/webhook/endpoints', { url: 'https://metadata.example.com/h', events: ['*'] })).status).toBe(201);
    expect((await api.post('/webhook/endpoints', { url: 'http://printer.local/h', events: ['*'] })).status).toBe(201);
  });

  it('keeps operators and environments apart', async () => {
    const c = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/mine', events: ['*'] });
    const other = client(s.url, (await newOperator(s, 'Other')).sandbox);
    expect((await other.get(`/webhook/endpoints/${c.body.id}`)).status).toBe(404);
    expect((await other.get(`/webhook/endpoints/${c.body.id}/secret`)).status).toBe(404);
    expect((await other.post(`/webhook/endpoints/${c.body.id}/rotate`, {})).status).toBe(404);
    expect((await prod.get(`/webhook/endpoints/${c.body.id}`)).status).toBe(404);
    expect((await other.get('/webhook/endpoints')).body.data).toEqual([]);
  });
});

describe('operator settings', () => {
  it('shows the defaults in force and merges changes', async () => {
    const before = await api.get('/operator/settings');
    expect(before.body).toMatchObject({ payload_version: '2024-05', retry_schedules: { sandbox: { maxAttempts: 3 }, production: { maxAttempts: 40 } } });
    const after = await api.call('PATCH', '/operator/settings', { payload_version: '2023-01', retry_schedules: { sandbox: { maxAttempts: 5 } }, rate_limits: { read: 5000 } });
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ payload_version: '2023-01', retry_schedules: { sandbox: { maxAttempts: 5, firstDelayMs: 60_000 } }, rate_limits: { read: 5000 } });
    const again = await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { jitter: 0 } } });
    expect(again.body.retry_schedules.sandbox).toMatchObject({ maxAttempts: 5, jitter: 0 });
    const ep = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/v', events: ['*'] });
    expect(ep.body.payload_version).toBe('2023-01');
    expect((await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 0 } } })).status).toBe(400);
    await api.call('PATCH', '/operator/settings', { payload_version: '2024-05' });
  });
});
