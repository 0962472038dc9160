/**
 * Disputes (issue 14 item 2): the reason codes of the reference (unit tests, no database), then over HTTP: opening a
 * dispute on an approved deposit (POST /simulate/dispute), one per intent (also two at once), resolving it won or lost
 * (a lost dispute debits the dispute account with a transaction, once, also under two concurrent resolutions),
 * GET /dispute/{id} and GET /dispute/list with their filters, other operators and environments, production refusing
 * the simulators, and the three events at a real receiver in both payload versions.
 */
import { verify, type DisputeEvent } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DISPUTE_CODES, disputeNetwork, isDisputeCode } from '../src/domain/dispute-codes.js';
import { client, newOperator, newUser, startTestServer, testWorkers, type Api, type Keys, type TestServer } from './helpers.js';
import { startReceiver, type Received } from './receiver.js';

// ---- The codes, without a database -------------------------------------------------------------------------------

/** The reference's lists, written out by hand (not generated like the module's). */
const VISA = ['10.1', '10.2', '10.3', '10.4', '10.5', '11.1', '11.2', '11.3', '12.1', '12.2', '12.3', '12.4', '12.5', '12.6', '12.7',
  '13.1', '13.2', '13.3', '13.4', '13.5', '13.6', '13.7', '13.8', '13.9'];
const MASTERCARD = ['4807', '4808', '4812', '4831', '4834', '4837', '4840', '4841', '4842', '4846', '4849', '4850', '4853', '4854', '4855', '4859',
  '4860', '4863', '4870', '4871', '4999'];
const ACH = [
  'R01', 'R02', 'R03', 'R04', 'R05', 'R06', 'R07', 'R08', 'R09', 'R10', 'R11', 'R12', 'R13', 'R14', 'R15', 'R16', 'R17', 'R18', 'R19', 'R20',
  'R21', 'R22', 'R23', 'R24', 'R25', 'R26', 'R27', 'R28', 'R29', 'R30', 'R31', 'R32', 'R33', 'R34', 'R35', 'R36', 'R37', 'R38', 'R39', 'R40',
  'R41', 'R42', 'R43', 'R44', 'R45', 'R46', 'R47', 'R50', 'R51', 'R52', 'R53', 'R61', 'R62', 'R67', 'R68', 'R69', 'R70', 'R71', 'R72', 'R73',
  'R74', 'R75', 'R76', 'R77', 'R80', 'R81', 'R82', 'R83', 'R84', 'R85',
];
const NEIGHBOURS = [
  '', ' ', '10', '10.0', '10.6', '10.10', '10.1 ', ' 10.1', '10,1', '11.0', '11.4', '12.0', '12.8', '13.0', '13.10', '14.1', '9.1', '1.1',
  '4806', '4809', '4811', '4813', '4830', '4832', '4833', '4835', '4836', '4838', '4839', '4843', '4845', '4847', '4848', '4851', '4852',
  '4856', '4858', '4861', '4862', '4864', '4869', '4872', '4998', '5000', '48', '04807',
  'R00', 'R48', 'R49', 'R54', 'R60', 'R63', 'R66', 'R78', 'R79', 'R86', 'R99', 'R1', 'R001', 'r01', 'R01 ', 'X01',
];

describe('dispute codes (domain/dispute-codes.ts)', () => {
  it('accepts every code of the reference, each with its network', () => {
    for (const c of VISA) expect([c, isDisputeCode(c), disputeNetwork(c)]).toEqual([c, true, 'visa']);
    for (const c of MASTERCARD) expect([c, isDisputeCode(c), disputeNetwork(c)]).toEqual([c, true, 'mastercard']);
    for (const c of ACH) expect([c, isDisputeCode(c), disputeNetwork(c)]).toEqual([c, true, 'ach']);
  });

  it('has exactly those lists: 24 Visa, 21 Mastercard, 70 ACH codes', () => {
    expect([...DISPUTE_CODES.visa]).toEqual(VISA);
    expect([...DISPUTE_CODES.mastercard]).toEqual(MASTERCARD);
    expect([...DISPUTE_CODES.ach]).toEqual(ACH);
  });

  it('refuses the neighbours and what is not a code', () => {
    for (const c of NEIGHBOURS) expect([c, isDisputeCode(c), disputeNetwork(c)]).toEqual([c, false, undefined]);
    for (const v of [undefined, null, 10.1, 4807, ['R01'], { code: 'R01' }]) expect(isDisputeCode(v)).toBe(false);
    expect(disputeNetwork('__proto__')).toBeUndefined();
    expect(disputeNetwork('constructor')).toBeUndefined();
  });
});

