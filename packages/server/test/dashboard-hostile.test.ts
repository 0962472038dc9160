/**
 * The dashboard, signed in, against hostile input. The main campaign (hostile.test.ts) reaches the dashboard's routes
 * without a session only, so it sees the redirects to the sign-in and never the handlers behind them. Here every
 * /dashboard route of the server's own route table (a route added later is covered without touching this file) is
 * sent generated requests WITH a valid session cookie, and for POSTs usually with the session's valid CSRF token, so
 * that the handlers parse what comes: path params (another operator's ids, 9,000 characters, bad percent-encodings,
 * raw non-UTF-8 bytes, prototype keys), query values (repeated and bracketed keys, huge values, NUL, dates that are not
 * dates), form fields (each field the dashboard reads, with the same hostile values; wrong, missing CSRF tokens), and
 * bodies that are not forms (JSON, garbage bytes, multipart).
 *
 * Properties: never a 5xx, never a timeout or reset; a 4xx is an HTML page; a 3xx goes somewhere within /dashboard;
 * no answer shows operator B's name or B's objects (the session is A's sandbox); a rejected POST (4xx) writes nothing
 * (exact row counts of every table around it); the session and the server are still fine afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Keys, type TestServer } from './helpers.js';
import { csrfOf, dashboardClient } from './dashboard-kit.js';
import { diffCounts, rowCounter, type Counter } from './hostile/db.js';
import { BAD_PERCENT, PROTO_KEYS, routeKey, type Route } from './hostile/generate.js';
import { send, type Outcome } from './hostile/http.js';

const resolver: LookupFn = (_host, options, cb) => (options.all ? cb(null, [{ address: '93.184.216.34', family: 4 }]) : cb(null, '93.184.216.34', 4));
const RUNS = Number(process.env.CASHWIRE_DASHBOARD_HOSTILE_RUNS ?? 40);
/** Cases per query key and per form field, for each route. */
const PER_KEY = 6;
const B_NAME = 'Bystander Beta Ltd';

let s: TestServer;
let a: Keys;
let cookie: string;
let csrf: string;
let counter: Counter;
const bIds: string[] = [];
const aIds: string[] = [];
let routes: Route[] = [];

beforeAll(async () => {
  s = await startTestServer({ rateLimits: { create: 1_000_000, read: 1_000_000, dashboard: 1_000_000_000 } }, undefined, { resolver });
  a = await newOperator(s, 'Acme Alpha');
  const b = await newOperator(s, B_NAME);
  for (const [keys, ids] of [[a, aIds], [b, bIds]] as const) {
    const api = client(s.url, keys.sandbox);
    const userId = await newUser(api);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1234 });
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
    const ep = (await api.post('/webhook/endpoints', { url: `https://example.com/${keys.id}/hook`, events: ['*'] })).body;
    ids.push(userId, intent.id, ev.id, ep.id);
  }
  ({ cookie } = await dashboardClient(s.url).signIn(a.sandbox));
  csrf = csrfOf(await (await fetch(`${s.url}/dashboard/events`, { headers: { cookie } })).text());
  counter = await rowCounter(s.running.deps.db);
  const table = s.running.app!.routeTable as Route[];
  const seen = new Set<string>();
  routes = table.filter((r) => {
    if (!r.url.startsWith('/dashboard') || !['GET', 'POST'].includes(r.method)) return false;
    // Signing out would end the session every other case needs: it is tested in dashboard.test.ts.
    if (r.url === '/dashboard/sign-out') return false;
    const k = routeKey(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}, 120_000);
afterAll(() => s?.stop());

const RAW_BYTES = ['\xff\xfe', '\xc3\x28', '\x80', 'evt_\xff'];
/** Percent-encoded; a lone surrogate (which encodeURIComponent refuses) goes out as its CESU bytes, invalid UTF-8. */
const enc = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '')) + '%ED%A0%80';
  }
};
/** A path segment: sent as is (already encoded, or raw bytes on purpose). */
const segmentArb = (): fc.Arbitrary<string> => fc.oneof(
  fc.constantFrom(...bIds.map(enc)),
  fc.constantFrom(...aIds.map(enc)),
  fc.constantFrom(...BAD_PERCENT),
  fc.constantFrom(...RAW_BYTES),
  fc.constantFrom(...PROTO_KEYS),
  fc.constantFrom('x'.repeat(9_000), 'x'.repeat(129), '%2e%2e', '..', '%20', 'null', '0', '-1', enc('<b>x</b>')),
);
const VALUES = ['', ' ', 'x'.repeat(5_000), '\u0000', 'a\u0000b', '\ud800', '<script>alert(1)</script>', "' OR '1'='1", '9999-99-99T99:99',
  '0000-01-01T00:00', '+275760-09-13T00:00', '2026-02-31T00:00', '1970-01-01T00:00', '2026-12-01T00:00', '-1', '1e309', 'NaN', '99999999999999999999',
  'http://127.0.0.1/', 'https://example.com/hook', '*', 'intent.approved', 'pending', 'dead', 'sandbox', 'production', '1d', '366d', '0s', '1h', 'fifo',
  'standard', 'sendcash', ...PROTO_KEYS];
