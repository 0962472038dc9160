/**
 * The dashboard's object pages over HTTP (api/routes/dashboard/objects*.ts): intents, users, refunds, disputes and
 * Sendcash transfers, each list (amounts, ids, the status filter, paging by the Next link) and each detail with its
 * own events linking to their event pages, all made through the API. A production key's session sees none of the
 * sandbox's objects (empty lists, 404 on their ids); bad ids (9,000 characters, a NUL, another operator's) are 404
 * pages, never a 500. Also the two service additions the pages use: listIntents' user_id, eventsOf.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsOf } from '../src/payments/events/events.js';
import { listIntents } from '../src/payments/intents/intents.js';
import type { Caller } from '../src/payments/context.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';
import { dashboardClient } from './dashboard-kit.js';

let s: TestServer;
let keys: Keys;
let api: Api;
let sandbox: string; // the sandbox session's cookie
let production: string;
let otherOperator: string;

// The objects, made in beforeAll through the API.
let userId: string;
let approved: { id: string };
let declined: { id: string };
let refunded: { id: string };
let disputed: { id: string };
let refundId: string;
let disputeId: string;
let otherIntentId: string;
let completedTransfer: { id: string; reference: string };
let pendingTransfer: { id: string; reference: string };

const { get, signIn } = dashboardClient(() => s.url);

async function page(path: string, cookie = sandbox): Promise<{ status: number; html: string; type: string | null }> {
  const r = await get(path, cookie);
  return { status: r.status, html: await r.text(), type: r.headers.get('content-type') };
}

/** The ids of the rows of a list page (each row's first link into /dashboard/<kind>/). */
function idsIn(html: string, kind: string): string[] {
  return [...html.matchAll(new RegExp(`<tr data-testid="[a-z]+-row">.*?href="/dashboard/${kind}/([^"]+)"`, 'gs'))].map((m) => decodeURIComponent(m[1]!));
}

/** The href of a list's Next link, unescaped. */
const nextOf = (html: string) => /href="([^"]+)" rel="next"/.exec(html)![1]!.replace(/&#38;|&amp;/g, '&');

/** The event ids a detail page links to. */
const eventLinks = (html: string) => [...html.matchAll(/href="\/dashboard\/events\/([^"]+)" data-testid="object-event-link">([^<]+)</g)].map((m) => ({ id: m[1]!, type: m[2]! }));

async function apiEvents(intentId: string, on: Api = api): Promise<{ id: string; type: string }[]> {
  return (await on.get(`/events?intent_id=${encodeURIComponent(intentId)}`)).body.data;
}

/** A Sendcash charge signed as a checkout page would sign it (sandbox: 11.11 completes at once; other amounts stay pending). */
async function charge(publicKey: string, secretKey: string, amount: string, reference: string) {
  const kobo = Math.round(Number(amount) * 100);
  const sig = createHmac('sha256', secretKey).update(`sc_user_9:${reference}:${kobo}:0690000031:044`).digest('hex');
  const r = await client(s.url).post('/sendcash/charges', {
    publicKey, signature: sig, userId: 'sc_user_9', paymentReference: reference, amount, destinationAccountNumber: '0690000031', destinationBankCode: '044',
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.transfer?.id ?? r.body.id, reference };
}

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Objects Casino');
  api = client(s.url, keys.sandbox);
  userId = await newUser(api, { tag: 'player-1' });
  // The clock moves between objects, so that newest first is one order (equal times order by id).
  const tick = () => s.clock.advance(1000);
  ({ intent: approved } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 123456, tag: 'order-1' }));
  tick();
  ({ intent: declined } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 500 }, 'decline'));
  tick();
  ({ intent: refunded } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 5000 }));
  const refund = await api.post('/refund', { intent_id: refunded.id, amount: 2550 });
  expect(refund.status, JSON.stringify(refund.body)).toBe(200);
  refundId = refund.body.id;
  tick();
  ({ intent: disputed } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 7000 }));
  const dispute = await api.post('/simulate/dispute', { intent_id: disputed.id, code: '10.4' });
  expect(dispute.status, JSON.stringify(dispute.body)).toBe(200);
  disputeId = dispute.body.id;
  tick();
  expect((await api.post('/simulate/dispute/resolve', { dispute_id: disputeId, result: 'lost' })).status).toBe(200);
  const asked = await api.post(`/user/${userId}/limits_request`, { requested_daily_limit: 500000 });
  expect(asked.status, JSON.stringify(asked.body)).toBeLessThan(300);
  tick();

  const onboarded = await api.post('/sendcash/onboarding', { webhook_url: 'http://127.0.0.1:9/sendcash' });
  expect(onboarded.status, JSON.stringify(onboarded.body)).toBe(200);
  completedTransfer = await charge(onboarded.body.public_key, onboarded.body.secret_key, '11.11', 'ref-completed');
  tick();
  pendingTransfer = await charge(onboarded.body.public_key, onboarded.body.secret_key, '1234.5', 'ref-pending');

  const other = await newOperator(s, 'Other Casino');
  const otherApi = client(s.url, other.sandbox);
  ({ intent: { id: otherIntentId } } = await payThroughPage(s, otherApi, { direction: 'cash_in', user_id: await newUser(otherApi), amount: 100 }));

  ({ cookie: sandbox } = await signIn(keys.sandbox));
  ({ cookie: production } = await signIn(keys.production));
  ({ cookie: otherOperator } = await signIn(other.sandbox));
});
afterAll(() => s?.stop());

