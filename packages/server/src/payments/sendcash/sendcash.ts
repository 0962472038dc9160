/**
 * The Sendcash Pay flavour: onboarding (a `sendcash` endpoint for Payment.Status plus GraphQL keys), charges by
 * bank transfer signed with the secret key, their completion or failure, and the Payment.Status event each one
 * ends with. Webhooks go through the same delivery engine as everything else.
 */
import { transition, TRANSFER } from '../../domain/state-machine.js';
import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '@cashwire/webhooks';
import { payerDetailsProblem } from '../../domain/banks.js';
import { DomainError, errors } from '../../domain/errors.js';
import { withTx, type Queryable } from '../../db/pool.js';
import { chargeSignatureBase, fromKobo, sandboxOutcome, SANDBOX_PAYER, signatureMatches, toKobo } from '../../domain/sendcash.js';
import { insertTenantEvent } from '../../store/events.js';
import type { Caller, Deps } from '../context.js';
import { createEndpoint, updateEndpoint } from '../../delivery/endpoints.js';
import { requestHash } from '../idempotency.js';

export const PAYMENT_STATUS = 'Payment.Status';

export interface Tenant {
  operator_id: string;
  environment: 'sandbox' | 'production';
}

export interface TransferRow {
  operator_id: string;
  environment: 'sandbox' | 'production';
  id: string;
  user_id: string;
  reference: string;
  amount_kobo: number;
  description: string | null;
  name: string | null;
  destination_account_number: string;
  destination_bank_code: string;
  status: 'Pending' | 'Completed' | 'Failed';
  sender_account_name: string | null;
  source_account_number: string | null;
  source_account_type: string | null;
  source_bank_code: string | null;
  kind: 'charge' | 'transfer_request';
  request_hash: string;
  payer_token: string;
  created_at: Date;
  completed_at: Date | null;
}

export interface Payer {
  senderAccountName: string;
  sourceAccountNumber: string;
  sourceAccountType: 'personal' | 'business';
  sourceBankCode: string;
}

export function payerUrl(deps: Deps, t: Pick<TransferRow, 'operator_id' | 'id' | 'payer_token'>): string {
  return `${deps.config.publicUrl}/sendcash/pay/${t.operator_id}/${t.id}?t=${t.payer_token}`;
}

export function publicTransfer(deps: Deps, t: TransferRow) {
  return {
    id: t.id,
    reference: t.reference,
    userId: t.user_id,
    amount: fromKobo(t.amount_kobo),
    description: t.description,
    name: t.name,
    destinationAccountNumber: t.destination_account_number,
    destinationBankCode: t.destination_bank_code,
    status: t.status,
    senderAccountName: t.sender_account_name,
    sourceAccountNumber: t.source_account_number,
    sourceAccountType: t.source_account_type,
    sourceBankCode: t.source_bank_code,
    createdAt: t.created_at.toISOString(),
    completedAt: t.completed_at?.toISOString() ?? null,
    payerUrl: t.status === 'Pending' ? payerUrl(deps, t) : null,
  };
}

/** The Payment.Status webhook's `data`, exactly as the Sendcash docs show it. */
export function paymentStatusData(t: TransferRow) {
  return {
    status: t.status,
    userId: t.user_id,
    paymentReference: t.reference,
    amount: fromKobo(t.amount_kobo),
    description: t.description ?? (t.status === 'Completed' ? 'Transaction Successful' : 'Transaction Failed'),
    senderAccountName: t.sender_account_name,
    sourceAccountNumber: t.source_account_number,
    sourceAccountType: t.source_account_type,
    sourceBankCode: t.source_bank_code,
    destinationAccountNumber: t.destination_account_number,
    destinationBankCode: t.destination_bank_code,
  };
}

/**
 * POST /sendcash/onboarding {webhook_url}: the operator's Sendcash webhook URL becomes a registered endpoint (format
 * `sendcash`, subscribed to Payment.Status) whose secret is the Signature Token, shown once (rotate it like any
 * endpoint secret). The first call also makes the GraphQL key pair; the secret key is shown once too. Later calls
 * move the endpoint to the new URL and show nothing again, unless the endpoint was deleted: then a new one is made
 * and its (new) Signature Token is shown.
 */
