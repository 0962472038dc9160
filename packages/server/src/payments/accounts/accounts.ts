/**
 * Accounts and their ledger: every statement on `accounts`, and every insert into `transactions`. A balance moves only
 * with the transaction that explains it, in the caller's transaction (`post`).
 *
 * Transaction `amount`s are magnitudes (positive cents, as Push shows them); the direction is the transaction's:
 * a cash_in settlement credits the settlement account, a cash_out settlement, a refund and a lost dispute debit theirs.
 */
import type { Environment } from '../../domain/decision.js';
import { errors } from '../../domain/errors.js';
import type { Queryable } from '../../db/pool.js';
import type { TransactionRow } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';

export type AccountType = 'settlement' | 'dispute';

export interface AccountRow {
  operator_id: string;
  environment: Environment;
  id: string;
  type: AccountType;
  name: string;
  balance: number;
  created_at: Date;
}

interface Owner { operator_id: string; environment: Environment }

/** A new operator's accounts: one settlement and one dispute account in each environment. */
/**
 * An operator's default accounts: one settlement and one dispute account in each environment. Their ids are derived
 * from the operator (as migration 011 made them for the operators it found), so making them again, or two processes
 * making them at once, makes nothing more.
 */
export async function createDefaultAccounts(q: Queryable, operatorId: string): Promise<void> {
  // Dated as the operator: they are its from the start.
  await q.query(
    `INSERT INTO accounts (operator_id, environment, id, type, name, created_at)
     SELECT o.id, e.env, 'account_' || substr(md5(o.id || ':' || e.env || ':' || t.type), 1, 22), t.type,
            CASE t.type WHEN 'settlement' THEN 'Settlement' ELSE 'Disputes' END, o.created_at
       FROM operators o CROSS JOIN (VALUES ('sandbox'), ('production')) AS e(env) CROSS JOIN (VALUES ('settlement'), ('dispute')) AS t(type)
      WHERE o.id = $1
     ON CONFLICT (operator_id, id) DO NOTHING`,
    [operatorId],
  );
}

/** The owner's accounts (of a type), oldest first. An operator made without its accounts gets them now, once. */
export async function accountsOf(q: Queryable, owner: Owner, type?: AccountType): Promise<AccountRow[]> {
  const read = () => q.query<AccountRow>(
    `SELECT * FROM accounts WHERE operator_id = $1 AND environment = $2 AND ($3::text IS NULL OR type = $3) ORDER BY created_at, type DESC, id`,
    [owner.operator_id, owner.environment, type ?? null],
  );
  const { rows } = await read();
  if (rows.length > 0) return rows;
  await createDefaultAccounts(q, owner.operator_id);
  return (await read()).rows;
}

/**
 * The account a movement goes to: `accountId` when given (it must be the owner's, of that type), else the owner's only
 * account of the type. With several settlement accounts and none named, `account_required` (400).
 */
export async function resolveAccount(q: Queryable, owner: Owner, type: AccountType, accountId?: string | null): Promise<AccountRow> {
  const all = await accountsOf(q, owner, type);
  if (accountId) {
    const a = all.find((x) => x.id === accountId);
    if (!a) throw errors.notFound('account', accountId);
    return a;
  }
  if (all.length > 1) {
    throw errors.validation('account_id', `this operator has ${all.length} ${type} accounts: name one with account_id (GET /account/list)`, 'account_required');
  }
  return all[0]!;
}

/** The balance change a transaction makes, signed. */
export function signedAmount(t: { type: TransactionRow['type']; amount: number; direction?: 'cash_in' | 'cash_out' }): number {
  if (t.type === 'intent') return t.direction === 'cash_out' ? -t.amount : t.amount;
  return -t.amount; // refunds and lost disputes leave the account
}

/** Writes a transaction and moves its account's balance by it, together. */
export async function post(
  deps: Pick<Deps, 'ids' | 'clock'>,
  q: Queryable,
  t: Owner & { account: AccountRow; type: NonNullable<TransactionRow['type']>; amount: number; currency: string; intent_id: string | null;
    source_id?: string | null; direction?: 'cash_in' | 'cash_out' },
): Promise<TransactionRow> {
  const now = deps.clock.now();
  const row: TransactionRow = {
    id: deps.ids.next('txn_'), amount: t.amount, currency: t.currency, status: 'settled', date: now.toISOString().slice(0, 10),
    account_id: t.account.id, created_at: now, intent_id: t.intent_id ?? undefined, type: t.type, source_id: t.source_id ?? null,
  };
  await q.query(
    `WITH a AS (UPDATE accounts SET balance = balance + $11 WHERE operator_id = $1 AND id = $8 RETURNING 1)
     INSERT INTO transactions (operator_id, id, intent_id, amount, currency, status, date, account_id, created_at, type, source_id, environment)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13 FROM a`,
    [t.operator_id, row.id, t.intent_id, t.amount, t.currency, row.status, row.date, t.account.id, now, t.type, signedAmount(t), t.source_id ?? null, t.environment],
  );
  return row;
}

