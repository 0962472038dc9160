/**
 * Limit requests over HTTP (issue 14 item 3): the user asks (the payment page of a `display_limits` intent, or the
 * operator's API), the operator answers (PATCH /user/{id}), the sandbox decides (POST /simulate/limits_decision), and
 * the decided daily limit is the one enforced. Events verified at a real receiver in both payload versions.
 */
import { verify } from '@cashwire/webhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.js';
import { limitsSection } from '../src/api/routes/limits.js';
import { updateSettings } from '../src/payments/operators/operators.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, testWorkers, type Api, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let harness: ReturnType<typeof testWorkers>;

beforeAll(async () => {
  s = await startTestServer({}, new ManualClock(Date.UTC(2026, 2, 10, 9, 0, 0)));
  rx = await startReceiver();
  harness = testWorkers(s);
});
afterEach(() => harness.reset(rx));
afterAll(async () => {
  await rx?.close();
  await s?.stop();
});

/** An operator with a $1,000 daily limit each way and a high monthly one, its sandbox client, and a user. */
async function setup(limits: Record<string, number> = { daily_cash_in: 100_000, daily_cash_out: 100_000, monthly_cash_in: 5_000_000, monthly_cash_out: 5_000_000 }) {
  const keys = await newOperator(s);
  if (Object.keys(limits).length) await updateSettings(s.running.deps, keys.id, { limits });
  const api = client(s.url, keys.sandbox);
  const userId = await newUser(api);
  return { keys, api, userId };
}

/** An intent made with display_limits, and its page's path and session token. */
async function pageIntent(api: Api, userId: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/intent', { direction: 'cash_in', user_id: userId, amount: 1000, currency: 'USD', display_limits: true, ...body });
  expect(r.status).toBe(200);
  const url = new URL(r.body.url);
  return { intent: r.body, path: url.pathname, token: url.searchParams.get('s')! };
}

const page = () => client(s.url);
const events = async (api: Api, type: string) => (await api.get(`/events?type=${type}`)).body.data as { id: string; type: string; data: any; intent_id?: string }[];

