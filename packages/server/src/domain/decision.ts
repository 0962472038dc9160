/**
 * The decision on an intent: pure, no I/O. The caller gathers the facts (prior deposit, usage) under a lock on
 * the user row and applies the result in the same transaction.
 */
import type { Direction, LimitsUtilizationCents } from '@cashwire/webhooks';

export type Environment = 'sandbox' | 'production';

export type DeclineCategory =
  | 'insufficient_funds' | 'fraud_risk' | 'limit_exceeded' | 'deposit_required' | 'user_declined'
  | 'credential_not_withdrawable' | 'authentication_failed';

/** Credential types (Push Native). Only the first two may withdraw (cash_out); card-only cards deposit only. */
export type CredentialType = 'secure_debit' | 'apple_pay_debit' | 'card_only_debit' | 'card_only_credit';
export const WITHDRAWABLE: readonly CredentialType[] = ['secure_debit', 'apple_pay_debit'];

export function canWithdraw(type: CredentialType): boolean {
  return WITHDRAWABLE.includes(type);
}

/** The sandbox amount that requires authentication (step-up) with any payment method. Documented in the README. */
export const SANDBOX_STEP_UP_AMOUNT = 3300;

/**
 * Whether an authorization the rules would approve must first pass a step-up page (POST /authorize answers 202).
 * `alwaysStepUp`: the credential is the sandbox's step-up test card.
 */
export function requiresAuthentication(input: { environment: Environment; amount: number; alwaysStepUp: boolean }): boolean {
  if (input.environment !== 'sandbox') return false;
  return input.amount === SANDBOX_STEP_UP_AMOUNT || input.alwaysStepUp;
}

export interface Limits {
  /** Cents per UTC day, per direction. */
  daily_cash_in: number;
  daily_cash_out: number;
  /** Cents per UTC calendar month, per direction. */
  monthly_cash_in: number;
  monthly_cash_out: number;
}

export const DEFAULT_LIMITS: Limits = {
  daily_cash_in: 250_000, // $2,500
  daily_cash_out: 250_000,
  monthly_cash_in: 1_000_000, // $10,000
  monthly_cash_out: 1_000_000,
};

/**
 * Sandbox amounts with a fixed outcome, whatever the direction. Documented in the README.
 * 2200 cents ($22.00) is the decline a real client's test uses.
 */
export const SANDBOX_MAGIC_AMOUNTS: Record<number, DeclineCategory> = {
  2200: 'insufficient_funds',
  6666: 'fraud_risk',
};

export interface DecisionInput {
  environment: Environment;
  direction: Direction;
  amount: number;
  approvalMode: 'automatic' | 'manual';
  /** The user has an approved (or pending) cash_in. */
  hasDeposit: boolean;
  /** Usage before this intent, in cents. */
  usage: LimitsUtilizationCents;
  limits: Limits;
}

export type Decision =
  | { status: 'approved' | 'pending'; utilization: LimitsUtilizationCents }
  | { status: 'declined'; declineCategory: DeclineCategory };

export function decide(input: DecisionInput): Decision {
  if (input.environment === 'sandbox') {
    const magic = SANDBOX_MAGIC_AMOUNTS[input.amount];
    if (magic) return { status: 'declined', declineCategory: magic };
  }
  if (input.direction === 'cash_out' && !input.hasDeposit) return { status: 'declined', declineCategory: 'deposit_required' };
  const daily = input.direction === 'cash_in' ? 'daily_cash_in' : 'daily_cash_out';
  const monthly = input.direction === 'cash_in' ? 'monthly_cash_in' : 'monthly_cash_out';
  if (input.usage[daily] + input.amount > input.limits[daily] || input.usage[monthly] + input.amount > input.limits[monthly]) {
    return { status: 'declined', declineCategory: 'limit_exceeded' };
  }
  const utilization = { ...input.usage, [daily]: input.usage[daily] + input.amount, [monthly]: input.usage[monthly] + input.amount };
  return { status: input.approvalMode === 'manual' ? 'pending' : 'approved', utilization };
}
