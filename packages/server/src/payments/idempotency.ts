import { createHash } from 'node:crypto';
import { errors } from '../domain/errors.js';
import { withTx, type Tx } from '../db/pool.js';
import type { Caller, Deps } from './context.js';

export interface Outcome<T = unknown> {
  statusCode: number;
  body: T;
}

/** Keys are kept at least this long; a key past it may be used again. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

/** Hash of the request body with object keys sorted, so key order does not matter. */
export function requestHash(body: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
        : v;
  return createHash('sha256').update(JSON.stringify(canon(body ?? null))).digest('hex');
}

/**
 * Runs `work` once per (operator, environment, scope, key). The key row is inserted in the same transaction as
 * the work, so a duplicate that arrives while the first request runs blocks on the unique index until the first
 * commits, then reads its stored response: one object exists either way. If the first fails, nothing of it
 * remains and the duplicate runs instead.
 */
export async function idempotent<T>(
  deps: Deps,
  caller: Caller,
  scope: string,
  key: string | undefined,
  body: unknown,
  work: (tx: Tx) => Promise<Outcome<T>>,
): Promise<Outcome<T> & { replayed: boolean }> {
  if (key === undefined) return { ...(await withTx(deps.db, work)), replayed: false };
  if (key.length === 0 || key.length > 255) throw errors.validation('X-Idempotency-Key', 'X-Idempotency-Key must be 1 to 255 characters', 'invalid_idempotency_key');
  const hash = requestHash(body);
  const now = deps.clock.now();
  const first = await withTx(deps.db, async (tx) => {
    const claimed = await tx.query(
      `INSERT INTO idempotency_keys (operator_id, environment, scope, key, request_hash, status_code, response, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, 0, 'null'::jsonb, $6, $7)
       ON CONFLICT (operator_id, environment, scope, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at < $6
       RETURNING 1`,
      [caller.operatorId, caller.environment, scope, key, hash, now, new Date(now.getTime() + IDEMPOTENCY_TTL_MS)],
    );
    if (claimed.rowCount === 0) return undefined;
    const outcome = await work(tx);
    await tx.query(
      `UPDATE idempotency_keys SET status_code = $5, response = $6::jsonb
        WHERE operator_id = $1 AND environment = $2 AND scope = $3 AND key = $4`,
      [caller.operatorId, caller.environment, scope, key, outcome.statusCode, JSON.stringify(outcome.body)],
    );
    return outcome;
  });
  if (first) return { ...first, replayed: false };
  const { rows } = await deps.db.query<{ request_hash: string; status_code: number; response: T }>(
    `SELECT request_hash, status_code, response FROM idempotency_keys
      WHERE operator_id = $1 AND environment = $2 AND scope = $3 AND key = $4`,
    [caller.operatorId, caller.environment, scope, key],
  );
  const row = rows[0];
  if (!row) throw errors.conflict('idempotency_conflict', 'a request with this X-Idempotency-Key is being processed; retry');
  if (row.request_hash !== hash) throw errors.idempotencyMismatch();
  return { statusCode: row.status_code, body: row.response, replayed: true };
}

/**
 * The one-statement form of `idempotent` for a write whose response is known before it runs (an insert of an object
 * built in memory). Without a key: the insert alone, in autocommit. With a key: the key row (holding the response)
 * and the insert go in one statement, the insert only if the key was claimed; a duplicate reads the stored response,
 * waiting on the key's unique index while the first statement commits. `insert(first)` gives the insert as
 * `INSERT ... SELECT <values>` with its parameters numbered from `first`; a WHERE is appended.
 */
export async function insertOnce<T>(
  deps: Deps,
  caller: Caller,
  scope: string,
  key: string | undefined,
  body: unknown,
  outcome: Outcome<T>,
  insert: (first: number) => { name: string; text: string; values: unknown[] },
): Promise<Outcome<T> & { replayed: boolean }> {
  if (key === undefined) {
    const q = insert(1);
    await deps.db.query({ name: q.name, text: q.text, values: q.values });
    return { ...outcome, replayed: false };
  }
  if (key.length === 0 || key.length > 255) throw errors.validation('X-Idempotency-Key', 'X-Idempotency-Key must be 1 to 255 characters', 'invalid_idempotency_key');
  const hash = requestHash(body);
  const now = deps.clock.now();
  const q = insert(10);
  const r = await deps.db.query({
    name: `${q.name}_once`,
    text: `WITH idem AS (
             INSERT INTO idempotency_keys (operator_id, environment, scope, key, request_hash, status_code, response, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
             ON CONFLICT (operator_id, environment, scope, key) DO UPDATE
               SET request_hash = EXCLUDED.request_hash, status_code = EXCLUDED.status_code, response = EXCLUDED.response,
                   created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
               WHERE idempotency_keys.expires_at < $8
             RETURNING 1
           )
           ${q.text} WHERE EXISTS (SELECT 1 FROM idem)`,
    values: [caller.operatorId, caller.environment, scope, key, hash, outcome.statusCode, JSON.stringify(outcome.body), now,
      new Date(now.getTime() + IDEMPOTENCY_TTL_MS), ...q.values],
  });
  if (r.rowCount === 1) return { ...outcome, replayed: false };
  const { rows } = await deps.db.query<{ request_hash: string; status_code: number; response: T }>(
    `SELECT request_hash, status_code, response FROM idempotency_keys WHERE operator_id = $1 AND environment = $2 AND scope = $3 AND key = $4`,
    [caller.operatorId, caller.environment, scope, key],
  );
  const row = rows[0];
  if (!row) throw errors.conflict('idempotency_conflict', 'a request with this X-Idempotency-Key is being processed; retry');
  if (row.request_hash !== hash) throw errors.idempotencyMismatch();
  return { statusCode: row.status_code, body: row.response, replayed: true };
}
