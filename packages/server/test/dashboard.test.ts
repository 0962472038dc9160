/**
 * The dashboard over HTTP (api/routes/dashboard/): sign-in with a good, a wrong and a revoked key, the cookie's
 * flags, CSRF, sign-out, and a production key not seeing sandbox events; the endpoints page (the secret shown once,
 * disable, enable, rotate) and the sandbox clock page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeKey } from '../src/payments/operators/operators.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';
import { csrfOf, dashboardClient } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let sandboxEventId: string;
let intentId: string;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s);
  api = client(s.url, keys.sandbox);
  const userId = await newUser(api);
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1234 });
  intentId = intent.id;
  const ev = await api.get(`/events?intent_id=${intent.id}`);
  sandboxEventId = ev.body.data[0].id;
});
afterAll(() => s?.stop());

const dash = dashboardClient(() => s.url);
const { post, get } = dash;

/** Signs in (a 303 to the events page); returns the cookie pair to send back and the Set-Cookie header as answered. */
async function signIn(key: string): Promise<{ cookie: string; setCookie: string }> {
  const r = await dash.signIn(key);
  expect(r.location).toBe('/dashboard/events');
  return r;
}

describe('dashboard sign-in', () => {
  it('shows the sign-in form; a page without a session redirects to it', async () => {
    const r = await get('/dashboard/sign-in');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await r.text()).toContain('name="key"');
    const events = await get('/dashboard/events');
    expect(events.status).toBe(303);
    expect(events.headers.get('location')).toBe('/dashboard/sign-in');
  });

  it('a good key gets an httpOnly, SameSite=Strict, Path=/dashboard session cookie holding a random id, stored hashed', async () => {
    const { cookie, setCookie } = await signIn(keys.sandbox);
    expect(setCookie).toMatch(/^cw_dashboard=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/dashboard');
    expect(setCookie).toContain('Max-Age=43200');
    expect(setCookie).not.toContain(keys.sandbox);
    const raw = cookie.split('=')[1]!;
    const { rows } = await s.running.deps.db.query<{ id_hash: Buffer; environment: string; expires_at: Date; created_at: Date }>(
      'SELECT id_hash, environment, expires_at, created_at FROM dashboard_sessions WHERE operator_id = $1', [keys.id]);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((x) => !x.id_hash.toString('base64url').includes(raw))).toBe(true);
    expect(rows[0]!.environment).toBe('sandbox');
    expect(rows[0]!.expires_at.getTime() - rows[0]!.created_at.getTime()).toBe(12 * 3600 * 1000);
    const page = await get('/dashboard/events', cookie);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(sandboxEventId);
    expect(html).toContain('SANDBOX');
  });

  it('a wrong key gets the form again with an error, 401, and no cookie', async () => {
    for (const key of ['cw_sk_test_nope', '', 'x'.repeat(300)]) {
      const r = await post('/dashboard/sign-in', { key });
      expect(r.status).toBe(401);
      expect(r.headers.get('set-cookie')).toBeNull();
      const html = await r.text();
      expect(html).toContain('not valid');
      expect(html).toContain('name="key"');
    }
  });

  it('a revoked key is refused, and revoking a key ends its sessions', async () => {
    const other = await newOperator(s, 'Revoked Co');
    const { cookie } = await signIn(other.sandbox);
    expect((await get('/dashboard/events', cookie)).status).toBe(200);
    const { rows } = await s.running.deps.db.query<{ id: string }>("SELECT id FROM api_keys WHERE operator_id = $1 AND environment = 'sandbox'", [other.id]);
    await revokeKey(s.running.deps, rows[0]!.id);
    expect((await post('/dashboard/sign-in', { key: other.sandbox })).status).toBe(401);
    expect((await get('/dashboard/events', cookie)).status).toBe(303);
  });

  it("counts the dashboard in a budget of its own, never in the API's", async () => {
    const { cookie } = await signIn(keys.sandbox);
    const sum = async (where: string) => (await s.running.deps.db.query<{ n: string }>(`SELECT coalesce(sum(count), 0)::text AS n FROM rate_counters WHERE ${where}`)).rows[0]!.n;
    const apiBefore = await sum("class <> 'dashboard'");
    const dashBefore = Number(await sum("class = 'dashboard'"));
    for (let i = 0; i < 5; i++) expect((await get('/dashboard/events', cookie)).status).toBe(200);
    expect(await sum("class <> 'dashboard'")).toBe(apiBefore);
    expect(Number(await sum("class = 'dashboard'"))).toBe(dashBefore + 5);
  });

  it('answers 429 with Retry-After past the dashboard budget, and the API key still works', async () => {
    const other = await newOperator(s, 'Busy Tab Co');
    const otherApi = client(s.url, other.sandbox);
    expect((await otherApi.call('PATCH', '/operator/settings', { rate_limits: { dashboard: 3 } })).status).toBe(200);
    const { cookie } = await signIn(other.sandbox);
    for (let i = 0; i < 3; i++) expect((await get('/dashboard/events', cookie)).status).toBe(200);
    const r = await get('/dashboard/events', cookie);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await r.text()).toContain('too many requests');
    // A refused request is not counted, and the operator's backend is not affected.
    expect((await get('/dashboard/endpoints', cookie)).status).toBe(429);
    expect((await otherApi.get('/events')).status).toBe(200);
  });
});

