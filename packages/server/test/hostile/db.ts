/**
 * What the database holds, for the campaign's "a rejected request writes nothing" and "another tenant's data is
 * untouched" checks: exact row counts (count(*), never the statistics' n_live_tup) and a digest of one operator's rows.
 */
import type { Queryable } from '../../src/db/pool.js';

/**
 * Tables whose rows a rejected request may legitimately change:
 * - rate_counters: authentication counts every request, answered or refused, before anything else runs;
 * - schema_migrations: not the API's.
 * idempotency_keys is counted: its key row is written in the same transaction as the work (payments/idempotency.ts),
 * so a request that fails leaves none; and no error outcome is ever stored under a key.
 */
export const NOT_COUNTED = new Set(['rate_counters', 'schema_migrations']);

export interface Counter {
  tables: string[];
  counts(): Promise<Record<string, number>>;
}

export async function rowCounter(db: Queryable): Promise<Counter> {
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
  );
  const tables = rows.map((r) => r.table_name).filter((t) => !NOT_COUNTED.has(t));
  if (tables.length === 0) throw new Error('no tables found in schema public');
  const sql = `SELECT ${tables.map((t, i) => `(SELECT count(*) FROM public."${t}")::int AS c${i}`).join(', ')}`;
  return {
    tables,
    async counts() {
      const r = (await db.query<Record<string, number>>(sql)).rows[0]!;
      return Object.fromEntries(tables.map((t, i) => [t, r[`c${i}`]!]));
    },
  };
}

export function diffCounts(before: Record<string, number>, after: Record<string, number>): string[] {
  return Object.keys(after).filter((t) => before[t] !== after[t]).map((t) => `${t} ${before[t]} -> ${after[t]}`);
}

/** Every row an operator owns (each table with an operator_id column, and its operators row), as one digest. */
export async function tenantDigest(db: Queryable, operatorId: string): Promise<Record<string, string>> {
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'operator_id' ORDER BY table_name`,
  );
  const tables = rows.map((r) => r.table_name).filter((t) => !NOT_COUNTED.has(t));
  const parts = [
    `SELECT 'operators' AS t, md5(coalesce(string_agg(row_to_json(x)::text, '|' ORDER BY row_to_json(x)::text), '')) AS d FROM public.operators x WHERE x.id = $1`,
    ...tables.map((t) => `SELECT '${t}', md5(coalesce(string_agg(row_to_json(x)::text, '|' ORDER BY row_to_json(x)::text), '')) FROM public."${t}" x WHERE x.operator_id = $1`),
  ];
  const r = await db.query<{ t: string; d: string }>(parts.join(' UNION ALL '), [operatorId]);
  return Object.fromEntries(r.rows.map((x) => [x.t, x.d]));
}
