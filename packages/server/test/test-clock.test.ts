/**
 * Test clocks (sandbox only): POST /sandbox/clock/advance and GET /sandbox/clock, and `cashwire clock advance|show`.
 * The test server's own ManualClock is never moved here: that is the point. An advance moves the operator's pending
 * sandbox due times, and the worker, the settlement job and the widget, all reading the one real clock, act on them.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verify } from '@cashwire/webhooks';
import { claim, HELD } from '../src/delivery/queue.js';
import { createSettlementJob } from '../src/jobs/settlement.js';
import { parseDuration } from '../src/payments/clock/clock.js';
import type { LookupFn } from '../src/security/ssrf.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

const run = promisify(execFile);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/cashwire.js');
const MIN = 60_000;

let s: TestServer;
let keys: Keys;
let api: Api;
let userId: string;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

const toLoopback: LookupFn = (_host, options, cb) => (options.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));

beforeAll(async () => {
  s = await startTestServer({}, undefined, { resolver: toLoopback });
  keys = await newOperator(s, 'Clock Casino');
  api = client(s.url, keys.sandbox);
  userId = await newUser(api);
  rx = await startReceiver();
  harness = testWorkers(s, { resolver: toLoopback });
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

const at = (p: string) => rx.received.filter((r) => r.path === p);

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function advance(body: Record<string, unknown>, on: Api = api) {
  return on.post('/sandbox/clock/advance', body);
}

async function deliveryRow(eventId: string) {
  const { rows } = await s.running.deps.db.query<{ id: string; status: string; attempts: number; next_attempt_at: Date; created_at: Date; leased_by: string | null }>(
    "SELECT id, status, attempts, next_attempt_at, created_at, leased_by FROM deliveries WHERE operator_id = $1 AND event_id = $2 AND environment = 'sandbox'", [keys.id, eventId]);
  return rows[0]!;
}

async function eventOf(intentId: string, on: Api = api) {
  const ev = await on.get(`/events?intent_id=${intentId}`);
  return ev.body.data[0] as { id: string };
}

describe('durations', () => {
  it('parses whole seconds and s/m/h/d units, combined or not, from 1 s to 365 days', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('2m')).toBe(120);
    expect(parseDuration('1h')).toBe(3_600);
    expect(parseDuration('1d')).toBe(86_400);
    expect(parseDuration('1h30m')).toBe(5_400);
    expect(parseDuration('365d')).toBe(31_536_000);
    for (const bad of ['', '0', '0s', '366d', '2x', '-5', '1.5m', 'm', '1 h', '1h-2m', 'soon']) expect(parseDuration(bad), bad).toBeNull();
  });
});

describe('advancing a sandbox clock', () => {
  it('fires a due sandbox retry at once: the sleeping worker is woken, the attempt is signed with the real time', async () => {
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/std`, events: ['intent.approved'], format: 'standard' });
    expect(ep.status).toBe(201);
    rx.setResponder(() => ({ status: 500, body: 'not yet' }));
    // A worker that sleeps until NOTIFY or the next due time: no polling.
    const w = harness.make({ listen: true, pollMs: 0 });
    await w.start();
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1000 });
    const event = await eventOf(intent.id);
    await until('the first attempt', () => at('/std').length === 1);
    const first = await until('its outcome', async () => {
      const d = await deliveryRow(event.id);
      return d.attempts === 1 && d.leased_by === null ? d : undefined; // its outcome is written (the lease is over)
    });
    // The sandbox schedule: the retry is due a minute later (no jitter in tests).
    const dueIn = first.next_attempt_at.getTime() - s.clock.now().getTime();
    expect(dueIn).toBe(MIN);
    rx.setResponder(() => ({ status: 200, body: 'ok' }));
    const r = await advance({ seconds: dueIn / 1000 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ advanced_by_seconds: 60, moved: { deliveries: 1 }, total_advanced_seconds: 60 });
    // The worker was asleep for a minute of real time: only the wake-up brings the retry now.
    const retried = await until('the retry', () => at('/std')[1], 5_000);
    const d = await until('success', async () => ((await deliveryRow(event.id)).status === 'succeeded' ? deliveryRow(event.id) : undefined));
    expect(d.attempts).toBe(2);
    // Signed and timestamped by the worker's clock, which did not move: the signature verifies against the real time,
    // and the attempt's timestamp is not in the future (not a minute ahead).
    const secret = (await api.get(`/webhook/endpoints/${ep.body.id}/secret`)).body.secret as string;
    await expect(verify('standard', { body: retried.body, headers: retried.headers, secrets: [secret] })).resolves.toBeTruthy();
    const signedAt = Number(retried.headers['webhook-timestamp']) * 1000;
    expect(signedAt).toBeLessThanOrEqual(Date.now());
    expect(signedAt).toBe(Math.floor(s.clock.now().getTime() / 1000) * 1000);
    expect(new Date(JSON.parse(retried.body).timestamp).getTime()).toBe(s.clock.now().getTime());
    await api.call('DELETE', `/webhook/endpoints/${ep.body.id}`);
  });

  it('moves the age limit too: a retry after advancing past the schedule\'s max age expires, as if that time had passed', async () => {
    rx.setResponder(() => ({ status: 500 }));
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1100, webhook_url: `${rx.url}/age` });
    const event = await eventOf(intent.id);
    const w = harness.make();
    expect(await w.tick()).toBe(1);
    const before = await deliveryRow(event.id);
    expect(before).toMatchObject({ status: 'pending', attempts: 1 });
    expect(await w.tick()).toBe(0); // not due: the clock did not move
    // Two days: past the sandbox schedule's one-day age limit. The second attempt fails and, with the age limit
    // counted from the moved creation time, the delivery expires instead of waiting 10 more minutes.
    const r = await advance({ duration: '2d' });
    expect(r.status).toBe(200);
    const moved = await deliveryRow(event.id);
    expect(before.next_attempt_at.getTime() - moved.next_attempt_at.getTime()).toBe(2 * 86_400_000);
    expect(before.created_at.getTime() - moved.created_at.getTime()).toBe(2 * 86_400_000);
    expect(await w.tick()).toBe(1);
    expect(at('/age')).toHaveLength(2);
    expect((await deliveryRow(event.id)).status).toBe('expired');
  });

  it('settles an approved intent whose settlement is due later, once advanced that far', async () => {
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1200 });
    const job = createSettlementJob(s.running.deps);
    const settledAt = async () => (await s.running.deps.db.query('SELECT settled_at FROM intents WHERE operator_id = $1 AND id = $2', [keys.id, intent.id])).rows[0].settled_at;
    await job.runOnce();
    expect(await settledAt()).toBeNull(); // sandbox settlements are due 10 s after approval
    const r = await advance({ duration: '9s' });
    expect(r.body.moved.settlements).toBeGreaterThanOrEqual(1);
    await job.runOnce();
    expect(await settledAt()).toBeNull();
    await advance({ seconds: 1 });
    await job.runOnce();
    expect(await settledAt()).toEqual(s.clock.now());
    const events = (await api.get(`/events?intent_id=${intent.id}`)).body.data.map((e: { type: string }) => e.type);
    expect(events).toContain('intent.settled');
  });

  it('expires a widget session after 30 minutes of advance (the widget page answers 403), not before', async () => {
    const r = await api.post(`/user/${userId}/url`, { direction: 'cash_in', type: 'card_only' });
    expect(r.status).toBe(200);
    const url = r.body.url as string;
    expect((await fetch(url)).status).toBe(200);
    const a = await advance({ duration: '29m' });
    expect(a.body.moved.widget_sessions).toBeGreaterThanOrEqual(1);
    expect((await fetch(url)).status).toBe(200);
    await advance({ duration: '1m' });
    expect((await fetch(url)).status).toBe(403);
  });

  it("moves nothing of production or of another operator, and only the caller's sandbox rows, by exactly the duration", async () => {
    const db = s.running.deps.db;
    const prodApi = client(s.url, keys.production);
    const prodUser = await newUser(prodApi);
    const other = await newOperator(s, 'Other Casino');
    const otherApi = client(s.url, other.sandbox);
    const otherUser = await newUser(otherApi);
    // Due-dated rows of each: an approved intent (settle_at) and a widget session; a pending delivery of the other
    // operator, and one in production (a copy of a sandbox row: production webhooks need https).
    const mine = (await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1300, webhook_url: `${rx.url}/mine` })).intent;
    await payThroughPage(s, prodApi, { direction: 'cash_in', user_id: prodUser, amount: 1300 });
    await payThroughPage(s, otherApi, { direction: 'cash_in', user_id: otherUser, amount: 1300, webhook_url: `${rx.url}/theirs` });
    for (const [c, u] of [[api, userId], [prodApi, prodUser], [otherApi, otherUser]] as const) expect((await c.post(`/user/${u}/url`, { direction: 'cash_in' })).status).toBe(200);
    const mineEvent = await eventOf(mine.id);
    const c = await db.connect();
    try {
      await c.query('CREATE TEMP TABLE prod_copy AS SELECT * FROM deliveries WHERE operator_id = $1 AND event_id = $2', [keys.id, mineEvent.id]);
      await c.query(`UPDATE prod_copy SET id = 'dlv_prod_copy', environment = 'production', lane = 'url:production:https://example.com', next_attempt_at = next_attempt_at + interval '1 hour'`);
      await c.query('INSERT INTO deliveries SELECT * FROM prod_copy');
    } finally {
      c.release();
    }
    const snapshot = async () => {
      const q = async (sql: string) => (await db.query(sql, [keys.id, other.id])).rows;
      return {
        untouched: {
          intents: await q(`SELECT operator_id, id, settle_at FROM intents WHERE (operator_id = $2 OR (operator_id = $1 AND environment = 'production')) ORDER BY id`),
          nonces: await q(`SELECT operator_id, id, expires_at FROM nonces WHERE (operator_id = $2 OR (operator_id = $1 AND environment = 'production')) ORDER BY id`),
          deliveries: await q(`SELECT operator_id, id, next_attempt_at, created_at FROM deliveries WHERE (operator_id = $2 OR (operator_id = $1 AND environment = 'production')) ORDER BY id`),
        },
        mine: {
          intent: (await db.query('SELECT settle_at FROM intents WHERE operator_id = $1 AND id = $2', [keys.id, mine.id])).rows[0].settle_at as Date,
          delivery: await deliveryRow(mineEvent.id),
          nonces: (await db.query(`SELECT id, expires_at FROM nonces WHERE operator_id = $1 AND environment = 'sandbox' AND spent_at IS NULL ORDER BY id`, [keys.id])).rows,
        },
      };
    };
    const before = await snapshot();
    expect(before.untouched.intents.length).toBeGreaterThanOrEqual(2);
    expect(before.untouched.nonces.length).toBeGreaterThanOrEqual(2);
    expect(before.untouched.deliveries.map((d) => d.id)).toEqual(expect.arrayContaining(['dlv_prod_copy']));
    expect(before.untouched.deliveries.length).toBeGreaterThanOrEqual(2);
    expect((await advance({ duration: '5s' })).status).toBe(200);
    const after = await snapshot();
    expect(after.untouched).toEqual(before.untouched);
    expect(before.mine.intent.getTime() - after.mine.intent.getTime()).toBe(5_000);
    expect(before.mine.delivery.next_attempt_at.getTime() - after.mine.delivery.next_attempt_at.getTime()).toBe(5_000);
    const live = before.mine.nonces.filter((n) => n.expires_at.getTime() > s.clock.now().getTime());
    expect(live.length).toBeGreaterThanOrEqual(1);
    for (const n of live) expect(n.expires_at.getTime() - after.mine.nonces.find((x) => x.id === n.id)!.expires_at.getTime()).toBe(5_000);
    // The other operator's clock is its own.
    expect((await otherApi.get('/sandbox/clock')).body).toMatchObject({ total_advanced_seconds: 0, advances: 0, last_advanced_at: null });
  });

  it('expires tokens and idempotency keys as early', async () => {
    const token = (await api.post('/token', { user_id: userId, type: 'card_only' })).body.token as string;
    const idem = { 'x-idempotency-key': `clock-${Date.now()}` };
    expect((await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 700, currency: 'USD' }, idem)).status).toBe(200);
    const expiry = async () => (await s.running.deps.db.query(
      `SELECT (SELECT expires_at FROM tokens WHERE operator_id = $1 AND id = $2) AS token,
              (SELECT expires_at FROM idempotency_keys WHERE operator_id = $1 AND key = $3) AS idem`, [keys.id, token, idem['x-idempotency-key']])).rows[0];
    const before = await expiry();
    const r = await advance({ duration: '15m' });
    expect(r.body.moved).toMatchObject({ tokens: expect.any(Number), idempotency_keys: expect.any(Number) });
    expect(r.body.moved.tokens).toBeGreaterThanOrEqual(1);
    expect(r.body.moved.idempotency_keys).toBeGreaterThanOrEqual(1);
    const after = await expiry();
    expect(before.token.getTime() - after.token.getTime()).toBe(15 * MIN);
    expect(before.idem.getTime() - after.idem.getTime()).toBe(15 * MIN);
    // Tokens live 15 minutes: this one is now expired, though the server's clock did not move.
    const auth = await api.post('/authorize', { currency: 'USD', direction: 'cash_in', amount: 500, token });
    expect(auth.status).toBe(400);
    expect(auth.body.error.code).toBe('token_expired');
  });

  it('leaves a delivery in flight (its lease) and one held by a 410 where they are; moves open circuits to their probe', async () => {
    const db = s.running.deps.db;
    const now = s.clock.now();
    // In flight: claimed by a worker that is sending it (leased; the lease has not run out).
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1400, webhook_url: `${rx.url}/inflight` });
    const inflight = await eventOf(intent.id);
    const claimed = await claim(db, 'clock-test-worker', now, 30_000, 10);
    expect(claimed.map((c) => c.event.id)).toContain(inflight.id);
    // Held: a registered endpoint answered 410 (disabled, its delivery waits for it to be enabled).
    const ep = await api.post('/webhook/endpoints', { url: `${rx.url}/gone`, events: ['intent.approved'] });
    rx.setResponder((req) => ({ status: req.path === '/gone' ? 410 : 200 }));
    const gone = (await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1500 })).intent;
    const goneEvent = await eventOf(gone.id);
    expect(await harness.make().tick()).toBe(1);
    expect((await deliveryRow(goneEvent.id)).next_attempt_at).toEqual(HELD);
    // Open circuits: a payment URL's origin (its lane) and a registered endpoint, waiting a minute for their probe;
    // and a production origin's, which must not move.
    await db.query(`UPDATE endpoints SET status = 'enabled', circuit_state = 'open', circuit_retry_at = $3 WHERE operator_id = $1 AND id = $2`, [keys.id, ep.body.id, new Date(now.getTime() + MIN)]);
    await db.query(`INSERT INTO delivery_lanes (operator_id, lane, circuit_state, circuit_retry_at) VALUES ($1, 'url:sandbox:http://clock.example', 'open', $2), ($1, 'url:production:https://clock.example', 'open', $2)`,
      [keys.id, new Date(now.getTime() + MIN)]);
    const before = await deliveryRow(inflight.id);
    const r = await advance({ seconds: 60 });
    expect(r.body.moved.circuits).toBe(2);
    const after = await deliveryRow(inflight.id);
    expect(after.next_attempt_at).toEqual(before.next_attempt_at); // the lease stands: no other worker may take it mid-send
    expect(before.created_at.getTime() - after.created_at.getTime()).toBe(MIN); // its age limit moved
    expect((await deliveryRow(goneEvent.id)).next_attempt_at).toEqual(HELD);
    const lanes = (await db.query(`SELECT lane, circuit_retry_at FROM delivery_lanes WHERE operator_id = $1 AND lane LIKE 'url:%clock.example' ORDER BY lane`, [keys.id])).rows;
    expect(lanes).toEqual([
      { lane: 'url:production:https://clock.example', circuit_retry_at: new Date(now.getTime() + MIN) },
      { lane: 'url:sandbox:http://clock.example', circuit_retry_at: now },
    ]);
    expect((await db.query('SELECT circuit_retry_at FROM endpoints WHERE operator_id = $1 AND id = $2', [keys.id, ep.body.id])).rows[0].circuit_retry_at).toEqual(now);
    await api.call('DELETE', `/webhook/endpoints/${ep.body.id}`);
    await db.query(`DELETE FROM delivery_lanes WHERE operator_id = $1 AND lane LIKE 'url:%clock.example'`, [keys.id]);
  });

  it('keeps a running total per operator, shown by GET /sandbox/clock', async () => {
    const op = await newOperator(s, 'Totals Casino');
    const c = client(s.url, op.sandbox);
    expect((await c.get('/sandbox/clock')).body).toEqual({ total_advanced_seconds: 0, advances: 0, last_advanced_at: null });
    expect((await advance({ duration: '1h30m' }, c)).body).toMatchObject({ advanced_by_seconds: 5_400, total_advanced_seconds: 5_400 });
    expect((await advance({ seconds: 600 }, c)).body).toMatchObject({ advanced_by_seconds: 600, total_advanced_seconds: 6_000 });
    expect((await c.get('/sandbox/clock')).body).toEqual({ total_advanced_seconds: 6_000, advances: 2, last_advanced_at: s.clock.now().toISOString() });
  });
});

describe('refusals', () => {
  it('refuses bad durations with 400 and a code', async () => {
    const cases: [Record<string, unknown>, string, string?][] = [
      [{}, 'seconds_or_duration'],
      [{ seconds: 60, duration: '1m' }, 'seconds_or_duration'],
      [{ duration: '2x' }, 'invalid_duration', 'duration'],
      [{ duration: '0s' }, 'invalid_duration', 'duration'],
      [{ duration: '366d' }, 'invalid_duration', 'duration'],
      [{ duration: '' }, 'invalid_length', 'duration'],
      [{ seconds: 0 }, 'out_of_range', 'seconds'],
      [{ seconds: 31_536_001 }, 'out_of_range', 'seconds'],
      [{ seconds: 1.5 }, 'invalid_type', 'seconds'],
      [{ seconds: 'soon' }, 'invalid_type', 'seconds'],
    ];
    for (const [body, code, field] of cases) {
      const r = await advance(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
      if (field) expect(r.body.error.field, JSON.stringify(body)).toBe(field);
    }
    const raw = await fetch(`${s.url}/sandbox/clock/advance`, { method: 'POST', headers: { authorization: `Bearer ${keys.sandbox}`, 'content-type': 'application/json' }, body: '{"seconds":' });
    expect(raw.status).toBe(400);
    expect((await api.get('/sandbox/clock')).body.advances).toBeGreaterThan(0); // nothing refused was counted
  });

  it('refuses a production key with 403 sandbox_only, whatever the body', async () => {
    const prod = client(s.url, keys.production);
    for (const body of [{ seconds: 60 }, { duration: 'nonsense' }, {}]) {
      const r = await advance(body, prod);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('sandbox_only');
    }
    expect((await prod.get('/sandbox/clock')).body.error.code).toBe('sandbox_only');
    expect((await advance({ seconds: 60 }, client(s.url))).status).toBe(401);
  });
});

describe('cashwire clock', () => {
  const cli = (args: string[], key = keys.sandbox) =>
    run(process.execPath, [BIN, ...args], { env: { ...process.env, CASHWIRE_API_URL: s.url, CASHWIRE_API_KEY: key }, timeout: 20_000 });

  it('`clock advance 2m` prints the result (a line, or JSON with --json); `clock show` the running total', async () => {
    const op = await newOperator(s, 'CLI Casino');
    const c = client(s.url, op.sandbox);
    expect((await c.post(`/user/${await newUser(c)}/url`, { direction: 'cash_in' })).status).toBe(200);
    const { stdout } = await cli(['clock', 'advance', '2m'], op.sandbox);
    expect(stdout).toBe('Advanced the sandbox clock by 2m (120 s); 2m (120 s) in all.\n' +
      'Moved: 0 deliveries, 0 settlements, 1 widget session, 0 tokens, 0 idempotency keys, 0 circuits, 0 secret rotations.\n');
    const json = JSON.parse((await cli(['clock', 'advance', '90', '--json'], op.sandbox)).stdout);
    expect(json).toMatchObject({ advanced_by_seconds: 90, total_advanced_seconds: 210, moved: { widget_sessions: 1, deliveries: 0 } });
    expect((await cli(['clock', 'show'], op.sandbox)).stdout).toMatch(/^The sandbox clock is 3m30s \(210 s\) ahead in all: 2 advances, the last at \S+Z\.\n$/);
    expect(JSON.parse((await cli(['clock', 'show', '--json'], op.sandbox)).stdout)).toMatchObject({ total_advanced_seconds: 210, advances: 2 });
  });

  it('says what was refused, with the code, and exits 1', async () => {
    const bad = await cli(['clock', 'advance', 'soon']).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(bad?.code).toBe(1);
    expect(bad?.stderr).toMatch(/^cashwire: invalid_duration: /);
    const prod = await cli(['clock', 'advance', '1m'], keys.production).then(() => null, (e: { code: number; stderr: string }) => e);
    expect(prod?.code).toBe(1);
    expect(prod?.stderr).toMatch(/^cashwire: sandbox_only: /);
  });
});
