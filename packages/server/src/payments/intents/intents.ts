import pg from 'pg';
import type { Direction, LimitsUtilizationCents } from '@cashwire/webhooks';
import { DomainError, errors, type ConflictCode } from '../../domain/errors.js';
import { withTx, type Queryable, type Tx } from '../../db/pool.js';
import { decide, type DeclineCategory, type Environment } from '../../domain/decision.js';
import { allowedFrom, decisionAction, INTENT, transition, type IntentAction } from '../../domain/state-machine.js';
import { insertEvents } from '../../store/events.js';
import type { CredentialRow, IntentRow, StoredCredentialRow, TransactionRow } from '../../store/rows.js';
import { paymentCredential } from '../native/native.js';
import { refundsOfIntents, type PublicRefund } from '../refunds/refunds.js';
import { disputesOfIntents, type PublicDispute } from '../disputes/disputes.js';
import { intentsWithLimitRequests } from '../users/limits.js';
import type { Caller, Deps } from '../context.js';
import { insertOnce } from '../idempotency.js';
import { page, pageFilter } from '../pagination.js';
import { limitsFor, type UserRow } from '../users/users.js';
import { checkAccountId, post, resolveAccount, refundAccountOf } from '../accounts/accounts.js';

export interface CreateIntentInput {
  direction: Direction;
  user_id: string;
  amount: number;
  currency: 'USD';
  redirect_url?: string;
  webhook_url?: string;
  webhook_secret?: string;
  tag?: string;
  approval_mode?: 'automatic' | 'manual';
  account_id?: string;
  display_limits?: boolean;
  display_loyalty?: boolean;
}

/** The state a hosted session starts in (the move `open` out of `new`). */
const OPENED = transition(INTENT, 'new', 'open')!.to;

export function intentUrl(deps: Deps, i: Pick<IntentRow, 'operator_id' | 'id' | 'session_token'>): string {
  return `${deps.config.publicUrl}/pay/${i.operator_id}/${i.id}?s=${i.session_token}`;
}

/** What GET /intent shows beside the intent's own row: its refund, its dispute, whether its user asked for a higher limit. */
export interface IntentExtras { refund?: PublicRefund | null; dispute?: PublicDispute | null; limits_requested?: boolean }

export function publicIntent(deps: Deps, i: IntentRow, txns: TransactionRow[] = [], credential?: CredentialRow | null, extras: IntentExtras = {}) {
  return {
    id: i.id,
    url: intentUrl(deps, i),
    idempotency_key: i.idempotency_key,
    tag: i.tag,
    created_at: i.created_at.toISOString(),
    direction: i.direction,
    user_id: i.user_id,
    amount: i.amount,
    // What Push guarantees of a deposit: all of an approved one (cash_in only).
    guarantee_amount: i.direction === 'cash_in' ? (i.status === 'approved' ? i.amount : 0) : null,
    currency: i.currency,
    status: i.status,
    decline_category: i.decline_category,
    rail: i.rail,
    type: i.type,
    approval_mode: i.approval_mode,
    redirect_url: i.redirect_url,
    webhook_url: i.webhook_url,
    account_id: i.account_id,
    display_limits: i.display_limits,
    display_loyalty: i.display_loyalty,
    credential: credential ? { id: credential.id, display_name: credential.display_name, last4: credential.last4 } : null,
    payment_credential: credential && 'type' in credential ? paymentCredential(credential as StoredCredentialRow) : null,
    limits_utilization: i.limits_utilization
      ? Object.fromEntries(Object.entries(i.limits_utilization).map(([k, v]) => [k, (v as number).toFixed(2)]))
      : null,
    transactions: txns.map((t) => ({ id: t.id, amount: t.amount, currency: t.currency, created_at: t.created_at.toISOString(), date: t.date, status: t.status,
      account_id: t.account_id, type: t.type ?? 'intent', source_id: t.source_id ?? null })),
    refund: extras.refund ?? null,
    dispute: extras.dispute ?? null,
    limits_requested: extras.limits_requested ?? false,
  };
}

/** Ids carry their environment; one of the other environment is named as such, without a lookup. */
export function checkIntentId(caller: Caller, id: string): void {
  const other: Environment = caller.environment === 'sandbox' ? 'production' : 'sandbox';
  if (id.startsWith(`intent_${other}_`)) throw errors.wrongEnvironment('intent', id, caller.environment);
}

