import pg from 'pg';

export type Db = pg.Pool;
export type Tx = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient;

// bigint (int8) columns hold cents; they fit in a JS number far past any real amount.
pg.types.setTypeParser(20, (v) => Number(v));
// `date` columns as plain YYYY-MM-DD strings, never shifted by a time zone.
pg.types.setTypeParser(1082, (v) => v);

export function createPool(connectionString: string, max = 20): Db {
  const pool = new pg.Pool({ connectionString, max });
  // A client losing its connection (a PostgreSQL restart) must not crash the process: an idle one reports through the
  // pool, a checked-out one through its own 'error' event, which would be unhandled between two statements of a
  // transaction. The statement in flight, if any, fails on its own and the caller retries.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Runs `fn` in a transaction; rolls back on any error. */
export async function withTx<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
