import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, systemClock } from '../src/clock.js';
import { createSettlementJob } from '../src/jobs/settlement.js';
import { updateSettings } from '../src/payments/operators/operators.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type TestServer } from './helpers.js';

const HOUR = 3600_000;

describe('per-user limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({}, new ManualClock(Date.UTC(2026, 0, 30, 9, 0, 0)));
  });
  afterAll(() => s?.stop());

  it('enforces daily and monthly limits per direction and reports utilization', async () => {
    const op = await newOperator(s);
    await updateSettings(s.running.deps, op.id, { limits: { daily_cash_in: 10_000, monthly_cash_in: 25_000, daily_cash_out: 3_000, monthly_cash_out: 100_000 } });
    const api = client(s.url, op.sandbox);
    const userId = await newUser(api);
    const a = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 6000 });
    expect(a.decision.body.status).toBe('approved');
    const over = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4001 });
    expect(over.decision.body).toMatchObject({ status: 'declined', decline_category: 'limit_exceeded' });
    const exact = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 4000 });
    expect(exact.decision.body.status).toBe('approved');
    const ev = await api.get(`/events?intent_id=${exact.intent.id}`);
    expect(ev.body.data[0].data.limits_utilization).toEqual({ daily_cash_in: '10000.00', daily_cash_out: '0.00', monthly_cash_in: '10000.00', monthly_cash_out: '0.00' });
    // Withdrawals have their own limit.
    expect((await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 3001 })).decision.body.decline_category).toBe('limit_exceeded');
    expect((await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 3000 })).decision.body.status).toBe('approved');
    // The next UTC day resets the daily limit but not the monthly one.
    s.clock.advance(24 * HOUR);
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 10_000 })).decision.body.status).toBe('approved');
    s.clock.advance(24 * HOUR); // Feb 1st: a new month
    const feb = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 10_000 });
    expect(feb.decision.body.status).toBe('approved');
    const febEv = await api.get(`/events?intent_id=${feb.intent.id}`);
    expect(febEv.body.data[0].data.limits_utilization.monthly_cash_in).toBe('10000.00');
  });

  it('pending intents count against the limit; declined and canceled ones do not', async () => {
    const op = await newOperator(s);
    await updateSettings(s.running.deps, op.id, { limits: { daily_cash_in: 5_000 } });
    const api = client(s.url, op.sandbox);
    const userId = await newUser(api);
    const pending = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 3000, approval_mode: 'manual' });
    expect(pending.decision.body.status).toBe('pending');
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 2001 })).decision.body.decline_category).toBe('limit_exceeded');
    await api.post(`/intent/${pending.intent.id}/cancel`);
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 5000 })).decision.body.status).toBe('approved');
  });

  it('two concurrent approvals for one user cannot both fit under the limit', async () => {
    const op = await newOperator(s);
    await updateSettings(s.running.deps, op.id, { limits: { daily_cash_in: 5_000 } });
    const api = client(s.url, op.sandbox);
    const userId = await newUser(api);
    const results = await Promise.all(Array.from({ length: 6 }, () => payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 2000 })));
    expect(results.filter((r) => r.decision.body.status === 'approved')).toHaveLength(2);
    expect(results.filter((r) => r.decision.body.decline_category === 'limit_exceeded')).toHaveLength(4);
  });
});

describe('settlement', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ settleDelayMs: { sandbox: 10_000, production: HOUR } });
  });
  afterAll(() => s?.stop());

  it('settles approved intents after the configured delay, by the clock, once', async () => {
    const op = await newOperator(s);
    const api = client(s.url, op.sandbox);
    const prod = client(s.url, op.production);
    const userId = await newUser(api);
    const prodUser = await newUser(prod);
    const job = createSettlementJob(s.running.deps);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1500 });
    const p = await payThroughPage(s, prod, { direction: 'cash_in', user_id: prodUser, amount: 1600 });
    const declined = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 2200 });
    s.clock.advance(9_999);
    expect(await job.runOnce()).toBe(0);
    s.clock.advance(1);
    expect(await job.runOnce()).toBe(1);
    expect(await job.runOnce()).toBe(0);
    const settled = await api.get(`/intent/${intent.id}`);
    expect(settled.body.transactions).toEqual([expect.objectContaining({ status: 'settled', amount: 1500 })]);
    expect((await api.get(`/events?intent_id=${intent.id}&type=intent.settled`)).body.data).toHaveLength(1);
    expect((await api.get(`/intent/${declined.intent.id}`)).body.transactions).toEqual([]);
    // Production waits for its own delay.
    s.clock.advance(HOUR - 10_000);
    expect(await job.runOnce()).toBe(1);
    expect((await prod.get(`/intent/${p.intent.id}`)).body.transactions).toHaveLength(1);
    // Settling again by hand changes nothing; an intent that is not approved cannot settle.
    const again = await api.post(`/simulate/intent/${intent.id}/settle`);
    expect(again.body.transactions).toHaveLength(1);
    const notApproved = await api.post(`/simulate/intent/${declined.intent.id}/settle`);
    expect(notApproved.status).toBe(409);
  });
});