describe('asking for a higher limit', () => {
  it('POST /user/{id}/limits_request opens a request and emits user.limits_request {user_id, timestamp}; a second returns the open one', async () => {
    const { api, userId } = await setup();
    const first = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 500_000 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      user_id: userId, intent_id: null, status: 'requested', requested_daily_limit: 500_000, approved_daily_limit: null, currency: 'USD',
      operator_info: null, decided_at: null,
    });
    expect(first.body.id).toMatch(/^limreq_/);
    expect(first.body.created_at).toBe(s.clock.now().toISOString());
    // While it is open, asking again (for another amount, or none) answers the open one and writes nothing.
    const again = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 900_000 });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await api.post(`/user/${userId}/limits_request`, {})).body.id).toBe(first.body.id);
    const ev = await events(api, 'user.limits_request');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.data).toEqual({ user_id: userId, timestamp: s.clock.now().toISOString() });
    // GET answers the latest.
    const latest = await api.get(`/user/${userId}/limits_request`);
    expect(latest.status).toBe(200);
    expect(latest.body).toEqual(first.body);
  });

  it('two concurrent requests of one user make one request and one event', async () => {
    const { api, userId } = await setup();
    const [a, b, c] = await Promise.all([
      api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 200_000 }),
      api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 300_000 }),
      api.post(`/user/${userId}/limits_request`, {}),
    ]);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(new Set([a.body.id, b.body.id, c.body.id]).size).toBe(1);
    expect(await events(api, 'user.limits_request')).toHaveLength(1);
    const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM limit_requests WHERE user_id = $1', [userId]);
    expect(rows[0].n).toBe(1);
  });

  it('refuses bad input with its code: no more than the limit in force, not integer cents, unknown or foreign users', async () => {
    const { api, userId } = await setup();
    const notHigher = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 100_000 });
    expect(notHigher.status).toBe(400);
    expect(notHigher.body.error).toMatchObject({ code: 'limit_not_higher', field: 'requested_daily_limit' });
    expect((await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 1500.5 })).body.error.code).toBe('invalid_type');
    expect((await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: '150000' })).body.error.code).toBe('invalid_type');
    expect((await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 0 })).body.error.code).toBe('out_of_range');
    const unknown = await api.post('/user/user_nope/limits_request', {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('user_not_found');
    const other = client(s.url, (await newOperator(s)).sandbox);
    expect((await other.post(`/user/${userId}/limits_request`, {})).status).toBe(404);
    expect((await other.get(`/user/${userId}/limits_request`)).status).toBe(404);
    // A user who never asked: 404 limit_request_not_found.
    const none = await api.get(`/user/${userId}/limits_request`);
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe('limit_request_not_found');
    expect(await events(api, 'user.limits_request')).toHaveLength(0);
  });

  it('the payment page of a display_limits intent asks with its session token; the API then finds the same request', async () => {
    const { api, userId } = await setup();
    const { intent, path, token } = await pageIntent(api, userId);
    const r = await page().post(`${path}/limits_request`, { s: token, requested_daily_limit: 250_000 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'requested', requested_daily_limit: 250_000, daily_limit: 100_000, currency: 'USD' });
    const viaApi = await api.post(`/user/${userId}/limits_request`, {});
    expect(viaApi.body).toMatchObject({ status: 'requested', requested_daily_limit: 250_000, intent_id: intent.id });
    // A second ask from the page: the open one.
    expect((await page().post(`${path}/limits_request`, { s: token })).body.requested_daily_limit).toBe(250_000);
    // The event is filed under the payment.
    const filed = await api.get(`/events?intent_id=${intent.id}`);
    expect(filed.body.data.map((e: { type: string }) => e.type)).toEqual(['user.limits_request']);
  });

  it('the page endpoint: a wrong token is a missing session, an intent without display_limits offers none, bad amounts are 400', async () => {
    const { api, userId } = await setup();
    const { path, token } = await pageIntent(api, userId);
    const wrong = await page().post(`${path}/limits_request`, { s: 'x'.repeat(token.length) });
    expect(wrong.status).toBe(404);
    expect(wrong.body.error.code).toBe('payment_session_not_found');
    const plain = await pageIntent(api, userId, { display_limits: false });
    const off = await page().post(`${plain.path}/limits_request`, { s: plain.token });
    expect(off.status).toBe(403);
    expect(off.body.error.code).toBe('limits_not_displayed');
    const low = await page().post(`${path}/limits_request`, { s: token, requested_daily_limit: 50_000 });
    expect(low.status).toBe(400);
    expect(low.body.error.code).toBe('limit_not_higher');
    expect((await page().post(`${path}/limits_request`, {})).body.error).toMatchObject({ code: 'missing_field', field: 's' });
    expect(await events(api, 'user.limits_request')).toHaveLength(0);
  });
});

