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