// ---- Over HTTP ---------------------------------------------------------------------------------------------------

let s: TestServer;
let keys: Keys;
let api: Api;
let prod: Api;
let other: Api;
let userId: string;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer();
  rx = await startReceiver();
  harness = testWorkers(s);
  keys = await newOperator(s, 'Acme Casino');
  api = client(s.url, keys.sandbox);
  prod = client(s.url, keys.production);
  other = client(s.url, (await newOperator(s, 'Other Casino')).sandbox);
  userId = await newUser(api);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

const db = () => s.running.deps.db;
let seq = 0;

/** A hosted-page intent (bank, rail ach), decided as the user's click would: approve, decline or cancel; or left open. */
async function pageIntent(body: Record<string, unknown> = {}, action: 'approve' | 'decline' | 'cancel' | null = 'approve', on: Api = api, user = userId) {
  const n = ++seq;
  const created = await on.post('/intent', { currency: 'USD', direction: 'cash_in', user_id: user, amount: 1000 + n, tag: `order-${n}`, ...body },
    { 'x-idempotency-key': `idem-${n}` });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  if (action) {
    const url = new URL(created.body.url);
    const r = await client(s.url).post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action });
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  }
  const i = await on.get(`/intent/${created.body.id}`);
  return i.body as { id: string; amount: number; status: string; tag: string; idempotency_key: string; rail: string; type: string };
}

/** An approved card deposit (POST /token card_only, then /authorize): rail card, type card_only. */
async function cardDeposit(amount = 2345, on: Api = api, user = userId) {
  const t = await on.post('/token', { user_id: user, type: 'card_only' });
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  const a = await on.post('/authorize', { token: t.body.token, amount, currency: 'USD', direction: 'cash_in' });
  expect(a.status, JSON.stringify(a.body)).toBe(200);
  expect(a.body).toMatchObject({ status: 'approved', rail: 'card', type: 'card_only' });
  return a.body as { id: string; amount: number };
}

const dispute = (intent_id: string, code = '10.4', on: Api = api) => on.post('/simulate/dispute', { intent_id, code });
const resolve = (dispute_id: string, result: string, on: Api = api) => on.post('/simulate/dispute/resolve', { dispute_id, result });

async function disputeAccount(operatorId = keys.id, environment = 'sandbox') {
  const { rows } = await db().query<{ id: string; balance: string }>(
    "SELECT id, balance FROM accounts WHERE operator_id = $1 AND environment = $2 AND type = 'dispute'", [operatorId, environment]);
  expect(rows).toHaveLength(1);
  return { id: rows[0]!.id, balance: Number(rows[0]!.balance) };
}

async function disputeTransactions(disputeId: string) {
  const { rows } = await db().query('SELECT * FROM transactions WHERE operator_id = $1 AND source_id = $2', [keys.id, disputeId]);
  return rows;
}

async function countDisputes(): Promise<number> {
  const { rows } = await db().query<{ n: string }>('SELECT count(*) AS n FROM disputes');
  return Number(rows[0]!.n);
}