export async function onboard(deps: Deps, caller: Caller, input: { webhook_url: string }) {
  const current = async (q: Queryable) => (await q.query<{ public_key: string; endpoint_id: string | null; live: boolean }>(
    `SELECT k.public_key, k.endpoint_id, e.id IS NOT NULL AS live
       FROM sendcash_keys k LEFT JOIN endpoints e ON e.operator_id = k.operator_id AND e.id = k.endpoint_id AND e.deleted_at IS NULL
      WHERE k.operator_id = $1 AND k.environment = $2`,
    [caller.operatorId, caller.environment],
  )).rows[0];
  const update = async (existing: { public_key: string; endpoint_id: string | null }) => {
    const ep = await updateEndpoint(deps, caller, existing.endpoint_id!, { url: input.webhook_url });
    return { endpoint_id: ep.id, webhook_url: ep.url, public_key: existing.public_key, signature_token: null, secret_key: null };
  };
  const before = await current(deps.db);
  if (before?.live) return update(before);
  // Creating is serialised per operator and environment, and the endpoint and the keys are written together: two
  // first onboardings at once would otherwise make two endpoints (every Payment.Status sent twice) and hand one caller
  // a secret key that was never stored.
  const created = await withTx(deps.db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`sendcash_onboarding:${caller.operatorId}:${caller.environment}`]);
    const existing = await current(tx);
    if (existing?.live) return { existing };
    // createEndpoint writes with a single query: run it in this transaction.
    const ep = await createEndpoint({ ...deps, db: tx as unknown as Deps['db'] }, caller,
      { url: input.webhook_url, events: [PAYMENT_STATUS], format: 'sendcash', description: 'Sendcash Pay webhook' });
    const publicKey = `pk_${caller.environment === 'production' ? 'live' : 'test'}_${randomBytes(16).toString('hex')}`;
    const secretKey = `sk_sc_${randomBytes(24).toString('hex')}`;
    await tx.query(
      `INSERT INTO sendcash_keys (operator_id, environment, public_key, secret_key, endpoint_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (operator_id, environment) DO UPDATE SET endpoint_id = EXCLUDED.endpoint_id`,
      [caller.operatorId, caller.environment, publicKey, deps.secrets.seal(secretKey), ep.id, deps.clock.now()],
    );
    return {
      result: { endpoint_id: ep.id, webhook_url: ep.url, public_key: existing?.public_key ?? publicKey, signature_token: ep.secret, secret_key: existing ? null : secretKey },
    };
  });
  return created.result ?? update(created.existing!);
}

/** POST /sendcash/keys/rotate: a new secret key; the public key stays. */
export async function rotateSecretKey(deps: Deps, caller: Caller) {
  const secretKey = `sk_sc_${randomBytes(24).toString('hex')}`;
  const r = await deps.db.query<{ public_key: string }>(
    'UPDATE sendcash_keys SET secret_key = $3, rotated_at = $4 WHERE operator_id = $1 AND environment = $2 RETURNING public_key',
    [caller.operatorId, caller.environment, deps.secrets.seal(secretKey), deps.clock.now()],
  );
  if (!r.rows[0]) throw errors.conflict('not_onboarded', 'set your Sendcash webhook URL first: POST /sendcash/onboarding');
  return { public_key: r.rows[0].public_key, secret_key: secretKey };
}

/** The tenant and secret key behind a public key (charges, GraphQL). */
export async function keysByPublicKey(deps: Deps, publicKey: string): Promise<(Tenant & { secretKey: string }) | undefined> {
  const { rows } = await deps.db.query<Tenant & { secret_key: string }>(
    'SELECT operator_id, environment, secret_key FROM sendcash_keys WHERE public_key = $1',
    [publicKey],
  );
  const r = rows[0];
  return r ? { operator_id: r.operator_id, environment: r.environment, secretKey: deps.secrets.open(r.secret_key) } : undefined;
}

export interface ChargeInput {
  userId: string;
  paymentReference?: string;
  transactionReference?: string;
  amount: number | string;
  destinationAccountNumber: string;
  destinationBankCode: string;
  description?: string;
  name?: string;
  signature: string;
}

/**
 * Creates a charge (or, from GraphQL, a transfer request) after checking its signature. The reference is unique per
 * operator and environment: the same request again returns the original; a different one with that reference is a 409.
 */
