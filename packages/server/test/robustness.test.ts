/**
 * The engine against receivers and faults as the world has them: answers of odd bytes (NUL, gzip, megabytes of
 * random, a trickle), a secret the worker cannot use, a worker with the wrong key, resends and 410s, stalled claims
 * and outcomes that cannot be written. Every one of these ends with healthy deliveries landing and nothing lost.
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { verify } from '@cashwire/webhooks';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { claim, complete, HELD } from '../src/delivery/queue.js';
import { createWorker, type WorkerOptions } from '../src/delivery/worker.js';
import { secretBox } from '../src/security/secrets.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver, type Answer } from './receiver.js';

let s: TestServer;
let api: Api;
let userId: string;
let harness: ReturnType<typeof testWorkers>;
let rx: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  s = await startTestServer();
  rx = await startReceiver();
  harness = testWorkers(s, { totalTimeoutMs: 3_000, leaseMs: 5_000 });
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

async function freshOperator() {
  api = client(s.url, (await newOperator(s)).sandbox);
  userId = await newUser(api);
}

function worker(o: Partial<WorkerOptions> = {}) {
  return harness.make(o);
}

/** An approved payment whose webhook goes to `path`; returns its intent id and event id. */
async function paymentTo(path: string, amount = 100) {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount, webhook_url: rx.url + path, webhook_secret: 'whk_robust_secret_0123456789abcdefghijklmnop' });
  const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
  return { intentId: intent.id as string, eventId: ev.id as string };
}

/** An approved payment with no webhook_url: its event fans out to the registered endpoints. */
async function payment(amount = 100) {
  const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount });
  const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
  return { intentId: intent.id as string, eventId: ev.id as string };
}

async function endpoint(path: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/webhook/endpoints', { url: rx.url + path, events: ['intent.approved'], ...body });
  expect(r.status).toBe(201);
  return r.body as { id: string; secret: string };
}

async function deliveriesOf(eventId: string) {
  const r = await api.get(`/events/${eventId}`);
  expect(r.status).toBe(200);
  return r.body.deliveries as any[];
}

const at = (path: string) => rx.received.filter((r) => r.path === path);

