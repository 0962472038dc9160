/**
 * GET /intent/{id} and /intent/list show what happened to an intent after its decision, as the reference's intent
 * does: its refund, its dispute, the guarantee of a deposit, whether its user asked for a higher limit from its page,
 * and every transaction with its type (the settlement, the refund's and a lost dispute's debits).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, type Api, type TestServer } from './helpers.js';

let s: TestServer;
let api: Api;

beforeAll(async () => {
  s = await startTestServer();
  api = client(s.url, (await newOperator(s)).sandbox);
});
afterAll(() => s?.stop());

async function deposit(user: string, amount: number) {
  const token = (await api.post('/token', { user_id: user, type: 'card_only' })).body.token;
  const r = await api.post('/authorize', { amount, currency: 'USD', direction: 'cash_in', token });
  expect(r.status).toBe(200);
  return r.body as { id: string };
}

describe('GET /intent after the decision', () => {
  it('shows the refund, the typed transactions and the guarantee; the list shows the same', async () => {
    const user = await newUser(api);
    const i = await deposit(user, 5000);
    expect((await api.get(`/intent/${i.id}`)).body).toMatchObject({ guarantee_amount: 5000, refund: null, dispute: null, limits_requested: false, transactions: [] });
    expect((await api.post('/simulate/settlement', { intent_id: i.id })).status).toBe(200);
    const refund = await api.post('/refund', { intent_id: i.id, amount: 1200 });
    expect(refund.status).toBe(200);
    const got = (await api.get(`/intent/${i.id}`)).body;
    expect(got.refund).toEqual(refund.body);
    expect(got.transactions.map((t: { type: string; amount: number; source_id: string | null }) => [t.type, t.amount, t.source_id])).toEqual([
      ['intent', 5000, null], ['refund', 1200, refund.body.id],
    ]);
    const listed = (await api.get('/intent/list?limit=100')).body.data.find((x: { id: string }) => x.id === i.id);
    expect(listed).toMatchObject({ refund: refund.body, guarantee_amount: 5000 });
    expect(listed.transactions).toHaveLength(2);
  });

  it('shows the dispute, and a lost one\'s debit among the transactions', async () => {
    const user = await newUser(api);
    const i = await deposit(user, 4200);
    const opened = await api.post('/simulate/dispute', { intent_id: i.id, code: '10.4' });
    expect(opened.status).toBe(200);
    expect((await api.get(`/intent/${i.id}`)).body.dispute).toMatchObject({ id: opened.body.id, status: 'created', code: '10.4' });
    const lost = await api.post('/simulate/dispute/resolve', { dispute_id: opened.body.id, result: 'lost' });
    expect(lost.status).toBe(200);
    const got = (await api.get(`/intent/${i.id}`)).body;
    expect(got.dispute).toMatchObject({ id: opened.body.id, status: 'lost' });
    expect(got.transactions.map((t: { type: string }) => t.type)).toEqual(['dispute']);
  });

  it('guarantees nothing of a declined deposit or of a withdrawal; limits_requested after the page asked', async () => {
    const user = await newUser(api);
    const declined = await api.post('/authorize', { amount: 2200, currency: 'USD', direction: 'cash_in', token: (await api.post('/token', { user_id: user, type: 'card_only' })).body.token });
    expect(declined.body.guarantee_amount).toBe(0);
    await deposit(user, 9000);
    const out = await api.post('/authorize', { amount: 100, currency: 'USD', direction: 'cash_out', token: (await api.post('/token', { user_id: user, type: 'secure_debit' })).body.token });
    expect(out.body.guarantee_amount).toBeNull();
    const shown = await api.post('/intent', { direction: 'cash_in', user_id: user, amount: 100, currency: 'USD', display_limits: true });
    const url = new URL(shown.body.url);
    const asked = await client(s.url).post(`${url.pathname}/limits_request`, { s: url.searchParams.get('s'), requested_daily_limit: 900_000 });
    expect(asked.status, JSON.stringify(asked.body)).toBe(200);
    expect((await api.get(`/intent/${shown.body.id}`)).body.limits_requested).toBe(true);
  });
});
