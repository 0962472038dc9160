import pg from 'pg';

export type Db = pg.Pool;
export type Tx = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient;

// bigint (int8) columns hold cents; they fit in a JS number far past any real amount.
pg.types.setTypeParser(20, (v) => Number(v));
// `date` columns as plain YYYY-MM-DD strings, never shifted by a time zone.
pg.types.setTypeParser(1082, (v) => v);

export function createPool(connectionString: string, max = 20): Db {
  // JIT off: Cashwire's statements are short, and the claim's cost estimates (a lane's backlog, unknown at planning)
  // crossed jit_above_cost, so each claim spent about 80 ms compiling code it then ran in under 2 ms.
  const pool = new pg.Pool({ connectionString, max, options: '-c jit=off' });
  // A client losing its connection (a PostgreSQL restart) must not crash the process: an idle one reports through the
  // pool, a checked-out one through its own 'error' event, which would be unhandled between two statements of a
  // transaction. The statement in flight, if any, fails on its own and the caller retries.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

type AfterCommit = (q: Queryable) => Promise<unknown>;
/** The open transactions of withTx, with what each runs once it has committed (by key: each runs once). */
const openTxs = new WeakMap<object, Map<string, AfterCommit>>();

/**
 * Runs `fn` once what `q` wrote is committed: after the COMMIT of the withTx transaction `q` belongs to (on the pool,
 * without making the transaction's caller wait for it), or at once when `q` runs statements on their own (each
 * commits as it ends). A failure of `fn` is ignored: it is a hint to others (a wake-up), never part of the write.
 */
export function afterCommit(q: Queryable, key: string, fn: AfterCommit): void {
  const pending = openTxs.get(q);
  if (pending) pending.set(key, fn);
  else void fn(q).catch(() => {});
}

/** Runs `fn` in a transaction; rolls back on any error. What afterCommit registered runs after the COMMIT. */
export async function withTx<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await db.connect();
  const after = new Map<string, AfterCommit>();
  try {
    await client.query('BEGIN');
    openTxs.set(client, after);
    const result = await fn(client);
    await client.query('COMMIT');
    openTxs.delete(client);
    for (const f of after.values()) void f(db).catch(() => {});
    return result;
  } catch (err) {
    openTxs.delete(client);
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
