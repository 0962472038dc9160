import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, type Api, type TestServer } from './helpers.js';

let s: TestServer;
let api: Api;

beforeAll(async () => {
  s = await startTestServer();
  api = client(s.url, (await newOperator(s)).sandbox);
});
afterAll(() => s?.stop());

async function token(userId: string, type = 'card_only'): Promise<string> {
  return (await api.post('/token', { user_id: userId, type })).body.token;
}

describe('POST /authorize', () => {
  it('approves with 200, the intent and a credential; the same user and method get the same credential', async () => {
    const userId = await newUser(api);
    const a = await api.post('/authorize', { amount: 5000, currency: 'USD', direction: 'cash_in', token: await token(userId), tag: 'txn_a', webhook_secret: 'w'.repeat(32) });
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ status: 'approved', amount: 5000, rail: 'card', type: 'card_only', tag: 'txn_a', credential: { id: expect.stringMatching(/^cred_/), display_name: 'Visa Debit', last4: expect.stringMatching(/^\d{4}$/) } });
    const b = await api.post('/authorize', { amount: 100, currency: 'USD', direction: 'cash_in', token: await token(userId) });
    expect(b.body.credential.id).toBe(a.body.credential.id);
    const other = await api.post('/authorize', { amount: 100, currency: 'USD', direction: 'cash_in', token: await token(userId, 'secure_debit') });
    expect(other.body.credential.id).not.toBe(a.body.credential.id);
    expect(other.body.rail).toBe('ach');
    const byCredential = await api.post('/authorize', { amount: 200, currency: 'USD', direction: 'cash_out', credential_id: other.body.credential.id });
    expect(byCredential.status).toBe(200);
    expect(byCredential.body).toMatchObject({ direction: 'cash_out', status: 'approved', user_id: userId });
    // A card-only card deposits only (Push Native): its withdrawal is declined.
    const cardOut = await api.post('/authorize', { amount: 200, currency: 'USD', direction: 'cash_out', credential_id: a.body.credential.id });
    expect(cardOut.status).toBe(401);
    expect(cardOut.body).toMatchObject({ status: 'declined', decline_category: 'credential_not_withdrawable' });
    const events = await api.get(`/events?intent_id=${a.body.id}`);
    expect(events.body.data[0]).toMatchObject({ type: 'intent.approved', data: { tag: 'txn_a', rail: 'card', type: 'card_only' } });
  });

  it('declines with 401 and the intent as body, not the error shape', async () => {
    const userId = await newUser(api);
    const r = await api.post('/authorize', { amount: 2200, currency: 'USD', direction: 'cash_in', token: await token(userId) });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ status: 'declined', decline_category: 'insufficient_funds', amount: 2200 });
    expect(r.body.error).toBeUndefined();
    const byCredential = await api.post('/authorize', { amount: 2200, currency: 'USD', direction: 'cash_in', credential_id: r.body.credential.id });
    expect(byCredential.status).toBe(401);
    expect(byCredential.body.id).not.toBe(r.body.id);
  });

  it('refuses bad input with the error shape', async () => {
    const userId = await newUser(api);
    const both = await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in', token: 't', credential_id: 'c' });
    expect(both.status).toBe(400);
    expect(both.body.error.code).toBe('token_or_credential_required');
    const none = await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in' });
    expect(none.body.error.code).toBe('token_or_credential_required');
    expect((await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in', token: 'token_nope' })).body.error.code).toBe('token_not_found');
    expect((await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in', credential_id: 'cred_nope' })).body.error.code).toBe('credential_not_found');
    expect((await api.post('/token', { user_id: userId, type: 'cash' })).body.error).toMatchObject({ code: 'invalid_value', field: 'type' });
    expect((await api.post('/token', { user_id: 'user_nope', type: 'card_only' })).body.error.code).toBe('user_not_found');
    const secret = await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in', token: await token(userId), webhook_secret: 'short' });
    expect(secret.body.error).toMatchObject({ code: 'invalid_length', field: 'webhook_secret' });
  });
});