describe('dashboard CSRF and sign-out', () => {
  it('refuses a POST without the CSRF token, with a wrong one, or from another origin', async () => {
    const { cookie } = await signIn(keys.sandbox);
    for (const fields of [{}, { csrf: 'wrong' }]) {
      const r = await post(`/dashboard/events/${sandboxEventId}/resend`, fields, cookie);
      expect(r.status).toBe(403);
      const out = await post('/dashboard/sign-out', fields, cookie);
      expect(out.status).toBe(403);
    }
    const html = await (await get(`/dashboard/events/${sandboxEventId}`, cookie)).text();
    const csrf = csrfOf(html);
    const cross = await post('/dashboard/sign-out', { csrf }, cookie, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    const crossSignIn = await post('/dashboard/sign-in', { key: keys.sandbox }, undefined, { origin: 'https://evil.example' });
    expect(crossSignIn.status).toBe(403);
    expect(crossSignIn.headers.get('set-cookie')).toBeNull();
    // Still signed in: nothing was done.
    expect((await get('/dashboard/events', cookie)).status).toBe(200);
  });

  it('resend with the token redirects back to the event', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const csrf = csrfOf(await (await get(`/dashboard/events/${sandboxEventId}`, cookie)).text());
    const r = await post(`/dashboard/events/${sandboxEventId}/resend`, { csrf }, cookie);
    expect(r.status).toBe(303);
    // The payment had no webhook destination: nothing to resend, said on the page.
    expect(r.headers.get('location')).toBe(`/dashboard/events/${sandboxEventId}?resent=none`);
  });

  it('sign-out deletes the session and clears the cookie', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const csrf = csrfOf(await (await get('/dashboard/events', cookie)).text());
    const r = await post('/dashboard/sign-out', { csrf }, cookie);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/dashboard/sign-in');
    expect(r.headers.get('set-cookie')).toMatch(/^cw_dashboard=; .*Max-Age=0/);
    expect((await get('/dashboard/events', cookie)).status).toBe(303);
    const idHash = (await import('node:crypto')).createHash('sha256').update(cookie.split('=')[1]!).digest();
    const { rows } = await s.running.deps.db.query('SELECT 1 FROM dashboard_sessions WHERE id_hash = $1', [idHash]);
    expect(rows).toHaveLength(0);
  });
});

describe('dashboard environments and filters', () => {
  it('a production key sees production only: no sandbox event in the list, a sandbox event is not found', async () => {
    const { cookie } = await signIn(keys.production);
    const list = await get('/dashboard/events', cookie);
    expect(list.status).toBe(200);
    const html = await list.text();
    expect(html).toContain('PRODUCTION');
    expect(html).not.toContain(sandboxEventId);
    expect(html).toContain('No events match');
    const one = await get(`/dashboard/events/${sandboxEventId}`, cookie);
    expect(one.status).toBe(404);
    expect(await one.text()).not.toContain('intent.');
    const csrf = csrfOf(html);
    const resend = await post(`/dashboard/events/${sandboxEventId}/resend`, { csrf }, cookie);
    expect(resend.status).toBe(404);
  });

  it('filters by type, intent and delivery status; refuses a made-up cursor; escapes what it echoes', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const byIntent = await (await get(`/dashboard/events?intent_id=${intentId}`, cookie)).text();
    expect(byIntent).toContain(sandboxEventId);
    const none = await (await get('/dashboard/events?type=no.such.type', cookie)).text();
    expect(none).toContain('No events match');
    const dead = await (await get('/dashboard/events?status=dead', cookie)).text();
    expect(dead).toContain('No events match');
    expect(dead).toContain('<option value="dead" selected>');
    const xss = await (await get(`/dashboard/events?type=${encodeURIComponent('"><script>alert(1)</script>')}`, cookie)).text();
    expect(xss).not.toContain('<script>alert(1)</script>');
    expect(xss).toContain('&#60;script&#62;');
    expect((await get('/dashboard/events?cursor=abc', cookie)).status).toBe(400);
  });
});

