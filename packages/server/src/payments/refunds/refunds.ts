/**
 * Refunds of deposits: every statement on `refunds`. A refund is decided as it is made (REFUND's move out of `new`:
 * approve or decline), written with its event in one transaction (`makeRefund`, the one place a refund gets a state),
 * and an approved one with the `refund` transaction that debits the settlement account.
 *
 * One refund per intent: the UNIQUE (operator_id, intent_id) of `refunds` decides between two requests, also two at
 * once; the later one finds the first and answers with it.
 *
 * The sandbox declines the refunds of its refund-decline card, 5999 9619 6976 9301: a card credential (a card of
 * POST /tokenize or the Widget, or a card-type credential of POST /sandbox/credential, Apple Pay included) whose last 4
 * digits are 9301, in the sandbox.
 */
import type { RefundEventRecord } from '@cashwire/webhooks';
import { withTx, type Queryable, type Tx } from '../../db/pool.js';
import { errors } from '../../domain/errors.js';
import { REFUND, transition, type RefundAction } from '../../domain/state-machine.js';
import { insertTenantEvent } from '../../store/events.js';
import type { IntentRow, StoredCredentialRow } from '../../store/rows.js';
import { post, refundAccountOf } from '../accounts/accounts.js';
import type { Caller, Deps } from '../context.js';
import { checkIntentId } from '../intents/intents.js';
import { page, pageFilter } from '../pagination.js';

/** The last 4 digits of the sandbox card whose refunds are declined (5999 9619 6976 9301). */
export const SANDBOX_REFUND_DECLINE_LAST4 = '9301';

export const REFUND_STATUSES = ['approved', 'declined'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];

export interface RefundRow {
  operator_id: string;
  environment: string;
  id: string;
  intent_id: string;
  amount: number;
  currency: string;
  status: RefundStatus;
  created_at: Date;
}

export function publicRefund(r: RefundRow) {
  return { id: r.id, intent_id: r.intent_id, amount: r.amount, currency: r.currency, status: r.status, created_at: r.created_at.toISOString() };
}
export type PublicRefund = ReturnType<typeof publicRefund>;

/** A decided refund as POST /refund answers it: 200 approved, 401 declined (the refund as body, like a declined authorization). */
function answer(r: RefundRow): { statusCode: number; body: PublicRefund } {
  return { statusCode: r.status === 'declined' ? 401 : 200, body: publicRefund(r) };
}

/** Whether the card network declines a refund to this credential: only the sandbox's refund-decline card. */
export function refundDeclines(environment: string, c: Pick<StoredCredentialRow, 'type' | 'card_last4'> | undefined): boolean {
  return environment === 'sandbox' && !!c && c.type !== 'secure_debit' && c.card_last4 === SANDBOX_REFUND_DECLINE_LAST4;
}

async function refundOfIntent(q: Queryable, i: Pick<IntentRow, 'operator_id' | 'id'>): Promise<RefundRow | undefined> {
  const { rows } = await q.query<RefundRow>('SELECT * FROM refunds WHERE operator_id = $1 AND intent_id = $2', [i.operator_id, i.id]);
  return rows[0];
}

/**
 * The one place a refund gets a state: the move out of `new` from the REFUND table, the row (unless the intent has
 * one already: then that first refund, and nothing is written), for an approved refund its debit, and the move's
 * event, all in `tx`.
 */
async function makeRefund(deps: Deps, tx: Tx, i: IntentRow, amount: number, action: RefundAction): Promise<RefundRow> {
  const m = transition(REFUND, 'new', action)!;
  const { rows } = await tx.query<RefundRow>(
    `INSERT INTO refunds (operator_id, environment, id, intent_id, amount, currency, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (operator_id, intent_id) DO NOTHING RETURNING *`,
    [i.operator_id, i.environment, deps.ids.next('refund_'), i.id, amount, i.currency, m.to, deps.clock.now()],
  );
  const made = rows[0];
  // Another request refunded this intent meanwhile (the insert waited for it to commit): its refund is the answer.
  if (!made) return (await refundOfIntent(tx, i))!;
  if (made.status === 'approved') {
    const account = await refundAccountOf(tx, i);
    await post(deps, tx, { operator_id: i.operator_id, environment: i.environment, account, type: 'refund', amount: made.amount, currency: made.currency,
      intent_id: i.id, source_id: made.id });
  }
  if (m.event) {
    const data: RefundEventRecord = {
      id: made.id, intent_id: i.id, tag: i.tag ?? i.idempotency_key, idempotency_key: i.idempotency_key, amount: made.amount, currency: made.currency,
      status: made.status, created_at: made.created_at.toISOString(),
    };
    await insertTenantEvent(tx, deps, { operator_id: i.operator_id, environment: i.environment }, m.event, data, i.id);
  }
  return made;
}

