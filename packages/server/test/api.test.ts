import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, payThroughPage, startTestServer, userBody, type Api, type Keys, type TestServer } from './helpers.js';

let s: TestServer;
let op: Keys;
let api: Api;

beforeAll(async () => {
  s = await startTestServer();
  op = await newOperator(s);
  api = client(s.url, op.sandbox);
});
afterAll(() => s?.stop());

describe('the operator flow over HTTP', () => {
  it('verifies the key, registers a user, creates an intent, approves it on the page, settles it, lists the events', async () => {
    const verify = await api.post('/keys/verify');
    expect(verify.status).toBe(200);
    expect(verify.body.name).toBe('Acme Casino');

    const userId = await newUser(api, { tag: 'player-1' });
    expect(userId).toMatch(/^user_[0-9A-Za-z]{22}$/);
    const user = await api.get(`/user/${userId}`);
    expect(user.body).toMatchObject({ id: userId, tag: 'player-1', email: 'ada@example.com', status: 'enabled', limits: { daily_limit: 250000, currency: 'USD' } });

    const created = await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 5000, currency: 'USD', tag: 'txn_12345', redirect_url: 'https://merchant.example/back' });
    expect(created.status).toBe(200);
    expect(created.body.id).toMatch(/^intent_sandbox_[0-9A-Za-z]{22}$/);
    expect(created.body.url).toContain(`/pay/${op.id}/${created.body.id}?s=`);
    expect(created.body.status).toBe('created');

    const page = await fetch(created.body.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('$50.00');

    const u = new URL(created.body.url);
    const decision = await client(s.url).post(`${u.pathname}/decision`, { s: u.searchParams.get('s'), action: 'approve' });
    expect(decision.body).toMatchObject({ status: 'approved', redirect: `https://merchant.example/back?intent_id=${created.body.id}&status=approved` });

    const approved = await api.get(`/intent/${created.body.id}`);
    expect(approved.body).toMatchObject({ status: 'approved', limits_utilization: { daily_cash_in: '5000.00', daily_cash_out: '0.00' } });

    s.clock.advance(1000);
    const settled = await api.post(`/simulate/intent/${created.body.id}/settle`);
    expect(settled.status).toBe(200);
    expect(settled.body.transactions).toHaveLength(1);
    expect(settled.body.transactions[0]).toMatchObject({ id: expect.stringMatching(/^txn_/), amount: 5000, currency: 'USD', status: 'settled' });

    const events = await api.get(`/events?intent_id=${created.body.id}`);
    expect(events.body.data.map((e: { type: string }) => e.type)).toEqual(['intent.settled', 'intent.approved']);
    const approvedEvent = events.body.data[1];
    expect(approvedEvent.data).toEqual({
      id: created.body.id, tag: 'txn_12345', direction: 'cash_in', amount: 5000, status: 'approved', rail: 'ach', currency: 'USD', type: 'push',
      limits_utilization: { daily_cash_in: '5000.00', daily_cash_out: '0.00', monthly_cash_in: '5000.00', monthly_cash_out: '0.00' },
    });
    expect(events.body.data[0].data.transaction).toMatchObject({ id: settled.body.transactions[0].id, amount: 5000, status: 'settled' });
    const one = await api.get(`/events/${approvedEvent.id}`);
    expect(one.body.id).toBe(approvedEvent.id);
  });

  it('uses the X-Idempotency-Key as the tag when no tag is given', async () => {
    const userId = await newUser(api);
    const r = await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 1000, currency: 'USD' }, { 'X-Idempotency-Key': 'order-77' });
    const u = new URL(r.body.url);
    await client(s.url).post(`${u.pathname}/decision`, { s: u.searchParams.get('s'), action: 'approve' });
    const events = await api.get(`/events?intent_id=${r.body.id}`);
    expect(events.body.data[0].data.tag).toBe('order-77');
  });

  it('paginates intents with a cursor and filters by creation time', async () => {
    const userId = await newUser(api);
    const t0 = s.clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      s.clock.advance(1000);
      ids.push((await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 100 + i, currency: 'USD' })).body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/intent/list?limit=2&created_at.after=${encodeURIComponent(t0.toISOString())}${cursor ? `&cursor=${cursor}` : ''}`;
      const r = await api.get(q);
      expect(r.status).toBe(200);
      seen.push(...r.body.data.map((i: { id: string }) => i.id));
      cursor = r.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const before = await api.get(`/intent/list?created_at.before=${encodeURIComponent(new Date(t0.getTime() + 2500).toISOString())}&created_at.after=${encodeURIComponent(t0.toISOString())}`);
    expect(before.body.data.map((i: { id: string }) => i.id)).toEqual([ids[1], ids[0]]);
    const users = await api.get('/user/list?limit=1');
    expect(users.body.data).toHaveLength(1);
    expect(users.body.next_cursor).toEqual(expect.any(String));
  });
});

describe('service endpoints', () => {
  it('serves an OpenAPI 3.1 document built from the validating schemas, and a health check', async () => {
    const doc = await client(s.url).get('/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    const createIntent = doc.body.paths['/intent'].post;
    const schema = createIntent.requestBody.content['application/json'].schema;
    expect(schema.required).toEqual(expect.arrayContaining(['direction', 'user_id', 'amount', 'currency']));
    expect(schema.properties.webhook_secret).toMatchObject({ minLength: 32, maxLength: 4096 });
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/user', '/user/{id}', '/intent/list', '/authorize', '/token', '/events', '/keys/verify']));
    expect((await client(s.url).get('/healthz')).body).toEqual({ status: 'ok' });
  });
});

describe('users', () => {
  it('returns the same user for the same tag', async () => {
    const a = await api.post('/user', userBody({ tag: 'same-tag' }));
    const b = await api.post('/user', userBody({ tag: 'same-tag', email: 'other@example.com' }));
    expect(a.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
  });
  it('is idempotent by X-Idempotency-Key', async () => {
    const a = await api.post('/user', userBody(), { 'X-Idempotency-Key': 'user-k1' });
    const b = await api.post('/user', userBody(), { 'X-Idempotency-Key': 'user-k1' });
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
  });

  const cases: [string, Record<string, unknown>, string, string][] = [
    ['missing email', { email: undefined }, 'missing_field', 'email'],
    ['bad email', { email: 'not-an-email' }, 'invalid_email', 'email'],
    ['state not 2 letters', { address: { ...userBody().address, administrative_area: 'New York' } }, 'invalid_length', 'address.administrative_area'],
    ['unknown state', { address: { ...userBody().address, administrative_area: 'ZZ' } }, 'invalid_state', 'address.administrative_area'],
    ['bad postal code', { address: { ...userBody().address, postal_code: '1234' } }, 'invalid_postal_code', 'address.postal_code'],
    ['5+4 postal code is fine but 5+3 is not', { address: { ...userBody().address, postal_code: '12345-678' } }, 'invalid_postal_code', 'address.postal_code'],
    ['non-US country', { address: { ...userBody().address, country: 'CA' } }, 'unsupported_country', 'address.country'],
    ['bad date', { date_of_birth: '1990-02-30' }, 'invalid_date', 'date_of_birth'],
    ['date in wrong format', { date_of_birth: '12/10/1990' }, 'invalid_date', 'date_of_birth'],
    ['minor', { date_of_birth: `${new Date().getUTCFullYear() - 10}-01-01` }, 'underage', 'date_of_birth'],
    ['unknown id type', { government_id: { type: 'library_card', last4: '1234' } }, 'invalid_value', 'government_id.type'],
    ['last4 not digits', { government_id: { type: 'ssn', last4: '12a4' } }, 'invalid_last4', 'government_id.last4'],
    ['licence without state', { government_id: { type: 'drivers_license', last4: '1234' } }, 'state_required', 'government_id.state'],
    ['ssn with state', { government_id: { type: 'ssn', last4: '1234', state: 'NY' } }, 'state_not_allowed', 'government_id.state'],
    ['identity not verified', { identity_verified: false }, 'identity_not_verified', 'identity_verified'],
    ['identity_verified as string', { identity_verified: 'true' }, 'invalid_type', 'identity_verified'],
    ['bad phone', { phone_number: '555' }, 'invalid_phone_number', 'phone_number'],
    ['missing name.last', { name: { first: 'A' } }, 'missing_field', 'name.last'],
    ['tag too long', { tag: 'x'.repeat(256) }, 'invalid_length', 'tag'],
  ];
  it.each(cases)('rejects %s', async (_name, patch, code, field) => {
    const body: Record<string, unknown> = { ...userBody(), ...patch };
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete body[k];
    const r = await api.post('/user', body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code, field });
    expect(r.body.error.message).toEqual(expect.any(String));
  });
});

describe('intents: validation', () => {
  let userId: string;
  beforeAll(async () => {
    userId = await newUser(api);
  });
  const valid = () => ({ direction: 'cash_in', user_id: userId, amount: 5000, currency: 'USD' });
  const cases: [string, Record<string, unknown>, number, string, string | undefined][] = [
    ['amount as a string', { amount: '5000' }, 400, 'invalid_type', 'amount'],
    ['amount zero', { amount: 0 }, 400, 'out_of_range', 'amount'],
    ['negative amount', { amount: -5 }, 400, 'out_of_range', 'amount'],
    ['fractional amount', { amount: 50.5 }, 400, 'invalid_type', 'amount'],
    ['currency EUR', { currency: 'EUR' }, 400, 'invalid_value', 'currency'],
    ['bad direction', { direction: 'sideways' }, 400, 'invalid_value', 'direction'],
    ['missing user_id', { user_id: undefined }, 400, 'missing_field', 'user_id'],
    ['unknown user', { user_id: 'user_nope' }, 404, 'user_not_found', undefined],
    ['short webhook_secret', { webhook_secret: 'x'.repeat(31) }, 400, 'invalid_length', 'webhook_secret'],
    ['long webhook_secret', { webhook_secret: 'x'.repeat(4097) }, 400, 'invalid_length', 'webhook_secret'],
    ['tag of 256', { tag: 't'.repeat(256) }, 400, 'invalid_length', 'tag'],
    ['bad approval_mode', { approval_mode: 'sometimes' }, 400, 'invalid_value', 'approval_mode'],
    ['relative redirect_url', { redirect_url: '/back' }, 400, 'invalid_url', 'redirect_url'],
    ['ftp webhook_url', { webhook_url: 'ftp://x.example/' }, 400, 'invalid_url', 'webhook_url'],
  ];
  it.each(cases)('rejects %s', async (_n, patch, status, code, field) => {
    const body: Record<string, unknown> = { ...valid(), ...patch };
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete body[k];
    const r = await api.post('/intent', body);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    if (field) expect(r.body.error.field).toBe(field);
  });
  it('accepts the boundaries: a 32-character secret, a 255-character tag', async () => {
    // account_id must name one of the operator's settlement accounts (GET /account/list).
    const account = (await api.get('/account/list?type=settlement')).body.data[0].id;
    const r = await api.post('/intent', { ...valid(), webhook_secret: 's'.repeat(32), tag: 't'.repeat(255), account_id: account, display_limits: true, display_loyalty: false });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ account_id: account, display_limits: true, display_loyalty: false });
    expect(r.body).not.toHaveProperty('webhook_secret');
  });
  it('answers malformed JSON, a non-object body, the wrong media type and an oversized body with 4xx', async () => {
    const bad = await api.call('POST', '/intent', '{"direction":');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('malformed_json');
    const arr = await api.call('POST', '/intent', '[1,2]');
    expect(arr.status).toBe(400);
    const text = await api.call('POST', '/intent', 'hello', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');
    const big = await api.post('/intent', { ...valid(), tag: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('body_too_large');
    const longKey = await api.post('/intent', valid(), { 'X-Idempotency-Key': 'k'.repeat(256) });
    expect(longKey.status).toBe(400);
    expect(longKey.body.error.field).toBe('x-idempotency-key');
  });
  it('answers unknown routes, missing and bad keys with the error shape', async () => {
    expect((await api.get('/nope')).body.error.code).toBe('route_not_found');
    const anon = await client(s.url).post('/intent', valid());
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe('unauthorized');
    const wrong = await client(s.url, 'sk_sandbox_wrong').get('/intent/list');
    expect(wrong.status).toBe(401);
    expect((await api.get('/intent/list?limit=0')).status).toBe(400);
    expect((await api.get('/intent/list?cursor=garbage')).body.error.code).toBe('invalid_cursor');
    expect((await api.get('/intent/list?created_at.after=yesterday')).body.error.code).toBe('invalid_date');
  });
  it('never answers 500, whatever the body', async () => {
    const samples: unknown[] = [null, 1, 'x', true, [], {}, { amount: null }, { amount: 1e300 }, { amount: 2 ** 53 }, { user_id: {} }, { direction: ['cash_in'] },
      { ...valid(), user_id: 'x'.repeat(64) }, { ...valid(), user_id: '\u0000' }, { ...valid(), tag: '\u0000' }, { ...valid(), redirect_url: 'http://[::1' },
      { ...valid(), redirect_url: 'https://ok.example/\u0000' }, { ...valid(), account_id: '' }];
    for (const body of samples) {
      for (const path of ['/intent', '/user', '/authorize', '/token', '/keys/verify']) {
        const r = await api.call('POST', path, JSON.stringify(body), { 'content-type': 'application/json' });
        expect(r.status, `${path} ${JSON.stringify(body)}`).toBeLessThan(500);
      }
    }
    for (const path of ['/intent/%00', '/user/%00', '/events/%FF', '/intent/list?cursor=%00', `/intent/${'x'.repeat(300)}`]) {
      expect((await api.get(path)).status, path).toBeLessThan(500);
    }
  });
});

describe('tenants and environments', () => {
  it('never shows one operator another operator\'s objects', async () => {
    const other = await newOperator(s, 'Other Co');
    const otherApi = client(s.url, other.sandbox);
    const userId = await newUser(api);
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1234 });
    expect((await otherApi.get(`/user/${userId}`)).status).toBe(404);
    const gi = await otherApi.get(`/intent/${intent.id}`);
    expect(gi.status).toBe(404);
    expect(gi.body.error.code).toBe('intent_not_found');
    expect((await otherApi.post(`/intent/${intent.id}/cancel`)).status).toBe(404);
    expect((await otherApi.post('/intent', { direction: 'cash_in', user_id: userId, amount: 100, currency: 'USD' })).body.error.code).toBe('user_not_found');
    const events = await otherApi.get('/events');
    expect(events.body.data).toEqual([]);
    expect((await otherApi.get('/intent/list')).body.data).toEqual([]);
    expect((await otherApi.get('/user/list')).body.data).toEqual([]);
    // Nor can the page of one operator's intent be opened under another operator.
    const u = new URL(intent.url);
    const crossed = await fetch(`${s.url}/pay/${other.id}/${intent.id}?s=${u.searchParams.get('s')}`);
    expect(crossed.status).toBe(404);
  });

  it('keeps production and sandbox apart', async () => {
    const prod = client(s.url, op.production);
    expect((await prod.post('/keys/verify')).body.environment).toBe('production');
    const sandboxUser = await newUser(api);
    const r = await prod.post('/intent', { direction: 'cash_in', user_id: sandboxUser, amount: 100, currency: 'USD' });
    expect(r.status).toBe(404);
    const prodUser = await newUser(prod);
    const pi = await prod.post('/intent', { direction: 'cash_in', user_id: prodUser, amount: 100, currency: 'USD' });
    expect(pi.body.id).toMatch(/^intent_production_/);
    const cross = await api.get(`/intent/${pi.body.id}`);
    expect(cross.status).toBe(400);
    expect(cross.body.error.code).toBe('wrong_environment');
    expect((await prod.post(`/simulate/intent/${pi.body.id}/settle`)).body.error.code).toBe('sandbox_only');
    expect((await api.get('/user/list')).body.data.map((x: { id: string }) => x.id)).not.toContain(prodUser);
    // Production has no magic amounts: 2200 is approved.
    const { decision } = await payThroughPage(s, prod, { direction: 'cash_in', user_id: prodUser, amount: 2200 });
    expect(decision.body.status).toBe('approved');
  });
});

describe('lifecycle rules', () => {
  it('cancels before approval and refuses after, with 409', async () => {
    const userId = await newUser(api);
    const c = await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 700, currency: 'USD' });
    const canceled = await api.post(`/intent/${c.body.id}/cancel`);
    expect(canceled.body.status).toBe('canceled');
    const again = await api.post(`/intent/${c.body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('intent_not_cancelable');
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 800 });
    const late = await api.post(`/intent/${intent.id}/cancel`);
    expect(late.status).toBe(409);
    expect(late.body.error.message).toContain('approved');
    const approveApproved = await api.post(`/intent/${intent.id}/approve`);
    expect(approveApproved.status).toBe(409);
    expect(approveApproved.body.error.code).toBe('intent_not_pending');
    const events = await api.get(`/events?intent_id=${c.body.id}`);
    expect(events.body.data.map((e: { type: string }) => e.type)).toEqual(['intent.canceled']);
  });

  it('puts manual-mode intents under review: pending, then approved by the operator', async () => {
    const userId = await newUser(api);
    const { intent, decision } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 900, approval_mode: 'manual' });
    expect(decision.body.status).toBe('pending');
    const ok = await api.post(`/intent/${intent.id}/approve`);
    expect(ok.body.status).toBe('approved');
    const events = await api.get(`/events?intent_id=${intent.id}&type=intent.approved`);
    expect(events.body.data.map((e: { data: { status: string } }) => e.data.status)).toEqual(['approved', 'pending']);
    // A pending intent can still be canceled.
    const p2 = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 901, approval_mode: 'manual' });
    expect((await api.post(`/intent/${p2.intent.id}/cancel`)).body.status).toBe('canceled');
  });

  it('declines a withdrawal until the user has an approved deposit', async () => {
    const userId = await newUser(api);
    const first = await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 500 });
    expect(first.decision.body).toMatchObject({ status: 'declined', decline_category: 'deposit_required' });
    const declinedDeposit = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 2200 });
    expect(declinedDeposit.decision.body.status).toBe('declined');
    const stillNo = await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 500 });
    expect(stillNo.decision.body.decline_category).toBe('deposit_required');
    await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1000 });
    const nowOk = await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 500 });
    expect(nowOk.decision.body.status).toBe('approved');
    const ev = await api.get(`/events?intent_id=${first.intent.id}`);
    expect(ev.body.data[0]).toMatchObject({ type: 'intent.declined', data: { status: 'declined', decline_category: 'deposit_required', direction: 'cash_out' } });
  });

  it('applies the sandbox decisions: 2200 insufficient_funds, 6666 fraud_risk', async () => {
    const userId = await newUser(api);
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 2200 })).decision.body.decline_category).toBe('insufficient_funds');
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 6666 })).decision.body.decline_category).toBe('fraud_risk');
    const pageDecline = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 100 }, 'decline');
    expect(pageDecline.decision.body).toMatchObject({ status: 'declined', decline_category: 'insufficient_funds' });
  });
});
