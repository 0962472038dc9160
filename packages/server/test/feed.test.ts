/**
 * The ascending event feed (GET /events/feed) and its stream (GET /events/stream, server-sent events), against real
 * PostgreSQL and real HTTP: insertion order within one instant, resuming, limits, type filters, both payload versions
 * (each `payload` parsed by @cashwire/webhooks), tenant and environment isolation, the 400s, an insert still in flight
 * (never skipped), and the stream's backlog, live events, Last-Event-ID resume, comments and shutdown.
 */
import { parseEvent } from '@cashwire/webhooks';
import http from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertTenantEvent } from '../src/store/events.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

let s: TestServer;
let keys: Keys;
let api: Api;

const intentData = (id: string, amount = 1234) => ({
  id, tag: `tag-${id}`, idempotency_key: null, direction: 'cash_in', amount, currency: 'USD', status: 'approved', rail: 'card', type: 'push',
  decline_category: null, limits_utilization: null, transaction: null,
});

/** One event in a statement of its own, at the test clock's instant: insertion order is the order of the calls. */
async function addEvent(k: Keys, env: 'sandbox' | 'production' = 'sandbox', type = 'intent.approved', data: object = intentData(`intent_${Math.random().toString(36).slice(2)}`)) {
  return insertTenantEvent(s.running.deps.db, s.running.deps, { operator_id: k.id, environment: env }, type, data);
}

async function allIds(k: Keys, env = 'sandbox'): Promise<string[]> {
  const { rows } = await s.running.deps.db.query<{ id: string }>('SELECT id FROM events WHERE operator_id = $1 AND environment = $2 ORDER BY seq', [k.id, env]);
  return rows.map((r) => r.id);
}

/** Reads the whole feed page by page. */
async function readAll(a: Api, limit = 100, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const r: { status: number; body: { data: { id: string }[]; next_after: string | null } } = await a.get(`/events/feed?limit=${limit}${query}${after ? `&after=${after}` : ''}`);
    expect(r.status).toBe(200);
    ids.push(...r.body.data.map((e) => e.id));
    if (r.body.data.length < limit) return ids;
    after = r.body.next_after;
  }
}

beforeAll(async () => {
  s = await startTestServer();
  keys = await newOperator(s, 'Feed Casino');
  api = client(s.url, keys.sandbox);
});
afterAll(async () => {
  await s?.stop();
});

