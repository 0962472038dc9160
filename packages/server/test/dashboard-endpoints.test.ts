/**
 * The endpoints pages over HTTP (api/routes/dashboard/endpoints.ts): one endpoint's page, edit (prefilled, errors in
 * the form, the service's destination checks in production, a format change showing its new secret once), reveal (a
 * POST with CSRF, never on the list), a test event arriving at a real receiver correctly signed, recover (a failed
 * delivery sent again; bad windows refused), a fifo endpoint's head, and another environment's endpoint a 404 for
 * every action.
 */
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseUtcInput, recoverWindow } from '../src/api/routes/dashboard/endpoints.js';
import { client, newOperator, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';
import { csrfOf, dashboardClient, type Receiver } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let rx: Receiver;
let harness: ReturnType<typeof testWorkers>;
let sandbox: { cookie: string; csrf: string };
let production: { cookie: string; csrf: string };

const dash = dashboardClient(() => s.url);
/** Here a session is its cookie and its CSRF token; a POST carries the token unless `csrf` is false. */
type Who = { cookie: string; csrf: string };
const post = (path: string, fields: Record<string, string>, who: Who, csrf = true) => dash.post(path, csrf ? { csrf: who.csrf, ...fields } : fields, who.cookie);
const get = (path: string, who: { cookie: string }) => dash.get(path, who.cookie);

/** Signs in; the CSRF token is read off the endpoints page. */
async function signIn(key: string): Promise<Who> {
  const { cookie } = await dash.signIn(key);
  const page = await fetch(`${s.url}/dashboard/endpoints`, { headers: { cookie } });
  return { cookie, csrf: csrfOf(await page.text()) };
}

async function endpoint(path: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/webhook/endpoints', { url: `${rx.url}${path}`, events: ['intent.approved'], format: 'standard', ...body });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string };
}

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Endpoint Pages Co');
  api = client(s.url, keys.sandbox);
  rx = await startReceiver();
  harness = testWorkers(s);
  sandbox = await signIn(keys.sandbox);
  production = await signIn(keys.production);
});
afterEach(async () => harness.reset(rx));
afterAll(async () => {
  await harness?.reset(rx);
  await rx?.close();
  await s?.stop();
});

describe('one endpoint\'s page', () => {
  it('shows health and the forms, prefilled; the list links to it', async () => {
    const ep = await endpoint('/page', { events: ['intent.approved', 'refund.approved'], ordering: 'fifo' });
    const list = await (await get('/dashboard/endpoints', sandbox)).text();
    expect(list).toContain(`href="/dashboard/endpoints/${ep.id}"`);
    expect(list).not.toContain('not available yet');
    const r = await get(`/dashboard/endpoints/${ep.id}`, sandbox);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const html = await r.text();
    expect(html).toContain(`value="${rx.url}/page"`);
    expect(html).toContain('value="intent.approved, refund.approved"');
    expect(html).toMatch(/<option value="fifo" selected>/);
    expect(html).toMatch(/<option value="standard" selected>/);
    expect(html).toContain('fifo: nothing waiting');
    expect(html).toContain('Times are <strong>UTC</strong>');
    expect(html).not.toContain(ep.secret);
  });

  it('answers 404 for another environment\'s endpoint, on the page and every action', async () => {
    const ep = await endpoint('/other-env');
    expect((await get(`/dashboard/endpoints/${ep.id}`, production)).status).toBe(404);
    expect((await get(`/dashboard/endpoints/${'x'.repeat(200)}`, sandbox)).status).toBe(404);
    for (const [action, fields] of [
      ['edit', { url: 'https://example.com/x', events: '*', format: 'standard', ordering: 'unordered' }],
      ['secret', {}], ['test', { type: 'intent.approved' }], ['recover', { since: '2026-01-01T00:00', until: '2026-01-02T00:00' }],
      ['disable', {}], ['enable', {}], ['rotate', {}],
    ] as const) {
      const r = await post(`/dashboard/endpoints/${ep.id}/${action}`, fields, production);
      expect(r.status, action).toBe(404);
      expect(await r.text()).not.toContain(ep.secret);
    }
    // Untouched.
    const still = await api.get(`/webhook/endpoints/${ep.id}`);
    expect(still.body).toMatchObject({ url: `${rx.url}/other-env`, status: 'enabled', secret_rotation: null });
    expect((await s.running.deps.db.query('SELECT 1 FROM deliveries WHERE endpoint_id = $1', [ep.id])).rows).toHaveLength(0);
  });

  it('refuses every POST without its CSRF token', async () => {
    const ep = await endpoint('/csrf');
    for (const action of ['edit', 'secret', 'test', 'recover']) {
      const r = await post(`/dashboard/endpoints/${ep.id}/${action}`, { type: 'intent.approved' }, sandbox, false);
      expect(r.status, action).toBe(403);
      expect(await r.text()).not.toContain(ep.secret);
    }
  });
});

