/**
 * Push Native: widget sessions (nonces), card and bank credentials, tokens minted from them, Apple Pay mobile.
 *
 * A nonce (POST /user/{id}/url) stands in for the API key on the calls a browser or a phone makes: the widget page,
 * its card and bank forms, /applepay/config and /applepay/token. It names its operator (the text before the first
 * "."), so every lookup goes through operator_id. It lives 30 minutes and is spent by the first token it mints.
 *
 * Of a card only the last 4, brand, expiry and a fingerprint (HMAC of the PAN with a server key) are kept: the PAN
 * and CVV are checked (domain/card.ts) and dropped. The same card, bank account or Apple Pay card of one user is one
 * credential (one `cred_` id), found again by its fingerprint.
 */
import { createHash } from 'node:crypto';
import type { Direction } from '@cashwire/webhooks';
import { BRAND_NAME, checkCard, TEST_CARDS, type Card, type CardInput } from '../../domain/card.js';
import type { CredentialType, Environment } from '../../domain/decision.js';
import { DomainError, errors } from '../../domain/errors.js';
import { withTx, type Queryable, type Tx } from '../../db/pool.js';
import type { OperatorSettings, StoredCredentialRow } from '../../store/rows.js';
import type { Caller, Deps } from '../context.js';

export const NONCE_TTL_MS = 30 * 60_000;
/** Refused cards or bank sign-ins after which a nonce is done. */
export const MAX_ATTEMPTS = 10;
export const TOKEN_TTL_MS = 15 * 60_000;

export const WIDGET_TYPES = ['apple_pay', 'card_only', 'secure_debit'] as const;
export type WidgetType = (typeof WIDGET_TYPES)[number];

/** The sandbox bank sign-in (the values Push's own demo uses), and the account it links. */
export const SANDBOX_BANK = { username: 'mxuser', password: 'password', bankName: 'MX Bank', routing: '110000000' } as const;

/** Who owns a credential or token: the operator and environment of a key or of a nonce, and the user. */
interface Owner { operator_id: string; environment: Environment; user_id: string }

export interface NonceRow extends Owner {
  id: string;
  direction: Direction;
  type: WidgetType | null;
  created_at: Date;
  expires_at: Date;
  spent_at: Date | null;
  attempts: number;
  operator_name: string;
  operator_settings: OperatorSettings;
}

const nonceInvalid = () => new DomainError('nonce_invalid');

/** How a nonce ends: Push's clients pick their API host from it (config.nonceSuffixes). */
export function nonceSuffix(deps: Deps, env: Environment): string {
  return deps.config.nonceSuffixes === 'push' ? `_${env}` : '_local';
}

/** The operator a nonce names, or undefined when it names none. */
export function operatorOfNonce(nonce: string): string | undefined {
  const dot = nonce.indexOf('.');
  return dot > 0 ? nonce.slice(0, dot) : undefined;
}

function fkUser(userId: string) {
  return (err: unknown): never => {
    if ((err as { code?: string }).code === '23503') throw errors.notFound('user', userId);
    throw err;
  };
}