describe('POST /simulate/dispute', () => {
  it('opens a dispute on an approved bank deposit: the reference object, status created, type push, the amount the intent\'s', async () => {
    const i = await pageIntent();
    expect(i).toMatchObject({ status: 'approved', rail: 'ach', type: 'push' });
    const r = await dispute(i.id, 'R10');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^dispute_/), amount: i.amount, currency: 'USD', created_at: s.clock.now().toISOString(), intent_id: i.id, code: 'R10',
      status: 'created', type: 'push',
    });
    expect((await api.get(`/dispute/${r.body.id}`)).body).toEqual(r.body);
  });

  it('types a card payment card_only, and takes a code of each network', async () => {
    const card = await cardDeposit();
    const r = await dispute(card.id, '4853');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ type: 'card_only', amount: card.amount, code: '4853', status: 'created' });
    for (const code of ['13.9', '4999', 'R85']) {
      const d = await dispute((await pageIntent()).id, code);
      expect(d.status, code).toBe(200);
      expect(d.body.code).toBe(code);
    }
  });

  it('disputes a settled deposit too (it stays approved)', async () => {
    const i = await pageIntent();
    expect((await api.post(`/simulate/intent/${i.id}/settle`)).status).toBe(200);
    expect((await dispute(i.id)).status).toBe(200);
  });

  it('refuses a code outside the reference\'s lists with 400 invalid_dispute_code, naming the accepted families, and writes nothing', async () => {
    const i = await pageIntent();
    const before = await countDisputes();
    for (const code of ['10.6', '4806', 'R48', 'R00', 'R86', 'r01', ' R01', 'AB', '99.9']) {
      const r = await dispute(i.id, code);
      expect(r.status, code).toBe(400);
      expect(r.body.error, code).toMatchObject({ code: 'invalid_dispute_code', field: 'code' });
      expect(r.body.error.message).toMatch(/Visa.*Mastercard.*ACH/);
    }
    // Missing, empty, not a string: the schema's codes.
    expect((await api.post('/simulate/dispute', { intent_id: i.id })).body.error).toMatchObject({ code: 'missing_field', field: 'code' });
    expect((await api.post('/simulate/dispute', { intent_id: i.id, code: '' })).body.error).toMatchObject({ code: 'invalid_length', field: 'code' });
    expect((await api.post('/simulate/dispute', { intent_id: i.id, code: 10.1 })).body.error).toMatchObject({ code: 'invalid_type', field: 'code' });
    expect((await api.post('/simulate/dispute', { code: '10.1' })).body.error).toMatchObject({ code: 'missing_field', field: 'intent_id' });
    expect(await countDisputes()).toBe(before);
    expect((await dispute(i.id, '10.1')).status).toBe(200);
  });

  it('refuses an intent that is not an approved deposit: 409 intent_not_disputable', async () => {
    const created = await pageIntent({}, null);
    const declined = await pageIntent({}, 'decline');
    const canceled = await pageIntent({}, 'cancel');
    const pending = await pageIntent({ approval_mode: 'manual' });
    const withdrawal = await pageIntent({ direction: 'cash_out' });
    expect([created.status, declined.status, canceled.status, pending.status, withdrawal.status]).toEqual(['created', 'declined', 'canceled', 'pending', 'approved']);
    const before = await countDisputes();
    for (const i of [created, declined, canceled, pending, withdrawal]) {
      const r = await dispute(i.id);
      expect(r.status, i.status).toBe(409);
      expect(r.body.error.code).toBe('intent_not_disputable');
    }
    expect(await countDisputes()).toBe(before);
    // Approved after manual review: now it can be disputed.
    expect((await api.post(`/intent/${pending.id}/approve`)).status).toBe(200);
    expect((await dispute(pending.id)).status).toBe(200);
  });

  it('one dispute per intent: a second answers 409 dispute_exists (naming the first), also with another code', async () => {
    const i = await pageIntent();
    const first = await dispute(i.id, '10.4');
    expect(first.status).toBe(200);
    for (const code of ['10.4', 'R01']) {
      const again = await dispute(i.id, code);
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('dispute_exists');
      expect(again.body.error.message).toContain(first.body.id);
    }
    // Resolved, still one per intent.
    expect((await resolve(first.body.id, 'won')).status).toBe(200);
    expect((await dispute(i.id)).body.error.code).toBe('dispute_exists');
  });

  it('two at once for one intent: one dispute, the other request 409 dispute_exists', async () => {
    for (let k = 0; k < 3; k++) {
      const i = await pageIntent();
      const rs = await Promise.all([dispute(i.id, '10.1'), dispute(i.id, 'R02'), dispute(i.id, '4807')]);
      expect(rs.map((r) => r.status).sort()).toEqual([200, 409, 409]);
      for (const r of rs.filter((x) => x.status === 409)) expect(r.body.error.code).toBe('dispute_exists');
      const { rows } = await db().query('SELECT id FROM disputes WHERE operator_id = $1 AND intent_id = $2', [keys.id, i.id]);
      expect(rows).toHaveLength(1);
      const events = await api.get(`/events?intent_id=${i.id}&type=dispute.created`);
      expect(events.body.data).toHaveLength(1);
    }
  });

  it('another operator\'s intent, an unknown one, one of the other environment: not found (or wrong_environment by its id)', async () => {
    const mine = await pageIntent();
    const theirs = await other.post('/simulate/dispute', { intent_id: mine.id, code: '10.4' });
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('intent_not_found');
    expect((await dispute('intent_sandbox_nope')).body.error.code).toBe('intent_not_found');
    expect((await dispute('intent_production_abc')).body.error.code).toBe('wrong_environment');
    expect((await api.get(`/intent/${mine.id}`)).body.status).toBe('approved');
    expect((await dispute(mine.id)).status).toBe(200);
  });
});