describe('intents', () => {
  it('lists them newest first, amounts in dollars and cents, ids in <code>, each linking to its page', async () => {
    const r = await page('/dashboard/intents');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/html/);
    expect(idsIn(r.html, 'intents')).toEqual([disputed.id, refunded.id, declined.id, approved.id]);
    expect(r.html).toContain('$1,234.56');
    expect(r.html).toContain('$5.00');
    expect(r.html).toContain(`<code>${approved.id}</code>`);
    expect(r.html).toContain('order-1');
    expect(r.html).not.toContain(otherIntentId);
    expect(r.html).toContain('data-label="Amount"'); // stacks at 390 px
  });

  it('filters by status', async () => {
    expect(idsIn((await page('/dashboard/intents?status=declined')).html, 'intents')).toEqual([declined.id]);
    expect(idsIn((await page('/dashboard/intents?status=approved')).html, 'intents')).toEqual([disputed.id, refunded.id, approved.id]);
    const none = await page('/dashboard/intents?status=canceled');
    expect(none.html).toContain('No intent matches.');
    expect(none.html).toContain('<option value="canceled" selected>');
    // An unknown status is no filter, not an error.
    expect(idsIn((await page('/dashboard/intents?status=bogus')).html, 'intents')).toHaveLength(4);
  });

  it('shows an intent: status, amount, user, tag, idempotency key, its events linking to the event pages', async () => {
    const r = await page(`/dashboard/intents/${approved.id}`);
    expect(r.status).toBe(200);
    expect(r.html).toContain('data-testid="object-status">approved<');
    expect(r.html).toContain('$1,234.56');
    expect(r.html).toContain(`href="/dashboard/users/${userId}"`);
    expect(r.html).toContain('order-1');
    const events = await apiEvents(approved.id);
    expect(events.length).toBeGreaterThan(0);
    expect(eventLinks(r.html)).toEqual(events.map((e) => ({ id: e.id, type: e.type })));
    // The link leads to the event's page.
    const ev = await page(`/dashboard/events/${events[0]!.id}`);
    expect(ev.status).toBe(200);
    expect(ev.html).toContain(events[0]!.id);
  });

  it("shows a declined intent's decline reason", async () => {
    const r = await page(`/dashboard/intents/${declined.id}`);
    expect(r.html).toContain('data-testid="object-status">declined<');
    expect(r.html).toMatch(/data-testid="decline-reason">[a-z_]+</);
    expect(eventLinks(r.html).map((e) => e.type)).toContain('intent.declined');
  });

  it('links an intent to its refund and its dispute, and lists the events filed under it', async () => {
    const r = await page(`/dashboard/intents/${refunded.id}`);
    expect(r.html).toContain(`href="/dashboard/refunds/${refundId}"`);
    expect(eventLinks(r.html).map((e) => e.type).sort()).toEqual(['intent.approved', 'refund.approved']);
    const d = await page(`/dashboard/intents/${disputed.id}`);
    expect(d.html).toContain(`href="/dashboard/disputes/${disputeId}"`);
    expect(eventLinks(d.html).map((e) => e.type).sort()).toEqual(['dispute.created', 'dispute.lost', 'intent.approved']);
  });
});