function userNotFound(err: unknown, userId: string): never {
  if ((err as { code?: string }).code === '23503') throw errors.notFound('user', userId);
  throw err;
}

/** POST /intent: idempotent by X-Idempotency-Key (scoped to operator and environment). */
/**
 * POST /intent: idempotent by X-Idempotency-Key (scoped to operator and environment). The whole write is one
 * statement: the intent is built here, so its response is known before the insert and is stored with the key in the
 * same statement (see insertOnce).
 */
export async function createIntent(deps: Deps, caller: Caller, input: CreateIntentInput, idemKey: string | undefined) {
  await checkAccountId(deps, caller, input.account_id);
  const now = deps.clock.now();
  const intent: IntentRow = {
    operator_id: caller.operatorId, environment: caller.environment, id: deps.ids.next(`intent_${caller.environment}_`), user_id: input.user_id,
    direction: input.direction, amount: input.amount, currency: input.currency, status: OPENED, decline_category: null,
    approval_mode: input.approval_mode ?? 'automatic', rail: 'ach', type: 'push', tag: input.tag ?? null, idempotency_key: idemKey ?? null,
    redirect_url: input.redirect_url ?? null, webhook_url: input.webhook_url ?? null,
    webhook_secret: input.webhook_secret ? deps.secrets.seal(input.webhook_secret) : null, account_id: input.account_id ?? null,
    display_limits: input.display_limits ?? null, display_loyalty: input.display_loyalty ?? null, credential_id: null,
    session_token: deps.ids.secret(18), limits_utilization: null, decided_at: null, settle_at: null, settled_at: null, created_at: now, updated_at: now,
  };
  const i = intent;
  const insert = (first: number) => ({
    name: `cw_intent_insert_${first}`,
    // Parameters are cast: in INSERT ... SELECT they would otherwise be read as text.
    text: `INSERT INTO intents (operator_id, environment, id, user_id, direction, amount, currency, status, approval_mode, rail, type,
                                tag, idempotency_key, redirect_url, webhook_url, webhook_secret, account_id, display_limits, display_loyalty,
                                session_token, created_at, updated_at)
           SELECT ${[
             'text', 'text', 'text', 'text', 'text', 'bigint', 'text',
           ].map((t, k) => `$${first + k}::${t}`).join(', ')}, $${first + 18}::text, $${first + 7}::text, 'ach', 'push',
                  ${['text', 'text', 'text', 'text', 'text', 'text', 'boolean', 'boolean', 'text'].map((t, k) => `$${first + 8 + k}::${t}`).join(', ')},
                  $${first + 17}::timestamptz, $${first + 17}::timestamptz`,
    values: [i.operator_id, i.environment, i.id, i.user_id, i.direction, i.amount, i.currency, i.approval_mode, i.tag, i.idempotency_key,
      i.redirect_url, i.webhook_url, i.webhook_secret, i.account_id, i.display_limits, i.display_loyalty, i.session_token, now, i.status],
  });
  return insertOnce(deps, caller, 'intent', idemKey, input, { statusCode: 200, body: publicIntent(deps, intent) }, insert)
    .catch((err) => userNotFound(err, input.user_id));
}