/** POST /user/{id}/url: a widget session for the user, and the URL of its page. */
export async function createWidgetUrl(deps: Deps, caller: Caller, userId: string, input: { direction: Direction; type?: WidgetType }) {
  const now = deps.clock.now();
  const nonce = `${caller.operatorId}.${deps.ids.next('')}${nonceSuffix(deps, caller.environment)}`;
  await deps.db
    .query(
      `INSERT INTO nonces (operator_id, environment, id, user_id, direction, type, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [caller.operatorId, caller.environment, nonce, userId, input.direction, input.type ?? null, now, new Date(now.getTime() + NONCE_TTL_MS)],
    )
    .catch(fkUser(userId));
  const url = new URL(`${deps.config.publicUrl}/widget/`);
  url.searchParams.set('client', caller.operatorId);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('mode', 'entry');
  if (input.type) url.searchParams.set('type', input.type);
  return { url: url.toString() };
}

/**
 * The nonce's row, with its operator, or 403 nonce_invalid: unknown, of another operator than `client`, expired, or
 * (unless `spentOk`) spent. `lock` holds the row until the transaction ends (a mint).
 */
export async function openNonce(deps: Deps, q: Queryable, nonce: string, opts: { client?: string; lock?: boolean; spentOk?: boolean } = {}): Promise<NonceRow> {
  const op = operatorOfNonce(nonce);
  if (!op || (opts.client !== undefined && opts.client !== op)) throw nonceInvalid();
  const { rows } = await q.query<NonceRow>(
    `SELECT n.*, o.name AS operator_name, o.settings AS operator_settings FROM nonces n JOIN operators o ON o.id = n.operator_id
      WHERE n.operator_id = $1 AND n.id = $2${opts.lock ? ' FOR UPDATE OF n' : ''}`,
    [op, nonce],
  );
  const n = rows[0];
  if (!n || n.expires_at.getTime() <= deps.clock.now().getTime() || (n.spent_at && !opts.spentOk) || n.attempts >= MAX_ATTEMPTS) throw nonceInvalid();
  return n;
}

/**
 * Runs a mint on the locked nonce; a refusal of what the user typed (a bad card, a wrong bank sign-in) counts one
 * attempt against the nonce, committed even though the mint is not.
 */
async function withNonce<T>(deps: Deps, nonce: string, fn: (tx: Tx, n: NonceRow) => Promise<T>): Promise<T> {
  let refused: NonceRow | undefined;
  try {
    return await withTx(deps.db, async (tx) => {
      const n = await openNonce(deps, tx, nonce, { lock: true });
      try {
        return await fn(tx, n);
      } catch (err) {
        if (err instanceof DomainError && COUNTED.has(err.code)) refused = n;
        throw err;
      }
    });
  } catch (err) {
    if (refused) await deps.db.query('UPDATE nonces SET attempts = attempts + 1 WHERE operator_id = $1 AND id = $2', [refused.operator_id, refused.id]);
    throw err;
  }
}

/** The refusals that count as an attempt: what a person typed into the card form or the bank sign-in. */
const COUNTED = new Set(['invalid_card_number', 'invalid_expiry', 'card_expired', 'invalid_cvv', 'bank_sign_in_failed']);

function requireType(n: NonceRow, wanted: WidgetType): void {
  if (n.type !== null && n.type !== wanted) {
    throw errors.validation('nonce', `this widget session is for ${n.type}, not ${wanted}: get a URL of type ${wanted}`, 'invalid_value');
  }
}

const CREDENTIAL_METHOD: Record<CredentialType, StoredCredentialRow['method_type']> = {
  secure_debit: 'secure_debit', apple_pay_debit: 'apple_pay', card_only_debit: 'card_only', card_only_credit: 'card_only',
};

interface NewCredential {
  type: CredentialType;
  fingerprint: string;
  display_name: string;
  last4: string;
  brand?: string | null;
  card_last4?: string | null;
  exp_month?: number | null;
  exp_year?: number | null;
  bank_name?: string | null;
  account_last4?: string | null;
  routing?: string | null;
  authenticated?: boolean;
  always_step_up?: boolean;
}

/** One credential per user and fingerprint: a card added again is the same credential (its expiry brought up to date). */
export async function upsertCredential(deps: Deps, tx: Queryable, owner: Owner, c: NewCredential): Promise<StoredCredentialRow> {
  const { rows } = await tx.query<StoredCredentialRow>(
    `INSERT INTO credentials (operator_id, environment, id, user_id, method_type, display_name, last4, created_at, type, fingerprint, brand, card_last4,
                              exp_month, exp_year, bank_name, account_last4, routing, authenticated, always_step_up)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
     ON CONFLICT (operator_id, environment, user_id, fingerprint) DO UPDATE
       SET exp_month = coalesce(EXCLUDED.exp_month, credentials.exp_month), exp_year = coalesce(EXCLUDED.exp_year, credentials.exp_year),
           authenticated = credentials.authenticated OR EXCLUDED.authenticated
     RETURNING *`,
    [owner.operator_id, owner.environment, deps.ids.next('cred_'), owner.user_id, CREDENTIAL_METHOD[c.type], c.display_name, c.last4, deps.clock.now(),
      c.type, c.fingerprint, c.brand ?? null, c.card_last4 ?? null, c.exp_month ?? null, c.exp_year ?? null, c.bank_name ?? null, c.account_last4 ?? null,
      c.routing ?? null, c.authenticated ?? false, c.always_step_up ?? false],
  ).catch(fkUser(owner.user_id));
  return rows[0]!;
}

/** The payment methods of POST /token: a token names one, not a card. */
type Method = StoredCredentialRow['method_type'];
const METHOD_CREDENTIAL: Record<Method, { type: CredentialType; display: string }> = {
  card_only: { type: 'card_only_debit', display: 'Visa Debit' },
  secure_debit: { type: 'secure_debit', display: 'Checking Account' },
  apple_pay: { type: 'apple_pay_debit', display: 'Apple Pay' },
};

/** The credential of a payment method of POST /token: the same user and method always get the same one. */
export async function methodCredential(deps: Deps, q: Queryable, owner: Owner, method: Method): Promise<StoredCredentialRow> {
  const last4 = String(parseInt(createHash('sha256').update(`${owner.user_id}:${method}`).digest('hex').slice(0, 8), 16) % 10000).padStart(4, '0');
  return upsertCredential(deps, q, owner, { type: METHOD_CREDENTIAL[method].type, fingerprint: `method:${method}`, display_name: METHOD_CREDENTIAL[method].display, last4 });
}

function cardCredential(deps: Deps, env: Environment, card: Card): NewCredential {
  const funding = card.funding === 'credit' ? 'Credit' : 'Debit';
  return {
    type: card.funding === 'credit' ? 'card_only_credit' : 'card_only_debit',
    fingerprint: `card:${deps.secrets.fingerprint(card.pan)}`,
    display_name: `${BRAND_NAME[card.brand]} ${funding}`,
    last4: card.last4,
    brand: card.brand,
    card_last4: card.last4,
    exp_month: card.expMonth,
    exp_year: card.expYear,
    // The sandbox's step-up test card; production has no test cards.
    always_step_up: env === 'sandbox' && card.pan === TEST_CARDS.stepUp,
  };
}

/** A token for a credential: lives 15 minutes, spent by one authorization. */
async function mintToken(deps: Deps, tx: Queryable, c: StoredCredentialRow, transactionIdentifier: string | null = null): Promise<string> {
  const id = deps.ids.next('token_');
  const now = deps.clock.now();
  await tx.query(
    `INSERT INTO tokens (operator_id, environment, id, user_id, type, created_at, credential_id, expires_at, transaction_identifier)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [c.operator_id, c.environment, id, c.user_id, c.method_type, now, c.id, new Date(now.getTime() + TOKEN_TTL_MS), transactionIdentifier],
  );
  return id;
}

