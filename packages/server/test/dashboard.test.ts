/**
 * The dashboard over HTTP (api/routes/dashboard.ts): sign-in with a good, a wrong and a revoked key, the cookie's
 * flags, CSRF, sign-out, and a production key not seeing sandbox events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeKey } from '../src/payments/operators/operators.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

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

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

function post(path: string, fields: Record<string, string>, cookie?: string, headers: Record<string, string> = {}) {
  return fetch(s.url + path, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
    body: form(fields),
  });
}
function get(path: string, cookie?: string) {
  return fetch(s.url + path, { redirect: 'manual', headers: cookie ? { cookie } : {} });
}

/** Signs in; returns the cookie pair to send back and the Set-Cookie header as answered. */
async function signIn(key: string): Promise<{ cookie: string; setCookie: string }> {
  const r = await post('/dashboard/sign-in', { key });
  expect(r.status).toBe(303);
  expect(r.headers.get('location')).toBe('/dashboard/events');
  const setCookie = r.headers.get('set-cookie')!;
  return { cookie: setCookie.split(';')[0]!, setCookie };
}

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

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

  it('does not count the dashboard in the API rate limits', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const before = await s.running.deps.db.query<{ n: string }>('SELECT coalesce(sum(count), 0)::text AS n FROM rate_counters');
    for (let i = 0; i < 5; i++) expect((await get('/dashboard/events', cookie)).status).toBe(200);
    const after = await s.running.deps.db.query<{ n: string }>('SELECT coalesce(sum(count), 0)::text AS n FROM rate_counters');
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
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