describe('GET /events/feed', () => {
  it('lists events oldest first in insertion order, also many of one instant, and pages with after and limit', async () => {
    const k = await newOperator(s, 'Order Casino');
    const a = client(s.url, k.sandbox);
    expect((await a.get('/events/feed')).body).toEqual({ data: [], next_after: null });
    const made: string[] = [];
    for (let i = 0; i < 40; i++) made.push(await addEvent(k)); // the clock does not move: one instant
    expect(await allIds(k)).toEqual(made);
    const first = await a.get('/events/feed');
    expect(first.status).toBe(200);
    expect(first.body.data.map((e: { id: string }) => e.id)).toEqual(made);
    expect(new Set(first.body.data.map((e: { created_at: string }) => e.created_at)).size).toBe(1);
    expect(first.body.next_after).toBe(made[39]);
    // Pages of 7 give the same list, each page after the one before.
    expect(await readAll(a, 7)).toEqual(made);
    const page = await a.get(`/events/feed?after=${made[9]}&limit=5`);
    expect(page.body.data.map((e: { id: string }) => e.id)).toEqual(made.slice(10, 15));
    expect(page.body.next_after).toBe(made[14]);
    // At the end: no items, and next_after is the after given (resume from there later).
    const end = await a.get(`/events/feed?after=${made[39]}`);
    expect(end.body).toEqual({ data: [], next_after: made[39] });
    // The default limit is 100, the largest 500.
    for (let i = 0; i < 70; i++) made.push(await addEvent(k));
    expect((await a.get('/events/feed')).body.data).toHaveLength(100);
    expect((await a.get('/events/feed?limit=500')).body.data).toHaveLength(110);
  });

  it('refuses a bad limit, cursor, type or payload version with a 400 in the error shape', async () => {
    const other = await newOperator(s, 'Other Casino');
    const foreign = await addEvent(other);
    const prod = await addEvent(keys, 'production');
    const cases: [string, string][] = [
      ['/events/feed?limit=0', 'invalid_format'],
      ['/events/feed?limit=501', 'invalid_format'],
      ['/events/feed?limit=abc', 'invalid_format'],
      ['/events/feed?after=evt_nope', 'invalid_cursor'],
      [`/events/feed?after=${foreign}`, 'invalid_cursor'],
      [`/events/feed?after=${prod}`, 'invalid_cursor'],
      ['/events/feed?types=intent.approved,intent.nope', 'unknown_event_type'],
      ['/events/feed?types=,', 'invalid_value'],
      ['/events/feed?payload_version=2022-01', 'invalid_value'],
      [`/events/stream?after=${foreign}`, 'invalid_cursor'],
      ['/events/stream?types=nope', 'unknown_event_type'],
    ];
    for (const [path, code] of cases) {
      const r = await api.get(path);
      expect([path, r.status, r.body.error?.code]).toEqual([path, 400, code]);
      expect(typeof r.body.error.message).toBe('string');
    }
    const withHeader = await api.get('/events/stream', { 'last-event-id': foreign });
    expect([withHeader.status, withHeader.body.error.code]).toEqual([400, 'invalid_cursor']);
    expect((await client(s.url).get('/events/feed')).status).toBe(401);
    expect((await client(s.url).get('/events/stream')).status).toBe(401);
  });

  it('filters by types', async () => {
    const k = await newOperator(s, 'Types Casino');
    const a = client(s.url, k.sandbox);
    const approved = [await addEvent(k), await addEvent(k)];
    const declined = await addEvent(k, 'sandbox', 'intent.declined', { ...intentData('intent_d'), status: 'declined', decline_category: 'insufficient_funds' });
    const settled = await addEvent(k, 'sandbox', 'intent.settled');
    approved.push(await addEvent(k));
    expect((await a.get('/events/feed?types=intent.approved')).body.data.map((e: { id: string }) => e.id)).toEqual(approved);
    const two = await a.get('/events/feed?types=intent.declined,%20intent.settled');
    expect(two.body.data.map((e: { id: string }) => e.id)).toEqual([declined, settled]);
    expect(two.body.data.map((e: { type: string }) => e.type)).toEqual(['intent.declined', 'intent.settled']);
    // A filter that matches nothing after the cursor keeps the cursor.
    expect((await a.get(`/events/feed?types=refund.approved&after=${approved[0]}`)).body).toEqual({ data: [], next_after: approved[0] });
  });

  it('renders data and the exact webhook body in either payload version, by default the operator setting', async () => {
    const k = await newOperator(s, 'Versions Casino');
    const a = client(s.url, k.sandbox);
    const user = await newUser(a);
    const { intent } = await payThroughPage(s, a, { direction: 'cash_in', user_id: user, amount: 1250, tag: 'order-77' });
    const sendcash = { status: 'Completed', userId: 'user_42', paymentReference: 'ref-1', amount: 100.23, description: 'd', senderAccountName: 'Ada',
      sourceAccountNumber: '1', sourceAccountType: 'personal', sourceBankCode: '044', destinationAccountNumber: '2', destinationBankCode: '058' };
    const ps = await addEvent(k, 'sandbox', 'Payment.Status', sendcash);

    const v24 = (await a.get('/events/feed')).body.data;
    const approved = v24.find((e: { type: string }) => e.type === 'intent.approved');
    expect(approved).toMatchObject({ intent_id: intent.id, data: { id: intent.id, tag: 'order-77', amount: 1250, status: 'approved' } });
    expect(Object.keys(approved).sort()).toEqual(['created_at', 'data', 'id', 'intent_id', 'payload', 'type']);
    const parsed24 = parseEvent(approved.payload, { format: 'pushcash' });
    expect(parsed24).toMatchObject({ type: 'intent.approved', version: '2024-05', data: approved.data });
    expect(JSON.parse(approved.payload)).toEqual({ type: 'intent.approved', data: approved.data, timestamp: expect.any(String) });

    const v23 = (await a.get('/events/feed?payload_version=2023-01')).body.data;
    const old = v23.find((e: { type: string }) => e.type === 'intent.approved');
    expect(old.data).toMatchObject({ id: intent.id, idempotency_key: 'order-77', amount: 12.5 });
    expect(old.data).not.toHaveProperty('tag');
    expect(parseEvent(old.payload, { format: 'pushcash' })).toMatchObject({ type: 'intent.approved', version: '2023-01', data: old.data });

    // Sendcash's Payment.Status is {event, data}, whatever the version.
    const pay = v24.find((e: { id: string }) => e.id === ps);
    expect(JSON.parse(pay.payload)).toEqual({ event: 'Payment.Status', data: sendcash });
    expect(parseEvent(pay.payload, { format: 'sendcash' })).toMatchObject({ type: 'Payment.Status', data: sendcash });

    // The default follows the operator's payload_version.
    expect((await a.call('PATCH', '/operator/settings', { payload_version: '2023-01' })).status).toBe(200);
    const byDefault = (await a.get('/events/feed')).body.data.find((e: { type: string }) => e.type === 'intent.approved');
    expect(byDefault.data).toEqual(old.data);
    expect((await a.get('/events/feed?payload_version=2024-05')).body.data.find((e: { type: string }) => e.type === 'intent.approved').data).toEqual(approved.data);
  });

  it("shows the key's operator and environment only", async () => {
    const a = await newOperator(s, 'Tenant A');
    const b = await newOperator(s, 'Tenant B');
    const aSand = [await addEvent(a), await addEvent(a)];
    const aProd = [await addEvent(a, 'production')];
    const bSand = [await addEvent(b)];
    expect(await readAll(client(s.url, a.sandbox))).toEqual(aSand);
    expect(await readAll(client(s.url, a.production))).toEqual(aProd);
    expect(await readAll(client(s.url, b.sandbox))).toEqual(bSand);
    expect(await readAll(client(s.url, b.production))).toEqual([]);
  });

  it('never skips an event whose insert commits after a later one: it waits for writers in flight', async () => {
    const k = await newOperator(s, 'Race Casino');
    const a = client(s.url, k.sandbox);
    const start = await addEvent(k);
    const slow = new pg.Client({ connectionString: s.running.database.url });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      const early = await insertTenantEvent(slow, s.running.deps, { operator_id: k.id, environment: 'sandbox' }, 'intent.approved', intentData('intent_early'));
      const late = await addEvent(k); // a later seq, committed first
      const meanwhile = await a.get(`/events/feed?after=${start}`);
      // Not `late` alone (a cursor past it would lose `early` for good): nothing yet.
      expect(meanwhile.body).toEqual({ data: [], next_after: start });
      await slow.query('COMMIT');
      expect((await a.get(`/events/feed?after=${start}`)).body.data.map((e: { id: string }) => e.id)).toEqual([early, late]);
    } finally {
      await slow.end();
    }
  });

  it('is not taken for /events/{id}, which still answers', async () => {
    const id = await addEvent(keys);
    expect((await api.get(`/events/${id}`)).body.id).toBe(id);
    expect((await api.get('/events/feed')).body).toHaveProperty('next_after');
  });
});