async function spend(deps: Deps, tx: Tx, n: NonceRow): Promise<void> {
  await tx.query('UPDATE nonces SET spent_at = $3 WHERE operator_id = $1 AND id = $2', [n.operator_id, n.id, deps.clock.now()]);
}

function checkedCard(deps: Deps, input: CardInput): Card {
  const r = checkCard(input, deps.clock.now());
  if ('problem' in r) throw errors.validation(r.problem.field, r.problem.message, r.problem.code);
  return r.card;
}

/** What the widget page learns of a credential (and the operator's page, through the token, nothing). */
function shortCredential(c: StoredCredentialRow) {
  return { id: c.id, type: c.type, card_last4: c.card_last4, brand: c.brand, bank_name: c.bank_name, account_last4: c.account_last4 };
}

/** POST /widget/card: the card form of the widget page. */
export async function widgetCard(deps: Deps, input: CardInput & { nonce: string }) {
  return withNonce(deps, input.nonce, async (tx, n) => {
    requireType(n, 'card_only');
    const card = checkedCard(deps, input);
    const c = await upsertCredential(deps, tx, n, cardCredential(deps, n.environment, card));
    const token = await mintToken(deps, tx, c);
    await spend(deps, tx, n);
    return { token, credential: shortCredential(c) };
  });
}

/** POST /widget/bank: the sandbox bank sign-in links the user's checking account (secure_debit) and mints a token. */
export async function widgetBank(deps: Deps, input: { nonce: string; username: string; password: string }) {
  return withNonce(deps, input.nonce, async (tx, n) => {
    requireType(n, 'secure_debit');
    if (input.username !== SANDBOX_BANK.username || input.password !== SANDBOX_BANK.password) {
      throw errors.validation('username', n.environment === 'sandbox'
        ? `the bank username or password is wrong (sandbox: ${SANDBOX_BANK.username} / ${SANDBOX_BANK.password})`
        : 'the bank username or password is wrong', 'bank_sign_in_failed');
    }
    // The simulated bank has one checking account per user; its number is derived from the user, so signing in again
    // links the same account (the same credential).
    const account = String(parseInt(createHash('sha256').update(`${n.operator_id}:${n.user_id}:bank`).digest('hex').slice(0, 12), 16)).slice(-10).padStart(10, '0');
    const c = await upsertCredential(deps, tx, n, {
      type: 'secure_debit',
      fingerprint: `bank:${SANDBOX_BANK.routing}:${deps.secrets.fingerprint(account)}`,
      display_name: `${SANDBOX_BANK.bankName} Checking`,
      last4: account.slice(-4),
      bank_name: SANDBOX_BANK.bankName,
      account_last4: account.slice(-4),
      routing: SANDBOX_BANK.routing,
      authenticated: true,
    });
    const token = await mintToken(deps, tx, c);
    await spend(deps, tx, n);
    return { token, credential: shortCredential(c) };
  });
}