async function loadIntent(q: Queryable, operatorId: string, id: string, lock = false): Promise<IntentRow | undefined> {
  const { rows } = await q.query<IntentRow>(`SELECT * FROM intents WHERE operator_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [operatorId, id]);
  return rows[0];
}

async function details(q: Queryable, i: IntentRow): Promise<{ txns: TransactionRow[]; credential: CredentialRow | null; extras: IntentExtras }> {
  const [t, c, extras] = await inTurn(q, [
    () => q.query<TransactionRow>('SELECT * FROM transactions WHERE operator_id = $1 AND intent_id = $2 ORDER BY created_at', [i.operator_id, i.id]),
    () => i.credential_id
      ? q.query<CredentialRow>('SELECT * FROM credentials WHERE operator_id = $1 AND id = $2', [i.operator_id, i.credential_id])
      : Promise.resolve({ rows: [] as CredentialRow[] }),
    () => extrasOf(q, i.operator_id, [i.id]),
  ] as const);
  return { txns: t.rows, credential: c.rows[0] ?? null, extras: extras.get(i.id) ?? {} };
}

/**
 * Runs the reads at once on a pool (each on a connection of its own), one after another on a transaction's client
 * (one connection answers one query at a time).
 */
async function inTurn<T extends readonly (() => Promise<unknown>)[]>(q: Queryable, reads: T): Promise<{ [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  if (q instanceof pg.Pool) return Promise.all(reads.map((r) => r())) as never;
  const out: unknown[] = [];
  for (const r of reads) out.push(await r());
  return out as never;
}

/** The refunds, disputes and limit requests of some intents, by intent id (three indexed reads in all). */
async function extrasOf(q: Queryable, operatorId: string, ids: string[]): Promise<Map<string, IntentExtras>> {
  const [refunds, disputes, asked] = await inTurn(q, [
    () => refundsOfIntents(q, operatorId, ids), () => disputesOfIntents(q, operatorId, ids), () => intentsWithLimitRequests(q, operatorId, ids),
  ] as const);
  return new Map(ids.map((id) => [id, { refund: refunds.get(id) ?? null, dispute: disputes.get(id) ?? null, limits_requested: asked.has(id) }]));
}

export async function renderIntent(deps: Deps, q: Queryable, i: IntentRow) {
  const d = await details(q, i);
  return publicIntent(deps, i, d.txns, d.credential, d.extras);
}

export async function getIntent(deps: Deps, caller: Caller, id: string) {
  checkIntentId(caller, id);
  const i = await loadIntent(deps.db, caller.operatorId, id);
  if (!i || i.environment !== caller.environment) throw errors.notFound('intent', id);
  return renderIntent(deps, deps.db, i);
}

export async function listIntents(deps: Deps, caller: Caller, q: { cursor?: string; limit?: number; 'created_at.after'?: string; 'created_at.before'?: string;
  'status[]'?: string | string[]; status?: string | string[]; type?: string; user_id?: string }) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'], cursor: q.cursor }, params);
  // status[] (repeatable; also status=) and type (the intent's `type`: push, card_only, secure_debit).
  const statuses = [q['status[]'] ?? [], q.status ?? []].flat();
  if (statuses.length) where += ` AND status = ANY($${params.push(statuses)}::text[])`;
  if (q.type !== undefined) where += ` AND type = $${params.push(q.type)}`;
  // One user's intents (the dashboard's user page).
  if (q.user_id !== undefined) where += ` AND user_id = $${params.push(q.user_id)}`;
  const { rows } = await deps.db.query<IntentRow>(
    `SELECT * FROM intents WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    params,
  );
  const p = page(rows, limit);
  const ids = p.rows.map((r) => r.id);
  const [{ rows: txns }, extras] = await Promise.all([
    deps.db.query<TransactionRow>('SELECT * FROM transactions WHERE operator_id = $1 AND intent_id = ANY($2::text[]) ORDER BY created_at', [caller.operatorId, ids]),
    extrasOf(deps.db, caller.operatorId, ids),
  ]);
  return { data: p.rows.map((i) => publicIntent(deps, i, txns.filter((t) => t.intent_id === i.id), undefined, extras.get(i.id))), next_cursor: p.next_cursor };
}