describe("PATCH /user/{id}: the operator's answer", () => {
  it('stores operator_stats (merged) and other_processors_limits (replaced) with the open request, and answers the user', async () => {
    const { api, userId } = await setup();
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 400_000 });
    const r = await api.call('PATCH', `/user/${userId}`, {
      operator_stats: { lifetime_deposits: 1_250_000, account_age_days: 420 },
      other_processors_limits: [{ processor: 'Acme Pay', daily_limit: 300_000 }],
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual((await api.get(`/user/${userId}`)).body);
    expect(r.body).toMatchObject({ id: userId, email: 'ada@example.com', limits: { daily_limit: 100_000, currency: 'USD' } });
    s.clock.advance(60_000);
    await api.call('PATCH', `/user/${userId}`, {
      operator_stats: { lifetime_withdrawals: 80_000 },
      other_processors_limits: [{ processor: 'Other Rails', daily_limit: 200_000 }],
    });
    const req = await api.get(`/user/${userId}/limits_request`);
    expect(req.body.status).toBe('requested'); // answering is not a decision
    expect(req.body.operator_info).toEqual({
      operator_stats: { lifetime_deposits: 1_250_000, account_age_days: 420, lifetime_withdrawals: 80_000 },
      other_processors_limits: [{ processor: 'Other Rails', daily_limit: 200_000 }],
      updated_at: s.clock.now().toISOString(),
    });
  });

  it('updates email, phone_number (stored as E.164) and address with the rules of POST /user', async () => {
    const { api, userId } = await setup();
    const address = { address_line_1: '2 Elm St', locality: 'Buffalo', administrative_area: 'NY', postal_code: '14201', country: 'US' };
    const r = await api.call('PATCH', `/user/${userId}`, { email: 'ada@lovelace.example', phone_number: '(555) 681-3485', address });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ email: 'ada@lovelace.example', phone_number: '+15556813485', address, name: { first: 'Ada', last: 'Lovelace' } });
    expect((await api.get(`/user/${userId}`)).body).toMatchObject({ email: 'ada@lovelace.example', phone_number: '+15556813485', address });
    const bad = async (body: unknown) => (await api.call('PATCH', `/user/${userId}`, body)).body.error;
    expect(await bad({ email: 'not-an-email' })).toMatchObject({ code: 'invalid_email', field: 'email' });
    expect(await bad({ phone_number: '12ab' })).toMatchObject({ code: 'invalid_phone_number', field: 'phone_number' });
    expect(await bad({ address: { ...address, postal_code: '1420' } })).toMatchObject({ code: 'invalid_postal_code' });
    expect(await bad({ address: { ...address, administrative_area: 'ZZ' } })).toMatchObject({ code: 'invalid_state' });
    expect(await bad({ address: { ...address, country: 'CA' } })).toMatchObject({ code: 'unsupported_country' });
    expect(await bad({ address: { locality: 'Buffalo' } })).toMatchObject({ code: 'missing_field' });
    // Nothing of a refused PATCH was kept.
    expect((await api.get(`/user/${userId}`)).body.email).toBe('ada@lovelace.example');
  });

  it('refuses: an empty patch, wrong types, negative stats, a processor twice, limit fields with no open request, unknown users', async () => {
    const { api, userId } = await setup();
    const patch = (body: unknown, id = userId) => api.call('PATCH', `/user/${id}`, body);
    expect((await patch({})).body.error.code).toBe('missing_field');
    expect((await patch({ unknown_field: 1 })).body.error.code).toBe('missing_field'); // unknown fields are dropped
    expect((await patch({ operator_stats: { lifetime_deposits: 'lots' } })).body.error).toMatchObject({ code: 'invalid_type', field: 'operator_stats.lifetime_deposits' });
    expect((await patch({ operator_stats: { lifetime_deposits: -1 } })).body.error.code).toBe('out_of_range');
    expect((await patch({ other_processors_limits: [{ processor: 'A' }] })).body.error).toMatchObject({ code: 'missing_field' });
    expect((await patch({ other_processors_limits: { processor: 'A', daily_limit: 1 } })).body.error.code).toBe('invalid_type');
    const noOpen = await patch({ operator_stats: { lifetime_deposits: 1 } });
    expect(noOpen.status).toBe(409);
    expect(noOpen.body.error.code).toBe('no_limit_request');
    await api.post(`/user/${userId}/limits_request`, {});
    const twice = await patch({ other_processors_limits: [{ processor: 'Acme', daily_limit: 1 }, { processor: 'acme ', daily_limit: 2 }] });
    expect(twice.status).toBe(400);
    expect(twice.body.error).toMatchObject({ code: 'invalid_value', field: 'other_processors_limits.1.processor' });
    // One transaction: a bad email refuses the stats sent with it too.
    expect((await patch({ operator_stats: { chargebacks: 3 }, email: 'nope' })).status).toBe(400);
    expect((await api.get(`/user/${userId}/limits_request`)).body.operator_info).toBeNull();
    const unknown = await patch({ email: 'a@b.example' }, 'user_nope');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('user_not_found');
  });
});

