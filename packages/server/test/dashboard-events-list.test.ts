/**
 * The dashboard's events list over HTTP: the time window's inputs (datetime-local values read as UTC; a date that is
 * not one is refused, not rolled over; "From" includes its own instant) and the live stream's end when its session
 * ends (signed out: an open tab stops being told anything).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utcOfLocalInput } from '../src/api/routes/dashboard/events-list.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';
import { dashboardClient } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let api: Api;
const { get, post, signIn, csrfOf } = dashboardClient(() => s.url);

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s);
  api = client(s.url, keys.sandbox);
});
afterAll(() => s?.stop());

describe('the time window', () => {
  it('reads datetime-local values as UTC and refuses what is not a date instead of rolling it over', () => {
    expect(utcOfLocalInput('2026-12-01T18:30')).toBe('2026-12-01T18:30:00.000Z');
    expect(utcOfLocalInput('2026-12-01T18:30:59')).toBe('2026-12-01T18:30:59.000Z');
    expect(utcOfLocalInput('2028-02-29T00:00')).toBe('2028-02-29T00:00:00.000Z');
    expect(utcOfLocalInput(undefined)).toBeUndefined();
    for (const bad of ['2026-13-01T00:00', '2026-00-10T00:00', '2026-02-29T00:00', '2026-04-31T00:00', '2026-01-01T24:00', '2026-01-01T00:60',
      '2026-01-01T00:00:60', '1969-12-31T23:59', '2026-1-01T00:00', '2026-01-01 00:00', '2026-01-01T00:00Z', '']) {
      expect(utcOfLocalInput(bad), bad).toBeNull();
    }
  });

  it('includes an event made at the very instant "From" names, and answers 400 for a month 13', async () => {
    const at = new Date(Math.ceil(s.clock.now().getTime() / 1000) * 1000 + 60_000);
    s.clock.set(at);
    const userId = await newUser(api);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 321 });
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data.find((e: { created_at: string }) => e.created_at === at.toISOString());
    expect(ev).toBeDefined();
    const { cookie } = await signIn(keys.sandbox);
    const from = at.toISOString().slice(0, 19);
    const html = await (await get(`/dashboard/events?from=${from}`, cookie)).text();
    expect(html).toContain(ev.id);
    const later = await (await get(`/dashboard/events?from=${new Date(at.getTime() + 1000).toISOString().slice(0, 19)}`, cookie)).text();
    expect(later).not.toContain(ev.id);
    const r = await get('/dashboard/events?from=2026-13-01T00:00', cookie);
    expect(r.status).toBe(400);
  });
});

describe('the live stream', () => {
  it('ends, saying so, once its session has been signed out', async () => {
    const { cookie } = await signIn(keys.sandbox);
    const ac = new AbortController();
    const r = await fetch(`${s.url}/dashboard/events/live`, { headers: { cookie }, signal: ac.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = r.body!.getReader();
    let got = '';
    const readAll = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'ended';
        got += Buffer.from(value).toString();
      }
    })().catch(() => 'aborted');
    // Sign out (the session's own form), then let the stream's check come due by the clock.
    const page = await (await get('/dashboard/events', cookie)).text();
    expect((await post('/dashboard/sign-out', { csrf: csrfOf(page) }, cookie)).status).toBe(303);
    s.clock.advance(16_000);
    const outcome = await Promise.race([readAll, new Promise((r) => setTimeout(() => r('timeout'), 5_000))]);
    ac.abort();
    expect(outcome).toBe('ended');
    expect(got).toContain('event: signed-out');
  });
});
