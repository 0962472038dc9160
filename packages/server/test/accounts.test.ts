/**
 * Accounts and the sandbox helpers over HTTP: GET /account/list and /account/{id} with balances moved by settlements
 * and refunds, POST /account and the account_id rule of POST /intent and POST /authorize, POST /simulate/settlement,
 * POST /sandbox/credential, the status[] and type filters of GET /intent/list, and production refusing the sandbox
 * routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type TestServer } from './helpers.js';
import { createKey, ensureSandboxOperator } from '../src/payments/operators/operators.js';

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s?.stop());

async function fresh(name = 'Ledger Casino') {
  const keys = await newOperator(s, name);
  return { keys, api: client(s.url, keys.sandbox), prod: client(s.url, keys.production) };
}

async function accounts(on: Api, q = '') {
  const r = await on.get(`/account/list${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as { id: string; type: string; name: string; balance: number; currency: string; created_at: string }[];
}

async function balanceOf(on: Api, id: string): Promise<number> {
  const r = await on.get(`/account/${id}`);
  expect(r.status).toBe(200);
  return r.body.balance;
}

/** A credential of POST /sandbox/credential and an authorization with it. */
async function authorizeWith(on: Api, user: string, body: Record<string, unknown>, type = 'secure_debit') {
  const c = await on.post('/sandbox/credential', { user_id: user, type });
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  return on.post('/authorize', { currency: 'USD', direction: 'cash_in', credential_id: c.body.id, ...body });
}