describe('POST /simulate/dispute/resolve', () => {
  it('won: answers the dispute, status won; nothing moves; the dispute can no longer change (409 dispute_not_open)', async () => {
    const i = await pageIntent();
    const d = (await dispute(i.id)).body;
    const account = await disputeAccount();
    const r = await resolve(d.id, 'won');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ ...d, status: 'won' });
    expect((await api.get(`/dispute/${d.id}`)).body.status).toBe('won');
    expect(await disputeAccount()).toEqual(account);
    expect(await disputeTransactions(d.id)).toHaveLength(0);
    for (const result of ['won', 'lost']) {
      const again = await resolve(d.id, result);
      expect(again.status, result).toBe(409);
      expect(again.body.error.code).toBe('dispute_not_open');
      expect(again.body.error.message).toMatch(/is won/);
    }
    expect((await api.get(`/dispute/${d.id}`)).body.status).toBe('won');
  });

  it('lost: answers the transaction that debits the operator\'s dispute account by the disputed amount', async () => {
    const i = await pageIntent({ amount: 4321 });
    const d = (await dispute(i.id, 'R05')).body;
    const before = await disputeAccount();
    const r = await resolve(d.id, 'lost');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^txn_/), amount: 4321, currency: 'USD', created_at: s.clock.now().toISOString(), date: s.clock.now().toISOString().slice(0, 10),
      status: 'settled', account_id: before.id, type: 'dispute', source_id: d.id, intent_id: i.id,
    });
    expect(await disputeAccount()).toEqual({ id: before.id, balance: before.balance - 4321 });
    expect(await disputeTransactions(d.id)).toHaveLength(1);
    expect((await api.get(`/dispute/${d.id}`)).body).toEqual({ ...d, status: 'lost' });
    const again = await resolve(d.id, 'lost');
    expect([again.status, again.body.error.code]).toEqual([409, 'dispute_not_open']);
    expect((await resolve(d.id, 'won')).body.error.code).toBe('dispute_not_open');
    expect(await disputeAccount()).toEqual({ id: before.id, balance: before.balance - 4321 });
    // The settlement account is not touched by a dispute.
    const { rows } = await db().query("SELECT count(*)::int AS n FROM transactions t JOIN accounts a ON a.operator_id = t.operator_id AND a.id = t.account_id WHERE t.source_id = $1 AND a.type <> 'dispute'", [d.id]);
    expect(rows[0].n).toBe(0);
  });

  it('two resolutions at once: one applies, the other is 409 dispute_not_open; a lost dispute debits once', async () => {
    for (const pair of [['lost', 'lost'], ['won', 'lost'], ['lost', 'won']] as const) {
      const i = await pageIntent({ amount: 1500 });
      const d = (await dispute(i.id)).body;
      const before = await disputeAccount();
      const rs = await Promise.all(pair.map((x) => resolve(d.id, x)));
      expect(rs.map((r) => r.status).sort(), pair.join()).toEqual([200, 409]);
      expect(rs.find((r) => r.status === 409)!.body.error.code).toBe('dispute_not_open');
      const status = (await api.get(`/dispute/${d.id}`)).body.status;
      const winner = rs.find((r) => r.status === 200)!.body;
      const lost = status === 'lost';
      expect(winner.type).toBe(lost ? 'dispute' : 'push');
      expect(await disputeTransactions(d.id)).toHaveLength(lost ? 1 : 0);
      expect((await disputeAccount()).balance).toBe(before.balance - (lost ? 1500 : 0));
      const events = (await api.get(`/events?intent_id=${i.id}`)).body.data.map((e: { type: string }) => e.type).filter((t: string) => t.startsWith('dispute.'));
      expect(events.sort()).toEqual(['dispute.created', `dispute.${status}`].sort());
    }
  });

  it('an unknown dispute, another operator\'s, a bad result: 404 dispute_not_found, 400', async () => {
    const d = (await dispute((await pageIntent()).id)).body;
    expect((await resolve('dispute_nope', 'won')).body.error).toMatchObject({ code: 'dispute_not_found' });
    const theirs = await resolve(d.id, 'lost', other);
    expect([theirs.status, theirs.body.error.code]).toEqual([404, 'dispute_not_found']);
    for (const bad of ['draw', 'WON', '', 'win']) {
      const r = await resolve(d.id, bad);
      expect(r.status, bad).toBe(400);
      expect(r.body.error.field).toBe('result');
    }
    expect((await api.post('/simulate/dispute/resolve', { result: 'won' })).body.error).toMatchObject({ code: 'missing_field', field: 'dispute_id' });
    expect((await api.get(`/dispute/${d.id}`)).body.status).toBe('created');
  });
});

