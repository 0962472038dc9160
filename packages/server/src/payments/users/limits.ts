/**
 * Limit requests: a user asks for a higher daily limit (the payment page of an intent made with `display_limits`, or
 * the operator's own UI through POST /user/{id}/limits_request), the operator answers with what it knows of the user
 * (PATCH /user/{id}), and the decision (sandbox: POST /simulate/limits_decision) sets the user's daily limit.
 *
 * Every change of a request is a move of the LIMIT_REQUEST machine (domain/state-machine.ts), written with its event
 * in one transaction by `moveLimitRequest`. All of it runs with the user's row locked (lockUser), so one user's
 * requests, decisions and payments happen one after another: one open request per user (also under concurrency; the
 * partial unique index of migration 014 holds it too).
 */
import { constantTimeEqual, type UserEventRecord } from '@cashwire/webhooks';
import { withTx, type Queryable, type Tx } from '../../db/pool.js';
import { DomainError, errors } from '../../domain/errors.js';
import {
  allowedFrom, LIMIT_REQUEST, transition, type LimitRequestAction, type LimitRequestState,
} from '../../domain/state-machine.js';
import { insertTenantEvent } from '../../store/events.js';
import type { IntentRow, OperatorSettings } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';
import { limitsFor, lockUser, renderUser, updateUserKyc, type UserKycPatch, type UserRow } from './users.js';

export interface LimitRequestRow {
  operator_id: string;
  environment: string;
  id: string;
  user_id: string;
  intent_id: string | null;
  status: LimitRequestState;
  requested_daily_limit: number | null;
  approved_daily_limit: number | null;
  operator_info: OperatorInfo | null;
  created_at: Date;
  decided_at: Date | null;
}

/** What the operator tells about the user (PATCH /user/{id}); amounts in integer cents. */
export interface OperatorInfo {
  operator_stats?: {
    lifetime_deposits?: number;
    lifetime_withdrawals?: number;
    deposits_last_30_days?: number;
    withdrawals_last_30_days?: number;
    deposit_count?: number;
    account_age_days?: number;
    chargebacks?: number;
  };
  other_processors_limits?: { processor: string; daily_limit: number }[];
  /** When the operator last answered (ISO 8601). */
  updated_at?: string;
}

type Tenant = { operator_id: string; environment: string };

/** The states a request is open in: those a decision can move it out of (the table says: `requested`). */
const OPEN: LimitRequestState[] = allowedFrom(LIMIT_REQUEST, 'decline').filter((s): s is LimitRequestState => s !== 'new');

/** The actions whose decision sets the user's daily limit to `approved_daily_limit`. */
const SETS_LIMIT: Record<LimitRequestAction, boolean> = { request: false, approve: true, approve_partially: true, decline: false };

export const DECISIONS = { approved: 'approve', partial: 'approve_partially', declined: 'decline' } as const satisfies Record<string, LimitRequestAction>;
export type LimitDecision = keyof typeof DECISIONS;

export function publicLimitRequest(r: LimitRequestRow) {
  return {
    id: r.id,
    user_id: r.user_id,
    intent_id: r.intent_id,
    status: r.status,
    requested_daily_limit: r.requested_daily_limit,
    approved_daily_limit: r.approved_daily_limit,
    currency: 'USD' as const,
    operator_info: r.operator_info,
    created_at: r.created_at.toISOString(),
    decided_at: r.decided_at ? r.decided_at.toISOString() : null,
  };
}

async function openRequest(q: Queryable, t: Tenant, userId: string): Promise<LimitRequestRow | undefined> {
  const { rows } = await q.query<LimitRequestRow>(
    `SELECT * FROM limit_requests WHERE operator_id = $1 AND environment = $2 AND user_id = $3 AND status = ANY($4::text[])
      ORDER BY created_at DESC, id DESC LIMIT 1`,
    [t.operator_id, t.environment, userId, OPEN],
  );
  return rows[0];
}

/** A request about to be made: the move `request` out of `new` inserts it. */
interface NewLimitRequest {
  status: 'new';
  tenant: Tenant;
  user_id: string;
  intent_id: string | null;
  requested_daily_limit: number | null;
}

