import { describe, expect, it } from 'vitest';
import {
  EVENT_TYPES, PAYLOAD_VERSIONS, SENDCASH_EVENT_TYPES, TRANSACTION_STATUSES, amountInCents, checkSenderName, detectVersion, isFinalStatus, nextStatus,
  normalizeName, parseEvent, renderPayload, statusOf, tagOf, type DisputeEvent, type EventRecord, type IntentEvent, type IntentEventRecord, type RefundEvent,
  type TransactionStatus, type UserEvent,
} from '../src/index.js';
import { ALL_EVENTS, T0, approved, disputeLost, limitsPartial, limitsUpdated, paymentStatusBody, refundApproved, settled } from './fixtures.js';

describe('parse: a discriminated union over the whole catalog, in both payload versions', () => {
  it('parses every catalog type rendered in every payload version, and detects the version', () => {
    expect(ALL_EVENTS.map((e) => e.type).sort()).toEqual([...EVENT_TYPES].sort());
    for (const record of ALL_EVENTS) {
      for (const version of PAYLOAD_VERSIONS) {
        const event = parseEvent(renderPayload(record, version, T0), { format: 'pushcash' });
        expect(event.type).toBe(record.type);
        expect(event.timestamp).toEqual(T0);
        const versioned = /^(intent|refund|dispute)\./.test(record.type);
        expect(event.version).toBe(versioned ? version : null);
      }
    }
  });

  it('normalises amounts and the merchant tag across versions', () => {
    for (const version of PAYLOAD_VERSIONS) {
      const e = parseEvent(renderPayload(settled, version, T0), { format: 'standard', id: 'evt_1' }) as IntentEvent;
      expect(e.id).toBe('evt_1');
      expect(amountInCents(e)).toBe(5025);
      expect(tagOf(e)).toBe('txn_12345');
      if (e.type === 'intent.settled') expect(e.data.transaction?.amount).toBe(version === '2024-05' ? 5025 : 50.25);
    }
  });

  it('reads the seed 003 example (2024-05) and a seed 002-shaped body (2023-01)', () => {
    const seed003 = `{"type":"intent.declined","data":{"id":"intent_sandbox_mbDRHFi3dxIZEtykHsgUGC","tag":"txn_12345","direction":"cash_out","amount":5000,
      "status":"declined","decline_category":"insufficient_funds","currency":"USD","type":"card_only"},"timestamp":"2024-01-14T22:31:02.756096Z"}`;
    const e = parseEvent(seed003, { format: 'pushcash' });
    expect(e).toMatchObject({ type: 'intent.declined', version: '2024-05', id: 'intent.declined:intent_sandbox_mbDRHFi3dxIZEtykHsgUGC:declined' });
    expect(e.timestamp?.toISOString()).toBe('2024-01-14T22:31:02.756Z');

    const seed002 = { type: 'intent.approved', data: { id: 'intent_1', idempotency_key: 'txn_9', direction: 'cash_in', amount: 50.25, status: 'approved', currency: 'USD',
      limits_utilization: { daily_cash_in: '50.25', daily_cash_out: '0.00', monthly_cash_in: '50.25', monthly_cash_out: '0.00' } }, timestamp: '2024-01-14T22:31:02.756096Z' };
    const old = parseEvent(JSON.stringify(seed002), { format: 'pushcash' }) as IntentEvent;
    expect(old.version).toBe('2023-01');
    expect(amountInCents(old)).toBe(5025);
    expect(tagOf(old)).toBe('txn_9');
  });

  it('detects the version from the data shape', () => {
    expect(detectVersion({ tag: null, amount: 5000 })).toBe('2024-05');
    expect(detectVersion({ rail: 'ach', type: 'push', amount: 5000 })).toBe('2024-05'); // Push Cash omits tag when none was given
    expect(detectVersion({ idempotency_key: 'k', amount: 50 })).toBe('2023-01');
    expect(detectVersion({ idempotency_key: null, amount: 50 })).toBe('2023-01');
    expect(detectVersion({ amount: 50.5 })).toBe('2023-01');
    expect(detectVersion({ amount: 5000 })).toBe('2024-05');
  });

  it('parses Sendcash Payment.Status (`event` where the catalog has `type`)', () => {
    expect(SENDCASH_EVENT_TYPES).toEqual(['Payment.Status']);
    expect(EVENT_TYPES).not.toContain('Payment.Status'); // the server iterates EVENT_TYPES for subscriptions
    const e = parseEvent(paymentStatusBody, { format: 'sendcash', timestamp: null });
    expect(e).toMatchObject({ type: 'Payment.Status', version: null, timestamp: null, id: 'Payment.Status:ref_0001:Completed', data: { amount: 100.23 } });
    expect(statusOf(e)).toBe('settled');
  });

  it('reads refunds and disputes in either version: amounts in cents, the intent\'s tag; limit events with the limit as a string', () => {
    for (const version of PAYLOAD_VERSIONS) {
      const r = parseEvent(renderPayload(refundApproved, version, T0), { format: 'pushcash' }) as RefundEvent;
      expect(r).toMatchObject({ type: 'refund.approved', version, id: 'refund.approved:refund_1', data: { intent_id: 'intent_sandbox_1', status: 'approved' } });
      expect(r.data.amount).toBe(version === '2024-05' ? 5025 : 50.25);
      expect(amountInCents(r)).toBe(5025);
      expect(version === '2024-05' ? r.data.tag : r.data.idempotency_key).toBe('txn_12345');
      const d = parseEvent(renderPayload(disputeLost, version, T0), { format: 'pushcash' }) as DisputeEvent;
      expect(d).toMatchObject({ type: 'dispute.lost', version, data: { code: '10.4', status: 'lost', type: 'card_only' } });
      expect(amountInCents(d)).toBe(5025);
      expect(d.data.transaction?.amount).toBe(version === '2024-05' ? 5025 : 50.25);
      const u = parseEvent(renderPayload(limitsPartial, version, T0), { format: 'pushcash' }) as UserEvent;
      expect(u.data).toEqual({ user_id: 'user_1', approved_daily_limit: version === '2024-05' ? '75050' : '750.50', currency: 'USD', timestamp: '2024-01-18T12:00:00.000Z' });
    }
    const updated = JSON.parse(renderPayload(limitsUpdated, '2024-05', T0));
    expect(updated.data.approved_daily_limit).toBe('150000'); // the reference's example
  });

  it('derives stable ids for operational events', () => {
    const ids = ALL_EVENTS.filter((r) => /^(delivery|endpoint)\./.test(r.type)).map((r) => parseEvent(renderPayload(r, '2024-05', T0), { format: 'pushcash' }).id);
    expect(ids).toEqual(['delivery.exhausted:dlv_1', 'endpoint.disabled:ep_1:2024-01-14T22:00:00.000Z', 'endpoint.recovered:ep_1:2024-01-14T23:00:00.000Z']);
  });
});