/** POST /tokenize (API key): a card straight from the operator's PCI-scoped backend. */
export async function tokenizeCard(deps: Deps, caller: Caller, input: CardInput & { user_id: string }) {
  const card = checkedCard(deps, input);
  return withTx(deps.db, async (tx) => {
    const c = await upsertCredential(deps, tx, { operator_id: caller.operatorId, environment: caller.environment, user_id: input.user_id },
      cardCredential(deps, caller.environment, card));
    return { token: await mintToken(deps, tx, c) };
  });
}

// ---- Credentials -------------------------------------------------------------------------------------------------

const pad2 = (n: number) => String(n).padStart(2, '0');

export function publicCredential(c: StoredCredentialRow) {
  return {
    id: c.id,
    created_at: c.created_at.toISOString(),
    type: c.type,
    display_name: c.display_name,
    card_last4: c.card_last4 ?? (c.type !== 'secure_debit' && c.fingerprint.startsWith('method:') ? c.last4 : null),
    brand: c.brand,
    expiration: c.exp_month && c.exp_year ? `${pad2(c.exp_month)}/${pad2(c.exp_year % 100)}` : null,
    account_last4: c.account_last4 ?? (c.type === 'secure_debit' ? c.last4 : null),
    bank_name: c.bank_name,
    authenticated: c.authenticated,
  };
}

/** The `payment_credentials` of GET /user/{id}. */
export function paymentCredential(c: StoredCredentialRow) {
  const p = publicCredential(c);
  return {
    id: c.id,
    type: c.type,
    bank_name: c.bank_name,
    account: p.account_last4 ? { number_mask: `******${p.account_last4}`, routing: c.routing } : null,
    card: p.card_last4 ? { primary_account_number_mask: `************${p.card_last4}`, expiration: p.expiration, brand: c.brand } : null,
  };
}

export async function credentialsOf(q: Queryable, owner: Owner, types?: readonly string[]): Promise<StoredCredentialRow[]> {
  const { rows } = await q.query<StoredCredentialRow>(
    `SELECT * FROM credentials WHERE operator_id = $1 AND environment = $2 AND user_id = $3 AND ($4::text[] IS NULL OR type = ANY($4))
      ORDER BY created_at, id`,
    [owner.operator_id, owner.environment, owner.user_id, types ?? null],
  );
  return rows;
}

