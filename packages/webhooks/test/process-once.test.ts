/**
 * Process-once against the machine's PostgreSQL (a database of its own, dropped afterwards), and the in-memory store.
 * The merchant's table and update are the README's example: the event id and the status move commit together.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PROCESSED_EVENTS_TABLE, fetchHandler, memoryStore, nextStatus, postgresStore, setupSql, statusOf, tagOf, type SqlClient, type TransactionStatus,
  type WebhookEvent,
} from '../src/index.js';
import { SECRET, T0, approved, settled, signedRequest } from './fixtures.js';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `cw_sdk_${randomBytes(6).toString('hex')}`;
let pool: pg.Pool;

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  pool = new pg.Pool({ connectionString: url.toString(), max: 6 });
  pool.on('error', () => {}); // an idle connection cut by the DROP ... WITH (FORCE) at the end
  await pool.query('CREATE TABLE transactions (tag text PRIMARY KEY, status text NOT NULL, credited_cents int NOT NULL DEFAULT 0)');
});

afterAll(async () => {
  await pool?.end();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

/** The merchant's update: move the status forward; credit the user on the first approval. */
async function apply(tx: SqlClient, event: WebhookEvent): Promise<TransactionStatus> {
  if (event.type !== 'intent.approved' && event.type !== 'intent.settled') throw new Error(`unexpected ${event.type}`);
  const { rows } = (await tx.query('SELECT status FROM transactions WHERE tag = $1 FOR UPDATE', [tagOf(event)])) as unknown as { rows: { status: TransactionStatus }[] };
  const next = nextStatus(rows[0]!.status, statusOf(event)!);
  const credit = rows[0]!.status !== 'approved' && next === 'approved' ? event.data.amount : 0;
  await tx.query('UPDATE transactions SET status = $2, credited_cents = credited_cents + $3 WHERE tag = $1', [tagOf(event), next, credit]);
  return next;
}

async function row(tag: string) {
  return (await pool.query('SELECT status, credited_cents FROM transactions WHERE tag = $1', [tag])).rows[0];
}
async function recorded(id: string): Promise<boolean> {
  return (await pool.query(`SELECT 1 FROM ${PROCESSED_EVENTS_TABLE} WHERE event_id = $1`, [id])).rowCount === 1;
}
function eventFor(tag: string, type: 'intent.approved' | 'intent.settled' = 'intent.approved'): WebhookEvent {
  return { id: `${type}:${tag}`, format: 'standard', timestamp: T0, type, version: '2024-05', data: { id: `intent_${tag}`, tag, direction: 'cash_in', amount: 5000, status: 'approved', currency: 'USD', type: 'push' } } as WebhookEvent;
}