/**
 * The one place a limit request changes state: the move comes from the LIMIT_REQUEST table (a move that is not
 * there is a 409 `no_limit_request`: the request is no longer open), the row gets its new status (a decision also
 * `approved_daily_limit` and `decided_at`, and the user's daily limit when the move sets one), and the move's event is
 * written in the same transaction, filed under the payment the user asked from.
 */
async function moveLimitRequest(
  deps: Deps, tx: Tx, from: LimitRequestRow | NewLimitRequest, action: LimitRequestAction, approvedDailyLimit: number | null = null,
): Promise<LimitRequestRow> {
  const m = transition(LIMIT_REQUEST, from.status, action);
  if (!m) throw errors.conflict('no_limit_request', `the user has no open limit request (this one is ${from.status}); ${action} needs one that is ${OPEN.join(' or ')}`);
  const now = deps.clock.now();
  let row: LimitRequestRow;
  if (from.status === 'new') {
    const { rows } = await tx.query<LimitRequestRow>(
      `INSERT INTO limit_requests (operator_id, environment, id, user_id, intent_id, status, requested_daily_limit, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [from.tenant.operator_id, from.tenant.environment, deps.ids.next('limreq_'), from.user_id, from.intent_id, m.to, from.requested_daily_limit, now],
    );
    row = rows[0]!;
  } else {
    const { rows } = await tx.query<LimitRequestRow>(
      `UPDATE limit_requests SET status = $3, approved_daily_limit = $4, decided_at = $5 WHERE operator_id = $1 AND id = $2 RETURNING *`,
      [from.operator_id, from.id, m.to, SETS_LIMIT[action] ? approvedDailyLimit : null, now],
    );
    row = rows[0]!;
    if (SETS_LIMIT[action]) {
      await tx.query(
        'UPDATE users SET daily_limit = $4, daily_limit_request_id = $5 WHERE operator_id = $1 AND environment = $2 AND id = $3',
        [row.operator_id, row.environment, row.user_id, approvedDailyLimit, row.id],
      );
    }
  }
  if (m.event) {
    const data: UserEventRecord = { user_id: row.user_id, timestamp: now.toISOString() };
    // The decisions carry the currency; the approvals also the new limit (cents here; the payload renders it).
    if (action !== 'request') data.currency = 'USD';
    if (SETS_LIMIT[action]) data.approved_daily_limit = row.approved_daily_limit!;
    await insertTenantEvent(tx, deps, row, m.event, data, row.intent_id);
  }
  return row;
}

/**
 * A user asks for a higher daily limit. The user's row is locked; with a request open already, that one is the
 * answer (`created: false`) and nothing is written. `requested_daily_limit`, when given, must be more than the daily
 * limit in force.
 */
async function requestLimit(
  deps: Deps, tx: Tx, tenant: Tenant, settings: OperatorSettings, user: UserRow, requested: number | undefined, intentId: string | null,
): Promise<{ request: LimitRequestRow; created: boolean }> {
  const inForce = limitsFor(settings, user).daily_cash_in;
  if (requested !== undefined && requested <= inForce) {
    throw errors.validation('requested_daily_limit', `requested_daily_limit (${requested}) must be more than the user's daily limit in force (${inForce} cents)`, 'limit_not_higher');
  }
  const open = await openRequest(tx, tenant, user.id);
  if (open) return { request: open, created: false };
  const request = await moveLimitRequest(deps, tx, { status: 'new', tenant, user_id: user.id, intent_id: intentId, requested_daily_limit: requested ?? null }, 'request');
  return { request, created: true };
}

const tenantOf = (caller: Caller): Tenant => ({ operator_id: caller.operatorId, environment: caller.environment });

async function lockedUser(tx: Tx, t: Tenant, userId: string): Promise<UserRow> {
  const u = await lockUser(tx, t, userId);
  if (!u) throw errors.notFound('user', userId);
  return u;
}

/** POST /user/{id}/limits_request: the operator's own UI asks for the user. */
export async function requestLimitForUser(deps: Deps, caller: Caller, userId: string, body: { requested_daily_limit?: number }) {
  return withTx(deps.db, async (tx) => {
    const user = await lockedUser(tx, tenantOf(caller), userId);
    const { request } = await requestLimit(deps, tx, tenantOf(caller), caller.settings, user, body.requested_daily_limit, null);
    return publicLimitRequest(request);
  });
}

/**
 * POST /pay/{op}/{id}/limits_request: the user asks from the payment page of an intent made with `display_limits`
 * (with the page's session token `s`, like its decision endpoint). Answers what the page shows.
 */
export async function requestLimitFromPage(deps: Deps, op: string, intentId: string, body: { s: string; requested_daily_limit?: number }) {
  return withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<Pick<IntentRow, 'operator_id' | 'environment' | 'id' | 'user_id' | 'session_token' | 'display_limits'> & { settings: OperatorSettings }>(
      `SELECT i.operator_id, i.environment, i.id, i.user_id, i.session_token, i.display_limits, o.settings
         FROM intents i JOIN operators o ON o.id = i.operator_id WHERE i.operator_id = $1 AND i.id = $2`,
      [op, intentId],
    );
    const i = rows[0];
    // A wrong session token looks exactly like a missing intent (as on the page itself).
    if (!i || !constantTimeEqual(body.s, i.session_token)) throw errors.notFound('payment_session', intentId);
    if (i.display_limits !== true) throw new DomainError('limits_not_displayed');
    const user = await lockedUser(tx, i, i.user_id);
    const { request } = await requestLimit(deps, tx, i, i.settings, user, body.requested_daily_limit, i.id);
    return {
      status: request.status, requested_daily_limit: request.requested_daily_limit,
      daily_limit: limitsFor(i.settings, user).daily_cash_in, currency: 'USD' as const,
    };
  });
}