describe('POST /simulate/limits_decision', () => {
  it('is sandbox-only: 403 sandbox_only with a production key', async () => {
    const { keys } = await setup();
    const prod = client(s.url, keys.production);
    const prodUser = await newUser(prod);
    expect((await prod.post(`/user/${prodUser}/limits_request`, {})).status).toBe(200); // asking works in production
    const r = await prod.post('/simulate/limits_decision', { user_id: prodUser, decision: 'approved', approved_daily_limit: 150_000 });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('sandbox_only');
    expect((await prod.get(`/user/${prodUser}/limits_request`)).body.status).toBe('requested');
  });

  it('approved: sets the daily limit, answers the decided request, emits user.limits_request.updated; then nothing is open', async () => {
    const { api, userId } = await setup();
    const asked = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 150_000 });
    s.clock.advance(3_600_000);
    const r = await api.post('/simulate/limits_decision', { user_id: userId, decision: 'approved', approved_daily_limit: 150_000 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      ...asked.body, status: 'approved', approved_daily_limit: 150_000, decided_at: s.clock.now().toISOString(),
    });
    expect((await api.get(`/user/${userId}`)).body.limits).toEqual({ daily_limit: 150_000, currency: 'USD' });
    const ev = await events(api, 'user.limits_request.updated');
    expect(ev.map((e) => e.data)).toEqual([{ user_id: userId, approved_daily_limit: '150000', currency: 'USD', timestamp: s.clock.now().toISOString() }]);
    const again = await api.post('/simulate/limits_decision', { user_id: userId, decision: 'declined' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('no_limit_request');
    // A new request may follow, and must ask for more than the new limit.
    expect((await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 150_000 })).body.error.code).toBe('limit_not_higher');
    const next = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 150_001 });
    expect(next.body.id).not.toBe(asked.body.id);
  });

  it('partial: less than asked, emits .partial_approval; declined: changes nothing, emits .declined', async () => {
    const { api, userId } = await setup();
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 400_000 });
    const notPartial = await api.post('/simulate/limits_decision', { user_id: userId, decision: 'partial', approved_daily_limit: 400_000 });
    expect(notPartial.status).toBe(400);
    expect(notPartial.body.error).toMatchObject({ code: 'invalid_partial_limit', field: 'approved_daily_limit' });
    const partial = await api.post('/simulate/limits_decision', { user_id: userId, decision: 'partial', approved_daily_limit: 250_000 });
    expect(partial.body).toMatchObject({ status: 'partial', requested_daily_limit: 400_000, approved_daily_limit: 250_000 });
    expect((await api.get(`/user/${userId}`)).body.limits.daily_limit).toBe(250_000);
    expect((await events(api, 'user.limits_request.partial_approval')).map((e) => e.data.approved_daily_limit)).toEqual(['250000']);

    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 900_000 });
    const declined = await api.post('/simulate/limits_decision', { user_id: userId, decision: 'declined' });
    expect(declined.status).toBe(200);
    expect(declined.body).toMatchObject({ status: 'declined', approved_daily_limit: null, requested_daily_limit: 900_000 });
    expect((await api.get(`/user/${userId}`)).body.limits.daily_limit).toBe(250_000);
    const d = await events(api, 'user.limits_request.declined');
    expect(d.map((e) => e.data)).toEqual([{ user_id: userId, currency: 'USD', timestamp: s.clock.now().toISOString() }]);
    // Without an amount asked, any partial amount will do.
    await api.post(`/user/${userId}/limits_request`, {});
    expect((await api.post('/simulate/limits_decision', { user_id: userId, decision: 'partial', approved_daily_limit: 999_999 })).body.status).toBe('partial');
  });

  it('refuses bad bodies and states with their codes', async () => {
    const { api, userId } = await setup();
    const decide = (body: unknown) => api.post('/simulate/limits_decision', body);
    const none = await decide({ user_id: userId, decision: 'approved', approved_daily_limit: 150_000 });
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('no_limit_request');
    await api.post(`/user/${userId}/limits_request`, {});
    expect((await decide({ user_id: userId, decision: 'approved' })).body.error).toMatchObject({ code: 'missing_field', field: 'approved_daily_limit' });
    expect((await decide({ user_id: userId, decision: 'partial' })).body.error).toMatchObject({ code: 'missing_field', field: 'approved_daily_limit' });
    expect((await decide({ user_id: userId, decision: 'declined', approved_daily_limit: 1 })).body.error).toMatchObject({ code: 'invalid_value', field: 'approved_daily_limit' });
    expect((await decide({ user_id: userId, decision: 'maybe' })).body.error.code).toBe('invalid_value');
    expect((await decide({ user_id: userId, decision: 'approved', approved_daily_limit: 0 })).body.error.code).toBe('out_of_range');
    expect((await decide({ user_id: userId, decision: 'approved', approved_daily_limit: '150000' })).body.error.code).toBe('invalid_type');
    expect((await decide({ decision: 'declined' })).body.error).toMatchObject({ code: 'missing_field', field: 'user_id' });
    const unknown = await decide({ user_id: 'user_nope', decision: 'declined' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('user_not_found');
    expect((await api.get(`/user/${userId}/limits_request`)).body.status).toBe('requested');
  });

  it('two concurrent decisions: one decides, the other is 409; one event', async () => {
    const { api, userId } = await setup();
    await api.post(`/user/${userId}/limits_request`, {});
    const [a, b] = await Promise.all([
      api.post('/simulate/limits_decision', { user_id: userId, decision: 'approved', approved_daily_limit: 150_000 }),
      api.post('/simulate/limits_decision', { user_id: userId, decision: 'declined' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const types = (await api.get('/events')).body.data.map((e: { type: string }) => e.type).filter((t: string) => t.startsWith('user.limits_request.'));
    expect(types).toHaveLength(1);
  });
});

describe('the decided limit is enforced', () => {
  it('over the old limit: declined before, approved after an approved request, and over the new limit still declined', async () => {
    const { api, userId } = await setup();
    // Before: the operator's $1,000 a day.
    const before = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 120_000 });
    expect(before.decision.body).toMatchObject({ status: 'declined', decline_category: 'limit_exceeded' });
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 150_000 });
    // Asking changes nothing yet.
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 120_000 })).decision.body.decline_category).toBe('limit_exceeded');
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'approved', approved_daily_limit: 150_000 });
    const after = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 120_000 });
    expect(after.decision.body.status).toBe('approved');
    const ev = await api.get(`/events?intent_id=${after.intent.id}`);
    expect(ev.body.data[0].data.limits_utilization.daily_cash_in).toBe('120000.00');
    // $1,200 used of $1,500: $300.01 more is over the new limit, $300.00 fits.
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 30_001 })).decision.body).toMatchObject({ status: 'declined', decline_category: 'limit_exceeded' });
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 30_000 })).decision.body.status).toBe('approved');
    // Withdrawals too: $1,200 out (over the operator's $1,000) fits the user's $1,500.
    expect((await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 120_000 })).decision.body.status).toBe('approved');
    expect((await payThroughPage(s, api, { direction: 'cash_out', user_id: userId, amount: 30_001 })).decision.body.decline_category).toBe('limit_exceeded');
    // POST /authorize decides through the same rules.
    const tok = await api.post('/token', { user_id: userId, type: 'secure_debit' });
    const auth = await api.post('/authorize', { amount: 1, currency: 'USD', direction: 'cash_in', token: tok.body.token });
    expect(auth.status).toBe(401);
    expect(auth.body.decline_category).toBe('limit_exceeded');
  });

  it('a partial approval is enforced at its amount; a declined request keeps the limit; GET /user shows the limit in force', async () => {
    const { keys, api, userId } = await setup();
    // Not decided yet: the operator's current setting is the user's limit (also after it changes).
    await updateSettings(s.running.deps, keys.id, { limits: { daily_cash_in: 80_000, daily_cash_out: 80_000, monthly_cash_in: 5_000_000, monthly_cash_out: 5_000_000 } });
    expect((await api.get(`/user/${userId}`)).body.limits.daily_limit).toBe(80_000);
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 200_000 });
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'declined' });
    expect((await api.get(`/user/${userId}`)).body.limits.daily_limit).toBe(80_000);
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 80_001 })).decision.body.decline_category).toBe('limit_exceeded');
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 200_000 });
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'partial', approved_daily_limit: 120_000 });
    const list = await api.get('/user/list');
    expect(list.body.data.find((u: { id: string }) => u.id === userId).limits.daily_limit).toBe(120_000);
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 120_001 })).decision.body.decline_category).toBe('limit_exceeded');
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 120_000 })).decision.body.status).toBe('approved');
    // The decided limit stays the user's when the operator's settings change.
    await updateSettings(s.running.deps, keys.id, { limits: { daily_cash_in: 50_000 } });
    expect((await api.get(`/user/${userId}`)).body.limits.daily_limit).toBe(120_000);
  });

  it("the operator's monthly limit still applies above a decided daily limit", async () => {
    const { api, userId } = await setup({ daily_cash_in: 100_000, monthly_cash_in: 200_000 });
    await api.post(`/user/${userId}/limits_request`, {});
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'approved', approved_daily_limit: 300_000 });
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 200_001 })).decision.body.decline_category).toBe('limit_exceeded');
    expect((await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 200_000 })).decision.body.status).toBe('approved');
  });
});

