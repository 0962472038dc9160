/**
 * Push Native over HTTP: users as real clients register them, widget URLs and their nonces, the widget page's card
 * and bank forms, POST /tokenize, tokens that expire, credentials, the withdraw rule, Apple Pay mobile and step-up.
 * The browser side (the Widget in an iframe) is native-browser.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, userBody, type Api, type Keys, type TestServer } from './helpers.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let prod: Api;
let anon: Api;

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Acme Casino');
  api = client(s.url, keys.sandbox);
  prod = client(s.url, keys.production);
  anon = client(s.url);
});
afterAll(() => s?.stop());

const MIN = 60_000;
const CARD = { pan: '5555 5555 5555 4444', cvv: '123', exp_month: '12', exp_year: '39' };

async function widgetUrl(userId: string, body: Record<string, unknown> = { direction: 'cash_in' }, on: Api = api): Promise<{ url: URL; nonce: string }> {
  const r = await on.post(`/user/${userId}/url`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const url = new URL(r.body.url);
  return { url, nonce: url.searchParams.get('nonce')! };
}

async function cardToken(userId: string, card: Record<string, string> = CARD, on: Api = api) {
  const { nonce } = await widgetUrl(userId, { direction: 'cash_in', type: 'card_only' }, on);
  const r = await anon.post('/widget/card', { nonce, ...card });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { token: string; credential: { id: string; type: string; card_last4: string; brand: string } };
}

async function bankToken(userId: string, on: Api = api) {
  const { nonce } = await widgetUrl(userId, { direction: 'cash_out', type: 'secure_debit' }, on);
  const r = await anon.post('/widget/bank', { nonce, username: 'mxuser', password: 'password' });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { token: string; credential: { id: string; type: string; bank_name: string; account_last4: string } };
}

const authorize = (body: Record<string, unknown>, on: Api = api) => on.post('/authorize', { currency: 'USD', direction: 'cash_in', amount: 5000, ...body });

async function deposit(userId: string) {
  const r = await authorize({ token: (await cardToken(userId)).token, amount: 10_000 });
  expect(r.status).toBe(200);
}

async function eventsOf(intentId: string): Promise<string[]> {
  const r = await api.get(`/events?intent_id=${encodeURIComponent(intentId)}`);
  return (r.body.data as { type: string }[]).map((e) => e.type);
}

describe('users as real clients register them', () => {
  it('accepts NANP numbers in every common notation and stores them as E.164', async () => {
    for (const [sent, stored] of [
      ['(555) 681-3485', '+15556813485'], ['555-681-3485', '+15556813485'], ['+15556813485', '+15556813485'], ['555.681.3485', '+15556813485'],
      ['555 681 3485', '+15556813485'], ['5556813485', '+15556813485'], ['1 (555) 681-3485', '+15556813485'], ['+1 555-681-3485', '+15556813485'],
      ['+442071838750', '+442071838750'], ['+44 20 7183 8750', '+442071838750'],
    ]) {
      const id = await newUser(api, { phone_number: sent });
      const u = await api.get(`/user/${id}`);
      expect(u.body.phone_number, sent).toBe(stored);
    }
  });

  it('refuses what is not a phone number, with invalid_phone_number', async () => {
    for (const bad of ['(155) 681-3485', '555-181-3485', '555-681-348', '555-681-34855', 'call me', '+0 555 681 3485', '(555 681-3485x', '+1 155 681 3485', '++15556813485']) {
      const r = await api.post('/user', userBody({ phone_number: bad }));
      expect(r.status, bad).toBe(400);
      expect(r.body.error, bad).toMatchObject({ code: 'invalid_phone_number', field: 'phone_number' });
    }
  });

  it('takes any real past date of birth of an adult, 1899 included; refuses the underage and unreal dates', async () => {
    // The registration a public Push Native demo sends, whole.
    const demo = {
      name: { first: 'Ada', last: 'Lovelace' }, email: 'ada@example.com',
      address: { address_line_1: '1609 10th Ave', locality: 'Bodega Bay', administrative_area: 'CA', postal_code: '94923', country: 'US' },
      date_of_birth: '1899-08-13', government_id: { type: 'passport', last4: '7349' }, phone_number: '(555) 681-3485', tag: 'a1b2c3d4', identity_verified: true,
    };
    const r = await api.post('/user', demo, { 'x-idempotency-key': 'demo-signup-1' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const u = await api.get(`/user/${r.body.id}`);
    expect(u.body).toMatchObject({ date_of_birth: '1899-08-13', phone_number: '+15556813485', status: 'enabled', payment_credentials: [] });
    // The same request again (same key, same body) is a replay, not a conflict, although the stored phone differs from the sent one.
    expect((await api.post('/user', demo, { 'x-idempotency-key': 'demo-signup-1' })).body.id).toBe(r.body.id);
    for (const dob of ['1850-02-28', '0999-12-31', '0050-06-15']) expect((await api.post('/user', userBody({ date_of_birth: dob }))).status, dob).toBe(200);
    const today = s.clock.now();
    const minor = new Date(Date.UTC(today.getUTCFullYear() - 18, today.getUTCMonth(), today.getUTCDate() + 1)).toISOString().slice(0, 10);
    expect((await api.post('/user', userBody({ date_of_birth: minor }))).body.error.code).toBe('underage');
    for (const bad of ['1899-02-29', '1990-13-01', '1990-02-30', '0000-00-00']) {
      expect((await api.post('/user', userBody({ date_of_birth: bad }))).body.error.code, bad).toBe('invalid_date');
    }
  });
});

describe('widget URL and nonce', () => {
  it('gives a URL on this server with client, nonce, mode and type; the nonce ends in neither Push suffix by default', async () => {
    const user = await newUser(api);
    const { url, nonce } = await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' });
    expect(url.origin).toBe(s.url);
    expect(url.pathname).toBe('/widget/');
    expect(url.searchParams.get('client')).toBe(keys.id);
    expect(url.searchParams.get('mode')).toBe('entry');
    expect(url.searchParams.get('type')).toBe('apple_pay');
    expect(nonce.startsWith(`${keys.id}.`)).toBe(true);
    expect(nonce.endsWith('_sandbox') || nonce.endsWith('_production')).toBe(false);
    const noType = await widgetUrl(user);
    expect(noType.url.searchParams.has('type')).toBe(false);
  });

  it('refuses an unknown user, another environment\'s user, a bad direction or type', async () => {
    const user = await newUser(api);
    expect((await api.post('/user/user_nope/url', { direction: 'cash_in' })).body.error.code).toBe('user_not_found');
    expect((await prod.post(`/user/${user}/url`, { direction: 'cash_in' })).body.error.code).toBe('user_not_found');
    expect((await api.post(`/user/${user}/url`, { direction: 'sideways' })).body.error).toMatchObject({ code: 'invalid_value', field: 'direction' });
    expect((await api.post(`/user/${user}/url`, { direction: 'cash_in', type: 'paypal' })).body.error).toMatchObject({ code: 'invalid_value', field: 'type' });
    expect((await anon.post(`/user/${user}/url`, { direction: 'cash_in' })).status).toBe(401);
  });

  it('ends nonces in _sandbox / _production when the deployment turns the real suffixes on', async () => {
    const t = await startTestServer({ nonceSuffixes: 'push' });
    try {
      const k = await newOperator(t);
      for (const [key, suffix] of [[k.sandbox, '_sandbox'], [k.production, '_production']] as const) {
        const c = client(t.url, key);
        const r = await c.post(`/user/${await newUser(c)}/url`, { direction: 'cash_in' });
        expect(new URL(r.body.url).searchParams.get('nonce')!.endsWith(suffix)).toBe(true);
      }
    } finally {
      await t.stop();
    }
  });

  it('serves the widget page without a key; 403 for another operator, a forged, an expired or a spent nonce', async () => {
    const user = await newUser(api);
    const { url, nonce } = await widgetUrl(user, { direction: 'cash_in', type: 'card_only' });
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/html/);
    expect(ok.headers.get('content-security-policy')).toMatch(/frame-ancestors \*/);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    expect(ok.headers.get('referrer-policy')).toBe('no-referrer');

    const other = await newOperator(s, 'Other Casino');
    const otherUrl = new URL(url);
    otherUrl.searchParams.set('client', other.id);
    expect((await fetch(otherUrl)).status).toBe(403);
    // The nonce's random part under another operator's id names nothing.
    const forged = new URL(url);
    forged.searchParams.set('client', other.id);
    forged.searchParams.set('nonce', other.id + nonce.slice(nonce.indexOf('.')));
    expect((await fetch(forged)).status).toBe(403);
    expect((await anon.post('/widget/card', { nonce: other.id + nonce.slice(nonce.indexOf('.')), ...CARD })).body.error.code).toBe('nonce_invalid');
    const missing = new URL(url);
    missing.searchParams.delete('nonce');
    const page403 = await fetch(missing);
    expect(page403.status).toBe(403);
    expect(await page403.text()).toMatch(/expired/i);

    // Spent by its first token.
    expect((await anon.post('/widget/card', { nonce, ...CARD })).status).toBe(200);
    expect((await fetch(url)).status).toBe(403);
    const again = await anon.post('/widget/card', { nonce, ...CARD });
    expect(again.status).toBe(403);
    expect(again.body.error.code).toBe('nonce_invalid');

    // Expired after 30 minutes.
    const late = await widgetUrl(user, { direction: 'cash_in', type: 'card_only' });
    s.clock.advance(29 * MIN);
    expect((await fetch(late.url)).status).toBe(200);
    s.clock.advance(1 * MIN);
    expect((await fetch(late.url)).status).toBe(403);
    expect((await anon.post('/widget/card', { nonce: late.nonce, ...CARD })).body.error.code).toBe('nonce_invalid');
  });

  it('puts allowed_origins in the page\'s frame-ancestors; production with none set allows none', async () => {
    const op = await newOperator(s, 'Strict Casino');
    const sb = client(s.url, op.sandbox);
    const pr = client(s.url, op.production);
    const prodPage = await fetch((await widgetUrl(await newUser(pr), { direction: 'cash_in' }, pr)).url);
    expect(prodPage.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    const bad = await sb.call('PATCH', '/operator/settings', { allowed_origins: ['https://casino.example/path'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_value', field: 'allowed_origins/0' });
    const set = await sb.call('PATCH', '/operator/settings', { allowed_origins: ['https://casino.example', 'http://127.0.0.1:3000'] });
    expect(set.status).toBe(200);
    expect(set.body.allowed_origins).toEqual(['https://casino.example', 'http://127.0.0.1:3000']);
    const page = await fetch((await widgetUrl(await newUser(sb), { direction: 'cash_in' }, sb)).url);
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors https:\/\/casino\.example http:\/\/127\.0\.0\.1:3000(;|$)/);
  });
});

describe('cards: the widget form and POST /tokenize', () => {
  it('mints a token for the test card; keeps last 4, brand, expiry and a fingerprint, never the PAN or CVV', async () => {
    const user = await newUser(api);
    const w = await cardToken(user, { ...CARD, cvv: '987' });
    expect(w.token).toMatch(/^token_/);
    expect(w.credential).toMatchObject({ id: expect.stringMatching(/^cred_/), type: 'card_only_debit', card_last4: '4444', brand: 'mastercard' });
    const t = await api.post('/tokenize', { user_id: user, pan: '5555555555554444', cvv: '321', exp_month: '1', exp_year: '2040' });
    expect(t.status).toBe(200);
    const a = await authorize({ token: t.body.token });
    expect(a.status).toBe(200);
    // The same card (by fingerprint) is the same credential, whichever way it came in.
    expect(a.body.credential).toMatchObject({ id: w.credential.id, display_name: 'Mastercard Debit', last4: '4444' });
    const stored = await s.running.deps.db.query(`SELECT row_to_json(c)::text AS j FROM credentials c WHERE operator_id = $1 AND user_id = $2
      UNION ALL SELECT row_to_json(t)::text FROM tokens t WHERE operator_id = $1 AND user_id = $2`, [keys.id, user]);
    const all = stored.rows.map((r) => r.j).join('\n');
    expect(all).not.toMatch(/5555555555554444|555555555555|987|321/);
    expect(all).toMatch(/"exp_month":1,"exp_year":2040/); // the later expiry of the same card replaced the earlier
    const creds = await api.get(`/user/${user}/credential/list?type=card_only_debit`);
    expect(creds.body.data).toHaveLength(1);
    expect(creds.body.data[0]).toMatchObject({ id: w.credential.id, type: 'card_only_debit', card_last4: '4444', brand: 'mastercard', expiration: '01/40', account_last4: null, bank_name: null });
  });

  it('checks Luhn, expiry and CVV, with a code and the field', async () => {
    const user = await newUser(api);
    s.clock.set(Date.UTC(2027, 5, 15));
    const cases: [Record<string, string>, string, string][] = [
      [{ pan: '5555 5555 5555 4445' }, 'invalid_card_number', 'pan'],
      [{ pan: '5555' }, 'invalid_card_number', 'pan'],
      [{ pan: '5555x5555x5555x4444' }, 'invalid_card_number', 'pan'],
      [{ exp_month: '13' }, 'invalid_expiry', 'exp_month'],
      [{ exp_month: '0' }, 'invalid_expiry', 'exp_month'],
      [{ exp_year: '7' }, 'invalid_expiry', 'exp_year'],
      [{ exp_month: '05', exp_year: '27' }, 'card_expired', 'exp_year'],
      [{ exp_year: '2099' }, 'invalid_expiry', 'exp_year'],
      [{ cvv: '12' }, 'invalid_cvv', 'cvv'],
      [{ cvv: '1234' }, 'invalid_cvv', 'cvv'],
      [{ pan: '3782 822463 10005', cvv: '123' }, 'invalid_cvv', 'cvv'],
    ];
    for (const [patch, code, field] of cases) {
      const r = await api.post('/tokenize', { user_id: user, ...CARD, ...patch });
      expect(r.status, JSON.stringify(patch)).toBe(400);
      expect(r.body.error, JSON.stringify(patch)).toMatchObject({ code, field });
    }
    // Good through the last day of the expiry month.
    expect((await api.post('/tokenize', { user_id: user, ...CARD, exp_month: '06', exp_year: '27' })).status).toBe(200);
    expect((await api.post('/tokenize', { user_id: user, ...CARD, pan: '3782 822463 10005', cvv: '1234' })).status).toBe(200);
    expect((await api.post('/tokenize', { user_id: 'user_nope', ...CARD })).body.error.code).toBe('user_not_found');
    // The widget form answers the same, and a bad card does not spend the nonce.
    const { nonce } = await widgetUrl(user, { direction: 'cash_in', type: 'card_only' });
    expect((await anon.post('/widget/card', { nonce, ...CARD, cvv: '1' })).body.error.code).toBe('invalid_cvv');
    expect((await anon.post('/widget/card', { nonce, ...CARD })).status).toBe(200);
    s.clock.set(Date.now());
  });

  it('ten refused cards or bank sign-ins end a widget session: it cannot be used to try card after card', async () => {
    const user = await newUser(api);
    const { url, nonce } = await widgetUrl(user, { direction: 'cash_in' });
    for (let k = 0; k < 9; k++) {
      const r = k % 2 ? await anon.post('/widget/bank', { nonce, username: 'mxuser', password: `guess${k}` }) : await anon.post('/widget/card', { nonce, ...CARD, pan: `4000 0000 0000 00${k}1` });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
    }
    expect((await fetch(url)).status).toBe(200); // nine: still open
    expect((await anon.post('/widget/card', { nonce, ...CARD, cvv: 'x' })).body.error.code).toBe('invalid_cvv');
    expect((await fetch(url)).status).toBe(403);
    expect((await anon.post('/widget/card', { nonce, ...CARD })).body.error.code).toBe('nonce_invalid');
  });

  it('a widget of one type mints only that: a secure_debit session has no card form, a card_only one no bank sign-in', async () => {
    const user = await newUser(api);
    const bank = await widgetUrl(user, { direction: 'cash_out', type: 'secure_debit' });
    expect((await anon.post('/widget/card', { nonce: bank.nonce, ...CARD })).body.error).toMatchObject({ code: 'invalid_value', field: 'nonce' });
    const card = await widgetUrl(user, { direction: 'cash_in', type: 'card_only' });
    expect((await anon.post('/widget/bank', { nonce: card.nonce, username: 'mxuser', password: 'password' })).body.error).toMatchObject({ code: 'invalid_value', field: 'nonce' });
    // No type: the user picks; either form works.
    const any = await widgetUrl(user, { direction: 'cash_in' });
    const anyPage = await (await fetch(any.url)).text();
    expect(anyPage).toContain('id="cc-number"');
    expect(anyPage).toContain('id="bank-user"');
    expect((await anon.post('/widget/bank', { nonce: any.nonce, username: 'mxuser', password: 'password' })).status).toBe(200);
    // A withdrawal with no type offers only the bank account: cards deposit only.
    const out = await (await fetch((await widgetUrl(user, { direction: 'cash_out' })).url)).text();
    expect(out).toContain('id="bank-user"');
    expect(out).not.toContain('id="cc-number"');
  });

  it('tokens live 15 minutes and are spent by one authorization, whose repeat replays the first answer', async () => {
    const user = await newUser(api);
    const { token } = await cardToken(user);
    const late = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
    const first = await authorize({ token });
    expect(first.status).toBe(200);
    s.clock.advance(15 * MIN);
    const replay = await authorize({ token, amount: 999 });
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(first.body.id);
    const expired = await authorize({ token: late });
    expect(expired.status).toBe(400);
    expect(expired.body.error).toMatchObject({ code: 'token_expired', field: 'token' });
    const old = await cardToken(user);
    s.clock.advance(15 * MIN);
    expect((await authorize({ token: old.token })).body.error.code).toBe('token_expired');
  });

  it('a token of another operator is not found', async () => {
    const user = await newUser(api);
    const { token } = await cardToken(user);
    const other = client(s.url, (await newOperator(s, 'Thief Casino')).sandbox);
    expect((await authorize({ token }, other)).body.error.code).toBe('token_not_found');
  });
});

describe('credentials and the withdraw rule', () => {
  it('the bank sign-in links a secure_debit account; wrong sign-in is refused; signing in again is the same account', async () => {
    const user = await newUser(api);
    const { nonce } = await widgetUrl(user, { direction: 'cash_out', type: 'secure_debit' });
    const wrong = await anon.post('/widget/bank', { nonce, username: 'mxuser', password: 'hunter2' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatchObject({ code: 'bank_sign_in_failed' });
    const b = await anon.post('/widget/bank', { nonce, username: 'mxuser', password: 'password' });
    expect(b.status).toBe(200);
    expect(b.body.credential).toMatchObject({ type: 'secure_debit', bank_name: 'MX Bank', account_last4: expect.stringMatching(/^\d{4}$/), card_last4: null });
    expect((await bankToken(user)).credential.id).toBe(b.body.credential.id);
  });

  it('only secure_debit and apple_pay_debit withdraw; a card-only credential is declined credential_not_withdrawable', async () => {
    const user = await newUser(api);
    await deposit(user);
    const card = await cardToken(user);
    const out = await authorize({ token: card.token, direction: 'cash_out', amount: 1000 });
    expect(out.status).toBe(401);
    expect(out.body).toMatchObject({ status: 'declined', decline_category: 'credential_not_withdrawable', direction: 'cash_out' });
    expect(await eventsOf(out.body.id)).toEqual(['intent.declined']);
    const byId = await authorize({ credential_id: card.credential.id, direction: 'cash_out', amount: 1000 });
    expect(byId.body.decline_category).toBe('credential_not_withdrawable');
    // POST /token's card_only is a deposit-only card too.
    const legacy = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
    expect((await authorize({ token: legacy, direction: 'cash_out', amount: 1000 })).body.decline_category).toBe('credential_not_withdrawable');
    const credit = await api.post('/tokenize', { user_id: user, ...CARD, pan: '4111 1111 1111 1111' });
    const creditOut = await authorize({ token: credit.body.token, direction: 'cash_out', amount: 1000 });
    expect(creditOut.body).toMatchObject({ status: 'declined', decline_category: 'credential_not_withdrawable' });
    expect((await api.get(`/user/${user}/credential/list?type=card_only_credit`)).body.data[0]).toMatchObject({ type: 'card_only_credit', brand: 'visa', card_last4: '1111' });

    const bank = await bankToken(user);
    const ok = await authorize({ token: bank.token, direction: 'cash_out', amount: 1000 });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', direction: 'cash_out', credential: { id: bank.credential.id, display_name: 'MX Bank Checking' } });
    expect((await authorize({ credential_id: bank.credential.id, direction: 'cash_out', amount: 500 })).status).toBe(200);
  });

  it('lists by type (repeatable), on both paths; GET /user shows payment_credentials; POST credential stores a token\'s card', async () => {
    const user = await newUser(api);
    const card = await cardToken(user);
    const bank = await bankToken(user);
    const both = await api.get(`/user/${user}/credential/list?type=card_only_debit&type=secure_debit`);
    expect(both.status).toBe(200);
    expect(both.body.data.map((c: { id: string }) => c.id).sort()).toEqual([card.credential.id, bank.credential.id].sort());
    expect((await api.get(`/user/${user}/credential/list?type=secure_debit`)).body.data.map((c: { id: string }) => c.id)).toEqual([bank.credential.id]);
    expect((await api.get(`/user/${user}/credential/list?type=apple_pay_debit`)).body.data).toEqual([]);
    expect((await api.get(`/user/${user}/credentials`)).body.data).toHaveLength(2);
    expect((await api.get(`/user/${user}/credential/list?type=visa`)).body.error).toMatchObject({ code: 'invalid_value', field: 'type' });
    expect((await api.get('/user/user_nope/credentials')).body.error.code).toBe('user_not_found');

    const u = await api.get(`/user/${user}`);
    expect(u.body.status).toBe('enabled');
    // Oldest first; these two were made at the same instant of the test clock, so compare them in id order.
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : 1);
    expect([...u.body.payment_credentials].sort(byId)).toEqual([
      { id: card.credential.id, type: 'card_only_debit', bank_name: null, account: null, card: { primary_account_number_mask: '************4444', expiration: '12/39', brand: 'mastercard' } },
      { id: bank.credential.id, type: 'secure_debit', bank_name: 'MX Bank', account: { number_mask: `******${bank.credential.account_last4}`, routing: '110000000' }, card: null },
    ].sort(byId));
    expect((await api.get('/user/list')).body.data.find((x: { id: string }) => x.id === user).payment_credentials).toHaveLength(2);

    const again = await cardToken(user);
    const saved = await api.post(`/user/${user}/credential`, { token: again.token, type: 'card_only' });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ id: card.credential.id, type: 'card_only_debit', card_last4: '4444', authenticated: false });
    // A token of POST /token (a payment method) is saved as that method's credential, the one its authorization uses.
    const method = (await api.post('/token', { user_id: user, type: 'secure_debit' })).body.token;
    const methodSaved = await api.post(`/user/${user}/credential`, { token: method });
    expect(methodSaved.body).toMatchObject({ type: 'secure_debit', display_name: 'Checking Account' });
    expect((await authorize({ token: method })).body.credential.id).toBe(methodSaved.body.id);
    const stranger = await newUser(api);
    expect((await api.post(`/user/${stranger}/credential`, { token: again.token })).body.error.code).toBe('token_not_found');
  });
});