describe('users', () => {
  it('lists users, and shows one with its intents and its own events (the limit request)', async () => {
    const list = await page('/dashboard/users');
    expect(list.status).toBe(200);
    expect(idsIn(list.html, 'users')).toEqual([userId]);
    expect(list.html).toContain('Ada Lovelace');
    const r = await page(`/dashboard/users/${userId}`);
    expect(r.status).toBe(200);
    expect(r.html).toContain('player-1');
    expect(r.html).toContain('ada@example.com');
    expect(idsIn(r.html, 'intents')).toEqual([disputed.id, refunded.id, declined.id, approved.id]);
    const userEvents = (await api.get('/events?type=user.limits_request')).body.data as { id: string }[];
    expect(userEvents).toHaveLength(1);
    expect(eventLinks(r.html)).toEqual([{ id: userEvents[0]!.id, type: 'user.limits_request' }]);
  });
});

describe('refunds and disputes', () => {
  it('lists refunds with a status filter, and shows one with its intent, user and its event', async () => {
    const list = await page('/dashboard/refunds');
    expect(idsIn(list.html, 'refunds')).toEqual([refundId]);
    expect(list.html).toContain('$25.50');
    expect(idsIn((await page('/dashboard/refunds?status=declined')).html, 'refunds')).toEqual([]);
    expect(idsIn((await page('/dashboard/refunds?status=approved')).html, 'refunds')).toEqual([refundId]);
    const r = await page(`/dashboard/refunds/${refundId}`);
    expect(r.status).toBe(200);
    expect(r.html).toContain('$25.50');
    expect(r.html).toContain('of $50.00');
    expect(r.html).toContain(`href="/dashboard/intents/${refunded.id}"`);
    expect(r.html).toContain(`href="/dashboard/users/${userId}"`);
    const events = (await apiEvents(refunded.id)).filter((e) => e.type.startsWith('refund.'));
    expect(eventLinks(r.html)).toEqual(events.map((e) => ({ id: e.id, type: e.type })));
    expect(events).toHaveLength(1);
  });

  it('lists disputes with a status filter, and shows one with its reason code and its events', async () => {
    const list = await page('/dashboard/disputes');
    expect(idsIn(list.html, 'disputes')).toEqual([disputeId]);
    expect(list.html).toContain('$70.00');
    expect(idsIn((await page('/dashboard/disputes?status=created')).html, 'disputes')).toEqual([]);
    expect(idsIn((await page('/dashboard/disputes?status=lost')).html, 'disputes')).toEqual([disputeId]);
    const r = await page(`/dashboard/disputes/${disputeId}`);
    expect(r.html).toContain('data-testid="reason-code">10.4<');
    expect(r.html).toContain('(Visa)');
    expect(r.html).toContain('data-testid="object-status">lost<');
    expect(r.html).toContain(`href="/dashboard/intents/${disputed.id}"`);
    expect(eventLinks(r.html).map((e) => e.type)).toEqual(['dispute.lost', 'dispute.created']);
  });
});

describe('transfers (Sendcash)', () => {
  it("lists the session's transfers in naira, filters by status, and shows one with its Payment.Status event", async () => {
    const list = await page('/dashboard/transfers');
    expect(idsIn(list.html, 'transfers')).toEqual([pendingTransfer.id, completedTransfer.id]);
    expect(list.html).toContain('₦11.11');
    expect(list.html).toContain('₦1,234.50');
    expect(idsIn((await page('/dashboard/transfers?status=Completed')).html, 'transfers')).toEqual([completedTransfer.id]);
    const r = await page(`/dashboard/transfers/${completedTransfer.id}`);
    expect(r.status).toBe(200);
    expect(r.html).toContain('ref-completed');
    expect(r.html).toContain('data-testid="object-status">Completed<');
    const [ev] = (await api.get('/events?type=Payment.Status')).body.data as { id: string; data: { paymentReference: string } }[];
    expect(ev!.data.paymentReference).toBe('ref-completed');
    expect(eventLinks(r.html)).toEqual([{ id: ev!.id, type: 'Payment.Status' }]);
    const pending = await page(`/dashboard/transfers/${pendingTransfer.id}`);
    expect(eventLinks(pending.html)).toEqual([]);
    expect(pending.html).toContain('data-testid="no-object-events"');
  });
});

