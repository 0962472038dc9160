import type { EventRecord, IntentEventRecord, LimitsUtilizationCents, PayloadVersion, TransactionRecord } from './catalog.js';
import { CATALOG, isIntentEvent, isMoneyEvent, isUserEvent } from './catalog.js';

/** Formats a cents amount as a two-decimal string in the payload's unit (cents or dollars). */
export function formatUtilization(cents: number, unit: 'cents' | 'dollars'): string {
  if (unit === 'cents') return cents.toFixed(2);
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

function utilization(u: LimitsUtilizationCents, unit: 'cents' | 'dollars') {
  return {
    daily_cash_in: formatUtilization(u.daily_cash_in, unit),
    daily_cash_out: formatUtilization(u.daily_cash_out, unit),
    monthly_cash_in: formatUtilization(u.monthly_cash_in, unit),
    monthly_cash_out: formatUtilization(u.monthly_cash_out, unit),
  };
}

function transaction(t: TransactionRecord, unit: 'cents' | 'dollars') {
  return {
    id: t.id,
    amount: unit === 'cents' ? t.amount : t.amount / 100,
    currency: t.currency,
    status: t.status,
    date: t.date,
    account_id: t.account_id,
  };
}

/**
 * Renders the `data` of an event for a payload version. `2024-05` (seed 003) uses integer cents and `tag`;
 * `2023-01` (seed 002) uses float dollars and `idempotency_key`.
 */
export function renderData(event: EventRecord, version: PayloadVersion): Record<string, unknown> {
  const unitOf = version === '2024-05' ? 'cents' : 'dollars';
  if (isMoneyEvent(event)) {
    // Refunds and disputes: the catalog's fields in its order, the intent's tag by the version's name, amounts in its unit.
    const d = event.data as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const f of CATALOG[event.type].fields) {
      if (f === 'tag') {
        if (version === '2024-05') out.tag = d.tag ?? null;
        else out.idempotency_key = d.idempotency_key ?? d.tag ?? null;
      } else if (f === 'amount') out.amount = unitOf === 'cents' ? d.amount : (d.amount as number) / 100;
      else if (f === 'transaction') out.transaction = d.transaction ? transaction(d.transaction as TransactionRecord, unitOf) : null;
      else out[f] = d[f] ?? null;
    }
    return out;
  }
  if (isUserEvent(event)) {
    const d = event.data;
    const out: Record<string, unknown> = { user_id: d.user_id };
    if (d.approved_daily_limit !== undefined) out.approved_daily_limit = unitOf === 'cents' ? String(d.approved_daily_limit) : formatUtilization(d.approved_daily_limit, 'dollars');
    if (d.currency !== undefined) out.currency = d.currency;
    out.timestamp = d.timestamp;
    return out;
  }
  if (!isIntentEvent(event)) return { ...event.data };
  const d: IntentEventRecord = event.data;
  const fields = CATALOG[event.type].fields;
  const unit = version === '2024-05' ? 'cents' : 'dollars';
  const out: Record<string, unknown> = { id: d.id };
  if (version === '2024-05') out.tag = d.tag;
  else out.idempotency_key = d.idempotency_key ?? d.tag;
  out.direction = d.direction;
  out.amount = unit === 'cents' ? d.amount : d.amount / 100;
  out.status = d.status;
  if (version === '2024-05' && fields.includes('rail')) out.rail = d.rail;
  if (fields.includes('decline_category')) out.decline_category = d.decline_category ?? null;
  out.currency = d.currency;
  if (version === '2024-05') out.type = d.type;
  if (fields.includes('limits_utilization') && d.limits_utilization) out.limits_utilization = utilization(d.limits_utilization, unit);
  if (fields.includes('transaction') && d.transaction) out.transaction = transaction(d.transaction, unit);
  return out;
}

/** ISO 8601 with microseconds, as the seeds show (`2024-01-14T22:31:02.756096Z`). */
export function isoMicros(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const PAYMENT_STATUS_FIELDS = ['status', 'userId', 'paymentReference', 'amount', 'description', 'senderAccountName', 'sourceAccountNumber',
  'sourceAccountType', 'sourceBankCode', 'destinationAccountNumber', 'destinationBankCode'];

/**
 * The webhook body `{type, data, timestamp}`; `timestamp` is the time of this attempt. Sendcash's Payment.Status has
 * its own shape, `{event, data}`, with no timestamp.
 */
export function renderPayload(event: EventRecord, version: PayloadVersion, at: Date): string {
  if ((event as { type: string }).type === 'Payment.Status') {
    // Stored as jsonb (keys reordered); sent in the order the Sendcash docs show.
    const d = event.data as unknown as Record<string, unknown>;
    const data = Object.fromEntries(PAYMENT_STATUS_FIELDS.map((k) => [k, d[k] ?? null]));
    return JSON.stringify({ event: 'Payment.Status', data });
  }
  return JSON.stringify({ type: event.type, data: renderData(event, version), timestamp: isoMicros(at) });
}