/* --------------------------------------------------------------------------------------------------------------- */

interface Frame { id?: string; event?: string; data?: string; comments: string[] }

/**
 * A server-sent events reader on node:http, on a connection of its own (closed with the stream): frames as they
 * arrive, `until` waits for a condition with a deadline.
 */
async function openStream(base: string, key: string, query = '', headers: Record<string, string> = {}) {
  const u = new URL(`${base}/events/stream${query}`);
  const req = http.request({ host: u.hostname, port: Number(u.port), path: u.pathname + u.search, agent: false, headers: { authorization: `Bearer ${key}`, ...headers } });
  const incoming = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
  const res = { status: incoming.statusCode ?? 0, headers: { get: (h: string) => String(incoming.headers[h.toLowerCase()] ?? '') } };
  const frames: Frame[] = [];
  let ended = false;
  let buf = '';
  let notify: (() => void) | undefined;
  const pump = new Promise<void>((resolve) => {
    incoming.setEncoding('utf8');
    incoming.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const f: Frame = { comments: [] };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) f.comments.push(line.slice(1).trim());
          else {
            const m = /^([a-z]+): ?(.*)$/.exec(line);
            if (m) (f as unknown as Record<string, string>)[m[1]!] = m[2]!;
          }
        }
        frames.push(f);
      }
      notify?.();
    });
    const finish = () => {
      ended = true;
      notify?.();
      resolve();
    };
    incoming.on('end', finish);
    incoming.on('close', finish);
    incoming.on('error', finish);
  });
  const events = () => frames.filter((f) => f.id);
  return {
    res,
    frames,
    events,
    ids: () => events().map((f) => f.id!),
    get ended() {
      return ended;
    },
    async until(pred: () => boolean, ms = 3_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (ended) throw new Error('the stream ended');
        if (Date.now() > deadline) throw new Error(`timed out; frames: ${JSON.stringify(frames).slice(0, 500)}`);
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, 50);
        });
      }
    },
    async close() {
      req.destroy();
      await pump;
    },
  };
}