describe('edit', () => {
  it('saves url, events and ordering through updateEndpoint', async () => {
    const ep = await endpoint('/edit');
    const r = await post(`/dashboard/endpoints/${ep.id}/edit`, { url: `${rx.url}/edited`, events: 'intent.declined, refund.approved', format: 'standard', ordering: 'fifo' }, sandbox);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/dashboard/endpoints/${ep.id}?done=edited`);
    const now = await api.get(`/webhook/endpoints/${ep.id}`);
    expect(now.body).toMatchObject({ url: `${rx.url}/edited`, events: ['intent.declined', 'refund.approved'], ordering: 'fifo', format: 'standard' });
    const page = await (await get(r.headers.get('location')!, sandbox)).text();
    expect(page).toContain('Saved.');
    // Same secret: the format did not change.
    expect((await api.get(`/webhook/endpoints/${ep.id}/secret`)).body.secret).toBe(ep.secret);
  });

  it('shows errors in the form, with what was typed, 4xx, and changes nothing', async () => {
    const ep = await endpoint('/edit-bad');
    const cases: [Record<string, string>, number, RegExp][] = [
      [{ url: '', events: '*' }, 400, /url must be/],
      [{ url: 'not a url', events: '*' }, 400, /absolute URL/],
      [{ url: 'ftp://example.com/x', events: '*' }, 400, /http or https/],
      [{ url: `${rx.url}/x`, events: 'e'.repeat(10_000) }, 400, /one to 50 event types/],
      [{ url: `${rx.url}/x`, events: 'intent.approved,'.repeat(60) }, 400, /one to 50 event types/],
      [{ url: `${rx.url}/x`, events: 'intent.exploded' }, 400, /unknown event type/],
      [{ url: `${rx.url}/x`, events: '*', format: 'carrier-pigeon' }, 400, /format must be/],
      [{ url: `${rx.url}/x`, events: '*', ordering: 'random' }, 400, /ordering must be/],
    ];
    for (const [fields, status, message] of cases) {
      const r = await post(`/dashboard/endpoints/${ep.id}/edit`, { format: 'standard', ordering: 'unordered', ...fields }, sandbox);
      expect(r.status, JSON.stringify(fields).slice(0, 80)).toBe(status);
      const html = await r.text();
      expect(html).toMatch(/data-testid="edit-error"/);
      expect(html).toMatch(message);
      expect(html).toContain('id="edit-url"');
      if (fields.url) expect(html).toContain(`value="${fields.url.replace(/&/g, '&amp;')}"`);
    }
    expect((await api.get(`/webhook/endpoints/${ep.id}`)).body.url).toBe(`${rx.url}/edit-bad`);
  });

  it('in production, the service\'s destination checks: http://127.0.0.1 is a form error', async () => {
    const prod = client(s.url, keys.production);
    const made = await prod.post('/webhook/endpoints', { url: 'https://93.184.215.14/hook', events: ['*'] });
    expect(made.status).toBe(201);
    for (const [url, message] of [['http://127.0.0.1/hook', /https in production/], ['https://127.0.0.1/hook', /loopback/], ['https://169.254.169.254/latest', /metadata|link-local/]] as const) {
      const r = await post(`/dashboard/endpoints/${made.body.id}/edit`, { url, events: '*', format: 'pushcash', ordering: 'unordered' }, production);
      expect(r.status).toBe(400);
      expect(await r.text()).toMatch(message);
    }
    expect((await prod.get(`/webhook/endpoints/${made.body.id}`)).body.url).toBe('https://93.184.215.14/hook');
  });

  it('a format change shows the new secret once, on its answer', async () => {
    const ep = await endpoint('/fmt');
    const r = await post(`/dashboard/endpoints/${ep.id}/edit`, { url: `${rx.url}/fmt`, events: 'intent.approved', format: 'pushcash', ordering: 'unordered' }, sandbox);
    expect(r.status).toBe(200);
    const html = await r.text();
    const secret = (await api.get(`/webhook/endpoints/${ep.id}/secret`)).body.secret as string;
    expect(secret).toMatch(/^whsk_/);
    expect(html).toContain(secret);
    expect(html).toContain('shown this once');
    expect(await (await get(`/dashboard/endpoints/${ep.id}`, sandbox)).text()).not.toContain(secret);
  });
});

describe('reveal', () => {
  it('a POST shows the secret and, during a rotation, the previous one; no-store; never on the list or the page', async () => {
    const ep = await endpoint('/reveal');
    const r = await post(`/dashboard/endpoints/${ep.id}/secret`, {}, sandbox);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const html = await r.text();
    expect(html).toContain(ep.secret);
    expect(html).toContain('Anyone with this secret');
    expect(html).not.toContain('data-testid="previous-secret"');
    const rotated = await api.post(`/webhook/endpoints/${ep.id}/rotate`, {});
    const again = await (await post(`/dashboard/endpoints/${ep.id}/secret`, {}, sandbox)).text();
    const api_ = (await api.get(`/webhook/endpoints/${ep.id}/secret`)).body;
    expect(api_.secret).toBe(rotated.body.secret);
    expect(again).toContain(rotated.body.secret);
    expect(again).toContain(`data-testid="previous-secret">${ep.secret}<`);
    expect(again).toContain('Still valid until');
    for (const path of ['/dashboard/endpoints', `/dashboard/endpoints/${ep.id}`]) {
      const page = await (await get(path, sandbox)).text();
      expect(page).not.toContain(ep.secret);
      expect(page).not.toContain(rotated.body.secret);
    }
    // GET is not a way in.
    expect((await get(`/dashboard/endpoints/${ep.id}/secret`, sandbox)).status).toBe(404);
  });
});

describe('send a test event', () => {
  it('arrives at a real receiver, signed with the endpoint\'s secret, after a worker tick; the page links its event', async () => {
    const ep = await endpoint('/test-event');
    const r = await post(`/dashboard/endpoints/${ep.id}/test`, { type: 'intent.approved' }, sandbox);
    expect(r.status).toBe(303);
    const location = r.headers.get('location')!;
    const eventId = new URL(location, s.url).searchParams.get('sent')!;
    expect(eventId).toMatch(/^evt_/);
    const page = await (await get(location, sandbox)).text();
    expect(page).toContain(`href="/dashboard/events/${eventId}" data-testid="test-event-link"`);
    expect(await harness.make().tick()).toBe(1);
    expect(rx.received).toHaveLength(1);
    const got = rx.received[0]!;
    expect(got.path).toBe('/test-event');
    const event = await verify('standard', { body: got.body, headers: got.headers as Record<string, string>, secrets: ep.secret, now: s.clock.now() });
    expect(event.type).toBe('intent.approved');
    expect(got.headers['webhook-id']).toBe(eventId);
    const eventPage = await (await get(`/dashboard/events/${eventId}`, sandbox)).text();
    expect(eventPage).toContain('int_test_');
    expect(eventPage).toContain('HTTP 200');
  });

  it('a type the endpoint does not subscribe to is sent, and says so; an unknown type is a 400 form error', async () => {
    const ep = await endpoint('/test-unsub');
    const r = await post(`/dashboard/endpoints/${ep.id}/test`, { type: 'dispute.lost' }, sandbox);
    expect(r.status).toBe(303);
    expect(await (await get(r.headers.get('location')!, sandbox)).text()).toContain('does not subscribe to that type: sent anyway');
    for (const type of ['intent.exploded', '', 'x'.repeat(10_000)]) {
      const bad = await post(`/dashboard/endpoints/${ep.id}/test`, { type }, sandbox);
      expect(bad.status).toBe(400);
      const html = await bad.text();
      expect(html).toContain('data-testid="test-error"');
      expect(html).toContain('unknown event type');
    }
  });
});

describe('recover', () => {
  it('sends a failed delivery again, and says how many', async () => {
    const ep = await endpoint('/recover');
    // One attempt: a 500 ends the delivery (expired), as a schedule run out would.
    expect((await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 1 } } })).status).toBe(200);
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const sent = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.approved' });
    const worker = harness.make();
    expect(await worker.tick()).toBe(1);
    const first = await api.get(`/events/${sent.body.event_id}`);
    expect(first.body.deliveries.map((d: { status: string }) => d.status)).toEqual(['expired']);
    await api.call('PATCH', '/operator/settings', { retry_schedules: { sandbox: { maxAttempts: 10 } } });
    rx.setResponder(() => ({ status: 200, body: 'ok' }));

    const now = s.clock.now();
    const since = new Date(now.getTime() - 3600_000).toISOString().slice(0, 16);
    const until = new Date(now.getTime() + 60_000).toISOString().slice(0, 16); // this minute, rounded up: allowed
    const r = await post(`/dashboard/endpoints/${ep.id}/recover`, { since, until }, sandbox);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/dashboard/endpoints/${ep.id}?recovered=1`);
    expect(await (await get(r.headers.get('location')!, sandbox)).text()).toContain('Recovered: 1 delivery queued again.');
    const before = rx.received.length;
    expect(await worker.tick()).toBe(1);
    expect(rx.received.length).toBe(before + 1);
    const after = await api.get(`/events/${sent.body.event_id}`);
    expect(after.body.deliveries.map((d: { status: string }) => d.status).sort()).toEqual(['expired', 'succeeded']);
    // Nothing left to recover.
    const again = await post(`/dashboard/endpoints/${ep.id}/recover`, { since, until }, sandbox);
    expect(again.headers.get('location')).toBe(`/dashboard/endpoints/${ep.id}?recovered=0`);
  });

  it('refuses garbage dates, since after until, the future and a window over 30 days, in the form', async () => {
    const ep = await endpoint('/recover-bad');
    const now = s.clock.now();
    const at = (ms: number) => new Date(now.getTime() + ms).toISOString().slice(0, 16);
    const cases: [Record<string, string>, RegExp][] = [
      [{ since: 'yesterday', until: at(0) }, /since must be a date and time in UTC/],
      [{ since: '2026-02-31T00:00', until: at(0) }, /since must be a date and time/],
      [{ since: at(-3600_000), until: '' }, /until must be a date and time/],
      [{ since: '2026-01-01T25:00', until: at(0) }, /since must be/],
      [{ since: at(-3600_000), until: at(-7200_000) }, /since must be before until/],
      [{ since: at(-3600_000), until: at(-3600_000) }, /since must be before until/],
      [{ since: at(-3600_000), until: at(86_400_000) }, /until is in the future/],
      [{ since: at(-40 * 86_400_000), until: at(0) }, /at most 30 days/],
      [{ since: 'x'.repeat(5000), until: at(0) }, /since must be/],
    ];
    for (const [fields, message] of cases) {
      const r = await post(`/dashboard/endpoints/${ep.id}/recover`, fields, sandbox);
      expect(r.status, JSON.stringify(fields).slice(0, 80)).toBe(400);
      const html = await r.text();
      expect(html).toContain('data-testid="recover-error"');
      expect(html).toMatch(message);
    }
  });

  it('reads the inputs as UTC', () => {
    expect(parseUtcInput('2026-03-04T05:06', 'since').toISOString()).toBe('2026-03-04T05:06:00.000Z');
    expect(parseUtcInput('2026-03-04T05:06:07', 'since').toISOString()).toBe('2026-03-04T05:06:07.000Z');
    expect(() => parseUtcInput('2026-03-04T05:06Z', 'since')).toThrow();
    const now = new Date('2026-03-04T12:00:30Z');
    // "Now", to the minute and rounded up, is allowed; two minutes on is the future.
    expect(recoverWindow('2026-03-04T11:00', '2026-03-04T12:01', now).until.toISOString()).toBe('2026-03-04T12:01:00.000Z');
    expect(() => recoverWindow('2026-03-04T11:00', '2026-03-04T12:02', now)).toThrow(/future/);
    expect(() => recoverWindow('2026-03-04T12:01', '2026-03-04T12:01', now)).toThrow(/before until/);
  });
});