describe('dashboard endpoints', () => {
  const secretOf = (html: string) => /<pre data-testid="secret">([^<]+)<\/pre>/.exec(html)?.[1];

  it('create shows the secret once; the list never shows it; rotate shows the new one once', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const list = await get('/dashboard/endpoints', cookie);
    expect(list.status).toBe(200);
    const csrf = csrfOf(await list.text());
    const r = await post('/dashboard/endpoints', { csrf, url: 'http://127.0.0.1:9/dash-hook', events: 'intent.approved, intent.declined', format: 'standard' }, cookie);
    expect(r.status).toBe(200);
    const html = await r.text();
    const secret = secretOf(html)!;
    expect(secret).toMatch(/^whsec_/);
    expect(html).toContain('shown this once');
    const id = /Endpoint (ep_[A-Za-z0-9_]+) added/.exec(html)![1]!;
    const api2 = await api.get(`/webhook/endpoints/${id}`);
    expect(api2.body.events).toEqual(['intent.approved', 'intent.declined']);
    expect(api2.body.format).toBe('standard');
    const again = await (await get('/dashboard/endpoints', cookie)).text();
    expect(again).toContain(id);
    expect(again).toContain('http://127.0.0.1:9/dash-hook');
    expect(again).not.toContain(secret);
    expect(again).not.toContain('data-testid="secret"');

    // Disable, enable: back to the list, the status says so.
    const dis = await post(`/dashboard/endpoints/${id}/disable`, { csrf }, cookie);
    expect(dis.status).toBe(303);
    expect(dis.headers.get('location')).toBe('/dashboard/endpoints?done=disabled');
    expect((await api.get(`/webhook/endpoints/${id}`)).body).toMatchObject({ status: 'disabled', disabled_reason: 'operator' });
    expect(await (await get('/dashboard/endpoints?done=disabled', cookie)).text()).toContain('data-testid="disabled-reason">operator');
    expect((await post(`/dashboard/endpoints/${id}/enable`, { csrf }, cookie)).status).toBe(303);
    expect((await api.get(`/webhook/endpoints/${id}`)).body.status).toBe('enabled');

    const rot = await post(`/dashboard/endpoints/${id}/rotate`, { csrf }, cookie);
    expect(rot.status).toBe(200);
    const rotHtml = await rot.text();
    const rotated = secretOf(rotHtml)!;
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    expect((await api.get(`/webhook/endpoints/${id}/secret`)).body.secret).toBe(rotated);
    const after = await (await get('/dashboard/endpoints', cookie)).text();
    expect(after).not.toContain(rotated);
    expect(after).not.toContain(secret);
  });

  it('a bad form is the page again with the error, escaped, and nothing made', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const csrf = csrfOf(await (await get('/dashboard/endpoints', cookie)).text());
    const before = (await api.get('/webhook/endpoints')).body.data.length;
    for (const fields of [{ url: 'not a url', events: '*' }, { url: 'http://127.0.0.1:9/x', events: 'no.such"><b>' }, { url: 'http://127.0.0.1:9/x', events: ' , ' }, { url: 'http://127.0.0.1:9/x', events: '*', format: 'xml' }]) {
      const r = await post('/dashboard/endpoints', { csrf, ...fields }, cookie);
      expect(r.status).toBe(400);
      const html = await r.text();
      expect(html).toContain('data-testid="error"');
      expect(html).not.toContain('<b>');
      expect(html).not.toContain('data-testid="secret"');
    }
    expect((await api.get('/webhook/endpoints')).body.data.length).toBe(before);
  });

  it('refuses create, disable, rotate and advance without the CSRF token or from another origin', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const made = await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/csrf', events: ['*'] });
    const id = made.body.id;
    const csrf = csrfOf(await (await get('/dashboard/endpoints', cookie)).text());
    const before = (await api.get('/webhook/endpoints')).body.data.length;
    for (const fields of [{}, { csrf: 'wrong' }]) {
      expect((await post('/dashboard/endpoints', { ...fields, url: 'http://127.0.0.1:9/y', events: '*' }, cookie)).status).toBe(403);
      expect((await post(`/dashboard/endpoints/${id}/disable`, fields, cookie)).status).toBe(403);
      const rot = await post(`/dashboard/endpoints/${id}/rotate`, fields, cookie);
      expect(rot.status).toBe(403);
      expect(await rot.text()).not.toContain('data-testid="secret"');
      expect((await post('/dashboard/clock/advance', { ...fields, duration: '1h' }, cookie)).status).toBe(403);
    }
    expect((await post(`/dashboard/endpoints/${id}/disable`, { csrf }, cookie, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await api.get('/webhook/endpoints')).body.data.length).toBe(before);
    expect((await api.get(`/webhook/endpoints/${id}`)).body.status).toBe('enabled');
    expect((await api.get(`/webhook/endpoints/${id}/secret`)).body.secret).toBe(made.body.secret);
    expect((await api.get('/sandbox/clock')).body.total_advanced_seconds).toBe(0);
  });

  it('a production key sees its own endpoints only, and cannot act on a sandbox one', async () => {
    const sandboxEp = (await api.post('/webhook/endpoints', { url: 'http://127.0.0.1:9/sandbox-only', events: ['*'] })).body.id;
    const prodApi = client(s.url, keys.production);
    const prodEp = await prodApi.post('/webhook/endpoints', { url: 'https://93.184.216.34/prod-hook', events: ['*'] });
    expect(prodEp.status).toBe(201);
    const { cookie } = await signIn(keys.production);
    const html = await (await get('/dashboard/endpoints', cookie)).text();
    expect(html).toContain('PRODUCTION');
    expect(html).toContain(prodEp.body.id);
    expect(html).toContain('https://93.184.216.34/prod-hook');
    expect(html).not.toContain(sandboxEp);
    expect(html).not.toContain('127.0.0.1');
    const csrf = csrfOf(html);
    expect((await post(`/dashboard/endpoints/${sandboxEp}/disable`, { csrf }, cookie)).status).toBe(404);
    expect((await post(`/dashboard/endpoints/${sandboxEp}/rotate`, { csrf }, cookie)).status).toBe(404);
    expect((await api.get(`/webhook/endpoints/${sandboxEp}`)).body.status).toBe('enabled');
    // A production endpoint must be https: the page says so.
    const bad = await post('/dashboard/endpoints', { csrf, url: 'http://93.184.216.34/x', events: '*' }, cookie);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('https');
  });
});