/** Date-times as a datetime-local input sends them, with every field possibly out of range. */
const dateArb = fc.tuple(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.option(fc.integer({ min: 0, max: 99 })))
  .map(([y, mo, d, h, mi, sec]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}${sec === null ? '' : `:${String(sec).padStart(2, '0')}`}`);
/** Durations and counts as the clock and chart forms take them. */
const durationArb = fc.tuple(fc.oneof(fc.integer({ min: -5, max: 100 }), fc.constant(2 ** 53), fc.constant(1e21)), fc.constantFrom('', 's', 'm', 'h', 'd', 'w', 'ms', ' h')).map(([n, u]) => `${n}${u}`);
const valueArb = () => fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...VALUES) }, fc.string({ maxLength: 40 }), fc.constantFrom(...bIds), fc.constantFrom(...aIds),
  { weight: 2, arbitrary: dateArb }, durationArb,
);
const QUERY_KEYS = ['type', 'status', 'intent_id', 'from', 'to', 'cursor', 'endpoint_id', 'window', 'minutes', 'since', 'until', 'user_id', 'done', 'resent', 'status[]', 'type[0]', ...PROTO_KEYS];
const FORM_KEYS = ['key', 'url', 'events', 'format', 'ordering', 'duration', 'since', 'until', 'type', 'delivery_id', 'csrf', ...PROTO_KEYS];

interface Sent { method: string; path: string; headers: Record<string, string>; body?: Buffer; route: string }

/**
 * What a case varies. `mixed`: everything at once (path params, a few or all query keys, the body, the Origin). `query`:
 * one query key with a hostile value, everything else valid (A's own ids in the path), so that the handler gets past
 * its other checks to the parser of that key. `field`: the same for one form field of a POST, with a valid CSRF token.
 */
type Mode = { kind: 'mixed' } | { kind: 'query'; key: string } | { kind: 'field'; key: string };

function caseArb(route: Route, mode: Mode): fc.Arbitrary<Sent> {
  const param = mode.kind === 'mixed' ? segmentArb : () => fc.constantFrom(...aIds.map(enc));
  const segs = route.url.split('/').map((p) => (p.startsWith(':') ? param() : fc.constant(p)));
  const pathArb = fc.tuple(...segs).map((xs) => xs.join('/'));
  const qv = () => fc.oneof({ weight: 4, arbitrary: valueArb().map(enc) }, fc.constantFrom(...BAD_PERCENT));
  const toQuery = (kv: [string, string][]) => (kv.length ? '?' + kv.map(([k, v]) => `${enc(k)}=${v}`).join('&') : '');
  const queryArb = mode.kind === 'query'
    ? qv().map((v) => toQuery([[mode.key, v]]))
    : mode.kind === 'field'
      ? fc.constant('')
      : fc.oneof(
        fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), qv()), { maxLength: 4 }),
        fc.tuple(...QUERY_KEYS.map((k) => qv().map((v) => [k, v] as [string, string]))),
      ).map(toQuery);
  if (route.method === 'GET') {
    return fc.tuple(pathArb, queryArb).map(([p, q]) => ({ method: 'GET', path: p + q, headers: { cookie }, route: routeKey(route) }));
  }
  const form = (kv: [string, string][]) => ({ type: 'application/x-www-form-urlencoded', body: Buffer.from(new URLSearchParams(kv).toString()) });
  if (mode.kind !== 'mixed') {
    const fieldArb = mode.kind === 'field' ? valueArb().map((v) => form([['csrf', csrf], [mode.key, v]])) : fc.constant(form([['csrf', csrf]]));
    return fc.tuple(pathArb, queryArb, fieldArb).map(([p, q, b]) => ({
      method: 'POST', path: p + q, body: b.body, route: routeKey(route), headers: { cookie, 'content-type': b.type },
    }));
  }
  const token = fc.oneof({ weight: 6, arbitrary: fc.constant(csrf) }, fc.constantFrom('', 'x', csrf.slice(1), csrf + 'x'));
  const fields = fc.oneof(
    fc.array(fc.tuple(fc.constantFrom(...FORM_KEYS), valueArb()), { maxLength: 5 }),
    fc.tuple(...FORM_KEYS.filter((k) => k !== 'csrf').map((k) => valueArb().map((v) => [k, v] as [string, string]))),
  );
  const formArb = fc.tuple(token, fields).map(([t, kv]) => form([['csrf', t], ...kv]));
  const bodyArb: fc.Arbitrary<{ type: string; body: Buffer }> = fc.oneof(
    { weight: 8, arbitrary: formArb },
    fc.constant({ type: 'application/x-www-form-urlencoded', body: Buffer.from([0xff, 0xfe, 0x25, 0x00, 0x3d, 0x26, 0x3d]) }),
    fc.constant({ type: 'application/x-www-form-urlencoded', body: Buffer.from('csrf=' + csrf + '&' + 'url='.repeat(5_000)) }),
    fc.constant({ type: 'application/json', body: Buffer.from(JSON.stringify({ csrf, url: 'https://example.com' })) }),
    fc.constant({ type: 'multipart/form-data; boundary=x', body: Buffer.from(`--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n${csrf}\r\n--x--\r\n`) }),
    fc.constant({ type: 'text/plain', body: Buffer.from('\u0000\u0001garbage') }),
  );
  const origin = fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, fc.constantFrom('https://evil.example', 'null', s.url));
  return fc.tuple(pathArb, queryArb, bodyArb, origin).map(([p, q, b, o]) => ({
    method: 'POST', path: p + q, body: b.body, route: routeKey(route),
    headers: { cookie, 'content-type': b.type, ...(o ? { origin: o } : {}) },
  }));
}

function problemsOf(c: Sent, o: Outcome): string[] {
  if (!o.ok) return [`no answer: ${o.error}`];
  const r = o.res;
  const out: string[] = [];
  const type = String(r.headers['content-type'] ?? '');
  if (r.status >= 500) out.push(`a ${r.status}: ${r.text.slice(0, 200)}`);
  else if (r.status >= 400) {
    if (!/^text\/html/.test(type) || !/^\s*<!doctype html>/i.test(r.text)) {
      // The app's own errors that come before any dashboard handler (a body over the limit, a content type no parser
      // takes) are in the API's error shape: that is the one documented exception.
      const shaped = typeof r.json === 'object' && r.json !== null && typeof (r.json as { error?: { code?: unknown } }).error?.code === 'string';
      if (!shaped) out.push(`a ${r.status} that is neither an HTML page nor the error shape: ${type} ${r.text.slice(0, 120)}`);
    }
  } else if (r.status >= 300) {
    const loc = String(r.headers.location ?? '');
    if (!loc.startsWith('/dashboard')) out.push(`a ${r.status} to ${loc}`);
  }
  if (r.status < 300 && r.text.includes(B_NAME)) out.push('an answer shows operator B');
  if (r.status < 300 && bIds.some((id) => r.text.includes(id) && !c.path.includes(enc(id)) && !c.path.includes(id) && !(c.body?.toString('latin1').includes(id)))) {
    out.push("an answer shows one of operator B's ids it was not asked about");
  }
  return out;
}

describe('the dashboard, signed in, against hostile requests', () => {
  it('covers the dashboard routes', () => {
    expect(routes.length).toBeGreaterThan(8);
    expect(routes.map(routeKey)).toContain('GET /dashboard/events/:id');
  });

  it('never answers a 5xx, never hangs, answers HTML or a redirect within the dashboard, shows nothing of operator B', async () => {
    const found: string[] = [];
    for (const route of routes) {
      const modes: [Mode, number][] = [
        [{ kind: 'mixed' }, RUNS],
        ...QUERY_KEYS.map((key): [Mode, number] => [{ kind: 'query', key }, PER_KEY]),
        ...(route.method === 'POST' ? FORM_KEYS.filter((k) => k !== 'csrf').map((key): [Mode, number] => [{ kind: 'field', key }, PER_KEY]) : []),
      ];
      for (const [mode, numRuns] of modes) {
        const label = `${routeKey(route)} (${mode.kind === 'mixed' ? 'mixed' : `${mode.kind} ${mode.key}`})`;
        await fc.assert(
          fc.asyncProperty(caseArb(route, mode), async (c) => {
            const before = c.method === 'POST' ? await counter.counts() : undefined;
            const o = await send(s.url, { method: c.method, path: c.path, headers: c.headers, body: c.body }, { timeoutMs: 10_000 });
            const problems = problemsOf(c, o);
            if (before && o.ok && o.res.status >= 400 && o.res.status < 500) {
              const diff = diffCounts(before, await counter.counts());
              if (diff.length) problems.push(`a rejected POST (${o.res.status}) wrote: ${diff.join(', ')}`);
            }
            if (problems.length) found.push(`${label} ${c.method} ${c.path.slice(0, 160)} body=${c.body?.toString('latin1').slice(0, 160) ?? ''}: ${problems.join('; ')}`);
            return problems.length === 0;
          }),
          { numRuns, endOnFailure: true },
        ).catch((e: Error) => {
          // A case that returned false is in `found` already; one that threw is not: keep fast-check's own report.
          if (!found.some((f) => f.startsWith(label))) found.push(`${label}: ${e.message.slice(0, 600)}`);
        });
      }
    }
    expect(found).toEqual([]);
    // The session and the server are still fine.
    expect((await fetch(`${s.url}/dashboard/events`, { headers: { cookie }, redirect: 'manual' })).status).toBe(200);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  }, 600_000);
});
