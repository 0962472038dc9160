/** Sendcash Pay rules: exact amounts, the charge signature, sandbox outcomes. Pure. */
import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '@cashwire/webhooks';

/**
 * An amount in currency units (e.g. 100.23, or "100.23") to kobo, exactly: parsed from its decimal text, never
 * through float arithmetic. At most two decimals; positive.
 */
export function toKobo(value: number | string): number | undefined {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
  const m = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const kobo = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return kobo > 0 ? kobo : undefined;
}

/** Kobo back to currency units for a payload: 10023 → 100.23. */
export function fromKobo(kobo: number): number {
  return Number(`${Math.floor(kobo / 100)}.${String(kobo % 100).padStart(2, '0')}`);
}

/** What the charge (and transfer-request) signature signs. */
export function chargeSignatureBase(p: { userId: string; reference: string; amountKobo: number; destinationAccountNumber: string; destinationBankCode: string }): string {
  return `${p.userId}:${p.reference}:${p.amountKobo}:${p.destinationAccountNumber}:${p.destinationBankCode}`;
}

export function chargeSignature(secretKey: string, base: string): string {
  return createHmac('sha256', secretKey).update(base).digest('hex');
}

export function signatureMatches(secretKey: string, base: string, given: string): boolean {
  return constantTimeEqual(given.trim().toLowerCase(), chargeSignature(secretKey, base));
}

/**
 * Sandbox amounts that decide a charge at once (documented in the README): 22.00 fails, 11.11 completes with the
 * sandbox payer. Anything else waits for the payer page or the simulate endpoints.
 */
export function sandboxOutcome(amountKobo: number): 'Completed' | 'Failed' | undefined {
  if (amountKobo === 2200) return 'Failed';
  if (amountKobo === 1111) return 'Completed';
  return undefined;
}

export const SANDBOX_PAYER = {
  senderAccountName: 'Sandbox Payer',
  sourceAccountNumber: '0123456789',
  sourceAccountType: 'personal',
  sourceBankCode: '058',
};
