/**
 * Refunds over HTTP: POST /refund on approved deposits (settled or not), all of it or part, one per intent (a repeat
 * and a concurrent one answer with the first), the sandbox's refund-decline card (401 with the refund), the money
 * (a `refund` transaction debiting the settlement account), GET /refund/{id}, GET /refund/list and its filters,
 * other tenants, and refund.approved / refund.declined at a real receiver in both payload versions.
 */
import { verify, type RefundEvent } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let prod: Api;
let harness: ReturnType<typeof testWorkers>;
let rx: Awaited<ReturnType<typeof startReceiver>>;

const APPROVE_CARD = { pan: '5555 5555 5555 4444', cvv: '123', exp_month: '12', exp_year: '39' };
const DECLINE_REFUND_CARD = { pan: '5999 9619 6976 9301', cvv: '123', exp_month: '12', exp_year: '39' };

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Refund Casino');
  api = client(s.url, keys.sandbox);
  prod = client(s.url, keys.production);
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

/** An approved card deposit by POST /authorize (a card of POST /tokenize): the intent. */
async function cardDeposit(on: Api, amount = 5000, card = APPROVE_CARD, extra: Record<string, unknown> = {}) {
  const user = await newUser(on);
  const t = await on.post('/tokenize', { user_id: user, ...card });
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  const r = await on.post('/authorize', { amount, currency: 'USD', direction: 'cash_in', token: t.body.token, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.status).toBe('approved');
  return r.body as { id: string; amount: number; user_id: string; tag: string | null };
}

async function settlement(on: Api) {
  const r = await on.get('/account/list?type=settlement');
  expect(r.status).toBe(200);
  expect(r.body.data).toHaveLength(1);
  return r.body.data[0] as { id: string; balance: number };
}

async function txnsOf(intentId: string) {
  const { rows } = await s.running.deps.db.query('SELECT type, amount, source_id, account_id FROM transactions WHERE intent_id = $1 ORDER BY created_at, id', [intentId]);
  return rows as { type: string; amount: number; source_id: string | null; account_id: string }[];
}

async function eventsOf(intentId: string, on: Api = api): Promise<string[]> {
  const r = await on.get(`/events?intent_id=${encodeURIComponent(intentId)}`);
  return (r.body.data as { type: string }[]).map((e) => e.type);
}

describe('POST /refund', () => {
  it('refunds an approved, unsettled deposit in full: 200 with the refund, GET /refund/{id}, a refund transaction debiting the settlement account', async () => {
    const before = (await settlement(api)).balance;
    const i = await cardDeposit(api, 4200);
    const r = await api.post('/refund', { intent_id: i.id });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ id: expect.stringMatching(/^refund_/), intent_id: i.id, amount: 4200, currency: 'USD', status: 'approved', created_at: s.clock.now().toISOString() });
    expect((await api.get(`/refund/${r.body.id}`)).body).toEqual(r.body);
    const acct = await settlement(api);
    expect(acct.balance).toBe(before - 4200);
    expect(await txnsOf(i.id)).toEqual([{ type: 'refund', amount: 4200, source_id: r.body.id, account_id: acct.id }]);
    // Settling afterwards credits the deposit: the refund and the settlement cancel out.
    expect((await api.post('/simulate/settlement', { intent_id: i.id })).status).toBe(200);
    expect((await settlement(api)).balance).toBe(before);
    expect(await eventsOf(i.id)).toEqual(expect.arrayContaining(['refund.approved', 'intent.settled', 'intent.approved']));
  });

  it('refunds part of a settled deposit: amount in cents, out of the account the settlement went to', async () => {
    const i = await cardDeposit(api, 5000);
    const settled = await api.post('/simulate/settlement', { intent_id: i.id });
    expect(settled.status).toBe(200);
    const before = (await settlement(api)).balance;
    s.clock.advance(1000);
    const r = await api.post('/refund', { intent_id: i.id, amount: 1500 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ amount: 1500, status: 'approved' });
    expect((await settlement(api)).balance).toBe(before - 1500);
    expect((await txnsOf(i.id)).map((t) => [t.type, t.amount, t.account_id])).toEqual([['intent', 5000, settled.body.account_id], ['refund', 1500, settled.body.account_id]]);
  });

  it('refunds a deposit of the hosted page (no credential) as well', async () => {
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: await newUser(api), amount: 777 });
    const r = await api.post('/refund', { intent_id: intent.id });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ intent_id: intent.id, amount: 777, status: 'approved' });
  });

  it('refuses more than the intent with 400 refund_exceeds_intent, and writes nothing', async () => {
    const i = await cardDeposit(api, 1000);
    const r = await api.post('/refund', { intent_id: i.id, amount: 1001 });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'refund_exceeds_intent', field: 'amount' });
    expect(await txnsOf(i.id)).toEqual([]);
    // The intent can still be refunded, up to its amount.
    expect((await api.post('/refund', { intent_id: i.id, amount: 1000 })).status).toBe(200);
  });

  it('refuses what is not an approved deposit with 409 intent_not_refundable: a withdrawal, an undecided, a pending, a declined intent', async () => {
    const user = await newUser(api);
    // A withdrawal: the user needs a deposit first, and a bank credential.
    const bank = await api.post('/sandbox/credential', { user_id: user, type: 'secure_debit' });
    expect((await api.post('/authorize', { amount: 3000, currency: 'USD', direction: 'cash_in', credential_id: bank.body.id })).status).toBe(200);
    const out = await api.post('/authorize', { amount: 1000, currency: 'USD', direction: 'cash_out', credential_id: bank.body.id });
    expect(out.status, JSON.stringify(out.body)).toBe(200);
    const created = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 1000, currency: 'USD' });
    const pending = await api.post('/authorize', { amount: 1000, currency: 'USD', direction: 'cash_in', credential_id: bank.body.id, approval_mode: 'manual' });
    expect(pending.body.status).toBe('pending');
    const declined = await api.post('/authorize', { amount: 2200, currency: 'USD', direction: 'cash_in', credential_id: bank.body.id });
    expect(declined.status).toBe(401);
    for (const id of [out.body.id, created.body.id, pending.body.id, declined.body.id]) {
      const r = await api.post('/refund', { intent_id: id });
      expect(r.status, id).toBe(409);
      expect(r.body.error.code).toBe('intent_not_refundable');
    }
    const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM refunds WHERE intent_id = ANY($1)', [[out.body.id, created.body.id, pending.body.id, declined.body.id]]);
    expect(rows[0].n).toBe(0);
  });

  it('is one per intent: a repeat answers 200 with the first refund, whatever its amount', async () => {
    const i = await cardDeposit(api, 3000);
    const first = await api.post('/refund', { intent_id: i.id, amount: 1000 });
    expect(first.status).toBe(200);
    for (const body of [{ intent_id: i.id, amount: 1000 }, { intent_id: i.id }, { intent_id: i.id, amount: 2000 }]) {
      const again = await api.post('/refund', body);
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
    }
    expect((await txnsOf(i.id)).filter((t) => t.type === 'refund')).toHaveLength(1);
    expect((await eventsOf(i.id)).filter((t) => t === 'refund.approved')).toHaveLength(1);
  });

  it('makes one refund of concurrent requests for one intent: every answer is that refund, one debit, one event', async () => {
    const i = await cardDeposit(api, 2500);
    const before = (await settlement(api)).balance;
    const answers = await Promise.all(Array.from({ length: 6 }, (_, k) => api.post('/refund', k % 2 ? { intent_id: i.id } : { intent_id: i.id, amount: 2500 })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM refunds WHERE intent_id = $1', [i.id]);
    expect(rows[0].n).toBe(1);
    expect((await txnsOf(i.id)).filter((t) => t.type === 'refund')).toHaveLength(1);
    expect((await settlement(api)).balance).toBe(before - 2500);
    expect((await eventsOf(i.id)).filter((t) => t.startsWith('refund.'))).toEqual(['refund.approved']);
  });

  it('declines the refunds of the sandbox card 5999 9619 6976 9301: 401 with the refund as body, no money, refund.declined; a repeat answers the same', async () => {
    const i = await cardDeposit(api, 1200, DECLINE_REFUND_CARD);
    const before = (await settlement(api)).balance;
    const r = await api.post('/refund', { intent_id: i.id });
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ id: expect.stringMatching(/^refund_/), intent_id: i.id, amount: 1200, currency: 'USD', status: 'declined', created_at: expect.any(String) });
    expect((await settlement(api)).balance).toBe(before);
    expect(await txnsOf(i.id)).toEqual([]);
    expect(await eventsOf(i.id)).toContain('refund.declined');
    expect((await api.get(`/refund/${r.body.id}`)).body).toMatchObject({ status: 'declined' });
    const again = await api.post('/refund', { intent_id: i.id, amount: 100 });
    expect(again.status).toBe(401);
    expect(again.body).toEqual(r.body);
  });

  it('declines as well with a sandbox credential ending in 9301 (POST /sandbox/credential), Apple Pay included; other cards approve', async () => {
    for (const [type, last4, status] of [['card_only_debit', '9301', 401], ['apple_pay', '9301', 401], ['card_only_debit', '4444', 200], ['card_only_credit', '1234', 200]] as const) {
      const user = await newUser(api);
      const c = await api.post('/sandbox/credential', { user_id: user, type, card_last4: last4 });
      expect(c.status).toBe(200);
      const a = await api.post('/authorize', { amount: 900, currency: 'USD', direction: 'cash_in', credential_id: c.body.id });
      expect(a.status).toBe(200);
      const r = await api.post('/refund', { intent_id: a.body.id });
      expect(r.status, `${type} ${last4}`).toBe(status);
      expect(r.body.status).toBe(status === 401 ? 'declined' : 'approved');
    }
  });

  it('approves the refund of that card in production: the decline card is the sandbox\'s', async () => {
    const before = (await settlement(prod)).balance;
    const i = await cardDeposit(prod, 1200, DECLINE_REFUND_CARD);
    const r = await prod.post('/refund', { intent_id: i.id });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('approved');
    expect((await settlement(prod)).balance).toBe(before - 1200);
  });

  it("answers another operator's intent and refund as not found, and another environment's intent as wrong_environment", async () => {
    const i = await cardDeposit(api, 800);
    const refund = (await api.post('/refund', { intent_id: i.id })).body;
    const other = client(s.url, (await newOperator(s, 'Other Casino')).sandbox);
    const r = await other.post('/refund', { intent_id: i.id });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('intent_not_found');
    const g = await other.get(`/refund/${refund.id}`);
    expect(g.status).toBe(404);
    expect(g.body.error.code).toBe('refund_not_found');
    expect((await other.get('/refund/list')).body.data).toEqual([]);
    expect((await prod.get(`/refund/${refund.id}`)).status).toBe(404);
    const w = await prod.post('/refund', { intent_id: i.id });
    expect(w.status).toBe(400);
    expect(w.body.error.code).toBe('wrong_environment');
    expect((await api.post('/refund', { intent_id: 'intent_sandbox_nope' })).body.error.code).toBe('intent_not_found');
    expect((await api.get('/refund/refund_nope')).body.error.code).toBe('refund_not_found');
  });

  it('refuses bad input with the error shape and a stable code', async () => {
    const i = await cardDeposit(api, 800);
    for (const [body, code, field] of [
      [{}, 'missing_field', 'intent_id'],
      [{ intent_id: '' }, 'invalid_length', 'intent_id'],
      [{ intent_id: i.id, amount: 0 }, 'out_of_range', 'amount'],
      [{ intent_id: i.id, amount: -5 }, 'out_of_range', 'amount'],
      [{ intent_id: i.id, amount: 10.5 }, 'invalid_type', 'amount'],
      [{ intent_id: i.id, amount: '100' }, 'invalid_type', 'amount'],
      [{ intent_id: 42 }, 'invalid_type', 'intent_id'],
    ] as const) {
      const r = await api.post('/refund', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code, field });
    }
    const anon = await client(s.url).post('/refund', { intent_id: i.id });
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe('unauthorized');
    expect(await txnsOf(i.id)).toEqual([]);
  });
});