describe('GET /account/list and GET /account/{id}', () => {
  it('lists the default settlement and dispute accounts of the key\'s environment, with type= for one kind', async () => {
    const { api, prod } = await fresh();
    const all = await accounts(api);
    expect(all.map((a) => [a.type, a.name, a.balance, a.currency])).toEqual([['settlement', 'Settlement', 0, 'USD'], ['dispute', 'Disputes', 0, 'USD']]);
    for (const a of all) {
      expect(a.id).toMatch(/^account_/);
      expect(new Date(a.created_at).toISOString()).toBe(a.created_at);
      expect((await api.get(`/account/${a.id}`)).body).toEqual(a);
    }
    expect((await accounts(api, '?type=settlement')).map((a) => a.type)).toEqual(['settlement']);
    expect((await accounts(api, '?type=dispute')).map((a) => a.type)).toEqual(['dispute']);
    const bad = await api.get('/account/list?type=savings');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_value', field: 'type' });
    // Production has accounts of its own.
    const prodIds = (await accounts(prod)).map((a) => a.id);
    expect(prodIds).toHaveLength(2);
    expect(prodIds.some((id) => all.some((a) => a.id === id))).toBe(false);
    const cross = await prod.get(`/account/${all[0]!.id}`);
    expect(cross.status).toBe(404);
    expect(cross.body.error.code).toBe('account_not_found');
  });

  it("answers another operator's account as not found", async () => {
    const a = await fresh('Alpha');
    const b = await fresh('Beta');
    const id = (await accounts(a.api))[0]!.id;
    const r = await b.api.get(`/account/${id}`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('account_not_found');
    expect((await b.api.get('/account/account_nope')).body.error.code).toBe('account_not_found');
    expect((await client(s.url).get('/account/list')).status).toBe(401);
  });

  it('moves balances: a settled deposit credits the settlement account, a settled withdrawal and a refund debit it', async () => {
    const { api } = await fresh();
    const settlementId = (await accounts(api, '?type=settlement'))[0]!.id;
    const user = await newUser(api);
    const dep = await authorizeWith(api, user, { amount: 10_000 });
    expect(dep.status).toBe(200);
    expect(await balanceOf(api, settlementId)).toBe(0); // approved, not settled
    expect((await api.post('/simulate/settlement', { intent_id: dep.body.id })).status).toBe(200);
    expect(await balanceOf(api, settlementId)).toBe(10_000);
    const out = await authorizeWith(api, user, { amount: 2_500, direction: 'cash_out' });
    expect(out.status, JSON.stringify(out.body)).toBe(200);
    expect((await api.post('/simulate/settlement', { intent_id: out.body.id })).status).toBe(200);
    expect(await balanceOf(api, settlementId)).toBe(7_500);
    expect((await api.post('/refund', { intent_id: dep.body.id, amount: 4_000 })).status).toBe(200);
    expect(await balanceOf(api, settlementId)).toBe(3_500);
    // The dispute account did not move.
    expect((await accounts(api, '?type=dispute'))[0]!.balance).toBe(0);
    // The ledger explains the balance.
    const { rows } = await s.running.deps.db.query('SELECT type, amount FROM transactions WHERE account_id = $1 ORDER BY created_at, id', [settlementId]);
    expect(rows.map((r) => [r.type, r.amount]).sort()).toEqual([['intent', 10_000], ['intent', 2_500], ['refund', 4_000]].sort());
  });
});

describe('several settlement accounts', () => {
  it('POST /account makes a settlement account; then POST /intent and POST /authorize need account_id, and the money goes to it', async () => {
    const { api } = await fresh();
    const [main] = await accounts(api, '?type=settlement');
    const user = await newUser(api);
    // One settlement account: account_id is optional, and must be one of the operator's settlement accounts when sent.
    expect((await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD' })).status).toBe(200);
    expect((await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD', account_id: main!.id })).status).toBe(200);

    s.clock.advance(1000); // the list is oldest first: the new account after the default one
    const made = await api.post('/account', { name: 'Poker room' });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body).toEqual({ id: expect.stringMatching(/^account_/), type: 'settlement', name: 'Poker room', balance: 0, currency: 'USD', created_at: s.clock.now().toISOString() });
    expect((await accounts(api, '?type=settlement')).map((a) => a.id)).toEqual([main!.id, made.body.id]);

    const noAccount = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD' });
    expect(noAccount.status).toBe(400);
    expect(noAccount.body.error).toMatchObject({ code: 'account_required', field: 'account_id' });
    const cred = await api.post('/sandbox/credential', { user_id: user, type: 'secure_debit' });
    const authNoAccount = await api.post('/authorize', { amount: 600, currency: 'USD', direction: 'cash_in', credential_id: cred.body.id });
    expect(authNoAccount.status).toBe(400);
    expect(authNoAccount.body.error).toMatchObject({ code: 'account_required', field: 'account_id' });
    const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM intents WHERE user_id = $1', [user]);
    expect(rows[0].n).toBe(2); // the refused ones wrote nothing

    const withAccount = await api.post('/authorize', { amount: 600, currency: 'USD', direction: 'cash_in', credential_id: cred.body.id, account_id: made.body.id });
    expect(withAccount.status).toBe(200);
    expect(withAccount.body.account_id).toBe(made.body.id);
    const settled = await api.post('/simulate/settlement', { intent_id: withAccount.body.id });
    expect(settled.body.account_id).toBe(made.body.id);
    expect(await balanceOf(api, made.body.id)).toBe(600);
    expect(await balanceOf(api, main!.id)).toBe(0);
    // A refund comes out of the account the deposit settled on.
    expect((await api.post('/refund', { intent_id: withAccount.body.id, amount: 100 })).status).toBe(200);
    expect(await balanceOf(api, made.body.id)).toBe(500);

    const viaPage = await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount: 300, account_id: main!.id });
    expect(viaPage.intent.account_id).toBe(main!.id);
    expect((await api.post('/simulate/settlement', { intent_id: viaPage.intent.id })).body.account_id).toBe(main!.id);
    expect(await balanceOf(api, main!.id)).toBe(300);
  });

  it('a repeat of an authorization made before a second account answers as the first did; a new one needs account_id', async () => {
    const { api } = await fresh('Replay Casino');
    const user = await newUser(api);
    const token = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
    const first = await api.post('/authorize', { amount: 700, currency: 'USD', direction: 'cash_in', token });
    expect(first.status).toBe(200);
    expect((await api.post('/account', { name: 'Second' })).status).toBe(200);
    const again = await api.post('/authorize', { amount: 700, currency: 'USD', direction: 'cash_in', token });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const fresh2 = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
    expect((await api.post('/authorize', { amount: 700, currency: 'USD', direction: 'cash_in', token: fresh2 })).body.error.code).toBe('account_required');
  });

  it("answers 404 account_not_found on both routes for an account_id that is not one of the operator's settlement accounts", async () => {
    const { api, prod } = await fresh();
    const other = await fresh('Other');
    const user = await newUser(api);
    const cred = (await api.post('/sandbox/credential', { user_id: user, type: 'secure_debit' })).body;
    const dispute = (await accounts(api, '?type=dispute'))[0]!.id;
    const prodSettlement = (await accounts(prod, '?type=settlement'))[0]!.id;
    const foreign = (await accounts(other.api, '?type=settlement'))[0]!.id;
    for (const accountId of ['account_nope', dispute, prodSettlement, foreign]) {
      const i = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD', account_id: accountId });
      expect(i.status, accountId).toBe(404);
      expect(i.body.error.code).toBe('account_not_found');
      const a = await api.post('/authorize', { amount: 100, currency: 'USD', direction: 'cash_in', credential_id: cred.id, account_id: accountId });
      expect(a.status, accountId).toBe(404);
      expect(a.body.error.code).toBe('account_not_found');
    }
  });

  it('works with a production key too, in production only', async () => {
    const { api, prod } = await fresh();
    const made = await prod.post('/account', { name: 'Sportsbook' });
    expect(made.status).toBe(200);
    expect((await accounts(prod, '?type=settlement')).map((a) => a.id)).toContain(made.body.id);
    expect((await accounts(api, '?type=settlement'))).toHaveLength(1);
    const pUser = await newUser(prod);
    const r = await prod.post('/intent', { direction: 'cash_in', user_id: pUser, amount: 100, currency: 'USD' });
    expect(r.body.error.code).toBe('account_required');
    // The sandbox still has one settlement account: no account_id needed there.
    expect((await api.post('/intent', { direction: 'cash_in', user_id: await newUser(api), amount: 100, currency: 'USD' })).status).toBe(200);
  });

  it('refuses a bad name', async () => {
    const { api } = await fresh();
    for (const [body, code] of [[{}, 'missing_field'], [{ name: '' }, 'invalid_length'], [{ name: '   ' }, 'invalid_value'], [{ name: 'x'.repeat(101) }, 'invalid_length'], [{ name: 7 }, 'invalid_type']] as const) {
      const r = await api.post('/account', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code, field: 'name' });
    }
    expect(await accounts(api, '?type=settlement')).toHaveLength(1);
  });
});

describe('POST /simulate/settlement', () => {
  it('settles an approved intent now and answers its settlement transaction; again: the same transaction', async () => {
    const { api } = await fresh();
    const settlementId = (await accounts(api, '?type=settlement'))[0]!.id;
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: await newUser(api), amount: 4321 });
    const r = await api.post('/simulate/settlement', { intent_id: intent.id });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      id: expect.stringMatching(/^txn_/), amount: 4321, currency: 'USD', created_at: s.clock.now().toISOString(), date: s.clock.now().toISOString().slice(0, 10),
      status: 'settled', account_id: settlementId, type: 'intent', source_id: null, intent_id: intent.id,
    });
    s.clock.advance(5000);
    const again = await api.post('/simulate/settlement', { intent_id: intent.id });
    expect(again.body).toEqual(r.body);
    expect(await balanceOf(api, settlementId)).toBe(4321);
    const got = await api.get(`/intent/${intent.id}`);
    expect(got.body.transactions.map((t: { id: string }) => t.id)).toEqual([r.body.id]);
    const ev = await api.get(`/events?intent_id=${intent.id}&type=intent.settled`);
    expect(ev.body.data).toHaveLength(1);
  });

  it('refuses an intent that is not approved (409), unknown or another operator\'s (404), bad input (400)', async () => {
    const { api } = await fresh();
    const user = await newUser(api);
    const created = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD' });
    const r = await api.post('/simulate/settlement', { intent_id: created.body.id });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('intent_not_approved');
    const other = await fresh('Other');
    expect((await other.api.post('/simulate/settlement', { intent_id: created.body.id })).body.error.code).toBe('intent_not_found');
    expect((await api.post('/simulate/settlement', { intent_id: 'intent_sandbox_nope' })).status).toBe(404);
    expect((await api.post('/simulate/settlement', {})).body.error).toMatchObject({ code: 'missing_field', field: 'intent_id' });
  });
});

