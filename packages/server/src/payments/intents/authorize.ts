import type { Direction } from '@cashwire/webhooks';
import { canWithdraw, requiresAuthentication } from '../../domain/decision.js';
import { DomainError, errors } from '../../domain/errors.js';
import { withTx, type Tx } from '../../db/pool.js';
import type { IntentRow, StoredCredentialRow } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';
import { decisionFor, intentUrl, publicIntent, renderIntent, type Verdict } from './intents.js';
import { decisionAction, INTENT, transition } from '../../domain/state-machine.js';
import { methodCredential, TOKEN_TTL_MS } from '../native/native.js';
import { insertEvents } from '../../store/events.js';
import { checkAccountId } from '../accounts/accounts.js';

export const TOKEN_TYPES = ['card_only', 'secure_debit', 'apple_pay'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** The rail and the intent `type` of each payment method. */
const METHOD: Record<TokenType, { rail: 'ach' | 'card'; type: string }> = {
  card_only: { rail: 'card', type: 'card_only' },
  secure_debit: { rail: 'ach', type: 'secure_debit' },
  apple_pay: { rail: 'card', type: 'card_only' },
};

/** POST /token: a token for a payment method of the user (no card data); lives 15 minutes like every token. */
export async function createToken(deps: Deps, caller: Caller, input: { user_id: string; type: TokenType }) {
  const id = deps.ids.next('token_');
  const now = deps.clock.now();
  await deps.db
    .query(
      `INSERT INTO tokens (operator_id, environment, id, user_id, type, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [caller.operatorId, caller.environment, id, input.user_id, input.type, now, new Date(now.getTime() + TOKEN_TTL_MS)],
    )
    .catch((err) => {
      if (err.code === '23503') throw errors.notFound('user', input.user_id);
      throw err;
    });
  return { token: id };
}

export interface AuthorizeInput {
  amount: number;
  currency: 'USD';
  direction: Direction;
  token?: string;
  credential_id?: string;
  redirect_url?: string;
  webhook_url?: string;
  webhook_secret?: string;
  tag?: string;
  account_id?: string;
  approval_mode?: 'automatic' | 'manual';
}

async function storedCredential(tx: Tx, operatorId: string, id: string): Promise<StoredCredentialRow | undefined> {
  const { rows } = await tx.query<StoredCredentialRow>('SELECT * FROM credentials WHERE operator_id = $1 AND id = $2', [operatorId, id]);
  return rows[0];
}

/** The answer to an authorization that requires authentication: the intent's id and its step-up page. */
function stepUpBody(deps: Deps, i: IntentRow) {
  return { id: i.id, url: intentUrl(deps, i) };
}

/**
 * POST /authorize: creates and decides an intent at once. Approved (or pending review) answers 200 with the
 * intent; declined answers 401 with the intent as body, which is what real clients expect; one that requires
 * authentication answers 202 `{id, url}`: the intent stays `created`, with no event, until its step-up page (the
 * hosted page at `url`) decides it. Idempotent by token: the token row is locked, and a used token returns the
 * first answer. A cash_out with a deposit-only credential (card_only_*) is declined `credential_not_withdrawable`.
 */
export async function authorize(deps: Deps, caller: Caller, input: AuthorizeInput): Promise<{ statusCode: number; body: unknown }> {
  if ((input.token === undefined) === (input.credential_id === undefined)) {
    throw errors.validation(input.token === undefined ? 'token' : 'credential_id', 'send exactly one of token or credential_id', 'token_or_credential_required');
  }
  return withTx(deps.db, async (tx) => {
    let userId: string;
    let method: TokenType;
    let credential: StoredCredentialRow;
    if (input.token !== undefined) {
      const { rows } = await tx.query<{ user_id: string; type: TokenType; intent_id: string | null; response_code: number | null; environment: string;
        credential_id: string | null; expires_at: Date | null }>(
        'SELECT user_id, type, intent_id, response_code, environment, credential_id, expires_at FROM tokens WHERE operator_id = $1 AND id = $2 FOR UPDATE',
        [caller.operatorId, input.token],
      );
      const t = rows[0];
      if (!t || t.environment !== caller.environment) throw errors.notFound('token', input.token);
      if (t.intent_id) {
        const { rows: prior } = await tx.query<IntentRow>('SELECT * FROM intents WHERE operator_id = $1 AND id = $2', [caller.operatorId, t.intent_id]);
        if (t.response_code === 202) return { statusCode: 202, body: stepUpBody(deps, prior[0]!) };
        return { statusCode: t.response_code!, body: await renderIntent(deps, tx, prior[0]!) };
      }
      if (t.expires_at && t.expires_at.getTime() <= deps.clock.now().getTime()) throw new DomainError('token_expired', undefined, 'token');
      // After the replay: a repeat answers as the first did, even if the operator has added accounts since.
      await checkAccountId(tx, caller, input.account_id);
      userId = t.user_id;
      method = t.type;
      credential = t.credential_id ? (await storedCredential(tx, caller.operatorId, t.credential_id))! : await methodCredential(deps, tx, { operator_id: caller.operatorId, environment: caller.environment, user_id: userId }, method);
    } else {
      await checkAccountId(tx, caller, input.account_id);
      const c = await storedCredential(tx, caller.operatorId, input.credential_id!);
      if (!c || c.environment !== caller.environment) throw errors.notFound('credential', input.credential_id!);
      userId = c.user_id;
      method = c.method_type;
      credential = c;
    }
    // Decided before it is written: one INSERT of the decided intent (and the token marked used in the same
    // statement), where creating it and then deciding it was an INSERT and two UPDATEs.
    const verdict: Verdict = input.direction === 'cash_out' && !canWithdraw(credential.type) ? { forced: 'credential_not_withdrawable' } : {};
    const decision = await decisionFor(deps, tx, {
      operator_id: caller.operatorId, environment: caller.environment, user_id: userId, direction: input.direction, amount: input.amount,
      approval_mode: input.approval_mode ?? 'automatic',
    }, caller.settings, verdict);
    const stepUp = decision.status !== 'declined'
      && requiresAuthentication({ environment: caller.environment, amount: input.amount, alwaysStepUp: credential.always_step_up });
    const statusCode = stepUp ? 202 : decision.status === 'declined' ? 401 : 200;
    const now = decision.decided_at;
    // The move out of `new`: the decision's, or for a step-up `open`: created, nothing used of the limits, no event
    // until its page decides.
    const move = transition(INTENT, 'new', stepUp ? 'open' : decisionAction(decision.status as 'approved' | 'pending' | 'declined'))!;
    const d = stepUp ? { decline_category: null, limits_utilization: null, decided_at: null, settle_at: null } : decision;
    const { rows } = await tx.query<IntentRow>(
      `WITH i AS (
         INSERT INTO intents (operator_id, environment, id, user_id, direction, amount, currency, status, approval_mode, rail, type, tag,
                              redirect_url, webhook_url, webhook_secret, account_id, credential_id, session_token, created_at, updated_at,
                              decline_category, limits_utilization, decided_at, settle_at, step_up)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $19, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $20, $21, $25, $22, $26) RETURNING *
       ), t AS (
         UPDATE tokens SET intent_id = i.id, response_code = $24 FROM i WHERE tokens.operator_id = $1 AND tokens.id = $23
       )
       SELECT * FROM i`,
      [caller.operatorId, caller.environment, deps.ids.next(`intent_${caller.environment}_`), userId, input.direction, input.amount, input.currency,
        input.approval_mode ?? 'automatic', METHOD[method].rail, METHOD[method].type, input.tag ?? null, input.redirect_url ?? null,
        input.webhook_url ?? null, input.webhook_secret ? deps.secrets.seal(input.webhook_secret) : null, input.account_id ?? null, credential.id,
        deps.ids.secret(18), now, move.to, d.decline_category,
        d.limits_utilization ? JSON.stringify(d.limits_utilization) : null, d.settle_at, input.token ?? null, statusCode, d.decided_at, stepUp],
    );
    const made = rows[0]!;
    if (move.event) await insertEvents(tx, deps, [{ intent: made, type: move.event }]);
    if (stepUp) return { statusCode, body: stepUpBody(deps, made) };
    return { statusCode, body: publicIntent(deps, made, [], credential) };
  });
}
