/**
 * The sandbox helpers of the money routes: POST /simulate/settlement (settle an intent now, answer its settlement
 * transaction) and POST /sandbox/credential (a credential of a type, without the widget). Both refuse a production
 * key (403 sandbox_only) before anything else.
 */
import { createHash } from 'node:crypto';
import type { CredentialType } from '../../domain/decision.js';
import { errors } from '../../domain/errors.js';
import type { TransactionRow } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';
import { simulateSettle } from '../intents/intents.js';
import { publicCredential, SANDBOX_BANK, upsertCredential } from '../native/native.js';

export const SANDBOX_CREDENTIAL_TYPES = ['secure_debit', 'card_only_debit', 'card_only_credit', 'apple_pay_debit', 'apple_pay'] as const;
export type SandboxCredentialType = (typeof SANDBOX_CREDENTIAL_TYPES)[number];

/** The card_last4 of a sandbox card credential made without one: the sandbox's approving card, 5555 5555 5555 4444. */
export const DEFAULT_SANDBOX_LAST4 = '4444';

export function publicTransaction(t: TransactionRow & { intent_id?: string | null }) {
  return {
    id: t.id, amount: t.amount, currency: t.currency, created_at: t.created_at.toISOString(), date: t.date, status: t.status, account_id: t.account_id,
    type: t.type ?? 'intent', source_id: t.source_id ?? null, intent_id: t.intent_id ?? null,
  };
}

/**
 * POST /simulate/settlement {intent_id}: settles an approved intent now (simulateSettle: the ledger, the balance, the
 * intent.settled event) and answers its settlement transaction; an intent settled already answers the same one.
 */
export async function simulateSettlement(deps: Deps, caller: Caller, intentId: string) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  await simulateSettle(deps, caller, intentId);
  const { rows } = await deps.db.query<TransactionRow>(
    `SELECT * FROM transactions WHERE operator_id = $1 AND intent_id = $2 AND type = 'intent'`,
    [caller.operatorId, intentId],
  );
  return publicTransaction(rows[0]!);
}

/**
 * POST /sandbox/credential {user_id, type, card_last4?}: a credential of that type for the user, fingerprint
 * `sandbox:<type>:<last4>` (the same type and last 4 again: the same credential). Card types (card_only_debit,
 * card_only_credit) are Mastercards; apple_pay means apple_pay_debit; card_last4 defaults to 4444 and 9301 is the
 * card whose refunds the sandbox declines. secure_debit is an MX Bank checking account (card_last4 is refused).
 */
export async function sandboxCredential(deps: Deps, caller: Caller, input: { user_id: string; type: SandboxCredentialType; card_last4?: string }) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  const type: CredentialType = input.type === 'apple_pay' ? 'apple_pay_debit' : input.type;
  const owner = { operator_id: caller.operatorId, environment: caller.environment, user_id: input.user_id };
  if (type === 'secure_debit') {
    if (input.card_last4 !== undefined) throw errors.validation('card_last4', 'card_last4 applies to card and Apple Pay credentials, not to secure_debit (a bank account)', 'invalid_value');
    const account = String(parseInt(createHash('sha256').update(`${caller.operatorId}:${input.user_id}:sandbox-bank`).digest('hex').slice(0, 12), 16)).slice(-10).padStart(10, '0');
    const last4 = account.slice(-4);
    return publicCredential(await upsertCredential(deps, deps.db, owner, {
      type, fingerprint: `sandbox:${type}:${last4}`, display_name: `${SANDBOX_BANK.bankName} Checking`, last4,
      bank_name: SANDBOX_BANK.bankName, account_last4: last4, routing: SANDBOX_BANK.routing, authenticated: true,
    }));
  }
  const last4 = input.card_last4 ?? DEFAULT_SANDBOX_LAST4;
  const display = type === 'apple_pay_debit' ? `Mastercard ${last4}` : `Mastercard ${type === 'card_only_credit' ? 'Credit' : 'Debit'}`;
  return publicCredential(await upsertCredential(deps, deps.db, owner, {
    type, fingerprint: `sandbox:${type}:${last4}`, display_name: display, last4, brand: 'mastercard', card_last4: last4,
    exp_month: 12, exp_year: deps.clock.now().getUTCFullYear() + 3, authenticated: type === 'apple_pay_debit',
  }));
}