describe('POST /sandbox/credential', () => {
  it('makes a credential of each type for the user; apple_pay is apple_pay_debit; the same type and last 4 again is the same credential', async () => {
    const { api } = await fresh();
    const user = await newUser(api);
    const made: Record<string, any> = {};
    for (const type of ['secure_debit', 'card_only_debit', 'card_only_credit', 'apple_pay_debit', 'apple_pay']) {
      const r = await api.post('/sandbox/credential', { user_id: user, type });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      made[type] = r.body;
    }
    expect(made.secure_debit).toMatchObject({ id: expect.stringMatching(/^cred_/), type: 'secure_debit', bank_name: 'MX Bank', account_last4: expect.stringMatching(/^\d{4}$/), card_last4: null });
    expect(made.card_only_debit).toMatchObject({ type: 'card_only_debit', card_last4: '4444', brand: 'mastercard', account_last4: null, display_name: 'Mastercard Debit' });
    expect(made.card_only_credit).toMatchObject({ type: 'card_only_credit', card_last4: '4444' });
    expect(made.apple_pay_debit).toMatchObject({ type: 'apple_pay_debit', card_last4: '4444', authenticated: true });
    expect(made.apple_pay).toEqual(made.apple_pay_debit);
    const again = await api.post('/sandbox/credential', { user_id: user, type: 'card_only_debit' });
    expect(again.body.id).toBe(made.card_only_debit.id);
    const other = await api.post('/sandbox/credential', { user_id: user, type: 'card_only_debit', card_last4: '9301' });
    expect(other.body).toMatchObject({ card_last4: '9301' });
    expect(other.body.id).not.toBe(made.card_only_debit.id);
    const listed = await api.get(`/user/${user}/credential/list`);
    expect(listed.body.data).toHaveLength(5);
  });

  it('makes credentials that authorize as their type: a bank account withdraws, a card does not', async () => {
    const { api } = await fresh();
    const user = await newUser(api);
    const card = (await api.post('/sandbox/credential', { user_id: user, type: 'card_only_debit' })).body;
    const bank = (await api.post('/sandbox/credential', { user_id: user, type: 'secure_debit' })).body;
    const dep = await api.post('/authorize', { amount: 5000, currency: 'USD', direction: 'cash_in', credential_id: card.id });
    expect(dep.status).toBe(200);
    expect(dep.body).toMatchObject({ type: 'card_only', rail: 'card', credential: { id: card.id, last4: '4444' } });
    const cardOut = await api.post('/authorize', { amount: 1000, currency: 'USD', direction: 'cash_out', credential_id: card.id });
    expect(cardOut.status).toBe(401);
    expect(cardOut.body.decline_category).toBe('credential_not_withdrawable');
    const bankOut = await api.post('/authorize', { amount: 1000, currency: 'USD', direction: 'cash_out', credential_id: bank.id });
    expect(bankOut.status).toBe(200);
    expect(bankOut.body).toMatchObject({ type: 'secure_debit', rail: 'ach' });
  });

  it('refuses bad input: an unknown or other environment\'s user (404), a bad type or card_last4, card_last4 on a bank account (400)', async () => {
    const { api, prod } = await fresh();
    const user = await newUser(api);
    expect((await api.post('/sandbox/credential', { user_id: 'user_nope', type: 'secure_debit' })).body.error.code).toBe('user_not_found');
    const prodUser = await newUser(prod);
    expect((await api.post('/sandbox/credential', { user_id: prodUser, type: 'secure_debit' })).body.error.code).toBe('user_not_found');
    for (const [body, code, field] of [
      [{ user_id: user, type: 'paypal' }, 'invalid_value', 'type'],
      [{ user_id: user }, 'missing_field', 'type'],
      [{ type: 'secure_debit' }, 'missing_field', 'user_id'],
      [{ user_id: user, type: 'card_only_debit', card_last4: '12' }, 'invalid_format', 'card_last4'],
      [{ user_id: user, type: 'card_only_debit', card_last4: 'abcd' }, 'invalid_format', 'card_last4'],
      [{ user_id: user, type: 'secure_debit', card_last4: '1234' }, 'invalid_value', 'card_last4'],
    ] as const) {
      const r = await api.post('/sandbox/credential', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code, field });
    }
    expect((await api.get(`/user/${user}/credential/list`)).body.data).toEqual([]);
  });
});