function startOfDay(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}
function startOfMonth(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

type UserLimitRow = Pick<UserRow, 'daily_limit' | 'daily_limit_request_id'>;

/** A user's approved and pending usage in the current UTC day and month, and whether they ever deposited. */
async function userFacts(tx: Tx, operatorId: string, userId: string, now: Date): Promise<{ usage: LimitsUtilizationCents; hasDeposit: boolean; user?: UserLimitRow }> {
  // The lock serialises decisions for one user, so two concurrent intents cannot both fit under a limit. The row
  // carries a daily limit set by a limit request's decision (users/limits.ts), if any.
  const { rows: [user] } = await tx.query<UserLimitRow>('SELECT daily_limit, daily_limit_request_id FROM users WHERE operator_id = $1 AND id = $2 FOR UPDATE', [operatorId, userId]);
  const { rows } = await tx.query<LimitsUtilizationCents & { has_deposit: boolean }>(
    `SELECT coalesce(sum(amount) FILTER (WHERE direction = 'cash_in'  AND decided_at >= $3), 0)::bigint AS daily_cash_in,
            coalesce(sum(amount) FILTER (WHERE direction = 'cash_out' AND decided_at >= $3), 0)::bigint AS daily_cash_out,
            coalesce(sum(amount) FILTER (WHERE direction = 'cash_in'), 0)::bigint AS monthly_cash_in,
            coalesce(sum(amount) FILTER (WHERE direction = 'cash_out'), 0)::bigint AS monthly_cash_out,
            EXISTS (SELECT 1 FROM intents d WHERE d.operator_id = $1 AND d.user_id = $2 AND d.direction = 'cash_in' AND d.status = 'approved') AS has_deposit
       FROM intents
      WHERE operator_id = $1 AND user_id = $2 AND status IN ('approved', 'pending') AND decided_at >= $4`,
    [operatorId, userId, startOfDay(now), startOfMonth(now)],
  );
  const r = rows[0]!;
  return {
    usage: { daily_cash_in: r.daily_cash_in, daily_cash_out: r.daily_cash_out, monthly_cash_in: r.monthly_cash_in, monthly_cash_out: r.monthly_cash_out },
    hasDeposit: r.has_deposit,
    user,
  };
}

export type Verdict = { forced?: DeclineCategory };

/**
 * Decides a `created` intent (hosted page approve, or authorize) and writes the result and its event in `tx`.
 * `forced` declines without running the rules (the sandbox page's Decline button).
 */
/** What deciding an intent gives: its new status and what goes with it. */
export interface Decision {
  status: IntentRow['status'];
  decline_category: string | null;
  limits_utilization: LimitsUtilizationCents | null;
  decided_at: Date;
  settle_at: Date | null;
}

/**
 * Decides an intent that is about to be, or has just been, made: the user's row locked (decisions of one user one
 * after another), their usage read, the rules run (`forced` declines without them).
 */
export async function decisionFor(
  deps: Deps,
  tx: Tx,
  intent: Pick<IntentRow, 'operator_id' | 'environment' | 'user_id' | 'direction' | 'amount' | 'approval_mode'>,
  settings: Caller['settings'],
  verdict: Verdict = {},
): Promise<Decision> {
  const now = deps.clock.now();
  let status: IntentRow['status'];
  let declineCategory: string | null = null;
  let utilization: LimitsUtilizationCents | null = null;
  if (verdict.forced) {
    status = 'declined';
    declineCategory = verdict.forced;
  } else {
    const facts = await userFacts(tx, intent.operator_id, intent.user_id, now);
    const d = decide({
      environment: intent.environment,
      direction: intent.direction,
      amount: intent.amount,
      approvalMode: intent.approval_mode,
      hasDeposit: facts.hasDeposit,
      usage: facts.usage,
      limits: limitsFor(settings, facts.user),
    });
    status = d.status;
    if (d.status === 'declined') declineCategory = d.declineCategory;
    else utilization = d.utilization;
  }
  const settleAt = status === 'approved' ? new Date(now.getTime() + deps.config.settleDelayMs[intent.environment]) : null;
  return { status, decline_category: declineCategory, limits_utilization: utilization, decided_at: now, settle_at: settleAt };
}

export async function decideIntent(deps: Deps, tx: Tx, intent: IntentRow, settings: Caller['settings'], verdict: Verdict = {}): Promise<IntentRow> {
  const d = await decisionFor(deps, tx, intent, settings, verdict);
  return moveIntent(deps, tx, intent, decisionAction(d.status as 'approved' | 'pending' | 'declined'), {
    decline_category: d.decline_category, limits_utilization: d.limits_utilization ? JSON.stringify(d.limits_utilization) : null,
    decided_at: d.decided_at, settle_at: d.settle_at,
  });
}

/**
 * The one place an intent changes state: the move comes from the INTENT table (a move that is not there is a 409), the
 * row gets its new status and `set`, and the move's event is written in the same transaction.
 */
export async function moveIntent(
  deps: Deps, tx: Tx, i: IntentRow, action: IntentAction, set: Record<string, unknown> = {}, transaction?: TransactionRow,
): Promise<IntentRow> {
  const m = transition(INTENT, i.status, action);
  if (!m) throw conflict(action, i);
  const cols = Object.keys(set);
  const { rows } = await tx.query<IntentRow>(
    `UPDATE intents SET status = $3, updated_at = $4${cols.map((c, k) => `, ${c} = $${k + 5}`).join('')} WHERE operator_id = $1 AND id = $2 RETURNING *`,
    [i.operator_id, i.id, m.to, deps.clock.now(), ...cols.map((c) => set[c])],
  );
  const moved = rows[0]!;
  if (m.event) await insertEvents(tx, deps, [{ intent: moved, type: m.event, transaction }]);
  return moved;
}

const CONFLICT: Record<IntentAction, ConflictCode> = {
  open: 'intent_already_decided', approve: 'intent_already_decided', hold: 'intent_already_decided', decline: 'intent_already_decided',
  cancel: 'intent_not_cancelable', review: 'intent_not_pending', settle: 'intent_not_approved',
};

function conflict(action: IntentAction, i: IntentRow) {
  const allowed = allowedFrom(INTENT, action).filter((st) => st !== 'new').join(' or ');
  return errors.conflict(CONFLICT[action], `intent ${i.id} is ${i.status}; ${action} needs an intent that is ${allowed}`);
}

/** Runs `fn` on the intent row locked in a transaction, after the tenant and environment checks. */
export async function withIntent<T>(deps: Deps, caller: Caller, id: string, fn: (tx: Tx, i: IntentRow) => Promise<T>): Promise<T> {
  checkIntentId(caller, id);
  return withTx(deps.db, async (tx) => {
    const i = await loadIntent(tx, caller.operatorId, id, true);
    if (!i || i.environment !== caller.environment) throw errors.notFound('intent', id);
    return fn(tx, i);
  });
}

/** POST /intent/{id}/approve: manual review, pending -> approved. */
export async function approveIntent(deps: Deps, caller: Caller, id: string) {
  return withIntent(deps, caller, id, async (tx, i) => {
    const settleAt = new Date(deps.clock.now().getTime() + deps.config.settleDelayMs[i.environment]);
    return renderIntent(deps, tx, await moveIntent(deps, tx, i, 'review', { settle_at: settleAt }));
  });
}

export async function cancelIntentRow(deps: Deps, tx: Tx, i: IntentRow): Promise<IntentRow> {
  return moveIntent(deps, tx, i, 'cancel', { settle_at: null });
}

/** POST /intent/{id}/cancel: only before approval. */
export async function cancelIntent(deps: Deps, caller: Caller, id: string) {
  return withIntent(deps, caller, id, async (tx, i) => renderIntent(deps, tx, await cancelIntentRow(deps, tx, i)));
}

/** Settles locked, approved intents: one transaction row and one `intent.settled` event each. */
export async function settleRows(deps: Deps, tx: Tx, intents: IntentRow[]): Promise<void> {
  const now = deps.clock.now();
  for (const i of intents) {
    if (!transition(INTENT, i.status, 'settle')) throw conflict('settle', i);
    const { accountId } = await deps.rail.settle(i);
    // The intent's account (checked when it was made); one made before accounts existed, or before the operator had a
    // second one, goes to the first settlement account (the settlement job must never stop on it).
    const account = await resolveAccount(tx, i, 'settlement', accountId).catch((err: unknown) => {
      if (err instanceof DomainError) return refundAccountOf(tx, i); // an account it names no longer resolves
      throw err; // a database error: the transaction is lost, the job retries it
    });
    const t = await post(deps, tx, { operator_id: i.operator_id, environment: i.environment, account, type: 'intent', amount: i.amount, currency: i.currency,
      intent_id: i.id, direction: i.direction });
    await moveIntent(deps, tx, i, 'settle', { settled_at: now }, t);
  }
}

/** POST /simulate/intent/{id}/settle (sandbox): settle now; settling a settled intent changes nothing. */
export async function simulateSettle(deps: Deps, caller: Caller, id: string) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  return withIntent(deps, caller, id, async (tx, i) => {
    if (!transition(INTENT, i.status, 'settle')) throw conflict('settle', i);
    if (!i.settled_at) await settleRows(deps, tx, [i]);
    return renderIntent(deps, tx, (await loadIntent(tx, i.operator_id, i.id))!);
  });
}
