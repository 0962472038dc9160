import { describe, expect, it } from 'vitest';
import { formatUtilization, renderData, renderPayload, isoMicros, type EventRecord } from '../src/index.js';

const approved: EventRecord = {
  id: 'evt_1',
  type: 'intent.approved',
  data: {
    id: 'intent_sandbox_mbDRHFi3dxIZEtykHsgUGC', tag: 'txn_12345', idempotency_key: null, direction: 'cash_in', amount: 5000, currency: 'USD',
    status: 'approved', rail: 'ach', type: 'push', decline_category: null,
    limits_utilization: { daily_cash_in: 5000, daily_cash_out: 0, monthly_cash_in: 5000, monthly_cash_out: 0 },
  },
};

describe('payload rendering', () => {
  it('renders the newer version exactly as seed 003 shows', () => {
    expect(renderData(approved, '2024-05')).toEqual({
      id: 'intent_sandbox_mbDRHFi3dxIZEtykHsgUGC', tag: 'txn_12345', direction: 'cash_in', amount: 5000, status: 'approved', rail: 'ach', currency: 'USD', type: 'push',
      limits_utilization: { daily_cash_in: '5000.00', daily_cash_out: '0.00', monthly_cash_in: '5000.00', monthly_cash_out: '0.00' },
    });
  });
  it('renders the older version with float dollars and idempotency_key', () => {
    const d = renderData(approved, '2023-01');
    expect(d).toMatchObject({ idempotency_key: 'txn_12345', amount: 50, limits_utilization: { daily_cash_in: '50.00' } });
    expect(d).not.toHaveProperty('tag');
    expect(d).not.toHaveProperty('rail');
  });
  it('renders refunds and disputes with the intent\'s tag and amounts in the version\'s unit, limit events with the limit as a string', () => {
    const refund: EventRecord = { id: 'evt_r', type: 'refund.declined', data: { id: 'refund_1', intent_id: 'intent_1', tag: 'txn_1', idempotency_key: 'k_1', amount: 1999,
      currency: 'USD', status: 'declined', created_at: '2024-01-15T10:00:00.000Z' } };
    expect(renderData(refund, '2024-05')).toEqual({ id: 'refund_1', intent_id: 'intent_1', tag: 'txn_1', amount: 1999, currency: 'USD', status: 'declined', created_at: '2024-01-15T10:00:00.000Z' });
    expect(renderData(refund, '2023-01')).toEqual({ id: 'refund_1', intent_id: 'intent_1', idempotency_key: 'k_1', amount: 19.99, currency: 'USD', status: 'declined', created_at: '2024-01-15T10:00:00.000Z' });
    const limits: EventRecord = { id: 'evt_l', type: 'user.limits_request.updated', data: { user_id: 'user_1', approved_daily_limit: 150000, currency: 'USD', timestamp: '2024-01-18T11:00:00.000Z' } };
    expect(renderData(limits, '2024-05')).toEqual({ user_id: 'user_1', approved_daily_limit: '150000', currency: 'USD', timestamp: '2024-01-18T11:00:00.000Z' });
    expect(renderData(limits, '2023-01')).toMatchObject({ approved_daily_limit: '1500.00' });
  });
  it('formats utilization in two decimals in either unit', () => {
    expect(formatUtilization(123456, 'cents')).toBe('123456.00');
    expect(formatUtilization(123456, 'dollars')).toBe('1234.56');
    expect(formatUtilization(5, 'dollars')).toBe('0.05');
  });
  it('puts the attempt time in microsecond ISO form', () => {
    const at = new Date('2024-01-14T22:31:02.756Z');
    expect(isoMicros(at)).toBe('2024-01-14T22:31:02.756000Z');
    expect(JSON.parse(renderPayload(approved, '2024-05', at))).toMatchObject({ type: 'intent.approved', timestamp: '2024-01-14T22:31:02.756000Z' });
  });
});