describe('the sandbox routes refuse a production key', () => {
  it('answers 403 sandbox_only to POST /simulate/settlement and POST /sandbox/credential in production, and writes nothing', async () => {
    const { prod } = await fresh();
    const user = await newUser(prod);
    const t = await prod.post('/tokenize', { user_id: user, pan: '5555555555554444', cvv: '123', exp_month: '12', exp_year: '39' });
    const i = await prod.post('/authorize', { amount: 1000, currency: 'USD', direction: 'cash_in', token: t.body.token });
    expect(i.status).toBe(200);
    for (const [path, body] of [
      ['/simulate/settlement', { intent_id: i.body.id }],
      ['/simulate/settlement', { intent_id: 'intent_production_nope' }],
      ['/sandbox/credential', { user_id: user, type: 'secure_debit' }],
      ['/sandbox/credential', { user_id: 'user_nope', type: 'apple_pay' }],
    ] as const) {
      const r = await prod.post(path, body);
      expect(r.status, path).toBe(403);
      expect(r.body).toEqual({ error: { code: 'sandbox_only', message: expect.any(String) } });
    }
    expect((await prod.get(`/intent/${i.body.id}`)).body.transactions).toEqual([]);
    expect((await prod.get(`/user/${user}/credential/list`)).body.data).toHaveLength(1); // the tokenized card only
  });
});

