/** Shared test material: canonical events, and requests signed the way the server signs them. */
import { renderPayload, signHeaders, type EventRecord, type Format, type PayloadVersion } from '../src/index.js';

/** Push Cash asks for 32–4096 characters. */
export const SECRET = 'whk_test_secret_0123456789abcdefghijklmnopqrstuv';
export const OLD_SECRET = 'whk_old_secret_9876543210zyxwvutsrqponmlkjihgfedcba';
export const WHSEC = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
export const OLD_WHSEC = `whsec_${Buffer.from('fedcba9876543210fedcba9876543210').toString('base64')}`;
/** The attempt time of every fixture: seed 001's timestamp. */
export const T0 = new Date('2024-01-14T22:31:02.756Z');

export const approved: EventRecord = {
  id: 'evt_approved_1',
  type: 'intent.approved',
  data: {
    id: 'intent_sandbox_mbDRHFi3dxIZEtykHsgUGC', tag: 'txn_12345', idempotency_key: null, direction: 'cash_in', amount: 5025, currency: 'USD',
    status: 'approved', rail: 'ach', type: 'push', decline_category: null,
    limits_utilization: { daily_cash_in: 5025, daily_cash_out: 0, monthly_cash_in: 5025, monthly_cash_out: 0 },
  },
};

export const declined: EventRecord = {
  id: 'evt_declined_1',
  type: 'intent.declined',
  data: { ...approved.data as Extract<EventRecord, { type: 'intent.approved' }>['data'], status: 'declined', decline_category: 'insufficient_funds', limits_utilization: null },
};

export const settled: EventRecord = {
  id: 'evt_settled_1',
  type: 'intent.settled',
  data: {
    ...approved.data as Extract<EventRecord, { type: 'intent.approved' }>['data'],
    transaction: { id: 'txn_abc', amount: 5025, currency: 'USD', status: 'settled', date: '2024-01-15', account_id: 'account_1', created_at: '2024-01-15T00:00:00Z' },
  },
};

export const canceled: EventRecord = { id: 'evt_canceled_1', type: 'intent.canceled', data: { ...approved.data as Extract<EventRecord, { type: 'intent.approved' }>['data'], status: 'canceled' } };

export const exhausted: EventRecord = {
  id: 'evt_ops_1',
  type: 'delivery.exhausted',
  data: { delivery_id: 'dlv_1', event_id: 'evt_approved_1', event_type: 'intent.approved', endpoint_id: 'ep_1', url: 'https://m.example/wh', status: 'expired', attempts: 40, last_status: 503, last_error: null },
};
export const disabled: EventRecord = { id: 'evt_ops_2', type: 'endpoint.disabled', data: { endpoint_id: 'ep_1', url: 'https://m.example/wh', reason: 'gone', at: '2024-01-14T22:00:00.000Z' } };
export const recovered: EventRecord = { id: 'evt_ops_3', type: 'endpoint.recovered', data: { endpoint_id: 'ep_1', url: 'https://m.example/wh', at: '2024-01-14T23:00:00.000Z' } };

const refund = { id: 'refund_1', intent_id: 'intent_sandbox_1', tag: 'txn_12345', idempotency_key: null, amount: 5025, currency: 'USD', created_at: '2024-01-15T10:00:00.000Z' };
export const refundApproved: EventRecord = { id: 'evt_rf_1', type: 'refund.approved', data: { ...refund, status: 'approved' } };
export const refundDeclined: EventRecord = { id: 'evt_rf_2', type: 'refund.declined', data: { ...refund, id: 'refund_2', status: 'declined' } };
const dispute = { id: 'dispute_1', intent_id: 'intent_sandbox_1', tag: 'txn_12345', idempotency_key: null, amount: 5025, currency: 'USD', code: '10.4', type: 'card_only',
  created_at: '2024-01-16T10:00:00.000Z' };
export const disputeCreated: EventRecord = { id: 'evt_dp_1', type: 'dispute.created', data: { ...dispute, status: 'created' } };
export const disputeWon: EventRecord = { id: 'evt_dp_2', type: 'dispute.won', data: { ...dispute, status: 'won' } };
export const disputeLost: EventRecord = {
  id: 'evt_dp_3', type: 'dispute.lost',
  data: { ...dispute, id: 'dispute_2', status: 'lost', transaction: { id: 'txn_d1', amount: 5025, currency: 'USD', status: 'settled', date: '2024-01-17', account_id: 'account_d', created_at: '2024-01-17T10:00:00.000Z' } },
};
export const limitsRequest: EventRecord = { id: 'evt_lr_1', type: 'user.limits_request', data: { user_id: 'user_1', timestamp: '2024-01-18T10:00:00.000Z' } };
export const limitsUpdated: EventRecord = { id: 'evt_lr_2', type: 'user.limits_request.updated', data: { user_id: 'user_1', approved_daily_limit: 150000, currency: 'USD', timestamp: '2024-01-18T11:00:00.000Z' } };
export const limitsPartial: EventRecord = { id: 'evt_lr_3', type: 'user.limits_request.partial_approval', data: { user_id: 'user_1', approved_daily_limit: 75050, currency: 'USD', timestamp: '2024-01-18T12:00:00.000Z' } };
export const limitsDeclined: EventRecord = { id: 'evt_lr_4', type: 'user.limits_request.declined', data: { user_id: 'user_1', currency: 'USD', timestamp: '2024-01-18T13:00:00.000Z' } };

export const ALL_EVENTS = [approved, declined, canceled, settled, refundApproved, refundDeclined, disputeCreated, disputeWon, disputeLost,
  limitsRequest, limitsUpdated, limitsPartial, limitsDeclined, exhausted, disabled, recovered];

/** A Sendcash body as seed 004 documents it (with its missing opening brace restored). */
export const paymentStatusBody = JSON.stringify({
  event: 'Payment.Status',
  data: {
    status: 'Completed', userId: 'user_42', paymentReference: 'ref_0001', amount: 100.23, description: 'Transaction Successful',
    senderAccountName: 'ADÉ-OKONKWO  Chidi', sourceAccountNumber: '0123456789', sourceAccountType: 'personal', sourceBankCode: '058',
    destinationAccountNumber: '9876543210', destinationBankCode: '044',
  },
});

export function secretFor(format: Format): string {
  return format === 'standard' ? WHSEC : SECRET;
}

export interface SignOptions {
  version?: PayloadVersion;
  at?: Date;
  secrets?: string[];
}

/** A request as the server would send it: the rendered body and the signature headers. */
export async function signedRequest(format: Format, event: EventRecord, o: SignOptions = {}) {
  const at = o.at ?? T0;
  const body = renderPayload(event, o.version ?? '2024-05', at);
  return signedBody(format, body, { ...o, at }, event.id);
}

/** Signs any body (even one the renderer would never produce). */
export async function signedBody(format: Format, body: string, o: SignOptions = {}, id = 'evt_raw_1') {
  const headers = await signHeaders({ format, id, body, secrets: o.secrets ?? [secretFor(format)], timestamp: o.at ?? T0 });
  return { body, headers: { 'content-type': 'application/json', ...headers } };
}
