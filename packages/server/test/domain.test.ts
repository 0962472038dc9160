import { describe, expect, it } from 'vitest';
import { decide, DEFAULT_LIMITS, type DecisionInput } from '../src/domain/decision.js';
import { checkKyc, isCalendarDate } from '../src/domain/kyc.js';

const zero = { daily_cash_in: 0, daily_cash_out: 0, monthly_cash_in: 0, monthly_cash_out: 0 };
const base: DecisionInput = { environment: 'sandbox', direction: 'cash_in', amount: 5000, approvalMode: 'automatic', hasDeposit: false, usage: zero, limits: DEFAULT_LIMITS };

describe('decide', () => {
  it('approves a plain deposit and reports utilization including it', () => {
    expect(decide(base)).toEqual({ status: 'approved', utilization: { ...zero, daily_cash_in: 5000, monthly_cash_in: 5000 } });
  });
  it('applies the sandbox magic amounts only in the sandbox', () => {
    expect(decide({ ...base, amount: 2200 })).toEqual({ status: 'declined', declineCategory: 'insufficient_funds' });
    expect(decide({ ...base, amount: 6666 })).toEqual({ status: 'declined', declineCategory: 'fraud_risk' });
    expect(decide({ ...base, amount: 2200, environment: 'production' }).status).toBe('approved');
  });
  it('declines a withdrawal before any deposit', () => {
    expect(decide({ ...base, direction: 'cash_out' })).toEqual({ status: 'declined', declineCategory: 'deposit_required' });
    expect(decide({ ...base, direction: 'cash_out', hasDeposit: true }).status).toBe('approved');
  });
  it('declines over the daily or the monthly limit, and allows exactly the limit', () => {
    const limits = { ...DEFAULT_LIMITS, daily_cash_in: 10_000, monthly_cash_in: 20_000 };
    expect(decide({ ...base, limits, usage: { ...zero, daily_cash_in: 5000 }, amount: 5000 }).status).toBe('approved');
    expect(decide({ ...base, limits, usage: { ...zero, daily_cash_in: 5001 }, amount: 5000 })).toEqual({ status: 'declined', declineCategory: 'limit_exceeded' });
    expect(decide({ ...base, limits, usage: { ...zero, monthly_cash_in: 16_000 }, amount: 5000 })).toEqual({ status: 'declined', declineCategory: 'limit_exceeded' });
    // Limits are per direction.
    expect(decide({ ...base, limits, usage: { ...zero, daily_cash_out: 99_999 }, amount: 5000 }).status).toBe('approved');
  });
  it('puts a manual-mode intent under review', () => {
    expect(decide({ ...base, approvalMode: 'manual' }).status).toBe('pending');
  });
});

describe('kyc', () => {
  const today = new Date(Date.UTC(2026, 0, 15));
  const ok = {
    email: 'a@b.co', date_of_birth: '1990-01-01', identity_verified: true,
    address: { administrative_area: 'NY', postal_code: '12345', country: 'US' },
    government_id: { type: 'drivers_license', last4: '1234', state: 'NY' },
  };
  it('accepts a valid record', () => expect(checkKyc(ok, today)).toBeUndefined());
  it('checks calendar dates', () => {
    expect(isCalendarDate('2024-02-29')).toBe(true);
    expect(isCalendarDate('2023-02-29')).toBe(false);
    expect(isCalendarDate('1990-13-01')).toBe(false);
  });
  it('requires 18 years on the injected clock', () => {
    expect(checkKyc({ ...ok, date_of_birth: '2008-01-15' }, today)).toBeUndefined();
    expect(checkKyc({ ...ok, date_of_birth: '2008-01-16' }, today)?.code).toBe('underage');
  });
  it('applies the government id state rule both ways', () => {
    expect(checkKyc({ ...ok, government_id: { type: 'drivers_license', last4: '1234' } }, today)?.code).toBe('state_required');
    expect(checkKyc({ ...ok, government_id: { type: 'ssn', last4: '1234', state: 'NY' } }, today)?.code).toBe('state_not_allowed');
    expect(checkKyc({ ...ok, government_id: { type: 'ssn', last4: '1234' } }, today)).toBeUndefined();
  });
});
