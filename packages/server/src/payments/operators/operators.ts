import { createHash, randomBytes } from 'node:crypto';
import type { Clock, IdGenerator } from '../../clock.js';
import type { Db } from '../../db/pool.js';
import type { Environment } from '../../domain/decision.js';
import type { OperatorSettings } from '../../store/rows.js';
import { createDefaultAccounts } from '../accounts/accounts.js';

export function hashKey(raw: string): Buffer {
  return createHash('sha256').update(raw).digest();
}

export function newRawKey(env: Environment): string {
  return `sk_${env}_${randomBytes(24).toString('base64url')}`;
}

interface Ctx { db: Db; clock: Clock; ids: IdGenerator }

export async function createOperator(ctx: Ctx, name: string, settings: OperatorSettings = {}) {
  const id = ctx.ids.next('op_');
  await ctx.db.query('INSERT INTO operators (id, name, settings, created_at) VALUES ($1, $2, $3, $4)', [id, name, JSON.stringify(settings), ctx.clock.now()]);
  await createDefaultAccounts(ctx.db, id);
  const sandbox = await createKey(ctx, id, 'sandbox', 'default');
  const production = await createKey(ctx, id, 'production', 'default');
  return { id, name, sandbox_key: sandbox.key, production_key: production.key };
}

/** Stores only the hash: the key is shown once, here. `raw` fixes the key (CASHWIRE_SANDBOX_API_KEY). */
export async function createKey(ctx: Ctx, operatorId: string, environment: Environment, name: string | null, raw = newRawKey(environment)) {
  const id = ctx.ids.next('key_');
  await ctx.db.query(
    'INSERT INTO api_keys (id, operator_id, environment, key_hash, prefix, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [id, operatorId, environment, hashKey(raw), raw.slice(0, 16), name, ctx.clock.now()],
  );
  return { id, operator_id: operatorId, environment, name, key: raw };
}

export async function listKeys(ctx: Ctx, operatorId: string) {
  const { rows } = await ctx.db.query(
    'SELECT id, environment, name, prefix, created_at, revoked_at FROM api_keys WHERE operator_id = $1 ORDER BY created_at',
    [operatorId],
  );
  return rows;
}

export async function revokeKey(ctx: Ctx, keyId: string): Promise<boolean> {
  const r = await ctx.db.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [keyId, ctx.clock.now()]);
  return r.rowCount === 1;
}

export async function updateSettings(ctx: Ctx, operatorId: string, patch: OperatorSettings) {
  const { rows } = await ctx.db.query<{ settings: OperatorSettings }>(
    'UPDATE operators SET settings = settings || $2::jsonb WHERE id = $1 RETURNING settings',
    [operatorId, JSON.stringify(patch)],
  );
  return rows[0]?.settings;
}

/**
 * The first start: one sandbox operator. With `fixedKey` (CASHWIRE_SANDBOX_API_KEY) that key works from then on,
 * whether the operator is new or not. Returns the key to print when one was created.
 */
export async function ensureSandboxOperator(ctx: Ctx, fixedKey?: string): Promise<{ operatorId: string; key?: string; created: boolean }> {
  const existing = await ctx.db.query<{ id: string }>('SELECT id FROM operators ORDER BY created_at LIMIT 1');
  if (existing.rows[0]) {
    const operatorId = existing.rows[0].id;
    if (fixedKey) {
      const has = await ctx.db.query('SELECT 1 FROM api_keys WHERE key_hash = $1', [hashKey(fixedKey)]);
      if (has.rowCount === 0) await createKey(ctx, operatorId, 'sandbox', 'CASHWIRE_SANDBOX_API_KEY', fixedKey);
    }
    return { operatorId, key: fixedKey, created: false };
  }
  const id = ctx.ids.next('op_');
  await ctx.db.query('INSERT INTO operators (id, name, settings, created_at) VALUES ($1, $2, $3, $4)', [id, 'Sandbox Operator', '{}', ctx.clock.now()]);
  await createDefaultAccounts(ctx.db, id);
  const key = await createKey(ctx, id, 'sandbox', 'first start', fixedKey ?? newRawKey('sandbox'));
  return { operatorId: id, key: key.key, created: true };
}