export function publicAccount(a: AccountRow) {
  return { id: a.id, type: a.type, name: a.name, balance: a.balance, currency: 'USD', created_at: a.created_at.toISOString() };
}

/** GET /account/list, optionally of one type; oldest first (the default accounts lead). */
export async function listAccounts(deps: Deps, caller: Caller, type?: AccountType) {
  const rows = await accountsOf(deps.db, { operator_id: caller.operatorId, environment: caller.environment }, type);
  return { data: rows.map(publicAccount), next_cursor: null };
}

/** GET /account/{id}. */
export async function getAccount(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<AccountRow>('SELECT * FROM accounts WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('account', id);
  return publicAccount(rows[0]);
}

/**
 * POST /account {name}: another settlement account of the caller's operator, in the key's environment (either one).
 * From then on POST /intent and POST /authorize need `account_id` (checkAccountId).
 */
export async function createAccount(deps: Deps, caller: Caller, input: { name: string }) {
  const name = input.name.trim();
  if (!name) throw errors.validation('name', 'name must not be blank', 'invalid_value');
  const { rows } = await deps.db.query<AccountRow>(
    `INSERT INTO accounts (operator_id, environment, id, type, name, created_at) VALUES ($1, $2, $3, 'settlement', $4, $5) RETURNING *`,
    [caller.operatorId, caller.environment, deps.ids.next('account_'), name, deps.clock.now()],
  );
  // Marks the environment as one with several settlement accounts, so that POST /intent and /authorize (which read the
  // settings with the key) look the accounts up only for such operators (the route forgets the cached keys).
  await deps.db.query(
    `UPDATE operators SET settings = jsonb_set(settings, '{extra_settlement_accounts}', coalesce(settings->'extra_settlement_accounts', '{}'::jsonb) || jsonb_build_object($2::text, true))
      WHERE id = $1`,
    [caller.operatorId, caller.environment],
  );
  return publicAccount(rows[0]!);
}

/**
 * The account check of POST /intent and POST /authorize, before anything is written: an `account_id` must be one of
 * the operator's settlement accounts in the key's environment (404 `account_not_found`); without one, the operator
 * must have a single settlement account (400 `account_required`). One indexed read, when an account is named or the
 * operator has made more than one.
 */
export async function checkAccountId(q: Queryable | Pick<Deps, 'db'>, caller: Pick<Caller, 'operatorId' | 'environment' | 'settings'>, accountId: string | null | undefined): Promise<void> {
  const db: Queryable = 'db' in q ? q.db : q;
  // The common case costs nothing: no account named, and the operator never made a second settlement account here.
  if (!accountId && !caller.settings.extra_settlement_accounts?.[caller.environment]) return;
  const { rows } = await db.query<{ id: string }>({
    name: 'cw_settlement_account_ids',
    text: `SELECT id FROM accounts WHERE operator_id = $1 AND environment = $2 AND type = 'settlement'`,
    values: [caller.operatorId, caller.environment],
  });
  if (accountId) {
    if (!rows.some((r) => r.id === accountId)) throw errors.notFound('account', accountId);
    return;
  }
  if (rows.length > 1) {
    throw errors.validation('account_id', `this operator has ${rows.length} settlement accounts: name one with account_id (GET /account/list?type=settlement)`, 'account_required');
  }
}

/**
 * The settlement account a refund of intent `i` comes out of: the one its settlement went to; before it settled, the
 * account it names; else the operator's first (default) settlement account of its environment.
 */
export async function refundAccountOf(q: Queryable, i: { operator_id: string; environment: Environment; id: string; account_id: string | null }): Promise<AccountRow> {
  const { rows } = await q.query<AccountRow>(
    `SELECT a.* FROM accounts a
      WHERE a.operator_id = $1 AND a.environment = $2 AND a.type = 'settlement'
      ORDER BY (a.id = (SELECT t.account_id FROM transactions t WHERE t.operator_id = $1 AND t.intent_id = $3 AND t.type = 'intent')) IS TRUE DESC,
               (a.id = $4) IS TRUE DESC, a.created_at, a.id
      LIMIT 1`,
    [i.operator_id, i.environment, i.id, i.account_id],
  );
  if (!rows[0]) return resolveAccount(q, i, 'settlement'); // none yet: the default, made now
  return rows[0];
}
