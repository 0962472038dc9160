/**
 * Process each event once: record its id and apply the merchant's update in the same database transaction, so a
 * redelivery finds the id and changes nothing, and a failed update leaves no record and is retried.
 */

/** The part of `pg.Client` / `pg.PoolClient` used here. */
export interface SqlClient {
  query(text: string, params?: unknown[]): Promise<{ rowCount?: number | null; command?: string }>;
}


export type OnceResult<T> = { duplicate: false; result: T } | { duplicate: true };

export interface ProcessedEventStore<Tx> {
  /** Runs `apply` unless `eventId` was processed before; `apply` gets the transaction to write in. */
  once<T>(eventId: string, apply: (tx: Tx) => Promise<T> | T): Promise<OnceResult<T>>;
}

export const PROCESSED_EVENTS_TABLE = 'cashwire_processed_events';

/** Run it with your migrations and pass `createTable: false`, or let the store run it on first use. */
export const setupSql = `CREATE TABLE IF NOT EXISTS ${PROCESSED_EVENTS_TABLE} (
  event_id text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
)`;

export interface PostgresStoreOptions {
  /** Run `setupSql` before the first event. Default true. */
  createTable?: boolean;
}

/**
 * A store in the merchant's PostgreSQL. Give it a function that checks out a connection (`() => pool.connect()`):
 * each event gets its own, released afterwards (`release()`, when it has one). Or give it one client: events then
 * run one after another on it, since two transactions cannot share a connection.
 *
 * A concurrent duplicate waits on the first one's row lock: it sees a duplicate if the first commits, and runs if
 * the first rolls back.
 */
export function postgresStore<C extends SqlClient>(db: C | (() => Promise<C>), options: PostgresStoreOptions = {}): ProcessedEventStore<C> {
  let ready: Promise<void> | null = options.createTable === false ? Promise.resolve() : null;
  let tail: Promise<unknown> = Promise.resolve(); // serialises work on a single client

  async function setup(client: SqlClient): Promise<void> {
    try {
      await client.query(setupSql);
    } catch (err) {
      // Two processes creating the table at once: one loses the race on the catalog, and the table exists.
      if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P07') throw err;
    }
  }

  async function inTransaction<T>(
    client: C,
    eventId: string,
    apply: (tx: C) => Promise<T> | T,
    conn: { broken?: Error } = {},
  ): Promise<OnceResult<T>> {
    if (!ready) ready = setup(client).catch((err) => ((ready = null), Promise.reject(err)));
    await ready;
    await client.query('BEGIN');
    try {
      const ins = await client.query(`INSERT INTO ${PROCESSED_EVENTS_TABLE} (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, [eventId]);
      if (ins.rowCount === 0) {
        await client.query('COMMIT');
        return { duplicate: true };
      }
      const result = await apply(client);
      const commit = await client.query('COMMIT');
      // PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, silently: a statement inside `apply` failed
      // and its error was swallowed. Nothing was saved, the event id included, so this must not look like success.
      if (commit.command === 'ROLLBACK') throw new Error(`Event ${eventId} was not processed: a statement in the handler failed and the transaction was rolled back`);
      return { duplicate: false, result };
    } catch (err) {
      // The original error is the one worth reporting; a failed ROLLBACK only marks the connection as broken.
      await client.query('ROLLBACK').catch((e: Error) => (conn.broken = e));
      throw err;
    }
  }

  return {
    async once(eventId, apply) {
      if (typeof db === 'function') {
        const client = await db();
        const conn: { broken?: Error } = {};
        try {
          return await inTransaction(client, eventId, apply, conn);
        } finally {
          // Back to the pool; given an error, pg discards the connection instead.
          (client as { release?(err?: Error): void }).release?.(conn.broken);
        }
      }
      const run = tail.then(() => inTransaction(db, eventId, apply));
      tail = run.catch(() => undefined);
      return run;
    },
  };
}

/**
 * An in-memory store for tests and single-process prototypes. `apply` gets no transaction (`undefined`); the id is
 * recorded only after `apply` succeeds, and concurrent calls with one id run one after another.
 */
export function memoryStore(): ProcessedEventStore<undefined> & { readonly processed: ReadonlySet<string> } {
  const processed = new Set<string>();
  const running = new Map<string, Promise<unknown>>();
  return {
    processed,
    async once(eventId, apply) {
      while (running.has(eventId)) await running.get(eventId)!.catch(() => undefined);
      if (processed.has(eventId)) return { duplicate: true };
      const run = (async () => apply(undefined))();
      running.set(eventId, run);
      try {
        const result = await run;
        processed.add(eventId);
        return { duplicate: false, result };
      } finally {
        running.delete(eventId);
      }
    },
  };
}