describe('the events at a real receiver, in both payload versions', () => {
  it('user.limits_request, .updated, .partial_approval, .declined: signed, parsed by verify, approved_daily_limit "150000" or "1500.00"', async () => {
    const { api, userId } = await setup({});
    const types = ['user.limits_request', 'user.limits_request.updated', 'user.limits_request.partial_approval', 'user.limits_request.declined'];
    const newer = await api.post('/webhook/endpoints', { url: `${rx.url}/v2024`, events: types, payload_version: '2024-05' });
    const older = await api.post('/webhook/endpoints', { url: `${rx.url}/v2023`, events: types, payload_version: '2023-01' });
    expect([newer.status, older.status]).toEqual([201, 201]);
    const { path, token } = await pageIntent(api, userId);
    await page().post(`${path}/limits_request`, { s: token, requested_daily_limit: 300_000 });
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'approved', approved_daily_limit: 300_000 });
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 500_000 });
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'partial', approved_daily_limit: 450_050 });
    await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 600_000 });
    await api.post('/simulate/limits_decision', { user_id: userId, decision: 'declined' });
    // A second user's approval of exactly the reference's example.
    const other = await newUser(api, { tag: 'reference-example' });
    await api.post(`/user/${other}/limits_request`, {});
    await api.post('/simulate/limits_decision', { user_id: other, decision: 'approved', approved_daily_limit: 150_000 });
    const w = harness.make();
    while ((await w.tick()) > 0) { /* deliver everything due */ }

    const parsed = async (at: string, secret: string) => {
      const got = rx.received.filter((r) => r.path === at);
      return Promise.all(got.map((r) => verify('pushcash', { body: r.body, headers: r.headers, secrets: [secret], now: s.clock.now() })));
    };
    const v2024 = await parsed('/v2024', newer.body.secret);
    const v2023 = await parsed('/v2023', older.body.secret);
    expect(v2024).toHaveLength(8);
    expect(v2023).toHaveLength(8);
    const byType = (evs: typeof v2024, user: string) => Object.fromEntries(evs.filter((e) => (e.data as { user_id: string }).user_id === user).map((e) => [e.type, e.data]));
    const ts = s.clock.now().toISOString();
    for (const [evs, amounts] of [[v2024, ['300000', '450050', '150000']], [v2023, ['3000.00', '4500.50', '1500.00']]] as const) {
      const mine = evs.filter((e) => (e.data as { user_id: string }).user_id === userId);
      expect(mine.filter((e) => e.type === 'user.limits_request').map((e) => e.data)).toEqual([{ user_id: userId, timestamp: ts }, { user_id: userId, timestamp: ts }, { user_id: userId, timestamp: ts }]);
      const one = byType(evs, userId);
      expect(one['user.limits_request.updated']).toEqual({ user_id: userId, approved_daily_limit: amounts[0], currency: 'USD', timestamp: ts });
      expect(one['user.limits_request.partial_approval']).toEqual({ user_id: userId, approved_daily_limit: amounts[1], currency: 'USD', timestamp: ts });
      expect(one['user.limits_request.declined']).toEqual({ user_id: userId, currency: 'USD', timestamp: ts });
      expect(byType(evs, other)['user.limits_request.updated']).toEqual({ user_id: other, approved_daily_limit: amounts[2], currency: 'USD', timestamp: ts });
    }
    // Each event is delivered once to each endpoint, with one id for both.
    expect(new Set(v2024.map((e) => e.id))).toEqual(new Set(v2023.map((e) => e.id)));
  });
});