describe('postgresStore', () => {
  it('creates its table on demand, applies the update once, and a duplicate changes nothing', async () => {
    await pool.query("INSERT INTO transactions (tag, status) VALUES ('t1', 'created')");
    const store = postgresStore(() => pool.connect());
    const e = eventFor('t1');
    expect(await store.once(e.id, (tx) => apply(tx, e))).toEqual({ duplicate: false, result: 'approved' });
    expect(await row('t1')).toEqual({ status: 'approved', credited_cents: 5000 });
    expect(await store.once(e.id, (tx) => apply(tx, e))).toEqual({ duplicate: true });
    expect(await postgresStore(() => pool.connect()).once(e.id, () => expect.unreachable())).toEqual({ duplicate: true }); // another store, same table
    expect(await row('t1')).toEqual({ status: 'approved', credited_cents: 5000 });
    const cols = await pool.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [PROCESSED_EVENTS_TABLE]);
    expect(cols.rows).toEqual([{ column_name: 'event_id', data_type: 'text' }, { column_name: 'processed_at', data_type: 'timestamp with time zone' }]);
  });

  it('a handler error rolls back both the update and the event-id record, so the redelivery is processed', async () => {
    await pool.query("INSERT INTO transactions (tag, status) VALUES ('t2', 'created')");
    const store = postgresStore(() => pool.connect());
    const e = eventFor('t2');
    await expect(store.once(e.id, async (tx) => {
      await apply(tx, e);
      throw new Error('the ledger service timed out');
    })).rejects.toThrow('the ledger service timed out');
    expect(await recorded(e.id)).toBe(false);
    expect(await row('t2')).toEqual({ status: 'created', credited_cents: 0 });
    expect(await store.once(e.id, (tx) => apply(tx, e))).toEqual({ duplicate: false, result: 'approved' });
    expect(await recorded(e.id)).toBe(true);
    expect(await row('t2')).toEqual({ status: 'approved', credited_cents: 5000 });
  });

  it('a statement error swallowed inside the handler is not taken for success (PostgreSQL turns that COMMIT into a ROLLBACK)', async () => {
    await pool.query("INSERT INTO transactions (tag, status) VALUES ('t6', 'created')");
    const store = postgresStore(() => pool.connect());
    const e = eventFor('t6');
    await expect(store.once(e.id, async (tx) => {
      await apply(tx, e);
      await tx.query('SELECT no_such_column FROM transactions').catch(() => 'ignored');
    })).rejects.toThrow(/was not processed/);
    expect(await recorded(e.id)).toBe(false);
    expect(await row('t6')).toEqual({ status: 'created', credited_cents: 0 });
  });

  it('concurrent deliveries of one event: exactly one applies (the other waits on the row lock)', async () => {
    await pool.query("INSERT INTO transactions (tag, status) VALUES ('t3', 'created')");
    const store = postgresStore(() => pool.connect());
    const e = eventFor('t3');
    const results = await Promise.all(Array.from({ length: 5 }, () => store.once(e.id, (tx) => apply(tx, e))));
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await row('t3')).toEqual({ status: 'approved', credited_cents: 5000 });
  });

  it('on one client, events run one after another (a connection holds one transaction at a time)', async () => {
    const client = await pool.connect();
    try {
      const store = postgresStore(client, { createTable: false });
      await client.query(setupSql); // as a merchant's migration would
      await pool.query("INSERT INTO transactions (tag, status) VALUES ('t4', 'created'), ('t5', 'created')");
      const [a, b, c] = await Promise.all([
        store.once('e4', (tx) => apply(tx, eventFor('t4'))),
        store.once('e5', async () => Promise.reject(new Error('boom'))).catch((err: Error) => err.message),
        store.once('e6', (tx) => apply(tx, eventFor('t5', 'intent.settled'))),
      ]);
      expect([a, b, c]).toEqual([{ duplicate: false, result: 'approved' }, 'boom', { duplicate: false, result: 'settled' }]);
      expect(await recorded('e5')).toBe(false);
      expect(await row('t5')).toEqual({ status: 'settled', credited_cents: 0 });
    } finally {
      client.release();
    }
  });

  it('behind an adapter: the redirect got there first, the webhook and its redelivery change nothing more', async () => {
    await pool.query("INSERT INTO transactions (tag, status) VALUES ('txn_12345', 'approved')"); // the redirect already approved it
    const handler = fetchHandler({ format: 'pushcash', secrets: SECRET, now: () => T0, store: postgresStore(() => pool.connect()), onEvent: (e, tx) => apply(tx, e) });
    const post = async (r: { body: string; headers: Record<string, string> }) => (await handler(new Request('http://m/wh', { method: 'POST', ...r }))).json();
    const ap = await signedRequest('pushcash', approved);
    expect(await post(ap)).toEqual({ received: true });
    expect(await post(ap)).toEqual({ received: true, duplicate: true });
    expect(await row('txn_12345')).toEqual({ status: 'approved', credited_cents: 0 });
    expect(await post(await signedRequest('pushcash', settled))).toEqual({ received: true });
    expect(await row('txn_12345')).toEqual({ status: 'settled', credited_cents: 0 });
  });
});

describe('memoryStore', () => {
  it('runs once, records only on success, and serialises concurrent calls for one id', async () => {
    const store = memoryStore();
    let calls = 0;
    await expect(store.once('a', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(store.processed.has('a')).toBe(false);
    const results = await Promise.all([1, 2, 3].map(() => store.once('a', async () => ++calls)));
    expect(results).toEqual([{ duplicate: false, result: 1 }, { duplicate: true }, { duplicate: true }]);
    expect(calls).toBe(1);
  });
});