/**
 * POST /refund {intent_id, amount?}: refunds an approved deposit (settled or not), all of it unless `amount` says
 * less. A repeat, also a concurrent one, answers with the intent's first refund (and as it was answered: 200, or 401
 * for a declined one), whatever its amount.
 */
export async function createRefund(deps: Deps, caller: Caller, input: { intent_id: string; amount?: number }): Promise<{ statusCode: number; body: PublicRefund }> {
  checkIntentId(caller, input.intent_id);
  return withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<IntentRow & { credential_type: StoredCredentialRow['type'] | null; card_last4: string | null }>(
      `SELECT i.*, c.type AS credential_type, c.card_last4 FROM intents i
         LEFT JOIN credentials c ON c.operator_id = i.operator_id AND c.id = i.credential_id
        WHERE i.operator_id = $1 AND i.id = $2`,
      [caller.operatorId, input.intent_id],
    );
    const i = rows[0];
    if (!i || i.environment !== caller.environment) throw errors.notFound('intent', input.intent_id);
    const amount = input.amount ?? i.amount;
    if (amount > i.amount) {
      throw errors.validation('amount', `amount ${amount} is more than the intent's ${i.amount} cents`, 'refund_exceeds_intent');
    }
    const first = await refundOfIntent(tx, i);
    if (first) return answer(first);
    if (i.direction !== 'cash_in' || i.status !== 'approved') {
      throw errors.conflict('intent_not_refundable', `intent ${i.id} is a ${i.status} ${i.direction}; only an approved deposit (cash_in) can be refunded`);
    }
    const declines = refundDeclines(i.environment, i.credential_type ? { type: i.credential_type, card_last4: i.card_last4 } : undefined);
    return answer(await makeRefund(deps, tx, i, amount, declines ? 'decline' : 'approve'));
  });
}

/** GET /refund/{id}. */
export async function getRefund(deps: Deps, caller: Caller, id: string) {
  const { rows } = await deps.db.query<RefundRow>('SELECT * FROM refunds WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('refund', id);
  return publicRefund(rows[0]);
}

export interface RefundListQuery {
  cursor?: string;
  limit?: number;
  'created_at.after'?: string;
  'created_at.before'?: string;
  /** `status[]=approved&status[]=declined`, or `status=` (either, repeatable). */
  'status[]'?: string | string[];
  status?: string | string[];
}

/** The statuses a list asks for, from `status[]` and `status` together; [] for all. */
export function statusesOf(q: { 'status[]'?: string | string[]; status?: string | string[] }): string[] {
  return [q['status[]'] ?? [], q.status ?? []].flat();
}

/** GET /refund/list: newest first, by time range, statuses and cursor. */
export async function listRefunds(deps: Deps, caller: Caller, q: RefundListQuery) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'], cursor: q.cursor }, params);
  const statuses = statusesOf(q);
  if (statuses.length) where += ` AND status = ANY($${params.push(statuses)}::text[])`;
  const { rows } = await deps.db.query<RefundRow>(
    `SELECT * FROM refunds WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    params,
  );
  const p = page(rows, limit);
  return { data: p.rows.map(publicRefund), next_cursor: p.next_cursor };
}

/** The refund of each of these intents that has one (for GET /intent's `refund`). */
export async function refundsOfIntents(q: Queryable, operatorId: string, intentIds: readonly string[]): Promise<Map<string, PublicRefund>> {
  const out = new Map<string, PublicRefund>();
  if (intentIds.length === 0) return out;
  const { rows } = await q.query<RefundRow>('SELECT * FROM refunds WHERE operator_id = $1 AND intent_id = ANY($2::text[])', [operatorId, intentIds]);
  for (const r of rows) out.set(r.intent_id, publicRefund(r));
  return out;
}
