/**
 * Disputes of intents: every statement on `disputes`. A dispute is opened (sandbox: POST /simulate/dispute) on an
 * approved deposit, one per intent, and resolved once, won or lost (POST /simulate/dispute/resolve); a lost dispute
 * debits the operator's dispute account with a `dispute` transaction. Every state and event comes from the DISPUTE
 * table, applied in one place: `moveDispute`.
 */
import type { DisputeEventRecord } from '@cashwire/webhooks';
import { isDisputeCode, DISPUTE_CODE_FAMILIES } from '../../domain/dispute-codes.js';
import { DomainError, errors } from '../../domain/errors.js';
import { withTx, type Queryable, type Tx } from '../../db/pool.js';
import { allowedFrom, DISPUTE, transition, type DisputeAction, type DisputeState, type IntentState } from '../../domain/state-machine.js';
import type { Environment } from '../../domain/decision.js';
import { insertTenantEvent } from '../../store/events.js';
import type { IntentRow, TransactionRow } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';
import { page, pageFilter } from '../pagination.js';
import { post, resolveAccount } from '../accounts/accounts.js';
import { withIntent } from '../intents/intents.js';

export type DisputeType = 'push' | 'card_only';
export type DisputeResult = 'won' | 'lost';

export interface DisputeRow {
  operator_id: string;
  environment: Environment;
  id: string;
  intent_id: string;
  amount: number;
  currency: string;
  code: string;
  status: DisputeState;
  type: DisputeType;
  created_at: Date;
  resolved_at: Date | null;
}

/**
 * What can be disputed: a deposit (the payer's money came in) that was approved; a settled intent stays `approved`.
 * A withdrawal is the operator's payment to the user, which the user has no reason to charge back.
 */
const DISPUTABLE_STATES: readonly IntentState[] = ['approved'];
const DISPUTABLE_DIRECTION = 'cash_in';

/** A card payment (card rail, or the card_only intent type) is `card_only`; a bank payment `push`. */
export function disputeType(i: Pick<IntentRow, 'rail' | 'type'>): DisputeType {
  return i.rail === 'card' || i.type === 'card_only' ? 'card_only' : 'push';
}

/** The dispute object of the reference (§9). */
export function publicDispute(d: DisputeRow) {
  return {
    id: d.id,
    amount: d.amount,
    currency: d.currency,
    created_at: d.created_at.toISOString(),
    intent_id: d.intent_id,
    code: d.code,
    status: d.status,
    type: d.type,
  };
}
export type PublicDispute = ReturnType<typeof publicDispute>;

/** A transaction as the API shows it (a lost dispute's debit). */
export function publicTransaction(t: TransactionRow) {
  return {
    id: t.id,
    amount: t.amount,
    currency: t.currency,
    created_at: t.created_at.toISOString(),
    date: t.date,
    status: t.status,
    account_id: t.account_id,
    type: t.type ?? 'intent',
    source_id: t.source_id ?? null,
    intent_id: t.intent_id ?? null,
  };
}

function eventRecord(d: DisputeRow, i: Pick<IntentRow, 'tag' | 'idempotency_key'>, t?: TransactionRow): DisputeEventRecord {
  return {
    id: d.id,
    intent_id: d.intent_id,
    tag: i.tag ?? i.idempotency_key,
    idempotency_key: i.idempotency_key,
    amount: d.amount,
    currency: d.currency,
    code: d.code,
    status: d.status,
    type: d.type,
    created_at: d.created_at.toISOString(),
    transaction: t
      ? { id: t.id, amount: t.amount, currency: t.currency, status: t.status, date: t.date, account_id: t.account_id, created_at: t.created_at.toISOString() }
      : null,
  };
}

/** What a move applies to: an existing dispute, or (out of `new`) the intent and the code of the one to open. */
type Subject = { intent: IntentRow; dispute: DisputeRow } | { intent: IntentRow; dispute: null; code: string };

function conflict(action: DisputeAction, from: DisputeState | 'new', d: DisputeRow | null): DomainError {
  const allowed = allowedFrom(DISPUTE, action).join(' or ');
  if (action === 'open') {
    return errors.conflict('dispute_exists', `intent ${d?.intent_id} already has dispute ${d?.id} (${from}): one dispute per intent`);
  }
  return errors.conflict('dispute_not_open', `dispute ${d?.id} is ${from}; ${action} needs a dispute that is ${allowed}`);
}

/**
 * The one place a dispute changes state: the move comes from the DISPUTE table (a move that is not there is a 409),
 * the row is written (inserted out of `new`, else updated from the state it was read in) with the move's target
 * state, and the move's event in the same transaction, filed under the intent. `transaction` is the debit a lost
 * dispute's event carries.
 */
export async function moveDispute(deps: Deps, tx: Tx, s: Subject, action: DisputeAction, transaction?: TransactionRow): Promise<DisputeRow> {
  const from: DisputeState | 'new' = s.dispute ? s.dispute.status : 'new';
  const m = transition(DISPUTE, from, action);
  if (!m) throw conflict(action, from, s.dispute);
  const now = deps.clock.now();
  let row: DisputeRow | undefined;
  if (!s.dispute) {
    const i = s.intent;
    const { rows } = await tx.query<DisputeRow>(
      `INSERT INTO disputes (operator_id, environment, id, intent_id, amount, currency, code, status, type, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (operator_id, intent_id) DO NOTHING RETURNING *`,
      [i.operator_id, i.environment, deps.ids.next('dispute_'), i.id, i.amount, i.currency, s.code, m.to, disputeType(i), now],
    );
    row = rows[0];
    if (!row) throw errors.conflict('dispute_exists', `intent ${i.id} already has a dispute: one dispute per intent`);
  } else {
    const d = s.dispute;
    const { rows } = await tx.query<DisputeRow>(
      'UPDATE disputes SET status = $3, resolved_at = $4 WHERE operator_id = $1 AND id = $2 AND status = $5 RETURNING *',
      [d.operator_id, d.id, m.to, now, from],
    );
    row = rows[0];
    if (!row) throw conflict(action, from, d);
  }
  if (m.event) {
    await insertTenantEvent(tx, deps, { operator_id: row.operator_id, environment: row.environment }, m.event, eventRecord(row, s.intent, transaction), row.intent_id);
  }
  return row;
}