describe('limitsSection: the payment page part', () => {
  const intent = { operator_id: 'op_1', id: 'intent_sandbox_1', session_token: 'tok<"1>', display_limits: true, status: 'created' as const, decline_category: null };
  const limits = { daily_limit: 250_000, currency: 'USD' as const, open_request: null };

  it('is empty without display_limits', () => {
    expect(limitsSection({ ...intent, display_limits: null }, limits, true)).toBe('');
    expect(limitsSection({ ...intent, display_limits: false }, limits, true)).toBe('');
    expect(limitsSection(intent, null, true)).toBe('');
  });

  it('shows the daily limit and the form posting to the page endpoint; an open request instead of the form', () => {
    const html = limitsSection(intent, limits, true);
    expect(html).toContain('data-testid="daily-limit">$2,500.00</strong>');
    expect(html).toContain('Request a higher limit');
    expect(html).toContain('"url":"/pay/op_1/intent_sandbox_1/limits_request"');
    expect(html).toContain('"s":"tok\\u003c\\"1>"'); // the token is script-safe JSON
    expect(html).not.toContain('<button'); // the page's own script disables every <button> while it decides
    expect(html).toContain('data-testid="limits-sandbox"');
    expect(limitsSection(intent, limits, false)).not.toContain('limits-sandbox');
    const open = limitsSection(intent, { ...limits, open_request: { requested_daily_limit: 500_000, created_at: '2026-03-10T09:00:00.000Z' } }, false);
    expect(open).toContain('You asked for a higher limit of $5,000.00 a day');
    expect(open).toMatch(/<details id="cw-limits-ask" hidden/);
    // A payment declined for its limit opens the form.
    expect(limitsSection({ ...intent, status: 'declined', decline_category: 'limit_exceeded' }, limits, false)).toMatch(/<details id="cw-limits-ask" open>/);
  });
});