describe('GET /refund/list', () => {
  it('lists newest first, by status[] (repeatable), status=, created_at.after / .before and cursor', async () => {
    const op = await newOperator(s, 'List Casino');
    const sb = client(s.url, op.sandbox);
    const t0 = s.clock.now();
    const made: { id: string; status: string }[] = [];
    for (let k = 0; k < 5; k++) {
      s.clock.advance(1000);
      const i = await cardDeposit(sb, 500 + k, k % 2 ? DECLINE_REFUND_CARD : APPROVE_CARD);
      const r = await sb.post('/refund', { intent_id: i.id });
      made.push({ id: r.body.id, status: r.body.status });
    }
    const newest = [...made].reverse();
    const ids = (r: { body: { data: { id: string }[] } }) => r.body.data.map((x) => x.id);
    expect(ids(await sb.get('/refund/list'))).toEqual(newest.map((m) => m.id));
    expect(ids(await sb.get('/refund/list?status[]=declined'))).toEqual(newest.filter((m) => m.status === 'declined').map((m) => m.id));
    expect(ids(await sb.get('/refund/list?status=approved'))).toEqual(newest.filter((m) => m.status === 'approved').map((m) => m.id));
    expect(ids(await sb.get('/refund/list?status%5B%5D=approved&status%5B%5D=declined'))).toEqual(newest.map((m) => m.id));
    expect(ids(await sb.get('/refund/list?status[]=approved&status[]=declined'))).toEqual(newest.map((m) => m.id));
    // Refund k was made at t0 + (k+1) s.
    const after = new Date(t0.getTime() + 2500).toISOString();
    const before = new Date(t0.getTime() + 4500).toISOString();
    expect(ids(await sb.get(`/refund/list?created_at.after=${after}&created_at.before=${before}`))).toEqual([made[3]!.id, made[2]!.id]);
    // Pages of 2, with the cursor.
    const p1 = await sb.get('/refund/list?limit=2');
    expect(ids(p1)).toEqual(newest.slice(0, 2).map((m) => m.id));
    const p2 = await sb.get(`/refund/list?limit=2&cursor=${p1.body.next_cursor}`);
    expect(ids(p2)).toEqual(newest.slice(2, 4).map((m) => m.id));
    const p3 = await sb.get(`/refund/list?limit=2&cursor=${p2.body.next_cursor}`);
    expect(ids(p3)).toEqual(newest.slice(4).map((m) => m.id));
    expect(p3.body.next_cursor).toBeNull();
    expect(p1.body.data[0]).toEqual({ id: newest[0]!.id, intent_id: expect.any(String), amount: 504, currency: 'USD', status: 'approved', created_at: expect.any(String) });
    // Bad filters: 400 with a code.
    for (const [q, code] of [['status[]=refunded', 'invalid_value'], ['status=nope', 'invalid_value'], ['created_at.after=yesterday', 'invalid_date'], ['cursor=zzz', 'invalid_cursor'], ['limit=0', 'invalid_format']] as const) {
      const r = await sb.get(`/refund/list?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe(code);
    }
  });
});

describe('refund events at a real receiver', () => {
  it('delivers refund.approved and refund.declined, signed, in cents and tag (2024-05) and in dollars and idempotency_key (2023-01)', async () => {
    const op = await newOperator(s, 'Hook Casino');
    const sb = client(s.url, op.sandbox);
    const eps: Record<string, { id: string; secret: string }> = {};
    for (const v of ['2024-05', '2023-01']) {
      const r = await sb.post('/webhook/endpoints', { url: `${rx.url}/refunds-${v}`, events: ['refund.approved', 'refund.declined'], payload_version: v });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      eps[v] = r.body;
    }
    const ok = await cardDeposit(sb, 1234, APPROVE_CARD, { tag: 'deposit-ok' });
    const no = await cardDeposit(sb, 2345, DECLINE_REFUND_CARD, { tag: 'deposit-no' });
    const approved = (await sb.post('/refund', { intent_id: ok.id, amount: 1050 })).body;
    const declined = (await sb.post('/refund', { intent_id: no.id })).body;
    await harness.make().tick();
    const at = (v: string) => rx.received.filter((r) => r.path === `/refunds-${v}`);
    const parse = async (v: string, r: Received) =>
      (await verify('pushcash', { body: r.body, headers: r.headers, secrets: [eps[v]!.secret], now: new Date(JSON.parse(r.body).timestamp) })) as RefundEvent;
    for (const v of ['2024-05', '2023-01'] as const) {
      expect(at(v), v).toHaveLength(2);
      const events = await Promise.all(at(v).map((r) => parse(v, r)));
      const byType = Object.fromEntries(events.map((e) => [e.type, e]));
      expect(Object.keys(byType).sort()).toEqual(['refund.approved', 'refund.declined']);
      const a = byType['refund.approved']!;
      const d = byType['refund.declined']!;
      expect(a.version).toBe(v);
      if (v === '2024-05') {
        expect(a.data).toEqual({ id: approved.id, intent_id: ok.id, tag: 'deposit-ok', amount: 1050, currency: 'USD', status: 'approved', created_at: approved.created_at });
        expect(d.data).toMatchObject({ id: declined.id, intent_id: no.id, tag: 'deposit-no', amount: 2345, status: 'declined' });
      } else {
        expect(a.data).toEqual({ id: approved.id, intent_id: ok.id, idempotency_key: 'deposit-ok', amount: 10.5, currency: 'USD', status: 'approved', created_at: approved.created_at });
        expect(d.data).toMatchObject({ id: declined.id, intent_id: no.id, amount: 23.45, status: 'declined' });
        expect(d.data).toMatchObject({ idempotency_key: 'deposit-no' });
        expect('tag' in d.data).toBe(false);
      }
    }
    // 2023-01 names the intent by its X-Idempotency-Key when it has one (else its tag, as intent events do); 2024-05's tag falls back to the key.
    const user = await newUser(sb);
    const made = await sb.post('/intent', { direction: 'cash_in', user_id: user, amount: 999, currency: 'USD' }, { 'x-idempotency-key': 'order-77' });
    const url = new URL(made.body.url);
    expect((await client(s.url).post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action: 'approve' })).status).toBe(200);
    rx.received.length = 0;
    await sb.post('/refund', { intent_id: made.body.id });
    await harness.make().tick();
    const legacy = await parse('2023-01', at('2023-01')[0]!);
    expect(legacy.data).toMatchObject({ idempotency_key: 'order-77', amount: 9.99 });
    const modern = await parse('2024-05', at('2024-05')[0]!);
    expect(modern.data).toMatchObject({ tag: 'order-77', amount: 999 });
  });
});
