/**
 * The merchant's own records, in its own PostgreSQL database: players, transactions, the balance, and the webhook
 * SDK's processed-events table. Cashwire is told about a transaction only after its row is committed here.
 */
import { nextStatus, setupSql } from '@cashwire/webhooks';

/** Applied in order, once each, on start. */
const MIGRATIONS = [
  `CREATE TABLE players (
     id               text PRIMARY KEY,
     name             text NOT NULL,
     cashwire_user_id text UNIQUE,
     balance_cents    bigint NOT NULL DEFAULT 0,
     created_at       timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE transactions (
     id               text PRIMARY KEY,            -- our transaction id: the X-Idempotency-Key and the tag
     player_id        text NOT NULL REFERENCES players (id),
     direction        text NOT NULL CHECK (direction IN ('deposit', 'withdrawal')),
     amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
     status           text NOT NULL DEFAULT 'created',
     decline_category text,
     status_source    text,                        -- what last moved the status: 'redirect' or 'webhook'
     intent_id        text UNIQUE,
     created_at       timestamptz NOT NULL DEFAULT now(),
     updated_at       timestamptz NOT NULL DEFAULT now()
   );
   CREATE INDEX transactions_by_player ON transactions (player_id, created_at DESC);`,
  // The SDK's table (cashwire_processed_events): owned by our migrations, so postgresStore gets createTable: false.
  setupSql,
];

/** @typedef {import('pg').Pool} Pool */
/** @typedef {import('pg').PoolClient} PoolClient */
/** @typedef {import('@cashwire/webhooks').TransactionStatus} TransactionStatus */

/**
 * @typedef {object} Transaction
 * @property {string} id
 * @property {string} player_id
 * @property {'deposit' | 'withdrawal'} direction
 * @property {number} amount_cents
 * @property {TransactionStatus} status
 * @property {string | null} decline_category
 * @property {string | null} status_source
 * @property {string | null} intent_id
 * @property {Date} created_at
 */

/** @param {Pool} pool */
export async function migrate(pool) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // One migrator at a time, even with several merchant processes starting together.
    await client.query('SELECT pg_advisory_xact_lock(7214637)');
    await client.query('CREATE TABLE IF NOT EXISTS merchant_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query('SELECT coalesce(max(version), 0) AS v FROM merchant_migrations');
    for (let v = rows[0].v + 1; v <= MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v - 1]);
      await client.query('INSERT INTO merchant_migrations (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Runs `fn` in one database transaction.
 * @template T
 * @param {Pool} pool
 * @param {(tx: PoolClient) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function inTransaction(pool, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** @param {any} row @returns {Transaction} */
export function toTransaction(row) {
  return { ...row, amount_cents: Number(row.amount_cents) };
}

/** Statuses whose money has moved: the balance counts them. */
const MONEY_MOVED = new Set(['approved', 'settled']);

/**
 * Moves a transaction's status forward with the SDK's reducer and, when it first reaches approved (or settled),
 * credits a deposit or debits a withdrawal. The redirect and each webhook call this, in any order and any number
 * of times: the row lock serialises them, `nextStatus` ignores repeats and late arrivals, and the balance changes
 * on exactly one transition.
 *
 * The intent must match the record: same intent (once we know its id) and same amount, else nothing changes.
 * @param {PoolClient} tx inside a transaction
 * @param {{ transactionId: string, intentId: string, amountCents: number, status: TransactionStatus,
 *   declineCategory?: string | null, source: 'redirect' | 'webhook' }} update
 * @returns {Promise<Transaction | null>} the transaction after the update; null if it is not ours (or does not match)
 */
export async function applyStatus(tx, { transactionId, intentId, amountCents, status, declineCategory, source }) {
  const { rows } = await tx.query('SELECT * FROM transactions WHERE id = $1 FOR UPDATE', [transactionId]);
  if (!rows[0]) return null;
  const t = toTransaction(rows[0]);
  if ((t.intent_id !== null && t.intent_id !== intentId) || t.amount_cents !== amountCents) {
    console.warn('[merchant] intent does not match transaction', transactionId, { intentId, amountCents });
    return null;
  }
  const next = nextStatus(t.status, status);
  if (next === t.status) return t;
  await tx.query(
    `UPDATE transactions SET status = $2, decline_category = $3, status_source = $4, intent_id = coalesce(intent_id, $5), updated_at = now()
      WHERE id = $1`,
    [t.id, next, next === 'declined' ? (declineCategory ?? null) : null, source, intentId ?? null],
  );
  if (!MONEY_MOVED.has(t.status) && MONEY_MOVED.has(next)) {
    const delta = t.direction === 'deposit' ? t.amount_cents : -t.amount_cents;
    await tx.query('UPDATE players SET balance_cents = balance_cents + $2 WHERE id = $1', [t.player_id, delta]);
  }
  return { ...t, status: next, status_source: source, decline_category: next === 'declined' ? (declineCategory ?? null) : null };
}

/**
 * The cashier's view of a player.
 * @param {Pool} pool
 * @param {string} playerId
 */
export async function playerView(pool, playerId) {
  const p = await pool.query('SELECT id, name, balance_cents FROM players WHERE id = $1', [playerId]);
  if (!p.rows[0]) return null;
  const t = await pool.query('SELECT * FROM transactions WHERE player_id = $1 ORDER BY created_at DESC LIMIT 20', [playerId]);
  const transactions = t.rows.map(toTransaction);
  return {
    id: /** @type {string} */ (p.rows[0].id),
    name: /** @type {string} */ (p.rows[0].name),
    balanceCents: Number(p.rows[0].balance_cents),
    /** Withdrawals open once a deposit has gone through (Push Cash's rule). */
    hasDeposited: (await pool.query(
      `SELECT 1 FROM transactions WHERE player_id = $1 AND direction = 'deposit' AND status IN ('approved', 'settled') LIMIT 1`, [playerId],
    )).rowCount === 1,
    transactions,
  };
}