async function requireUser(q: Queryable, caller: Caller, userId: string): Promise<void> {
  const { rows } = await q.query('SELECT 1 FROM users WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, userId]);
  if (!rows[0]) throw errors.notFound('user', userId);
}

/** GET /user/{id}/credential/list?type=… and GET /user/{id}/credentials (no filter). */
export async function listCredentials(deps: Deps, caller: Caller, userId: string, types?: readonly string[]) {
  await requireUser(deps.db, caller, userId);
  const rows = await credentialsOf(deps.db, { operator_id: caller.operatorId, environment: caller.environment, user_id: userId }, types);
  return { data: rows.map(publicCredential), next_cursor: null };
}

/** POST /user/{id}/credential {token}: the token's card, bank account or Apple Pay card, as a stored credential. */
export async function saveCredential(deps: Deps, caller: Caller, userId: string, token: string) {
  await requireUser(deps.db, caller, userId);
  const { rows } = await deps.db.query<{ type: Method; credential_id: string | null; expires_at: Date | null; intent_id: string | null }>(
    'SELECT type, credential_id, expires_at, intent_id FROM tokens WHERE operator_id = $1 AND environment = $2 AND id = $3 AND user_id = $4',
    [caller.operatorId, caller.environment, token, userId],
  );
  const t = rows[0];
  if (!t) throw errors.notFound('token', token);
  if (!t.intent_id && t.expires_at && t.expires_at.getTime() <= deps.clock.now().getTime()) throw new DomainError('token_expired', undefined, 'token');
  const owner = { operator_id: caller.operatorId, environment: caller.environment, user_id: userId };
  if (t.credential_id) {
    const { rows: c } = await deps.db.query<StoredCredentialRow>('SELECT * FROM credentials WHERE operator_id = $1 AND id = $2', [caller.operatorId, t.credential_id]);
    return publicCredential(c[0]!);
  }
  // A token of POST /token names a payment method: its credential is the method's.
  return publicCredential(await methodCredential(deps, deps.db, owner, t.type));
}

// ---- Apple Pay mobile --------------------------------------------------------------------------------------------

const NETWORKS = ['visa', 'masterCard', 'amex', 'discover'];

/** GET /applepay/config: what the Apple Pay sheet needs, for a registered merchant identifier. */
export async function applePayConfig(deps: Deps, nonce: string, merchantIdentifier: string) {
  const n = await openNonce(deps, deps.db, nonce);
  requireType(n, 'apple_pay');
  const ap = n.operator_settings.apple_pay ?? {};
  if (!(ap.merchant_identifiers ?? []).includes(merchantIdentifier)) {
    throw new DomainError('apple_pay_not_enabled', `Apple Pay mobile is not enabled for this merchant identifier (${merchantIdentifier}): add it to apple_pay.merchant_identifiers with PATCH /operator/settings`);
  }
  return {
    merchant_capabilities: ['supports3DS', 'supportsDebit'],
    supported_networks: NETWORKS,
    country_code: 'US',
    total_label: ap.total_label ?? n.operator_name,
    bt_application_key: ap.bt_application_key ?? `cashwire_${n.environment}_apple_pay`,
    bt_merchant_registration_id: ap.bt_merchant_registration_id ?? n.operator_id,
  };
}

export interface ApplePayTokenInput {
  nonce: string;
  bin: string;
  bt_token_id: string;
  bt_fingerprint: string;
  display_name: string;
  network: string;
  type: string;
  amount: number;
  currency: 'USD';
  direction: 'cash_in';
  transaction_identifier?: string;
}

const BRAND_OF_NETWORK: Record<string, string> = { visa: 'visa', mastercard: 'mastercard', amex: 'amex', americanexpress: 'amex', discover: 'discover' };

/**
 * POST /applepay/token: the Apple Pay card vaulted by the phone becomes a credential (apple_pay_debit; the same
 * bt_fingerprint, the same credential) and a token. With a transaction_identifier the mint happens once: a repeat,
 * even one that races it, gets the first token (the nonce's row lock orders mints of one nonce; the unique index
 * those of several).
 */
export async function applePayToken(deps: Deps, input: ApplePayTokenInput) {
  const last4 = /(\d{4})\s*$/.exec(input.display_name)?.[1];
  if (!last4) throw errors.validation('display_name', 'display_name must end in the last 4 digits of the card, e.g. "Visa 4242"', 'invalid_display_name');
  return withTx(deps.db, async (tx) => {
    const n = await openNonce(deps, tx, input.nonce, { lock: true, spentOk: true });
    const txid = input.transaction_identifier ?? null;
    const firstToken = async () => {
      const { rows } = await tx.query<{ id: string }>(
        'SELECT id FROM tokens WHERE operator_id = $1 AND environment = $2 AND transaction_identifier = $3 AND user_id = $4',
        [n.operator_id, n.environment, txid, n.user_id],
      );
      return rows[0]?.id;
    };
    if (txid !== null) {
      const first = await firstToken();
      if (first) return { token_id: first };
    }
    if (n.spent_at) throw nonceInvalid();
    requireType(n, 'apple_pay');
    const c = await upsertCredential(deps, tx, n, {
      type: 'apple_pay_debit',
      fingerprint: `apple_pay:${input.bt_fingerprint}`,
      display_name: input.display_name.trim(),
      last4,
      brand: BRAND_OF_NETWORK[input.network.toLowerCase().replace(/[^a-z]/g, '')] ?? input.network.toLowerCase(),
      card_last4: last4,
      authenticated: true, // Apple Pay authenticates the cardholder on the device
    });
    if (txid !== null) {
      // Another nonce's mint with this transaction_identifier may be committing: the insert waits for it, then skips.
      const id = deps.ids.next('token_');
      const now = deps.clock.now();
      const { rowCount } = await tx.query(
        `INSERT INTO tokens (operator_id, environment, id, user_id, type, created_at, credential_id, expires_at, transaction_identifier)
         VALUES ($1, $2, $3, $4, 'apple_pay', $5, $6, $7, $8) ON CONFLICT (operator_id, environment, transaction_identifier) WHERE transaction_identifier IS NOT NULL DO NOTHING`,
        [n.operator_id, n.environment, id, n.user_id, now, c.id, new Date(now.getTime() + TOKEN_TTL_MS), txid],
      );
      if (rowCount === 0) {
        const first = await firstToken();
        if (!first) throw errors.validation('transaction_identifier', 'this transaction_identifier was used for another user', 'invalid_value');
        return { token_id: first };
      }
      await spend(deps, tx, n);
      return { token_id: id };
    }
    const token = await mintToken(deps, tx, c);
    await spend(deps, tx, n);
    return { token_id: token };
  });
}