describe('Apple Pay mobile', () => {
  const mint = (nonce: string, extra: Record<string, unknown> = {}) => anon.post('/applepay/token', {
    nonce, bin: '55555555', bt_token_id: 'bt_tok_1', bt_fingerprint: 'bt_fp_1', display_name: 'MasterCard 4444', network: 'MasterCard', type: 'debit',
    amount: 2500, currency: 'USD', direction: 'cash_in', ...extra,
  });

  it('config: 403 "not enabled" for an unregistered merchant identifier, the six fields for a registered one', async () => {
    const user = await newUser(api);
    const { nonce } = await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' });
    const q = (mid: string, n = nonce) => `/applepay/config?nonce=${encodeURIComponent(n)}&merchant_identifier=${encodeURIComponent(mid)}`;
    const off = await anon.get(q('merchant.com.acme'));
    expect(off.status).toBe(403);
    expect(JSON.stringify(off.body).toLowerCase()).toContain('not enabled');
    expect(off.headers.get('access-control-allow-origin')).toBe('*');
    await api.call('PATCH', '/operator/settings', { apple_pay: { merchant_identifiers: ['merchant.com.acme'] } });
    const on = await anon.get(q('merchant.com.acme'));
    expect(on.status).toBe(200);
    expect(Object.keys(on.body).sort()).toEqual(['bt_application_key', 'bt_merchant_registration_id', 'country_code', 'merchant_capabilities', 'supported_networks', 'total_label']);
    expect(on.body).toMatchObject({ country_code: 'US', total_label: 'Acme Casino', supported_networks: expect.arrayContaining(['visa', 'masterCard']) });
    expect(on.headers.get('access-control-allow-origin')).toBe('*');
    await api.call('PATCH', '/operator/settings', { apple_pay: { total_label: 'Acme Coins' } });
    expect((await anon.get(q('merchant.com.acme'))).body.total_label).toBe('Acme Coins');
    // A bad nonce is a 403 without "not enabled".
    const bad = await anon.get(q('merchant.com.acme', `${keys.id}.nope_local`));
    expect(bad.status).toBe(403);
    expect(JSON.stringify(bad.body).toLowerCase()).not.toContain('not enabled');
    // The preflight a phone's web view sends before POST /applepay/token.
    const pre = await fetch(`${s.url}/applepay/token`, { method: 'OPTIONS', headers: { origin: 'capacitor://localhost', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/content-type/);
    // Reads do not spend the nonce; the mint does; after it, config is 403 too.
    expect((await mint(nonce)).status).toBe(200);
    expect((await anon.get(q('merchant.com.acme'))).status).toBe(403);
    // Expired.
    const old = await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' });
    s.clock.advance(31 * MIN);
    expect((await anon.get(q('merchant.com.acme', old.nonce))).status).toBe(403);
  });

  it('token: any BIN in the sandbox; display_name ends in the last 4; cash_in, USD, amount > 0; the same fingerprint, the same credential', async () => {
    const user = await newUser(api);
    const n1 = (await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' })).nonce;
    expect((await mint(n1, { display_name: 'MasterCard' })).body.error).toMatchObject({ code: 'invalid_display_name', field: 'display_name' });
    expect((await mint(n1, { direction: 'cash_out' })).body.error).toMatchObject({ code: 'invalid_value', field: 'direction' });
    expect((await mint(n1, { currency: 'EUR' })).body.error).toMatchObject({ field: 'currency' });
    expect((await mint(n1, { amount: 0 })).body.error).toMatchObject({ field: 'amount' });
    expect((await mint(n1, { bt_fingerprint: undefined })).body.error).toMatchObject({ code: 'missing_field', field: 'bt_fingerprint' });
    expect((await mint(n1, { bin: '5555' })).body.error).toMatchObject({ field: 'bin' });
    const t1 = await mint(n1, { bin: '12345678' });
    expect(t1.status).toBe(200);
    expect(t1.body.token_id).toMatch(/^token_/);
    const a = await authorize({ token: t1.body.token_id, amount: 2500 });
    expect(a.status).toBe(200);
    expect(a.body.credential).toMatchObject({ display_name: 'MasterCard 4444', last4: '4444' });
    const n2 = (await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' })).nonce;
    const t2 = await mint(n2, { bt_token_id: 'bt_tok_2' });
    expect(t2.body.token_id).not.toBe(t1.body.token_id);
    const b = await authorize({ token: t2.body.token_id, direction: 'cash_out', amount: 100 });
    expect(b.status).toBe(200); // apple_pay_debit withdraws
    expect(b.body.credential.id).toBe(a.body.credential.id);
    expect((await api.get(`/user/${user}/credential/list?type=apple_pay_debit`)).body.data).toEqual([
      expect.objectContaining({ id: a.body.credential.id, type: 'apple_pay_debit', card_last4: '4444', brand: 'mastercard', authenticated: true }),
    ]);
    // 2200 cents declines in the sandbox, as for any method.
    const n3 = (await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' })).nonce;
    expect((await authorize({ token: (await mint(n3)).body.token_id, amount: 2200 })).status).toBe(401);
    // A card_only session is not an Apple Pay session.
    const cardNonce = (await widgetUrl(user, { direction: 'cash_in', type: 'card_only' })).nonce;
    expect((await mint(cardNonce)).body.error).toMatchObject({ code: 'invalid_value', field: 'nonce' });
  });

  it('a repeated transaction_identifier returns the first token, even when two mints race', async () => {
    const user = await newUser(api);
    const { nonce } = await widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' });
    const [x, y] = await Promise.all([mint(nonce, { transaction_identifier: 'TXN-RACE-1' }), mint(nonce, { transaction_identifier: 'TXN-RACE-1' })]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect(x.body.token_id).toBe(y.body.token_id);
    // Two sessions, one transaction: still one token.
    const [p, q] = await Promise.all([
      widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' }), widgetUrl(user, { direction: 'cash_in', type: 'apple_pay' }),
    ]);
    const [m, n] = await Promise.all([mint(p.nonce, { transaction_identifier: 'TXN-RACE-2' }), mint(q.nonce, { transaction_identifier: 'TXN-RACE-2' })]);
    expect([m.status, n.status]).toEqual([200, 200]);
    expect(m.body.token_id).toBe(n.body.token_id);
    const count = await s.running.deps.db.query("SELECT count(*)::int AS n FROM tokens WHERE operator_id = $1 AND transaction_identifier LIKE 'TXN-RACE-%'", [keys.id]);
    expect(count.rows[0].n).toBe(2);
    // Without one, a spent nonce mints nothing more.
    expect((await mint(nonce)).status).toBe(403);
  });
});

describe('step-up: 202 {id, url}', () => {
  it('3300 cents requires authentication with any token: the intent waits created, with no event, until the page decides', async () => {
    const user = await newUser(api);
    for (const token of [(await api.post('/token', { user_id: user, type: 'card_only' })).body.token, (await cardToken(user)).token,
      (await api.post('/tokenize', { user_id: user, ...CARD })).body.token]) {
      const r = await authorize({ token, amount: 3300 });
      expect(r.status).toBe(202);
      expect(Object.keys(r.body).sort()).toEqual(['id', 'url']);
      const i = await api.get(`/intent/${r.body.id}`);
      expect(i.body).toMatchObject({ status: 'created', amount: 3300, decline_category: null });
      expect(await eventsOf(r.body.id)).toEqual([]);
      expect((await api.post(`/intent/${r.body.id}/approve`)).status).toBe(409);
      // The repeat replays the first answer.
      const again = await authorize({ token, amount: 3300 });
      expect(again.status).toBe(202);
      expect(again.body).toEqual(r.body);
    }
  });

  it('the step-up page asks for a 6-digit code, then decides the intent like any other (event, credential authenticated)', async () => {
    const user = await newUser(api);
    const card = await cardToken(user);
    const r = await authorize({ token: card.token, amount: 3300 });
    const url = new URL(r.body.url);
    const html = await (await fetch(url)).text();
    expect(html).toContain('data-testid="step-up"');
    expect(html).toContain('id="code"');
    const decide = (body: Record<string, unknown>) => anon.post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action: 'approve', ...body });
    expect((await decide({})).body.error).toMatchObject({ code: 'invalid_code', field: 'code' });
    expect((await decide({ code: '12345' })).body.error.code).toBe('invalid_code');
    expect((await api.get(`/intent/${r.body.id}`)).body.status).toBe('created');
    const ok = await decide({ code: '424242' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ intent_id: r.body.id, status: 'approved' });
    expect((await api.get(`/intent/${r.body.id}`)).body).toMatchObject({
      status: 'approved', credential: { id: card.credential.id, last4: '4444' },
      payment_credential: { id: card.credential.id, type: 'card_only_debit', card: { primary_account_number_mask: '************4444', brand: 'mastercard' } },
    });
    expect(await eventsOf(r.body.id)).toEqual(['intent.approved']);
    expect((await api.get(`/user/${user}/credentials`)).body.data[0].authenticated).toBe(true);
    expect((await decide({ code: '424242' })).status).toBe(409);
    // The page posts its outcome to any window; with allowed_origins set, only to those origins.
    expect(html).toContain('"targets":["*"]');
    const op = await newOperator(s, 'Framed Casino');
    const framed = client(s.url, op.sandbox);
    await framed.call('PATCH', '/operator/settings', { allowed_origins: ['https://casino.example'] });
    const fu = await newUser(framed);
    const fr = await authorize({ token: (await framed.post('/tokenize', { user_id: fu, ...CARD })).body.token, amount: 3300 }, framed);
    expect(await (await fetch(fr.body.url)).text()).toContain('"targets":["https://casino.example"]');
  });

  it('the test card 4000 0000 0000 3220 always steps up; failing it declines authentication_failed; production has no step-up amount', async () => {
    const user = await newUser(api);
    const t = await api.post('/tokenize', { user_id: user, ...CARD, pan: '4000 0000 0000 3220' });
    const r = await authorize({ token: t.body.token, amount: 1234 });
    expect(r.status).toBe(202);
    const url = new URL(r.body.url);
    const fail = await anon.post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action: 'decline' });
    expect(fail.body).toMatchObject({ status: 'declined', decline_category: 'authentication_failed' });
    expect(await eventsOf(r.body.id)).toEqual(['intent.declined']);
    // A decline the rules make comes first: no step-up for what would be declined anyway.
    const t2 = await api.post('/tokenize', { user_id: user, ...CARD, pan: '4000 0000 0000 3220' });
    expect((await authorize({ token: t2.body.token, amount: 2200 })).status).toBe(401);

    const pu = await newUser(prod);
    const pt = await prod.post('/tokenize', { user_id: pu, ...CARD });
    expect((await authorize({ token: pt.body.token, amount: 3300 }, prod)).status).toBe(200);
  });

  it('with redirect_url, the decided step-up redirects with intent_id and status (the page reads the redirect from the decision)', async () => {
    const user = await newUser(api);
    const r = await authorize({ token: (await cardToken(user)).token, amount: 3300, redirect_url: 'https://casino.example/back' });
    expect(r.status).toBe(202);
    const url = new URL(r.body.url);
    const ok = await anon.post(`${url.pathname}/decision`, { s: url.searchParams.get('s'), action: 'approve', code: '000000' });
    expect(ok.body.redirect).toBe(`https://casino.example/back?intent_id=${r.body.id}&status=approved`);
  });
});
