import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, newOperator, newUser, startTestServer, type Api, type Keys, type TestServer } from './helpers.js';

let s: TestServer;
let op: Keys;
let api: Api;
let userId: string;
let url: string;

beforeAll(async () => {
  s = await startTestServer();
  op = await newOperator(s);
  api = client(s.url, op.sandbox);
  userId = await newUser(api);
  url = (s.running.database.url);
});
afterAll(() => s?.stop());

/** Counts backends of this database waiting on a lock: the requests held at the barrier. */
async function waitingOnLocks(admin: pg.Client): Promise<number> {
  // Activity statistics are snapshotted once per transaction: clear the snapshot to see the current state.
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await admin.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
  );
  return rows[0].n;
}

/**
 * A barrier: a session holds SHARE on intents, so the first request stops right after claiming its key (its
 * INSERT INTO intents waits), and the duplicate stops on the key's unique index behind it. Both are seen waiting
 * before the barrier opens, so the two requests really overlap.
 */
async function overlapped<T>(run: () => Promise<T>[]): Promise<T[]> {
  const barrier = new pg.Client({ connectionString: url });
  await barrier.connect();
  try {
    await barrier.query('BEGIN');
    await barrier.query('LOCK TABLE intents IN SHARE MODE');
    const pending = run();
    await expect.poll(() => waitingOnLocks(barrier), { timeout: 10_000, interval: 20 }).toBe(pending.length);
    await barrier.query('COMMIT');
    return await Promise.all(pending);
  } finally {
    await barrier.end();
  }
}

async function countIntents(key: string): Promise<number> {
  const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM intents WHERE idempotency_key = $1', [key]);
  return rows[0].n;
}

describe('X-Idempotency-Key on POST /intent', () => {
  const body = () => ({ direction: 'cash_in', user_id: userId, amount: 4200, currency: 'USD', tag: 'order-9' });

  it('returns the original response for a sequential duplicate', async () => {
    const a = await api.post('/intent', body(), { 'X-Idempotency-Key': 'seq-1' });
    const b = await api.post('/intent', body(), { 'X-Idempotency-Key': 'seq-1' });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(await countIntents('seq-1')).toBe(1);
  });

  it('treats the body by content, not key order', async () => {
    const a = await api.post('/intent', body(), { 'X-Idempotency-Key': 'order-insensitive' });
    const reordered = Object.fromEntries(Object.entries(body()).reverse());
    const b = await api.post('/intent', reordered, { 'X-Idempotency-Key': 'order-insensitive' });
    expect(b.body.id).toBe(a.body.id);
  });

  it('refuses the same key with a different body', async () => {
    await api.post('/intent', body(), { 'X-Idempotency-Key': 'seq-2' });
    const b = await api.post('/intent', { ...body(), amount: 4300 }, { 'X-Idempotency-Key': 'seq-2' });
    expect(b.status).toBe(422);
    expect(b.body.error).toMatchObject({ code: 'idempotency_key_reused', field: 'X-Idempotency-Key' });
    expect(await countIntents('seq-2')).toBe(1);
  });

  it('scopes keys to the operator and the environment', async () => {
    const other = await newOperator(s, 'Other');
    const otherApi = client(s.url, other.sandbox);
    const otherUser = await newUser(otherApi);
    const a = await api.post('/intent', body(), { 'X-Idempotency-Key': 'shared-key' });
    const b = await otherApi.post('/intent', { ...body(), user_id: otherUser }, { 'X-Idempotency-Key': 'shared-key' });
    expect(b.status).toBe(200);
    expect(b.body.id).not.toBe(a.body.id);
  });

  it('makes one intent when two duplicates really overlap: the second waits and gets the first response', async () => {
    const [a, b] = await overlapped(() => [
      api.post('/intent', body(), { 'X-Idempotency-Key': 'overlap-1' }),
      api.post('/intent', body(), { 'X-Idempotency-Key': 'overlap-1' }),
    ]);
    expect(a!.status).toBe(200);
    expect(b!.status).toBe(200);
    expect(b!.body.id).toBe(a!.body.id);
    expect(await countIntents('overlap-1')).toBe(1);
  });

  it('refuses an overlapping duplicate with another body once the first commits', async () => {
    const [a, b] = await overlapped(() => [
      api.post('/intent', body(), { 'X-Idempotency-Key': 'overlap-2' }),
      api.post('/intent', { ...body(), amount: 1 }, { 'X-Idempotency-Key': 'overlap-2' }),
    ]);
    const statuses = [a!.status, b!.status].sort();
    expect(statuses).toEqual([200, 422]);
    expect(await countIntents('overlap-2')).toBe(1);
  });

  it('five overlapping duplicates still make one intent', async () => {
    const results = await overlapped(() => Array.from({ length: 5 }, () => api.post('/intent', body(), { 'X-Idempotency-Key': 'overlap-5' })));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(await countIntents('overlap-5')).toBe(1);
  });

  it('keeps keys at least 24 hours, then lets them be used again', async () => {
    const a = await api.post('/intent', body(), { 'X-Idempotency-Key': 'ttl-1' });
    s.clock.advance(23 * 3600 * 1000);
    expect((await api.post('/intent', body(), { 'X-Idempotency-Key': 'ttl-1' })).body.id).toBe(a.body.id);
    s.clock.advance(2 * 3600 * 1000);
    const c = await api.post('/intent', body(), { 'X-Idempotency-Key': 'ttl-1' });
    expect(c.status).toBe(200);
    expect(c.body.id).not.toBe(a.body.id);
  });
});

describe('POST /authorize is idempotent by token', () => {
  it('answers a repeated token with the first answer, overlapping or not', async () => {
    const token = (await api.post('/token', { user_id: userId, type: 'card_only' })).body.token;
    expect(token).toMatch(/^token_/);
    const req = { amount: 3000, currency: 'USD', direction: 'cash_in', token };
    const [a, b] = await overlapped(() => [api.post('/authorize', req), api.post('/authorization', req)]);
    expect(a!.status).toBe(200);
    expect(b!.status).toBe(200);
    expect(b!.body.id).toBe(a!.body.id);
    const again = await api.post('/authorize', req);
    expect(again.body.id).toBe(a!.body.id);
    const { rows } = await s.running.deps.db.query('SELECT count(*)::int AS n FROM intents WHERE credential_id = $1 AND amount = 3000', [a!.body.credential.id]);
    expect(rows[0].n).toBe(1);
  });
});