describe('fifo head', () => {
  it('shows the delivery a fifo endpoint\'s lane waits on: its event, attempts, next attempt, and what is behind it', async () => {
    const ep = await endpoint('/fifo', { ordering: 'fifo', events: ['*'] });
    rx.setResponder(() => ({ status: 500, body: 'stuck' }));
    const a = await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.approved' });
    await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.declined' });
    const worker = harness.make();
    expect(await worker.tick()).toBe(1); // one at a time: the head fails, the second waits behind it
    for (const path of [`/dashboard/endpoints/${ep.id}`, '/dashboard/endpoints']) {
      const page = await (await get(path, sandbox)).text();
      // On the list, this endpoint's row (others are fifo too).
      const html = path === '/dashboard/endpoints' ? page.split(`data-endpoint-id="${ep.id}"`)[1]!.split('</tr>')[0]! : page;
      const head = /data-testid="fifo-head">([\s\S]*?)<\/span>/.exec(html)![1]!;
      expect(head).toContain(`href="/dashboard/events/${a.body.event_id}"`);
      expect(head).toContain('1 attempt,');
      expect(head).toMatch(/next attempt \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
      expect(head).toContain('last HTTP 500');
      expect(head).toContain('1 behind it');
    }
  });

  it('shows why an endpoint was disabled automatically', async () => {
    const ep = await endpoint('/gone', { events: ['*'] });
    rx.setResponder((req) => (req.path === '/gone' ? { status: 410, body: 'gone' } : { status: 200 }));
    await api.post(`/webhook/endpoints/${ep.id}/test`, { type: 'intent.approved' });
    await harness.make().tick();
    expect((await api.get(`/webhook/endpoints/${ep.id}`)).body.disabled_reason).toBe('gone');
    const html = await (await get(`/dashboard/endpoints/${ep.id}`, sandbox)).text();
    expect(html).toContain('data-testid="disabled-reason">gone: auto-disabled, the receiver answered 410 Gone');
  });
});