/** GET /user/{id}/limits_request: the user's latest request. */
export async function latestLimitRequest(deps: Deps, caller: Caller, userId: string) {
  const { rows } = await deps.db.query<LimitRequestRow & { known: boolean }>(
    `SELECT r.*, true AS known FROM users u
       LEFT JOIN LATERAL (SELECT * FROM limit_requests l WHERE l.operator_id = u.operator_id AND l.environment = u.environment AND l.user_id = u.id
                           ORDER BY l.created_at DESC, l.id DESC LIMIT 1) r ON true
      WHERE u.operator_id = $1 AND u.environment = $2 AND u.id = $3`,
    [caller.operatorId, caller.environment, userId],
  );
  if (!rows[0]) throw errors.notFound('user', userId);
  if (!rows[0].id) throw new DomainError('limit_request_not_found', `user ${userId} has made no limit request`);
  return publicLimitRequest(rows[0]);
}

export interface UpdateUserInput extends UserKycPatch {
  operator_stats?: NonNullable<OperatorInfo['operator_stats']>;
  other_processors_limits?: NonNullable<OperatorInfo['other_processors_limits']>;
}

/**
 * PATCH /user/{id}: the operator's answer to a limit request (the update-user call) and changes of the user's own
 * contact fields. The limit-request fields are stored with the open request (`operator_stats` merged field by field,
 * `other_processors_limits` replaced); without an open request they are a 409 `no_limit_request`. The KYC fields
 * follow the rules of POST /user. One transaction: all of it or nothing. Answers the user as GET /user/{id}.
 */
export async function updateUser(deps: Deps, caller: Caller, userId: string, input: UpdateUserInput) {
  const { operator_stats: stats, other_processors_limits: others, ...kyc } = input;
  const fields = Object.keys(input).filter((k) => (input as Record<string, unknown>)[k] !== undefined);
  if (fields.length === 0) {
    throw errors.validation(undefined, 'send at least one of operator_stats, other_processors_limits, email, phone_number, address', 'missing_field');
  }
  if (others) {
    const seen = new Set<string>();
    others.forEach((o, k) => {
      const name = o.processor.trim().toLowerCase();
      if (seen.has(name)) throw errors.validation(`other_processors_limits.${k}.processor`, `processor ${JSON.stringify(o.processor)} is listed twice`, 'invalid_value');
      seen.add(name);
    });
  }
  return withTx(deps.db, async (tx) => {
    let user = await lockedUser(tx, tenantOf(caller), userId);
    if (stats !== undefined || others !== undefined) {
      const open = await openRequest(tx, tenantOf(caller), userId);
      if (!open) {
        throw errors.conflict('no_limit_request', `user ${userId} has no open limit request: operator_stats and other_processors_limits answer one (see user.limits_request)`);
      }
      const info: OperatorInfo = { ...(open.operator_info ?? {}), updated_at: deps.clock.now().toISOString() };
      if (stats !== undefined) info.operator_stats = { ...(open.operator_info?.operator_stats ?? {}), ...stats };
      if (others !== undefined) info.other_processors_limits = others.map((o) => ({ processor: o.processor.trim(), daily_limit: o.daily_limit }));
      await tx.query('UPDATE limit_requests SET operator_info = $3 WHERE operator_id = $1 AND id = $2', [open.operator_id, open.id, JSON.stringify(info)]);
    }
    user = await updateUserKyc(deps, tx, caller, user, kyc);
    return renderUser(tx, caller, user);
  });
}

