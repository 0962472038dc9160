import type { Direction, IntentStatus, LimitsUtilizationCents, TransactionRecord } from '@cashwire/webhooks';
import type { Environment } from '../domain/decision.js';

export interface OperatorRow {
  id: string;
  name: string;
  settings: OperatorSettings;
  created_at: Date;
}

export interface OperatorSettings {
  /** The payload version of new endpoints and of per-payment webhooks. */
  payload_version?: import('@cashwire/webhooks').PayloadVersion;
  /** Replaces parts of the default retry schedules, by name (sandbox, production, sendcash). */
  retry_schedules?: Partial<Record<'sandbox' | 'production' | 'sendcash', Partial<import('../domain/retry.js').RetrySchedule>>>;
  rate_limits?: { create?: number; read?: number; cli?: number; dashboard?: number };
  limits?: Partial<Record<'daily_cash_in' | 'daily_cash_out' | 'monthly_cash_in' | 'monthly_cash_out', number>>;
  /** Set by POST /account: the environments where the operator has more than one settlement account (internal). */
  extra_settlement_accounts?: Partial<Record<Environment, true>>;
  /** Origins (scheme://host[:port]) whose pages may embed the Widget. Unset: any in the sandbox, none in production. */
  allowed_origins?: string[];
  /** Apple Pay mobile: the merchant identifiers with a registered payment-processing certificate, the sheet's label. */
  apple_pay?: { merchant_identifiers?: string[]; total_label?: string; bt_application_key?: string; bt_merchant_registration_id?: string };
  /** The hosted pages' branding: display name, https logo, `#rrggbb` accent, the URL "Back to …" goes to (domain/branding.ts). */
  branding?: import('../domain/branding.js').BrandingSettings;
}

export interface IntentRow {
  operator_id: string;
  environment: Environment;
  id: string;
  user_id: string;
  direction: Direction;
  amount: number;
  currency: string;
  status: IntentStatus;
  decline_category: string | null;
  approval_mode: 'automatic' | 'manual';
  rail: 'ach' | 'card';
  type: string;
  tag: string | null;
  idempotency_key: string | null;
  redirect_url: string | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  account_id: string | null;
  display_limits: boolean | null;
  display_loyalty: boolean | null;
  credential_id: string | null;
  session_token: string;
  limits_utilization: LimitsUtilizationCents | null;
  decided_at: Date | null;
  settle_at: Date | null;
  settled_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** Waits for its step-up page (POST /authorize answered 202). */
  step_up?: boolean;
}

export interface CredentialRow {
  id: string;
  display_name: string;
  last4: string;
}

/** A credential as stored (migration 010): what is kept of a card, a bank account or an Apple Pay card. */
export interface StoredCredentialRow extends CredentialRow {
  operator_id: string;
  environment: Environment;
  user_id: string;
  method_type: 'card_only' | 'secure_debit' | 'apple_pay';
  type: import('../domain/decision.js').CredentialType;
  fingerprint: string;
  brand: string | null;
  card_last4: string | null;
  exp_month: number | null;
  exp_year: number | null;
  bank_name: string | null;
  account_last4: string | null;
  routing: string | null;
  authenticated: boolean;
  always_step_up: boolean;
  created_at: Date;
}

export interface TransactionRow extends Omit<TransactionRecord, 'created_at'> {
  created_at: Date;
  intent_id?: string;
  /** `intent` (a settlement), `refund`, `dispute` (a lost dispute's debit), `transfer`; migration 011. */
  type?: 'intent' | 'refund' | 'dispute' | 'transfer';
  /** The refund or dispute a transaction belongs to. */
  source_id?: string | null;
}