describe('paging', () => {
  it('shows 50 a page with a Next link; the next page has the rest, none twice', async () => {
    const made: string[] = [];
    const pager = await newOperator(s, 'Paging Casino');
    const papi = client(s.url, pager.sandbox);
    const u = await newUser(papi);
    for (let k = 0; k < 53; k++) {
      const r = await papi.post('/intent', { direction: 'cash_in', user_id: u, amount: 100 + k, currency: 'USD' });
      made.push(r.body.id);
      s.clock.advance(1000);
    }
    const { cookie } = await signIn(pager.sandbox);
    const first = await page('/dashboard/intents', cookie);
    const one = idsIn(first.html, 'intents');
    expect(one).toEqual(made.slice().reverse().slice(0, 50));
    const next = nextOf(first.html);
    expect(next).toMatch(/^\/dashboard\/intents\?cursor=/);
    const second = await page(next, cookie);
    expect(idsIn(second.html, 'intents')).toEqual(made.slice().reverse().slice(50));
    expect(second.html).not.toContain('rel="next"');
    // The status filter is kept on the Next link.
    const filtered = await page('/dashboard/intents?status=created', cookie);
    expect(nextOf(filtered.html)).toContain('status=created');
    // A user's page shows 50 of its intents, and links to the rest.
    const userPage = await page(`/dashboard/users/${u}`, cookie);
    expect(idsIn(userPage.html, 'intents')).toHaveLength(50);
    expect(userPage.html).toContain(`href="/dashboard/intents?user_id=${u}" id="all-intents"`);
    expect(idsIn((await page(`/dashboard/intents?user_id=${u}&status=created`, cookie)).html, 'intents')).toHaveLength(50);
  });

  it('pages users by cursor and transfers by page number, 50 at a time', async () => {
    const pager = await newOperator(s, 'Paging Casino 2');
    const papi = client(s.url, pager.sandbox);
    const users: string[] = [];
    for (let k = 0; k < 51; k++) {
      users.push(await newUser(papi));
      s.clock.advance(1000);
    }
    const ob = (await papi.post('/sendcash/onboarding', { webhook_url: 'http://127.0.0.1:9/sendcash' })).body;
    const transfers: string[] = [];
    for (let k = 0; k < 52; k++) {
      transfers.push((await charge(ob.public_key, ob.secret_key, `${100 + k}`, `page-ref-${k}`)).id);
      s.clock.advance(1000);
    }
    const { cookie } = await signIn(pager.sandbox);
    const u1 = await page('/dashboard/users', cookie);
    expect(idsIn(u1.html, 'users')).toEqual(users.slice().reverse().slice(0, 50));
    const u2 = await page(nextOf(u1.html), cookie);
    expect(idsIn(u2.html, 'users')).toEqual([users[0]]);
    const t1 = await page('/dashboard/transfers?status=Pending', cookie);
    expect(idsIn(t1.html, 'transfers')).toEqual(transfers.slice().reverse().slice(0, 50));
    const next = nextOf(t1.html);
    expect(next).toBe('/dashboard/transfers?status=Pending&page=2');
    const t2 = await page(next, cookie);
    expect(idsIn(t2.html, 'transfers')).toEqual(transfers.slice(0, 2).reverse());
    expect(t2.html).not.toContain('rel="next"');
    // A page number that is not one: the first page.
    expect(idsIn((await page('/dashboard/transfers?page=%00', cookie)).html, 'transfers')).toHaveLength(50);
  });

  it('a cursor the dashboard did not make is a 400 page', async () => {
    for (const c of ['nope!', Buffer.from('2026-01-01T00:00:00Z|a\u0000b').toString('base64url'), 'x'.repeat(500)]) {
      const r = await page(`/dashboard/intents?cursor=${encodeURIComponent(c)}`);
      expect(r.status, c).toBe(400);
      expect(r.html).toContain('Bad page link');
    }
    expect((await page('/dashboard/refunds?cursor=%00')).status).toBe(400);
  });
});