describe('the OpenAPI document', () => {
  it('lists the four dispute routes with their request schemas', async () => {
    const doc = (await client(s.url).get('/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/dispute/{id}', '/dispute/list', '/simulate/dispute', '/simulate/dispute/resolve']));
    expect(doc.paths['/simulate/dispute'].post.requestBody.content['application/json'].schema.required).toEqual(['intent_id', 'code']);
  });
});

describe('production refuses the simulators', () => {
  it('403 sandbox_only for POST /simulate/dispute and /simulate/dispute/resolve with a production key, whatever the body', async () => {
    const i = await pageIntent();
    const d = (await dispute(i.id)).body;
    for (const r of [
      await prod.post('/simulate/dispute', { intent_id: i.id, code: '10.4' }),
      await prod.post('/simulate/dispute', { intent_id: 'intent_production_x', code: 'nope' }),
      await prod.post('/simulate/dispute/resolve', { dispute_id: d.id, result: 'lost' }),
      await prod.post('/simulate/dispute/resolve', { dispute_id: 'dispute_x', result: 'won' }),
    ]) {
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('sandbox_only');
    }
    expect((await api.get(`/dispute/${d.id}`)).body.status).toBe('created');
    // Production sees no sandbox disputes.
    expect((await prod.get(`/dispute/${d.id}`)).body.error.code).toBe('dispute_not_found');
    expect((await prod.get('/dispute/list')).body).toEqual({ data: [], next_cursor: null });
  });
});