describe('rate limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ rateLimits: { create: 5, read: 3 } }, new ManualClock(Date.UTC(2026, 0, 15, 10, 0, 0)));
  });
  afterAll(() => s?.stop());

  it('counts per key over a sliding hour, with the X-RateLimit headers and 429', async () => {
    const op = await newOperator(s);
    const api = client(s.url, op.sandbox);
    for (let i = 0; i < 5; i++) {
      const r = await api.post('/user', {});
      expect(r.status).toBe(400); // a refused body still counts: it was a create request
      expect(r.headers.get('x-ratelimit-limit')).toBe('5');
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
      expect(r.headers.get('x-ratelimit-reset')).toBe(String(Date.UTC(2026, 0, 15, 11, 0, 0) / 1000));
    }
    const limited = await api.post('/user', {});
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(limited.headers.get('retry-after')).toBe('3600');
    // Reads have their own budget.
    for (let i = 0; i < 3; i++) expect((await api.get('/intent/list')).status).toBe(200);
    expect((await api.get('/intent/list')).status).toBe(429);
    // The other environment's key has its own budget too.
    expect((await client(s.url, op.production).post('/user', {})).status).toBe(400);
    s.clock.advance(59 * 60_000);
    expect((await api.post('/user', {})).status).toBe(429);
    // Half an hour into the next window, half of the previous window's 5 still count (floor 2.5 = 2): 3 more.
    s.clock.set(Date.UTC(2026, 0, 15, 11, 30, 0));
    expect((await api.post('/user', {})).status).toBe(400);
    expect((await api.post('/user', {})).status).toBe(400);
    expect((await api.post('/user', {})).status).toBe(400);
    expect((await api.post('/user', {})).status).toBe(429);
    s.clock.set(Date.UTC(2026, 0, 15, 12, 59, 0));
    expect((await api.post('/user', {})).headers.get('x-ratelimit-remaining')).toBe('4');
  });

  it('is configurable per operator', async () => {
    const op = await newOperator(s);
    await updateSettings(s.running.deps, op.id, { rate_limits: { read: 1 } });
    const api = client(s.url, op.sandbox);
    expect((await api.get('/user/list')).status).toBe(200);
    expect((await api.get('/user/list')).status).toBe(429);
  });
});

describe('rate limits across server processes', () => {
  let s: TestServer;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    s = await startTestServer({ rateLimits: { create: 6, read: 1000 } }, systemClock);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await s?.stop();
  });

  it('holds when requests alternate between two processes on one database', async () => {
    const op = await newOperator(s);
    const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
    child = spawn(process.execPath, [cli, 'start'], {
      env: { ...process.env, DATABASE_URL: s.running.database.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', CASHWIRE_RATE_LIMIT_CREATE: '6' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const otherUrl = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child!.once('exit', (code) => reject(new Error(`second process exited ${code}: ${out}`)));
    });
    const a = client(s.url, op.sandbox);
    const b = client(otherUrl, op.sandbox);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await (i % 2 ? b : a).post('/user', {})).status);
    expect(statuses).toEqual([400, 400, 400, 400, 400, 400, 429, 429]);
  });
});

describe('the key cache (CASHWIRE_AUTH_CACHE_MS)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ authCacheMs: 200, rateLimits: { create: 1000, read: 1000 } }, systemClock);
  });
  afterAll(() => s?.stop());
  const counted = async (keyId: string) =>
    (await s.running.deps.db.query<{ n: number }>(`SELECT coalesce(sum(count), 0)::int AS n FROM rate_counters WHERE key_id = $1 AND class = 'read'`, [keyId])).rows[0]!.n;

  it('counts every request: those served from the cache are written with the next look or by the flush of a quiet key', async () => {
    const op = await newOperator(s);
    const api = client(s.url, op.sandbox);
    const keyId = (await s.running.deps.db.query<{ id: string }>(`SELECT id FROM api_keys WHERE operator_id = $1 AND environment = 'sandbox'`, [op.id])).rows[0]!.id;
    const remaining: number[] = [];
    for (let i = 0; i < 25; i++) {
      const r = await api.get('/intent/list');
      expect(r.status).toBe(200);
      remaining.push(Number(r.headers.get('x-ratelimit-remaining')));
    }
    // One less at each request, cached or not.
    expect(remaining).toEqual(Array.from({ length: 25 }, (_, i) => 999 - i));
    expect(await counted(keyId)).toBeLessThan(25); // most of them not yet written
    await expect.poll(() => counted(keyId), { timeout: 3_000, interval: 50 }).toBe(25);
  });

  it('a key revoked in the database is refused once the cache time has passed; a PATCH of settings applies at once', async () => {
    const op = await newOperator(s);
    const api = client(s.url, op.sandbox);
    expect((await api.get('/intent/list')).status).toBe(200);
    expect((await api.call('PATCH', '/operator/settings', { rate_limits: { read: 500 } })).status).toBe(200);
    expect((await api.get('/intent/list')).headers.get('x-ratelimit-limit')).toBe('500');
    await s.running.deps.db.query(`UPDATE api_keys SET revoked_at = now() WHERE operator_id = $1 AND environment = 'sandbox'`, [op.id]);
    await expect.poll(async () => (await api.get('/intent/list')).status, { timeout: 2_000, interval: 50 }).toBe(401);
  });
});