describe('scoping and bad ids', () => {
  const sandboxPages = () => [
    `/dashboard/intents/${approved.id}`, `/dashboard/users/${userId}`, `/dashboard/refunds/${refundId}`,
    `/dashboard/disputes/${disputeId}`, `/dashboard/transfers/${completedTransfer.id}`,
  ];

  it("a production key's session sees none of the sandbox's objects: empty lists, 404 on their ids", async () => {
    for (const list of ['intents', 'users', 'refunds', 'disputes', 'transfers']) {
      const r = await page(`/dashboard/${list}`, production);
      expect(r.status, list).toBe(200);
      expect(r.html, list).toContain('data-testid="empty"');
      expect(r.html).toContain('PRODUCTION');
      expect(idsIn(r.html, list), list).toEqual([]);
    }
    for (const p of sandboxPages()) {
      const r = await page(p, production);
      expect(r.status, p).toBe(404);
      expect(r.type).toMatch(/^text\/html/);
      expect(r.html).toContain('data-testid="error"');
    }
  });

  it("another operator's session gets 404 on this operator's ids, and this one on theirs", async () => {
    for (const p of sandboxPages()) expect((await page(p, otherOperator)).status, p).toBe(404);
    expect((await page(`/dashboard/intents/${otherIntentId}`)).status).toBe(404);
  });

  it('bad ids are 404 pages, never a 500', async () => {
    for (const kind of ['intents', 'users', 'refunds', 'disputes', 'transfers']) {
      for (const id of ['x'.repeat(9000), '%00', 'a%00b', '%C3%A9', "'%20OR%201=1", 'intent_production_abc', '..%2F..%2Fetc', `${'%20'.repeat(50)}`]) {
        const r = await page(`/dashboard/${kind}/${id}`);
        expect(r.status, `${kind}/${id.slice(0, 20)}`).toBe(404);
        expect(r.type).toMatch(/^text\/html/);
        expect(r.html).toContain('not found');
      }
    }
  });

  it('a path that is not UTF-8 (%FF) is refused by the router before any page: a 400, not a 500', async () => {
    const r = await page('/dashboard/intents/%FF');
    expect(r.status).toBe(400);
  });

  it('without a session, every page redirects to sign-in', async () => {
    for (const p of ['/dashboard/intents', `/dashboard/intents/${approved.id}`, '/dashboard/transfers']) {
      const r = await fetch(s.url + p, { redirect: 'manual' });
      expect(r.status).toBe(303);
      expect(r.headers.get('location')).toBe('/dashboard/sign-in');
    }
  });
});

describe('the services the pages use', () => {
  const caller = (): Caller => ({ keyId: 'k', operatorId: keys.id, operatorName: 'x', environment: 'sandbox', settings: {} });

  it("listIntents' user_id keeps one user's intents", async () => {
    const other = await newUser(api);
    const mine = await payThroughPage(s, api, { direction: 'cash_in', user_id: other, amount: 300 });
    const r = await listIntents(s.running.deps, caller(), { user_id: other });
    expect(r.data.map((i) => i.id)).toEqual([mine.intent.id]);
    expect((await listIntents(s.running.deps, caller(), { user_id: userId })).data.map((i) => i.id)).not.toContain(mine.intent.id);
  });

  it("eventsOf finds an intent's events (one family with typePrefix), a user's, a transfer's; newest first, limited", async () => {
    const deps = s.running.deps;
    const all = await eventsOf(deps, caller(), { intentId: disputed.id });
    expect(all.data.map((e) => e.type)).toEqual(['dispute.lost', 'dispute.created', 'intent.approved']);
    expect((await eventsOf(deps, caller(), { intentId: disputed.id }, 2))).toMatchObject({ more: true });
    expect((await eventsOf(deps, caller(), { intentId: disputed.id, typePrefix: 'dispute.' })).data.map((e) => e.type)).toEqual(['dispute.lost', 'dispute.created']);
    expect((await eventsOf(deps, caller(), { userId, since: new Date(0) })).data.map((e) => e.type)).toEqual(['user.limits_request']);
    expect((await eventsOf(deps, caller(), { paymentReference: 'ref-completed', since: new Date(0), until: s.clock.now() })).data.map((e) => e.type)).toEqual(['Payment.Status']);
    expect((await eventsOf(deps, caller(), { paymentReference: 'ref-completed', since: new Date(0), until: new Date(1) })).data).toEqual([]);
    expect((await eventsOf(deps, caller(), { paymentReference: 'ref-pending', since: new Date(0), until: s.clock.now() })).data).toEqual([]);
    // Scoped to the caller's environment.
    expect((await eventsOf(deps, { ...caller(), environment: 'production' }, { intentId: disputed.id })).data).toEqual([]);
  });
});