/**
 * POST /simulate/limits_decision (sandbox): decides the user's open request. `approved` and `partial` need
 * `approved_daily_limit` (integer cents), which becomes the user's daily limit; a partial approval is less than the
 * amount asked for, when one was; `declined` takes none and changes no limit.
 */
export async function simulateLimitsDecision(
  deps: Deps, caller: Caller, input: { user_id: string; decision: LimitDecision; approved_daily_limit?: number },
) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  const amount = input.approved_daily_limit;
  if (input.decision === 'declined' && amount !== undefined) {
    throw errors.validation('approved_daily_limit', 'a declined request changes no limit: send no approved_daily_limit', 'invalid_value');
  }
  if (input.decision !== 'declined' && amount === undefined) {
    throw errors.validation('approved_daily_limit', `decision ${input.decision} needs approved_daily_limit (integer cents > 0)`, 'missing_field');
  }
  return withTx(deps.db, async (tx) => {
    await lockedUser(tx, tenantOf(caller), input.user_id);
    const open = await openRequest(tx, tenantOf(caller), input.user_id);
    if (!open) throw errors.conflict('no_limit_request', `user ${input.user_id} has no open limit request`);
    if (input.decision === 'partial' && open.requested_daily_limit !== null && amount! >= open.requested_daily_limit) {
      throw errors.validation('approved_daily_limit', `a partial approval must be less than the ${open.requested_daily_limit} cents asked for`, 'invalid_partial_limit');
    }
    return publicLimitRequest(await moveLimitRequest(deps, tx, open, DECISIONS[input.decision], amount ?? null));
  });
}

/** What the payment page shows of the user's limit (see limitsSection in api/routes/limits.ts). */
export interface PageLimits {
  daily_limit: number;
  currency: 'USD';
  /** The user's open request, if any. */
  open_request: { requested_daily_limit: number | null; created_at: string } | null;
}

/** The page's limit facts for an intent's user; null when the intent was not made with `display_limits: true`. */
export async function pageLimits(q: Queryable, i: Pick<IntentRow, 'operator_id' | 'environment' | 'user_id' | 'display_limits'>, settings: OperatorSettings): Promise<PageLimits | null> {
  if (i.display_limits !== true) return null;
  const { rows } = await q.query<Pick<UserRow, 'daily_limit' | 'daily_limit_request_id'> & { requested_daily_limit: number | null; requested_at: Date | null }>(
    `SELECT u.daily_limit, u.daily_limit_request_id, r.requested_daily_limit, r.created_at AS requested_at
       FROM users u
       LEFT JOIN limit_requests r ON r.operator_id = u.operator_id AND r.environment = u.environment AND r.user_id = u.id AND r.status = ANY($4::text[])
      WHERE u.operator_id = $1 AND u.environment = $2 AND u.id = $3`,
    [i.operator_id, i.environment, i.user_id, OPEN],
  );
  const u = rows[0];
  if (!u) return null;
  return {
    daily_limit: limitsFor(settings, u).daily_cash_in,
    currency: 'USD',
    open_request: u.requested_at ? { requested_daily_limit: u.requested_daily_limit, created_at: u.requested_at.toISOString() } : null,
  };
}

/** The intents (of `intentIds`) whose page a limit request was made from: GET /intent's `limits_requested`. */
export async function intentsWithLimitRequests(q: Queryable, operatorId: string, intentIds: readonly string[]): Promise<Set<string>> {
  if (intentIds.length === 0) return new Set();
  const { rows } = await q.query<{ intent_id: string }>(
    'SELECT DISTINCT intent_id FROM limit_requests WHERE operator_id = $1 AND intent_id = ANY($2::text[])',
    [operatorId, intentIds],
  );
  return new Set(rows.map((r) => r.intent_id));
}