export async function createTransfer(deps: Deps, keys: Tenant & { secretKey: string }, input: ChargeInput, kind: TransferRow['kind'] = 'charge') {
  const reference = input.paymentReference ?? input.transactionReference;
  if (!reference) throw errors.validation('paymentReference', 'send paymentReference (or transactionReference)', 'missing_field');
  if (input.paymentReference && input.transactionReference && input.paymentReference !== input.transactionReference) {
    throw errors.validation('transactionReference', 'paymentReference and transactionReference differ: send one', 'conflicting_reference');
  }
  const amountKobo = toKobo(input.amount);
  if (amountKobo === undefined) throw errors.validation('amount', 'amount must be a positive decimal with at most two decimals, e.g. 100.23', 'invalid_amount');
  const base = chargeSignatureBase({ userId: input.userId, reference, amountKobo, destinationAccountNumber: input.destinationAccountNumber, destinationBankCode: input.destinationBankCode });
  if (!signatureMatches(keys.secretKey, base, input.signature)) {
    throw new DomainError('invalid_signature',
      'the signature does not match: hex HMAC-SHA256 of "user_id:payment_reference:amount_kobo:destination_account_number:destination_bank_code" with your secret key');
  }
  const hash = requestHash({ userId: input.userId, reference, amountKobo, a: input.destinationAccountNumber, b: input.destinationBankCode, d: input.description ?? null, n: input.name ?? null });
  const now = deps.clock.now();
  return withTx(deps.db, async (tx) => {
    const ins = await tx.query<TransferRow>(
      `INSERT INTO transfers (operator_id, environment, id, user_id, reference, amount_kobo, description, name, destination_account_number,
                              destination_bank_code, kind, request_hash, payer_token, created_at, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (operator_id, environment, reference) DO NOTHING RETURNING *`,
      [keys.operator_id, keys.environment, deps.ids.next('trf_'), input.userId, reference, amountKobo, input.description ?? null, input.name ?? null,
        input.destinationAccountNumber, input.destinationBankCode, kind, hash, deps.ids.secret(18), now, transition(TRANSFER, 'new', 'open')!.to],
    );
    let t = ins.rows[0];
    if (!t) {
      const { rows } = await tx.query<TransferRow>('SELECT * FROM transfers WHERE operator_id = $1 AND environment = $2 AND reference = $3', [keys.operator_id, keys.environment, reference]);
      const prior = rows[0]!;
      if (prior.request_hash !== hash) throw errors.conflict('duplicate_reference', `reference ${JSON.stringify(reference)} was already used for another charge`);
      return { statusCode: 200, transfer: publicTransfer(deps, prior), authorizationUrl: payerUrl(deps, prior) };
    }
    if (keys.environment === 'sandbox') {
      const outcome = sandboxOutcome(amountKobo);
      if (outcome) t = await settleTransfer(deps, tx, t, outcome === 'Completed' ? 'complete' : 'fail', SANDBOX_PAYER as Payer);
    }
    // The payer page, also once decided (it then shows the outcome): what initiateTransferRequest returns.
    return { statusCode: 201, transfer: publicTransfer(deps, t), authorizationUrl: payerUrl(deps, t) };
  });
}

/** Completes or fails a pending transfer with the payer's bank details, and writes its Payment.Status event. */
export async function settleTransfer(deps: Deps, tx: Queryable, t: TransferRow, action: 'complete' | 'fail', payer: Partial<Payer>): Promise<TransferRow> {
  // The one place a transfer changes state: the move comes from the TRANSFER table, with its event.
  const m = transition(TRANSFER, t.status, action);
  if (!m) throw errors.conflict('transfer_not_pending', `transfer ${t.id} is already ${t.status}`);
  const p = { ...SANDBOX_PAYER, ...payer };
  const { rows } = await tx.query<TransferRow>(
    `UPDATE transfers SET status = $3, sender_account_name = $4, source_account_number = $5, source_account_type = $6, source_bank_code = $7, completed_at = $8
      WHERE operator_id = $1 AND id = $2 RETURNING *`,
    [t.operator_id, t.id, m.to, p.senderAccountName, p.sourceAccountNumber, p.sourceAccountType, p.sourceBankCode, deps.clock.now()],
  );
  const done = rows[0]!;
  if (m.event) await insertTenantEvent(tx, deps, done, m.event, paymentStatusData(done));
  return done;
}

async function lockTransfer(q: Queryable, tenant: Tenant, id: string): Promise<TransferRow> {
  const { rows } = await q.query<TransferRow>('SELECT * FROM transfers WHERE operator_id = $1 AND environment = $2 AND id = $3 FOR UPDATE', [tenant.operator_id, tenant.environment, id]);
  if (!rows[0]) throw errors.notFound('transfer', id);
  return rows[0];
}