describe('dashboard sandbox clock', () => {
  it('a production session sees a notice, and its advance is refused', async () => {
    const { cookie } = await signIn(keys.production);
    const page = await get('/dashboard/clock', cookie);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-testid="clock-notice"');
    expect(html).not.toContain('id="advance"');
    expect((await post('/dashboard/clock/advance', { csrf: csrfOf(html), duration: '1h' }, cookie)).status).toBe(403);
  });

  it('advancing from the page moves a due time and shows what moved', async () => {
    const other = await newOperator(s, 'Clock Co');
    const otherApi = client(s.url, other.sandbox);
    const userId = await newUser(otherApi);
    const { intent } = await payThroughPage(s, otherApi, { direction: 'cash_in', user_id: userId, amount: 500 });
    const db = s.running.deps.db;
    const settleAt = async () => (await db.query<{ settle_at: Date | null }>('SELECT settle_at FROM intents WHERE id = $1', [intent.id])).rows[0]!.settle_at;
    const before = await settleAt();
    expect(before).not.toBeNull();
    const { cookie } = await signIn(other.sandbox);
    const page = await (await get('/dashboard/clock', cookie)).text();
    expect(page).toContain('data-testid="clock-total">0s');
    const csrf = csrfOf(page);
    const bad = await post('/dashboard/clock/advance', { csrf, duration: '2 weeks' }, cookie);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('not a duration');
    const r = await post('/dashboard/clock/advance', { csrf, duration: '2m' }, cookie);
    expect(r.status).toBe(200);
    const html = await r.text();
    expect(html).toContain('Advanced by 2m');
    expect(html).toContain('data-testid="moved-settlements">1<');
    expect(html).toContain('data-testid="clock-total">2m');
    expect((await settleAt())!.getTime()).toBe(before!.getTime() - 120_000);
    expect((await otherApi.get('/sandbox/clock')).body).toMatchObject({ total_advanced_seconds: 120, advances: 1 });
  });
});
