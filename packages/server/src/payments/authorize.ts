import { createHash } from 'node:crypto';
import type { Direction } from '@cashwire/webhooks';
import { errors } from '../domain/errors.js';
import { withTx, type Tx } from '../db/pool.js';
import type { CredentialRow, IntentRow } from '../store/rows.js';
import type { Caller, Deps } from './context.js';
import { decisionEvent, decisionFor, publicIntent, renderIntent } from './intents.js';
import { insertEvents } from '../store/events.js';

export const TOKEN_TYPES = ['card_only', 'secure_debit', 'apple_pay'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

const METHOD: Record<TokenType, { display: string; rail: 'ach' | 'card'; type: string }> = {
  card_only: { display: 'Visa Debit', rail: 'card', type: 'card_only' },
  secure_debit: { display: 'Checking Account', rail: 'ach', type: 'secure_debit' },
  apple_pay: { display: 'Apple Pay', rail: 'card', type: 'card_only' },
};

export async function createToken(deps: Deps, caller: Caller, input: { user_id: string; type: TokenType }) {
  const id = deps.ids.next('token_');
  await deps.db
    .query(
      `INSERT INTO tokens (operator_id, environment, id, user_id, type, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [caller.operatorId, caller.environment, id, input.user_id, input.type, deps.clock.now()],
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

/** The same user paying with the same method always gets the same credential. */
async function credentialFor(deps: Deps, tx: Tx, caller: Caller, userId: string, type: TokenType): Promise<CredentialRow> {
  const last4 = String(parseInt(createHash('sha256').update(`${userId}:${type}`).digest('hex').slice(0, 8), 16) % 10000).padStart(4, '0');
  const { rows } = await tx.query<CredentialRow>(
    `INSERT INTO credentials (operator_id, environment, id, user_id, method_type, display_name, last4, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (operator_id, environment, user_id, method_type) DO UPDATE SET method_type = EXCLUDED.method_type
     RETURNING id, display_name, last4`,
    [caller.operatorId, caller.environment, deps.ids.next('cred_'), userId, type, METHOD[type].display, last4, deps.clock.now()],
  );
  return rows[0]!;
}

/**
 * POST /authorize: creates and decides an intent at once. Approved (or pending review) answers 200 with the
 * intent; declined answers 401 with the intent as body, which is what real clients expect. Idempotent by token:
 * the token row is locked, and a used token returns the first answer.
 */
export async function authorize(deps: Deps, caller: Caller, input: AuthorizeInput): Promise<{ statusCode: number; body: unknown }> {
  if ((input.token === undefined) === (input.credential_id === undefined)) {
    throw errors.validation(input.token === undefined ? 'token' : 'credential_id', 'send exactly one of token or credential_id', 'token_or_credential_required');
  }
  return withTx(deps.db, async (tx) => {
    let userId: string;
    let method: TokenType;
    let credential: CredentialRow;
    if (input.token !== undefined) {
      const { rows } = await tx.query<{ user_id: string; type: TokenType; intent_id: string | null; response_code: number | null; environment: string }>(
        'SELECT user_id, type, intent_id, response_code, environment FROM tokens WHERE operator_id = $1 AND id = $2 FOR UPDATE',
        [caller.operatorId, input.token],
      );
      const t = rows[0];
      if (!t || t.environment !== caller.environment) throw errors.notFound('token', input.token);
      if (t.intent_id) {
        const { rows: prior } = await tx.query<IntentRow>('SELECT * FROM intents WHERE operator_id = $1 AND id = $2', [caller.operatorId, t.intent_id]);
        return { statusCode: t.response_code!, body: await renderIntent(deps, tx, prior[0]!) };
      }
      userId = t.user_id;
      method = t.type;
      credential = await credentialFor(deps, tx, caller, userId, method);
    } else {
      const { rows } = await tx.query<CredentialRow & { user_id: string; method_type: TokenType; environment: string }>(
        'SELECT id, display_name, last4, user_id, method_type, environment FROM credentials WHERE operator_id = $1 AND id = $2',
        [caller.operatorId, input.credential_id],
      );
      const c = rows[0];
      if (!c || c.environment !== caller.environment) throw errors.notFound('credential', input.credential_id!);
      userId = c.user_id;
      method = c.method_type;
      credential = c;
    }
    // Decided before it is written: one INSERT of the decided intent (and the token marked used in the same
    // statement), where creating it and then deciding it was an INSERT and two UPDATEs.
    const decision = await decisionFor(deps, tx, {
      operator_id: caller.operatorId, environment: caller.environment, user_id: userId, direction: input.direction, amount: input.amount,
      approval_mode: input.approval_mode ?? 'automatic',
    }, caller.settings);
    const statusCode = decision.status === 'declined' ? 401 : 200;
    const now = decision.decided_at;
    const { rows } = await tx.query<IntentRow>(
      `WITH i AS (
         INSERT INTO intents (operator_id, environment, id, user_id, direction, amount, currency, status, approval_mode, rail, type, tag,
                              redirect_url, webhook_url, webhook_secret, account_id, credential_id, session_token, created_at, updated_at,
                              decline_category, limits_utilization, decided_at, settle_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $19, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $20, $21, $18, $22) RETURNING *
       ), t AS (
         UPDATE tokens SET intent_id = i.id, response_code = $24 FROM i WHERE tokens.operator_id = $1 AND tokens.id = $23
       )
       SELECT * FROM i`,
      [caller.operatorId, caller.environment, deps.ids.next(`intent_${caller.environment}_`), userId, input.direction, input.amount, input.currency,
        input.approval_mode ?? 'automatic', METHOD[method].rail, METHOD[method].type, input.tag ?? null, input.redirect_url ?? null,
        input.webhook_url ?? null, input.webhook_secret ? deps.secrets.seal(input.webhook_secret) : null, input.account_id ?? null, credential.id,
        deps.ids.secret(18), now, decision.status, decision.decline_category,
        decision.limits_utilization ? JSON.stringify(decision.limits_utilization) : null, decision.settle_at, input.token ?? null, statusCode],
    );
    const decided = rows[0]!;
    await insertEvents(tx, deps, [{ intent: decided, type: decisionEvent(decided) }]);
    return { statusCode, body: publicIntent(deps, decided, [], credential) };
  });
}