/** POST /simulate/transfer/{id}/complete|fail (sandbox). */
export async function simulateTransfer(deps: Deps, caller: Caller, id: string, action: 'complete' | 'fail', payer: Partial<Payer>) {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  return withTx(deps.db, async (tx) => publicTransfer(deps, await settleTransfer(deps, tx, await lockTransfer(tx, { operator_id: caller.operatorId, environment: 'sandbox' }, id), action, payer)));
}

export async function getTransfer(deps: Deps, caller: Caller, id: string) {
  return publicTransfer(deps, await lockTransfer(deps.db, { operator_id: caller.operatorId, environment: caller.environment }, id));
}

/** The payer page's decision: the payer's bank details, and whether the transfer went through (sandbox may fail it). */
export async function payerDecision(deps: Deps, operatorId: string, id: string, token: string, action: 'complete' | 'fail', payer: Partial<Payer>) {
  return withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<TransferRow>('SELECT * FROM transfers WHERE operator_id = $1 AND id = $2 FOR UPDATE', [operatorId, id]);
    const t = rows[0];
    if (!t || !constantTimeEqual(token, t.payer_token)) throw errors.notFound('transfer', id);
    if (action === 'fail' && t.environment !== 'sandbox') throw errors.sandboxOnly();
    // Only the sandbox fills in its made-up payer: a production Payment.Status must carry the payer's own details.
    if (t.environment !== 'sandbox') {
      for (const field of ['senderAccountName', 'sourceAccountNumber', 'sourceBankCode'] as const) {
        if (!payer[field]?.trim()) throw errors.validation(field, `${field} is required`, 'missing_field');
      }
    }
    // What the payer typed must look right: a 10-digit account number (NUBAN), a bank code of digits. A transfer
    // the payer can no longer decide answers its 409 (below), whatever was typed.
    const bad = transition(TRANSFER, t.status, action) ? payerDetailsProblem(payer) : undefined;
    if (bad) throw errors.validation(bad.field, bad.message, 'invalid_format');
    return publicTransfer(deps, await settleTransfer(deps, tx, t, action, payer));
  });
}

export async function loadForPayer(deps: Deps, operatorId: string, id: string, token: string | undefined): Promise<TransferRow & { operator_name: string }> {
  const { rows } = await deps.db.query<TransferRow & { operator_name: string }>(
    'SELECT t.*, o.name AS operator_name FROM transfers t JOIN operators o ON o.id = t.operator_id WHERE t.operator_id = $1 AND t.id = $2',
    [operatorId, id],
  );
  const t = rows[0];
  if (!t || !token || !constantTimeEqual(token, t.payer_token)) throw errors.notFound('transfer', id);
  return t;
}

/** getTransactions: newest first, page-number pagination (pages start at 1). */
export async function listTransfers(deps: Deps, tenant: Tenant, q: { from?: Date; to?: Date; status?: string; page: number; pageSize: number }) {
  const params: unknown[] = [tenant.operator_id, tenant.environment];
  let where = '';
  if (q.from) where += ` AND created_at >= $${params.push(q.from)}`;
  if (q.to) where += ` AND created_at <= $${params.push(q.to)}`;
  if (q.status) where += ` AND status = $${params.push(q.status)}`;
  const total = Number((await deps.db.query<{ n: string }>(`SELECT count(*) AS n FROM transfers WHERE operator_id = $1 AND environment = $2 ${where}`, params)).rows[0]!.n);
  const { rows } = await deps.db.query<TransferRow>(
    `SELECT * FROM transfers WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY created_at DESC, id DESC LIMIT $${params.push(q.pageSize)} OFFSET $${params.push((q.page - 1) * q.pageSize)}`,
    params,
  );
  return {
    transactions: rows.map((t) => ({
      id: t.id,
      reference: t.reference,
      amount: fromKobo(t.amount_kobo),
      sourceBankAccount: t.source_account_number,
      sourceBankAccountName: t.sender_account_name,
      destinationBankAccount: t.destination_account_number,
      description: t.description,
      createdAt: t.created_at.toISOString(),
      status: t.status,
    })),
    paging: { total, page: q.page, pages: Math.ceil(total / q.pageSize) },
  };
}