describe('nextStatus: a transaction status only moves forward', () => {
  it('follows created → pending → approved → settled; declined and canceled are final', () => {
    expect(nextStatus('created', 'approved')).toBe('approved');
    expect(nextStatus('approved', 'settled')).toBe('settled');
    expect(nextStatus('settled', 'approved')).toBe('settled'); // a late approval
    expect(nextStatus('approved', 'approved')).toBe('approved'); // a repeat
    expect(nextStatus('pending', 'approved')).toBe('approved');
    expect(nextStatus('approved', 'pending')).toBe('approved');
    expect(nextStatus('created', 'declined')).toBe('declined');
    expect(nextStatus('declined', 'approved')).toBe('declined');
    expect(nextStatus('canceled', 'settled')).toBe('canceled');
    expect(nextStatus('approved', 'canceled')).toBe('approved'); // only an intent not yet approved can be canceled
    expect(nextStatus('created', 'bogus' as TransactionStatus)).toBe('created');
    expect(TRANSACTION_STATUSES.filter(isFinalStatus)).toEqual(['settled', 'declined', 'canceled']);
  });

  it('ends in the same state whatever the order and however many repeats', () => {
    const histories: TransactionStatus[][] = [
      ['approved', 'settled'], ['pending', 'approved', 'settled'], ['declined'], ['pending', 'declined'], ['canceled'], ['pending', 'canceled'], ['approved'],
    ];
    const permutations = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
    for (const h of histories) {
      const final = h[h.length - 1];
      // every arrival order of the history, each status also repeated (a redirect plus a webhook plus a redelivery)
      for (const order of permutations([...h, ...h])) expect(order.reduce(nextStatus, 'created' as TransactionStatus)).toBe(final);
    }
  });

  it('statusOf maps events to statuses', () => {
    const pendingRecord: EventRecord = { ...approved, type: 'intent.approved', data: { ...(approved.data as IntentEventRecord), status: 'pending' } };
    const pending = parseEvent(renderPayload(pendingRecord, '2024-05', T0), { format: 'pushcash' });
    expect(statusOf(pending)).toBe('pending');
    const byType = Object.fromEntries(ALL_EVENTS.map((r) => [r.type, statusOf(parseEvent(renderPayload(r, '2023-01', T0), { format: 'pushcash' }))]));
    expect(byType).toEqual({
      'intent.approved': 'approved', 'intent.declined': 'declined', 'intent.canceled': 'canceled', 'intent.settled': 'settled',
      // Refunds, disputes and limit requests are objects of their own: they do not move the payment's status.
      'refund.approved': null, 'refund.declined': null, 'dispute.created': null, 'dispute.won': null, 'dispute.lost': null,
      'user.limits_request': null, 'user.limits_request.updated': null, 'user.limits_request.partial_approval': null, 'user.limits_request.declined': null,
      'delivery.exhausted': null, 'endpoint.disabled': null, 'endpoint.recovered': null,
    });
    const failed = parseEvent(paymentStatusBody.replace('Completed', 'Failed'), { format: 'sendcash' });
    expect(statusOf(failed)).toBe('declined');
  });
});