describe('GET /intent/list filters', () => {
  it('filters by status[] (repeatable; also status=) and by type', async () => {
    const { api } = await fresh();
    const user = await newUser(api);
    const ids: Record<string, string> = {};
    ids.created = (await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD' })).body.id;
    s.clock.advance(1000);
    ids.approvedPush = (await payThroughPage(s, api, { direction: 'cash_in', user_id: user, amount: 200 })).intent.id;
    s.clock.advance(1000);
    ids.approvedCard = (await authorizeWith(api, user, { amount: 300 }, 'card_only_debit')).body.id;
    s.clock.advance(1000);
    ids.declinedBank = (await authorizeWith(api, user, { amount: 2200 })).body.id;
    s.clock.advance(1000);
    ids.pendingBank = (await authorizeWith(api, user, { amount: 400, approval_mode: 'manual' })).body.id;
    const list = async (q: string) => {
      const r = await api.get(`/intent/list${q}`);
      expect(r.status, `${q}: ${JSON.stringify(r.body)}`).toBe(200);
      return (r.body.data as { id: string }[]).map((x) => x.id);
    };
    expect(await list('')).toHaveLength(5);
    expect(await list('?status[]=approved')).toEqual([ids.approvedCard, ids.approvedPush]);
    expect(await list('?status[]=approved&status[]=pending')).toEqual([ids.pendingBank, ids.approvedCard, ids.approvedPush]);
    expect(await list('?status=declined')).toEqual([ids.declinedBank]);
    expect(await list('?type=push')).toEqual([ids.approvedPush, ids.created]);
    expect(await list('?type=secure_debit')).toEqual([ids.pendingBank, ids.declinedBank]);
    expect(await list('?type=card_only&status[]=approved')).toEqual([ids.approvedCard]);
    expect(await list('?type=card_only&status[]=declined')).toEqual([]);
    const bad = await api.get('/intent/list?status[]=settled');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_value');
  });
});

describe('the first start\'s sandbox operator', () => {
  it('has its accounts: a deposit settles and refunds (an operator made without accounts gets them on first use)', async () => {
    const t = await startTestServer();
    try {
      // What `cashwire start` makes on a new database, and an operator row made by hand with no accounts at all.
      const first = await ensureSandboxOperator({ db: t.running.deps.db, clock: t.clock, ids: t.running.deps.ids });
      const api = client(t.url, first.key!);
      expect((await accounts(api, '?type=settlement'))).toHaveLength(1);
      const user = await newUser(api);
      const token = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
      const i = await api.post('/authorize', { amount: 1500, currency: 'USD', direction: 'cash_in', token });
      expect((await api.post('/simulate/settlement', { intent_id: i.body.id })).status).toBe(200);
      expect((await api.post('/refund', { intent_id: i.body.id })).status).toBe(200);

      await t.running.deps.db.query("INSERT INTO operators (id, name, settings, created_at) VALUES ('op_bare', 'Bare', '{}', now())");
      const bare = await createKey({ db: t.running.deps.db, clock: t.clock, ids: t.running.deps.ids }, 'op_bare', 'sandbox', null);
      const b = client(t.url, bare.key);
      const bu = await newUser(b);
      const bt = (await b.post('/token', { user_id: bu, type: 'card_only' })).body.token;
      const bi = await b.post('/authorize', { amount: 900, currency: 'USD', direction: 'cash_in', token: bt });
      expect((await b.post('/simulate/settlement', { intent_id: bi.body.id })).status).toBe(200);
      expect((await accounts(b)).map((a) => a.type).sort()).toEqual(['dispute', 'settlement']);
    } finally {
      await t.stop();
    }
  });
});