describe('GET /events/stream', () => {
  it('sends : connected at once, the backlog after the cursor, then a new event within a second of its commit', async () => {
    const k = await newOperator(s, 'Stream Casino');
    const before = [await addEvent(k), await addEvent(k), await addEvent(k)];
    const st = await openStream(s.url, k.sandbox, `?after=${before[0]}`);
    try {
      expect(st.res.status).toBe(200);
      expect(st.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      await st.until(() => st.ids().length === 2);
      expect(st.frames[0]!.comments).toEqual(['connected']);
      expect(st.ids()).toEqual(before.slice(1));
      const f = st.events()[0]!;
      expect(f.event).toBe('intent.approved');
      const item = JSON.parse(f.data!);
      expect(Object.keys(item).sort()).toEqual(['created_at', 'data', 'id', 'intent_id', 'payload', 'type']);
      expect(parseEvent(item.payload, { format: 'pushcash' }).type).toBe('intent.approved');
      const id = await addEvent(k);
      const t0 = Date.now();
      await st.until(() => st.ids().includes(id), 1_000);
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(st.ids()).toEqual([...before.slice(1), id]);
    } finally {
      await st.close();
    }
  });

  it('resumes from Last-Event-ID (which wins over after): across a disconnect nothing is lost or repeated', async () => {
    const k = await newOperator(s, 'Resume Casino');
    for (let i = 0; i < 5; i++) await addEvent(k);
    const seen: string[] = [];
    // Writers keep adding events the whole time, connected or not.
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await addEvent(k);
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    try {
      let last: string | undefined;
      for (let round = 0; round < 3; round++) {
        const st = await openStream(s.url, k.sandbox, '?after=evt_ignored_when_the_header_is_there', last ? { 'last-event-id': last } : {});
        if (!last) {
          // the first connection has no header: a bad after is refused
          expect(st.res.status).toBe(400);
          await st.close();
          const fresh = await openStream(s.url, k.sandbox);
          await fresh.until(() => fresh.ids().length >= 8);
          await fresh.close();
          seen.push(...fresh.ids());
        } else {
          expect(st.res.status).toBe(200);
          const had = st.ids().length;
          await st.until(() => st.ids().length >= had + 6);
          await st.close();
          seen.push(...st.ids());
        }
        last = seen[seen.length - 1];
        await new Promise((r) => setTimeout(r, 100)); // disconnected while events are written
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(new Set(seen).size).toBe(seen.length);
    const all = await allIds(k);
    expect(seen).toEqual(all.slice(0, seen.length));
    expect(seen).toEqual((await readAll(client(s.url, k.sandbox), 500)).slice(0, seen.length));
  });

  it('filters by types and renders the payload version asked', async () => {
    const k = await newOperator(s, 'Stream Types Casino');
    await addEvent(k);
    const settled = await addEvent(k, 'sandbox', 'intent.settled', intentData('intent_s', 250));
    const st = await openStream(s.url, k.sandbox, '?types=intent.settled&payload_version=2023-01');
    try {
      await st.until(() => st.ids().length === 1);
      const again = await addEvent(k, 'sandbox', 'intent.settled', intentData('intent_t', 300));
      await addEvent(k);
      await st.until(() => st.ids().length === 2);
      expect(st.ids()).toEqual([settled, again]);
      const item = JSON.parse(st.events()[0]!.data!);
      expect(item.data).toMatchObject({ idempotency_key: 'tag-intent_s', amount: 2.5 });
      expect(parseEvent(item.payload, { format: 'pushcash' }).version).toBe('2023-01');
    } finally {
      await st.close();
    }
  });

  it('sends : ping comments while idle, and counts as one request of the read budget when it opens', async () => {
    const k = await newOperator(s, 'Ping Casino');
    const a = client(s.url, k.sandbox);
    const before = Number((await a.get('/events/feed')).headers.get('x-ratelimit-remaining'));
    process.env.CASHWIRE_STREAM_PING_MS = '50';
    const st = await openStream(s.url, k.sandbox);
    delete process.env.CASHWIRE_STREAM_PING_MS;
    try {
      await st.until(() => st.frames.filter((f) => f.comments.includes('ping')).length >= 3);
      expect(st.frames[0]!.comments).toEqual(['connected']);
    } finally {
      await st.close();
    }
    const after = Number((await a.get('/events/feed')).headers.get('x-ratelimit-remaining'));
    expect(before - after).toBe(2); // the stream, and this request
  });

  it('does not hold the server open: stop() returns with a stream open, and the stream ends', async () => {
    const t = await startTestServer();
    const k = await newOperator(t, 'Stop Casino');
    const st = await openStream(t.url, k.sandbox);
    await st.until(() => st.frames.length >= 1);
    const t0 = Date.now();
    const stopped = await Promise.race([t.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting'), 5_000))]);
    expect(stopped).toBe('stopped');
    expect(Date.now() - t0).toBeLessThan(3_000);
    const deadline = Date.now() + 2_000;
    while (!st.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(st.ended).toBe(true);
    await st.close();
  });
});