async function disputeOfIntent(tx: Queryable, operatorId: string, intentId: string): Promise<DisputeRow | undefined> {
  const { rows } = await tx.query<DisputeRow>('SELECT * FROM disputes WHERE operator_id = $1 AND intent_id = $2', [operatorId, intentId]);
  return rows[0];
}

/** POST /simulate/dispute (sandbox): the payer disputes an approved deposit with a reason code of the reference. */
export async function simulateDispute(deps: Deps, caller: Caller, input: { intent_id: string; code: string }) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  if (!isDisputeCode(input.code)) {
    throw errors.validation('code', `code ${JSON.stringify(input.code)} is not a dispute reason code; accepted: ${DISPUTE_CODE_FAMILIES}`, 'invalid_dispute_code');
  }
  return withIntent(deps, caller, input.intent_id, async (tx, i) => {
    if (!DISPUTABLE_STATES.includes(i.status) || i.direction !== DISPUTABLE_DIRECTION) {
      throw errors.conflict('intent_not_disputable', `intent ${i.id} is a ${i.status} ${i.direction}; only an approved cash_in can be disputed`);
    }
    // The intent row is locked: a concurrent simulation of the same intent waits here and then finds this one.
    const existing = await disputeOfIntent(tx, i.operator_id, i.id);
    const d = await moveDispute(deps, tx, existing ? { intent: i, dispute: existing } : { intent: i, dispute: null, code: input.code }, 'open');
    return publicDispute(d);
  });
}

const RESULT_ACTION: Record<DisputeResult, DisputeAction> = { won: 'win', lost: 'lose' };

/**
 * POST /simulate/dispute/resolve (sandbox): won (nothing moves; answers the dispute) or lost (a `dispute` transaction
 * debits the operator's dispute account by the disputed amount; answers the transaction). Only an open (`created`)
 * dispute resolves: the row is locked, so of two concurrent resolutions one wins and the other is a 409.
 */
export async function resolveDispute(deps: Deps, caller: Caller, input: { dispute_id: string; result: DisputeResult }) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  const action = RESULT_ACTION[input.result];
  return withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<DisputeRow>(
      'SELECT * FROM disputes WHERE operator_id = $1 AND environment = $2 AND id = $3 FOR UPDATE',
      [caller.operatorId, caller.environment, input.dispute_id],
    );
    const d = rows[0];
    if (!d) throw errors.notFound('dispute', input.dispute_id);
    if (!transition(DISPUTE, d.status, action)) throw conflict(action, d.status, d);
    const { rows: intents } = await tx.query<IntentRow>('SELECT * FROM intents WHERE operator_id = $1 AND id = $2', [d.operator_id, d.intent_id]);
    const intent = intents[0]!;
    let t: TransactionRow | undefined;
    if (action === 'lose') {
      const owner = { operator_id: d.operator_id, environment: d.environment };
      const account = await resolveAccount(tx, owner, 'dispute');
      t = await post(deps, tx, { ...owner, account, type: 'dispute', amount: d.amount, currency: d.currency, intent_id: d.intent_id, source_id: d.id });
    }
    const moved = await moveDispute(deps, tx, { intent, dispute: d }, action, t);
    return t ? { kind: 'transaction' as const, body: publicTransaction(t) } : { kind: 'dispute' as const, body: publicDispute(moved) };
  });
}

/** Disputes are not shown across environments: an id of the other environment is simply not found. */
export async function getDispute(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<DisputeRow>(
    'SELECT * FROM disputes WHERE operator_id = $1 AND environment = $2 AND id = $3',
    [caller.operatorId, caller.environment, id],
  );
  if (!rows[0]) throw errors.notFound('dispute', id);
  return publicDispute(rows[0]);
}

export interface ListDisputesQuery {
  cursor?: string;
  limit?: number;
  'created_at.after'?: string;
  'created_at.before'?: string;
  status?: DisputeState[];
}

/** GET /dispute/list: newest first, with a cursor; `status[]` keeps the disputes in any of those states. */
export async function listDisputes(deps: Deps, caller: Caller, q: ListDisputesQuery) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'], cursor: q.cursor }, params);
  if (q.status?.length) where += ` AND status = ANY($${params.push(q.status)}::text[])`;
  const { rows } = await deps.db.query<DisputeRow>(
    `SELECT * FROM disputes WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    params,
  );
  const p = page(rows, limit);
  return { data: p.rows.map(publicDispute), next_cursor: p.next_cursor };
}

/** The dispute of each of these intents that has one (for `dispute` in GET /intent and the intent list). */
export async function disputesOfIntents(q: Queryable, operatorId: string, intentIds: string[]): Promise<Map<string, PublicDispute>> {
  const out = new Map<string, PublicDispute>();
  if (intentIds.length === 0) return out;
  const { rows } = await q.query<DisputeRow>('SELECT * FROM disputes WHERE operator_id = $1 AND intent_id = ANY($2::text[])', [operatorId, intentIds]);
  for (const d of rows) out.set(d.intent_id, publicDispute(d));
  return out;
}