/** Polls until `check` holds, for at most `ms`. */
async function waitFor(what: string, check: () => Promise<boolean>, ms = 8_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('any reply is safe', () => {
  const odd: [string, () => Answer, (attempt: any) => void][] = [
    ['NUL bytes', () => ({ status: 200, body: Buffer.from('ok\0') }), (a) => expect(a).toMatchObject({ response: 'ok\u0000', response_bytes: 3 })],
    ['a gzip body, though identity was asked for', () => ({ status: 200, headers: { 'content-encoding': 'gzip' }, body: gzipSync(Buffer.from(JSON.stringify({ ok: true, pad: 'x'.repeat(500) }))) }),
      (a) => expect(a.response_bytes).toBeGreaterThan(10)],
    ['1 MB of random bytes', () => ({ status: 200, body: randomBytes(1024 * 1024) }), (a) => expect(a.response_bytes).toBe(2048)],
    ['invalid UTF-8', () => ({ status: 200, body: Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0x6f, 0x6b]) }), (a) => expect(a).toMatchObject({ response: '\ufffd(\ufffd\ufffdok', response_bytes: 6 })],
    ['a 200 whose body trickles a byte every 200 ms', () => ({ status: 200, trickle: { bytes: Buffer.from('slowly, slowly'), everyMs: 200 } }),
      (a) => expect(a.response_bytes).toBeLessThan(14)],
    ['a 500 with 64 KB of random bytes', () => ({ status: 500, body: randomBytes(64 * 1024) }), (a) => expect(a).toMatchObject({ outcome: 'retry', response_bytes: 2048 })],
  ];

  for (const [what, answer, check] of odd) {
    it(`records ${what} as it came, and the healthy deliveries after it all land`, async () => {
      await freshOperator();
      rx.setResponder((r) => (r.path === '/odd' ? answer() : { status: 200, body: 'ok' }));
      const bad = await paymentTo('/odd');
      const w = worker();
      expect(await w.tick()).toBe(1);
      const healthy = [];
      for (let i = 0; i < 3; i++) healthy.push(await paymentTo('/healthy', 200 + i));
      expect(await w.tick()).toBe(3);
      for (const h of healthy) expect((await deliveriesOf(h.eventId))[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
      const [d] = await deliveriesOf(bad.eventId);
      expect(d.attempt_log).toHaveLength(1);
      check(d.attempt_log[0]);
      // The status line decided, whatever the body did.
      const status = d.attempt_log[0].status_code;
      expect(d.status).toBe(status === 200 ? 'succeeded' : 'pending');
      // Answers are never decompressed: the request asked for identity.
      expect(at('/odd')[0]!.headers['accept-encoding']).toBe('identity');
    });
  }
});

describe('faults inside a worker', () => {
  it('rotate, then change the format: the previous secret of the old format is dropped, and delivery goes on, signed', async () => {
    await freshOperator();
    const ep = await endpoint('/rotated-format');
    expect((await api.post(`/webhook/endpoints/${ep.id}/rotate`, {})).status).toBe(200);
    const patched = await api.call('PATCH', `/webhook/endpoints/${ep.id}`, { format: 'standard' });
    expect(patched.status).toBe(200);
    expect(patched.body.secret_rotation).toBeNull();
    const secret = (await api.get(`/webhook/endpoints/${ep.id}/secret`)).body;
    expect(secret.previous_secret).toBeNull();
    const { eventId } = await payment();
    const w = worker();
    expect(await w.tick()).toBe(1);
    const r = at('/rotated-format')[0]!;
    const verified = await verify('standard', { body: r.body, headers: r.headers as Record<string, string>, secrets: secret.secret, now: s.clock.now() });
    expect(verified.id).toBe(eventId);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a secret the worker cannot use (a legacy row of the wrong shape) releases the delivery unspent, never crashes the worker', async () => {
    await freshOperator();
    const ep = await endpoint('/bad-secret', { format: 'standard' });
    // A previous secret that is not of the standard shape, as rows written before the fix can hold.
    await s.running.deps.db.query(`UPDATE endpoints SET previous_secret = $2, previous_expires_at = $3 WHERE id = $1`,
      [ep.id, s.running.deps.secrets.seal('whsk_not*base64!'), new Date(s.clock.now().getTime() + 3_600_000)]);
    const { eventId } = await payment();
    const w = worker();
    expect(await w.tick()).toBe(1);
    expect(at('/bad-secret')).toHaveLength(0);
    const [d] = await deliveriesOf(eventId);
    expect(d).toMatchObject({ status: 'pending', attempts: 0, last_error: 'worker_fault', attempt_log: [] });
    expect(w.stats.faults).toBe(1);
    // Repaired, it goes out with the receiver's first attempt.
    await s.running.deps.db.query(`UPDATE endpoints SET previous_secret = NULL, previous_expires_at = NULL WHERE id = $1`, [ep.id]);
    s.clock.advance(1_000);
    expect(await w.tick()).toBe(1);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a worker with another CASHWIRE_SECRET_KEY refuses to start; if driven anyway, it spends no attempt, and dead-letters after 5 tries', async () => {
    await freshOperator();
    const ep = await endpoint('/wrong-key');
    const ops = await endpoint('/wrong-key-ops', { events: ['delivery.exhausted'] });
    const d = s.running.deps;
    const wrong = createWorker(
      { db: d.db, clock: s.clock, ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: secretBox(randomBytes(32)) },
      { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs: 2_000, pollMs: 0, listen: false, drainMs: 300 },
    );
    await expect(wrong.start()).rejects.toThrow(/CASHWIRE_SECRET_KEY cannot open the webhook secrets/);
    const { eventId } = await payment();
    for (let i = 1; i <= 5; i++) {
      await wrong.tick();
      const [x] = (await deliveriesOf(eventId)).filter((y) => y.endpoint_id === ep.id);
      if (i < 5) expect(x).toMatchObject({ status: 'pending', attempts: 0, attempt_log: [] });
      s.clock.advance(60_000); // past the fault's backoff
    }
    expect(at('/wrong-key')).toHaveLength(0);
    const [dead] = (await deliveriesOf(eventId)).filter((y) => y.endpoint_id === ep.id);
    expect(dead).toMatchObject({ status: 'dead', last_error: 'worker_fault', attempt_log: [] });
    const listed = (await api.get('/events?delivery_status=dead')).body.data.map((e: { id: string }) => e.id);
    expect(listed).toEqual([eventId]);
    // The right worker announces it (delivery.exhausted), and a resend replays it, signed.
    const right = worker();
    await right.tick();
    const exhausted = at('/wrong-key-ops').map((r) => JSON.parse(r.body));
    expect(exhausted).toEqual([expect.objectContaining({ type: 'delivery.exhausted', data: expect.objectContaining({ event_id: eventId, status: 'dead', last_error: 'worker_fault', endpoint_id: ep.id }) })]);
    expect(ops.id).toMatch(/^ep_/);
    expect((await api.post(`/events/${eventId}/resend`)).status).toBe(200);
    await right.tick();
    const r = at('/wrong-key')[0]!;
    const replayed = await verify('pushcash', { body: r.body, headers: r.headers as Record<string, string>, secrets: ep.secret, now: s.clock.now() });
    expect([replayed.type, r.headers['x-webhook-id']]).toEqual(['intent.approved', eventId]);
    expect((await api.get('/events?delivery_status=dead')).body.data.map((e: { id: string }) => e.id)).toEqual([eventId]); // the old one stays dead, logged
    expect((await deliveriesOf(eventId)).filter((y) => y.endpoint_id === ep.id).map((y) => y.status).sort()).toEqual(['dead', 'succeeded']);
  });

  it('a delivery claimed 5 times with no outcome recorded is dead-lettered, with its reason', async () => {
    await freshOperator();
    const { eventId } = await paymentTo('/stalled');
    const db = s.running.deps.db;
    // Five workers that claim it and die: each lease runs out.
    for (let i = 0; i < 5; i++) {
      const got = await claim(db, `dying-${i}`, s.clock.now(), 1_000, 1000);
      expect(got.map((g) => g.event.id)).toContain(eventId);
      s.clock.advance(1_001);
    }
    const w = worker();
    await w.tick();
    expect(at('/stalled')).toHaveLength(0);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: 'dead', last_error: 'stalled' });
    expect(w.stats.dead).toBe(1);
  });

  it('an outcome that cannot be written is dead-lettered alone; every other outcome of the batch lands', async () => {
    await freshOperator();
    const db = s.running.deps.db;
    // A row the database refuses, whatever the engine does about bytes: a trigger stands in for any such failure.
    await db.query(`CREATE OR REPLACE FUNCTION cw_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.response_excerpt = convert_to('refuse me', 'UTF8') THEN RAISE EXCEPTION 'refused' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$`);
    await db.query('CREATE TRIGGER cw_test_refuse BEFORE INSERT ON delivery_attempts FOR EACH ROW EXECUTE FUNCTION cw_test_refuse()');
    try {
      rx.setResponder((r) => ({ status: 200, body: r.path === '/refused' ? 'refuse me' : 'ok' }));
      const bad = await paymentTo('/refused');
      const good = [];
      for (let i = 0; i < 4; i++) good.push(await paymentTo('/fine', 300 + i));
      const w = worker();
      expect(await w.tick()).toBe(5);
      expect((await deliveriesOf(bad.eventId))[0]).toMatchObject({ status: 'dead', last_error: 'unwritable', attempt_log: [] });
      for (const g of good) expect((await deliveriesOf(g.eventId))[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
    } finally {
      await db.query('DROP TRIGGER cw_test_refuse ON delivery_attempts');
    }
  });

  it('two outcomes of one delivery in one batch: the success wins, whatever the order', async () => {
    await freshOperator();
    const { eventId } = await paymentTo('/twice');
    const db = s.running.deps.db;
    const [c] = (await claim(db, 'w-a', s.clock.now(), 1_000, 1000)).filter((x) => x.event.id === eventId);
    s.clock.advance(1_001);
    const [c2] = (await claim(db, 'w-b', s.clock.now(), 1_000, 1000)).filter((x) => x.event.id === eventId);
    const base = { operator_id: c!.operator_id, id: c!.id, started_at: s.clock.now(), latency_ms: 1, error_code: null, excerpt: Buffer.from('x') };
    await complete(db, 'w-b', [
      { ...base, attempt: c2!.attempts, status: 'pending', outcome: 'retry', next_attempt_at: new Date(s.clock.now().getTime() + 60_000), status_code: 500 },
      { ...base, attempt: c!.attempts, status: 'succeeded', outcome: 'succeeded', next_attempt_at: s.clock.now(), status_code: 200 },
    ]);
    const [d] = await deliveriesOf(eventId);
    expect(d).toMatchObject({ status: 'succeeded', last_status: 200 });
    expect(d.attempt_log.map((a: { outcome: string }) => a.outcome)).toEqual(['succeeded', 'retry']);
  });
});

describe('a flush that cannot stall', () => {
  it('a blocked endpoint-health write never holds up outcomes: later ones land while it waits', async () => {
    await freshOperator();
    const ep = await endpoint('/health-stall');
    rx.setResponder((r) => (r.path === '/health-stall' ? { status: 500 } : { status: 200 }));
    const locker = await s.running.deps.db.connect();
    try {
      // Someone holds the endpoint's row (an operator's PATCH in a long transaction, a slow hold of a big backlog).
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM endpoints WHERE id = $1 FOR UPDATE', [ep.id]);
      const failing = await payment();
      const w = worker({ pollMs: 20 });
      await w.start();
      await waitFor('the failed attempt to be recorded', async () => (await deliveriesOf(failing.eventId))[0].attempt_log.length === 1);
      const healthy = [];
      for (let i = 0; i < 3; i++) healthy.push(await paymentTo('/after-stall', 700 + i));
      await waitFor('the healthy deliveries after it to be recorded', async () => {
        for (const h of healthy) if ((await deliveriesOf(h.eventId))[0].status !== 'succeeded') return false;
        return true;
      });
      // The health write is still waiting for the row: the endpoint has not counted the failure yet.
      expect((await s.running.deps.db.query('SELECT consecutive_failures FROM endpoints WHERE id = $1', [ep.id])).rows[0].consecutive_failures).toBe(0);
      await locker.query('ROLLBACK');
      await waitFor('the health write to land once the row is free', async () =>
        (await s.running.deps.db.query('SELECT consecutive_failures FROM endpoints WHERE id = $1', [ep.id])).rows[0].consecutive_failures === 1);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }
  });
});

describe('resend and recover', () => {
  it('resend to a registered endpoint is signed (verified by the SDK), goes to its current URL, and never runs beside a pending delivery', async () => {
    await freshOperator();
    const ep = await endpoint('/resend-old');
    const { eventId } = await payment();
    const w = worker();
    await w.tick();
    expect(at('/resend-old')).toHaveLength(1);
    // The endpoint moved: the resend goes to where it is now.
    await api.call('PATCH', `/webhook/endpoints/${ep.id}`, { url: rx.url + '/resend-new' });
    expect((await api.post(`/events/${eventId}/resend`)).status).toBe(200);
    await w.tick();
    const r = at('/resend-new')[0]!;
    expect(r).toBeDefined();
    const resent = await verify('pushcash', { body: r.body, headers: r.headers as Record<string, string>, secrets: ep.secret, now: s.clock.now() });
    expect([resent.type, r.headers['x-webhook-id']]).toEqual(['intent.approved', eventId]);
    // A failing delivery waiting for its retry: resend is "retry now", not a second delivery.
    rx.setResponder(() => ({ status: 500 }));
    expect((await api.post(`/events/${eventId}/resend`)).status).toBe(200);
    await w.tick();
    const pending = (await deliveriesOf(eventId)).filter((d) => d.status === 'pending');
    expect(pending).toHaveLength(1);
    const again = await api.post(`/events/${eventId}/resend`);
    expect(again.body.resend).toEqual({ created: 0, pulled: 1 });
    rx.setResponder(() => ({ status: 200 }));
    await w.tick();
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('resend to a disabled endpoint is held until it is enabled', async () => {
    await freshOperator();
    const ep = await endpoint('/resend-disabled');
    const { eventId } = await payment();
    const w = worker();
    await w.tick();
    await api.post(`/webhook/endpoints/${ep.id}/disable`);
    await api.post(`/events/${eventId}/resend`);
    await w.tick();
    expect(at('/resend-disabled')).toHaveLength(1);
    const ds = await deliveriesOf(eventId);
    expect(ds.map((d) => d.status).sort()).toEqual(['pending', 'succeeded']);
    expect(ds.find((d) => d.status === 'pending')).toMatchObject({ held: true });
    await api.post(`/webhook/endpoints/${ep.id}/enable`);
    await w.tick();
    expect(at('/resend-disabled')).toHaveLength(2);
  });

  it('enabling an endpoint leaves a delivery in flight to its worker (no second send)', async () => {
    await freshOperator();
    const ep = await endpoint('/in-flight-enable');
    await payment();
    const db = s.running.deps.db;
    const [c] = (await claim(db, 'holder', s.clock.now(), 60_000, 1000)).filter((x) => x.endpoint_id === ep.id);
    await api.post(`/webhook/endpoints/${ep.id}/disable`);
    await api.post(`/webhook/endpoints/${ep.id}/enable`);
    const { rows } = await db.query('SELECT next_attempt_at, leased_by FROM deliveries WHERE id = $1', [c!.id]);
    expect(rows[0].leased_by).toBe('holder');
    expect(rows[0].next_attempt_at.getTime()).toBe(s.clock.now().getTime() + 60_000);
    expect(await worker().tick()).toBe(0);
  });
});