describe('checkSenderName: Sendcash fraud check', () => {
  const personal = (senderAccountName: string) => ({ senderAccountName, sourceAccountType: 'personal' });

  it('ignores case, spacing, accents, punctuation and word order', () => {
    expect(normalizeName("  Ọlá  O'Brien-Adé ")).toBe('ade obrien ola');
    for (const bank of ['CHIDI ADE OKONKWO', 'Okonkwo, Chidi Adé', 'okonkwo-ade   chidi', 'ADÉ OKONKWO CHIDI.']) {
      expect(checkSenderName(personal(bank), 'Chidi Ade Okonkwo'), bank).toMatchObject({ match: true, skipped: false, reason: 'names_match', normalizedExpected: 'ade chidi okonkwo' });
    }
    expect(checkSenderName(personal('José Müller'), 'JOSE MULLER').match).toBe(true);
  });

  it('reports a different name, a missing or extra name, and an empty sender', () => {
    expect(checkSenderName(personal('Emeka Obi'), 'Chidi Okonkwo')).toEqual({
      match: false, skipped: false, reason: 'names_differ', normalizedSender: 'emeka obi', normalizedExpected: 'chidi okonkwo',
    });
    expect(checkSenderName(personal('Chidi Ade Okonkwo'), 'Chidi Okonkwo').reason).toBe('names_differ');
    expect(checkSenderName(personal(''), 'Chidi Okonkwo')).toMatchObject({ match: false, reason: 'missing_sender_name' });
    expect(checkSenderName(personal('...'), '...')).toMatchObject({ match: false, reason: 'missing_sender_name' });
  });

  it('skips business accounts but still says whether the names match', () => {
    const r = checkSenderName({ senderAccountName: 'Okonkwo Trading Ltd', sourceAccountType: 'Business' }, 'Chidi Okonkwo');
    expect(r).toEqual({ match: false, skipped: true, reason: 'business_account', normalizedSender: 'ltd okonkwo trading', normalizedExpected: 'chidi okonkwo' });
    const e = parseEvent(paymentStatusBody, { format: 'sendcash' });
    if (e.type === 'Payment.Status') expect(checkSenderName(e.data, 'Chidi Adé-Okonkwo').match).toBe(true);
  });
});