describe('GET /dispute/{id}, GET /dispute/list', () => {
  let op: Api;
  let user: string;
  const made: { id: string; status: string; created_at: string }[] = [];

  beforeAll(async () => {
    op = client(s.url, (await newOperator(s, 'List Casino')).sandbox);
    user = await newUser(op);
    // Five disputes a minute apart: created, won, lost, created, won.
    for (const result of [null, 'won', 'lost', null, 'won']) {
      s.clock.advance(60_000);
      const i = await pageIntent({}, 'approve', op, user);
      const d = (await dispute(i.id, 'R03', op)).body;
      if (result) expect((await resolve(d.id, result, op)).status).toBe(200);
      made.push({ id: d.id, status: result ?? 'created', created_at: d.created_at });
    }
  });

  const ids = (r: { body: { data: { id: string }[] } }) => r.body.data.map((d) => d.id);
  const newestFirst = () => [...made].reverse();

  it('another operator\'s dispute is not found', async () => {
    expect((await op.get(`/dispute/${made[0]!.id}`)).status).toBe(200);
    const r = await api.get(`/dispute/${made[0]!.id}`);
    expect([r.status, r.body.error.code]).toEqual([404, 'dispute_not_found']);
    expect(ids(await api.get('/dispute/list?limit=100'))).not.toContain(made[0]!.id);
    expect((await op.get('/dispute/dispute_unknown')).body.error.code).toBe('dispute_not_found');
  });

  it('lists newest first, with the reference object', async () => {
    const r = await op.get('/dispute/list');
    expect(r.status).toBe(200);
    expect(ids(r)).toEqual(newestFirst().map((d) => d.id));
    expect(r.body.data.map((d: { status: string }) => d.status)).toEqual(newestFirst().map((d) => d.status));
    expect(r.body.next_cursor).toBeNull();
    expect(Object.keys(r.body.data[0]).sort()).toEqual(['amount', 'code', 'created_at', 'currency', 'id', 'intent_id', 'status', 'type']);
  });

  it('filters by status[] (one, several, also as status=) and by created_at.after/.before', async () => {
    const of = (...st: string[]) => newestFirst().filter((d) => st.includes(d.status)).map((d) => d.id);
    expect(ids(await op.get('/dispute/list?status[]=created'))).toEqual(of('created'));
    expect(ids(await op.get('/dispute/list?status%5B%5D=won&status%5B%5D=lost'))).toEqual(of('won', 'lost'));
    expect(ids(await op.get('/dispute/list?status=lost'))).toEqual(of('lost'));
    const after = made[1]!.created_at;
    const before = made[4]!.created_at;
    expect(ids(await op.get(`/dispute/list?created_at.after=${after}&created_at.before=${before}`))).toEqual([made[3]!.id, made[2]!.id]);
    expect(ids(await op.get(`/dispute/list?created_at.after=${after}&status[]=won`))).toEqual([made[4]!.id]);
  });

  it('pages with cursor and limit', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { data: { id: string }[]; next_cursor: string | null } } = await op.get(`/dispute/list?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...ids(r));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(newestFirst().map((d) => d.id));
  });

  it('bad filters are 400 with their codes, never a 500', async () => {
    const code = async (q: string) => (await op.get(`/dispute/list?${q}`)).body.error?.code;
    expect(await code('status[]=open')).toBe('invalid_value');
    expect(await code('status=pending')).toBe('invalid_value');
    expect(await code('cursor=garbage')).toBe('invalid_cursor');
    expect(await code('created_at.after=yesterday')).toBe('invalid_date');
    expect(await code('limit=0')).toBe('invalid_format');
    expect(await code('limit=101')).toBe('invalid_format');
  });
});

describe('dispute events at a real receiver, in both payload versions', () => {
  it('dispute.created, dispute.won and dispute.lost: signed, parsed by the SDK, cents and tag (2024-05), dollars and idempotency_key (2023-01)', async () => {
    const op: Keys = await newOperator(s, 'Events Casino');
    const on = client(s.url, op.sandbox);
    const user = await newUser(on);
    const events = ['dispute.created', 'dispute.won', 'dispute.lost'];
    const v2024 = await on.post('/webhook/endpoints', { url: `${rx.url}/v2024`, events, payload_version: '2024-05' });
    const v2023 = await on.post('/webhook/endpoints', { url: `${rx.url}/v2023`, events, payload_version: '2023-01' });
    expect([v2024.status, v2023.status]).toEqual([201, 201]);
    const secrets: Record<string, string> = { '/v2024': v2024.body.secret, '/v2023': v2023.body.secret };

    const wonIntent = await pageIntent({ amount: 1250 }, 'approve', on, user);
    const lostIntent = await cardDeposit(3499, on, user);
    const won = (await dispute(wonIntent.id, '13.1', on)).body;
    const lost = (await dispute(lostIntent.id, '4837', on)).body;
    expect((await resolve(won.id, 'won', on)).status).toBe(200);
    const txn = (await resolve(lost.id, 'lost', on)).body;
    expect(txn.type).toBe('dispute');
    await harness.make().tick();

    const parsed = async (path: string) => {
      const got = rx.received.filter((r: Received) => r.path === path);
      return Promise.all(got.map(async (r) => (await verify('pushcash', { body: r.body, headers: r.headers, secrets: [secrets[path]!], now: new Date(JSON.parse(r.body).timestamp) })) as DisputeEvent));
    };
    const byKey = (list: DisputeEvent[]) => Object.fromEntries(list.map((e) => [`${e.type}:${e.data.id}`, e]));
    const a = byKey(await parsed('/v2024'));
    const b = byKey(await parsed('/v2023'));
    const expected = [`dispute.created:${won.id}`, `dispute.won:${won.id}`, `dispute.created:${lost.id}`, `dispute.lost:${lost.id}`].sort();
    expect(Object.keys(a).sort()).toEqual(expected);
    expect(Object.keys(b).sort()).toEqual(expected);

    // 2024-05: integer cents and the intent's tag.
    expect(a[`dispute.created:${won.id}`]!).toMatchObject({ version: '2024-05' });
    expect(a[`dispute.created:${won.id}`]!.data).toEqual({
      id: won.id, intent_id: wonIntent.id, tag: wonIntent.tag, amount: 1250, currency: 'USD', code: '13.1', status: 'created', type: 'push', created_at: won.created_at,
    });
    expect(a[`dispute.won:${won.id}`]!.data).toMatchObject({ id: won.id, status: 'won', amount: 1250, tag: wonIntent.tag });
    expect(a[`dispute.lost:${lost.id}`]!.data).toMatchObject({
      id: lost.id, intent_id: lostIntent.id, amount: 3499, code: '4837', status: 'lost', type: 'card_only',
      transaction: { id: txn.id, amount: 3499, currency: 'USD', status: 'settled', date: txn.date, account_id: txn.account_id },
    });
    // 2023-01: float dollars and idempotency_key (the intent's X-Idempotency-Key), no tag.
    expect(b[`dispute.created:${won.id}`]!).toMatchObject({ version: '2023-01' });
    expect(b[`dispute.created:${won.id}`]!.data).toEqual({
      id: won.id, intent_id: wonIntent.id, idempotency_key: wonIntent.idempotency_key, amount: 12.5, currency: 'USD', code: '13.1', status: 'created', type: 'push',
      created_at: won.created_at,
    });
    expect(wonIntent.idempotency_key).toMatch(/^idem-/);
    expect(b[`dispute.won:${won.id}`]!.data).toMatchObject({ status: 'won', amount: 12.5 });
    expect(b[`dispute.lost:${lost.id}`]!.data).toMatchObject({ status: 'lost', amount: 34.99, transaction: { id: txn.id, amount: 34.99 } });
    expect('tag' in b[`dispute.lost:${lost.id}`]!.data).toBe(false);

    // Filed under their intents.
    const under = await on.get(`/events?intent_id=${lostIntent.id}`);
    expect(under.body.data.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['dispute.created', 'dispute.lost']));
  });
});
