import { errors } from '../../domain/errors.js';
import { DEFAULT_LIMITS, type Limits } from '../../domain/decision.js';
import { checkKyc, e164Phone, type KycInput } from '../../domain/kyc.js';
import type { Queryable, Tx } from '../../db/pool.js';
import type { Caller, Deps } from '../context.js';
import { idempotent } from '../idempotency.js';
import { credentialsOf, paymentCredential } from '../native/native.js';
import { page, pageFilter } from '../pagination.js';
import type { OperatorSettings, StoredCredentialRow } from '../../store/rows.js';

export interface CreateUserInput extends KycInput {
  name: { first: string; last: string };
  address: { address_line_1: string; address_line_2?: string; locality: string; administrative_area: string; postal_code: string; country: string };
  tag?: string;
}

export interface UserRow {
  id: string;
  tag: string | null;
  status: string;
  daily_limit: number;
  /** The limit request whose decision set `daily_limit`; null: the operator's limits apply. */
  daily_limit_request_id: string | null;
  data: CreateUserInput;
  created_at: Date;
}

const USER_COLUMNS = 'id, tag, status, daily_limit, daily_limit_request_id, data, created_at';

export function publicUser(u: UserRow, settings: OperatorSettings, credentials: StoredCredentialRow[] = []) {
  const { tag: _tag, ...kyc } = u.data;
  return {
    id: u.id, tag: u.tag, ...kyc, status: u.status, payment_credentials: credentials.map(paymentCredential),
    limits: { daily_limit: limitsFor(settings, u).daily_cash_in, currency: 'USD' }, created_at: u.created_at.toISOString(),
  };
}

export function userLimits(caller: Caller) {
  return { ...DEFAULT_LIMITS, ...(caller.settings.limits ?? {}) };
}

/**
 * The limits in force for one user: the operator's (settings `limits`, else the defaults), except that a daily limit
 * set by a limit request's decision is the user's daily limit in both directions. Monthly limits stay the operator's.
 */
export function limitsFor(settings: OperatorSettings, user: Pick<UserRow, 'daily_limit' | 'daily_limit_request_id'> | undefined): Limits {
  const limits = userLimits({ settings } as Caller);
  if (!user?.daily_limit_request_id) return limits;
  return { ...limits, daily_cash_in: user.daily_limit, daily_cash_out: user.daily_limit };
}

/** The user's row, locked: decisions, limit requests and updates of one user happen one after another. */
export async function lockUser(tx: Tx, tenant: { operator_id: string; environment: string }, id: string): Promise<UserRow | undefined> {
  const { rows } = await tx.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE operator_id = $1 AND environment = $2 AND id = $3 FOR UPDATE`,
    [tenant.operator_id, tenant.environment, id],
  );
  return rows[0];
}

/** The fields of PATCH /user/{id} that change the user's own record; each replaces the stored one. */
export interface UserKycPatch {
  email?: string;
  phone_number?: string;
  address?: CreateUserInput['address'];
}

/**
 * Applies a PATCH's KYC fields to a locked user: merged into the record, which then passes the same rules as
 * POST /user (domain/kyc.ts), the phone number stored as E.164. Returns the row as written.
 */
export async function updateUserKyc(deps: Deps, tx: Tx, caller: Caller, u: UserRow, patch: UserKycPatch): Promise<UserRow> {
  const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as UserKycPatch;
  if (Object.keys(set).length === 0) return u;
  const merged: CreateUserInput = { ...u.data, ...set };
  const problem = checkKyc(merged, deps.clock.now());
  if (problem) throw errors.validation(problem.field, problem.message, problem.code);
  if (set.phone_number !== undefined) merged.phone_number = e164Phone(set.phone_number)!;
  const { rows } = await tx.query<UserRow>(
    `UPDATE users SET data = $4 WHERE operator_id = $1 AND environment = $2 AND id = $3 RETURNING ${USER_COLUMNS}`,
    [caller.operatorId, caller.environment, u.id, JSON.stringify(merged)],
  );
  return rows[0]!;
}

/** The user as GET /user/{id} answers it. */
export async function renderUser(q: Queryable, caller: Caller, u: UserRow) {
  return publicUser(u, caller.settings, await credentialsOf(q, { operator_id: caller.operatorId, environment: caller.environment, user_id: u.id }));
}

async function byTag(q: Queryable, caller: Caller, tag: string): Promise<UserRow | undefined> {
  const { rows } = await q.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE operator_id = $1 AND environment = $2 AND tag = $3`,
    [caller.operatorId, caller.environment, tag],
  );
  return rows[0];
}

/** POST /user: idempotent by `tag` (same tag, same user) and by X-Idempotency-Key. */
export async function createUser(deps: Deps, caller: Caller, input: CreateUserInput, idemKey: string | undefined) {
  const problem = checkKyc(input, deps.clock.now());
  if (problem) throw errors.validation(problem.field, problem.message, problem.code);
  // Stored as E.164, whatever notation the client sent; the idempotency check still compares the body as sent.
  const stored = input.phone_number === undefined ? input : { ...input, phone_number: e164Phone(input.phone_number)! };
  return idempotent(deps, caller, 'user', idemKey, input, async (tx) => {
    const id = deps.ids.next('user_');
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO users (operator_id, environment, id, tag, status, daily_limit, data, created_at)
       VALUES ($1, $2, $3, $4, 'enabled', $5, $6, $7)
       ON CONFLICT (operator_id, environment, tag) WHERE tag IS NOT NULL DO NOTHING
       RETURNING id`,
      [caller.operatorId, caller.environment, id, input.tag ?? null, userLimits(caller).daily_cash_in, JSON.stringify(stored), deps.clock.now()],
    );
    if (rows[0]) return { statusCode: 200, body: { id: rows[0].id } };
    const existing = await byTag(tx, caller, input.tag!);
    return { statusCode: 200, body: { id: existing!.id } };
  });
}

export async function getUser(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE operator_id = $1 AND environment = $2 AND id = $3`,
    [caller.operatorId, caller.environment, id],
  );
  if (!rows[0]) throw errors.notFound('user', id);
  return renderUser(deps.db, caller, rows[0]);
}

export async function listUsers(deps: Deps, caller: Caller, q: { cursor?: string; limit?: number; 'created_at.after'?: string; 'created_at.before'?: string }) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  const where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'], cursor: q.cursor }, params);
  const { rows } = await deps.db.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users
      WHERE operator_id = $1 AND environment = $2 ${where}
      ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    params,
  );
  const p = page(rows, limit);
  const { rows: creds } = await deps.db.query<StoredCredentialRow>(
    'SELECT * FROM credentials WHERE operator_id = $1 AND environment = $2 AND user_id = ANY($3::text[]) ORDER BY created_at, id',
    [caller.operatorId, caller.environment, p.rows.map((u) => u.id)],
  );
  return { data: p.rows.map((u) => publicUser(u, caller.settings, creds.filter((c) => c.user_id === u.id))), next_cursor: p.next_cursor };
}
