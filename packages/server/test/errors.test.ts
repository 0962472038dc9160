/**
 * One error shape for everything the server can answer: the catalog, router and parser errors (bad percent-encoding,
 * long ids, oversized headers and query strings, oversized bodies streamed without Expect), JSON nesting, and the
 * unknown-field policy.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOG } from '../src/domain/errors.js';
import { client, newOperator, newUser, startTestServer, userBody, type Api, type TestServer } from './helpers.js';

let s: TestServer;
let api: Api;
let key: string;

beforeAll(async () => {
  s = await startTestServer();
  key = (await newOperator(s)).sandbox;
  api = client(s.url, key);
});
afterAll(async () => {
  await s?.stop();
});

interface Raw { status: number; headers: http.IncomingHttpHeaders; body: string; error?: string }

/** A request exactly as given (path bytes untouched), the body written in chunks without waiting for 100 Continue. */
function raw(method: string, rawPath: string, o: { headers?: Record<string, string>; body?: Buffer; chunk?: number } = {}): Promise<Raw> {
  const u = new URL(s.url);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: rawPath, headers: { authorization: `Bearer ${key}`, ...o.headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }));
    });
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (o.body) {
      const size = o.chunk ?? o.body.length;
      let i = 0;
      const write = () => {
        while (i < o.body!.length) {
          const ok = req.write(o.body!.subarray(i, i + size));
          i += size;
          if (!ok) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    } else req.end();
  });
}

function expectShape(r: Raw, status: number, code: string) {
  expect(r.error, `no transport error (${r.error})`).toBeUndefined();
  expect(r.status).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(r.body);
  expect(body).toEqual({ error: { code, message: expect.any(String), ...(body.error.field ? { field: expect.any(String) } : {}) } });
}

describe('router and parser errors in the one shape', () => {
  it.each(['/user/%FF%FE', '/user/%C3%28', '/user/%u0000', '/events/%E0%A4%A'])('bad percent-encoding %s → 400 invalid_url_encoding', async (p) => {
    expectShape(await raw('GET', p), 400, 'invalid_url_encoding');
  });

  it('an id past the router\'s old 100 characters is checked by the schema (128): 404 below it, 400 invalid_length above', async () => {
    expectShape(await raw('GET', `/user/user_${'x'.repeat(110)}`), 404, 'user_not_found');
    expectShape(await raw('GET', `/user/${'x'.repeat(200)}`), 400, 'invalid_length');
    expectShape(await raw('GET', `/user/${'x'.repeat(5000)}`), 400, 'invalid_length');
  });

  it('a 100 KB header and a 70 KB query string → 431 headers_too_large, readable before the connection closes', async () => {
    expectShape(await raw('GET', '/user/x', { headers: { 'x-big': 'a'.repeat(100_000) } }), 431, 'headers_too_large');
    expectShape(await raw('GET', `/events?type=${'b'.repeat(70_000)}`), 431, 'headers_too_large');
  });

  it('a 1 MB body streamed without Expect → the 413 body_too_large is readable (no reset before the answer)', async () => {
    for (const chunk of [16 * 1024, 1024 * 1024]) {
      const r = await raw('POST', '/user', { headers: { 'content-type': 'application/json' }, body: Buffer.alloc(1024 * 1024, 0x20), chunk });
      expectShape(r, 413, 'body_too_large');
    }
    // Without Content-Length (chunked): the same.
    const u = new URL(s.url);
    const r = await new Promise<Raw>((resolve) => {
      const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/user', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: (err as NodeJS.ErrnoException).code }));
      for (let i = 0; i < 64; i++) req.write(Buffer.alloc(16 * 1024, 0x20));
      req.end();
    });
    expectShape(r, 413, 'body_too_large');
    expect((await api.get('/healthz')).status).toBe(200);
  });

  it('an unknown route is 404 route_not_found; the server stays healthy after all of the above', async () => {
    expectShape(await raw('GET', '/no/such/route'), 404, 'route_not_found');
    expect((await api.get('/healthz')).status).toBe(200);
  });
});

describe('bodies', () => {
  it(`JSON nested deeper than 32 levels is refused before anything recursive sees it: 400 too_deep (a 10,000-deep array)`, async () => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const text = JSON.stringify(userBody()).replace(/}$/, `,"extra":${deep}}`);
    const r = await api.post('/user', text, { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('too_deep');
    // Brackets inside strings do not count.
    const inString = await api.post('/user', { ...userBody(), tag: '['.repeat(200) });
    expect(inString.status).toBe(200);
  });

  it('unknown fields are dropped: not stored, not echoed, at any level', async () => {
    const r = await api.post('/user', { ...userBody({ tag: 'unknown-fields' }), favourite_colour: 'teal', name: { first: 'Ada', last: 'Lovelace', middle: 'Augusta' }, __proto__x: 1 });
    expect(r.status).toBe(200);
    const got = await api.get(`/user/${r.body.id}`);
    expect(got.body).not.toHaveProperty('favourite_colour');
    expect(got.body.name).toEqual({ first: 'Ada', last: 'Lovelace' });
    const { rows } = await s.running.deps.db.query('SELECT data FROM users WHERE id = $1', [r.body.id]);
    expect(JSON.stringify(rows[0].data)).not.toMatch(/favourite_colour|middle|__proto__x/);
    // A field Push Cash clients send that Cashwire does not model (user_id on /authorize) does not break the call.
    const u = await newUser(api);
    const t = await api.post('/token', { user_id: u, type: 'card_only' });
    const a = await api.post('/authorize', { amount: 500, currency: 'USD', direction: 'cash_in', token: t.body.token ?? t.body.id, user_id: u });
    expect([200, 401]).toContain(a.status);
  });
});

describe('the catalog', () => {
  it('has a 4xx or 5xx status and a message for every code, and the README table lists exactly its codes', () => {
    const readme = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('\n## ', readme.indexOf('### Errors')));
    const listed = new Set([...section.matchAll(/`([a-z][a-z0-9_]*)`/g)].map((m) => m[1]!));
    for (const [code, { status, message }] of Object.entries(ERROR_CATALOG)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(message.length, code).toBeGreaterThan(5);
      expect(listed.has(code), `README's error table lists ${code}`).toBe(true);
    }
  });
});
