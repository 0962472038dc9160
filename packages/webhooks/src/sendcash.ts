/**
 * Sendcash Pay's fraud check (seed 004): give value only when the paying bank account's name is the user's verified
 * name. Bank systems print names in their own way, so both sides are normalised first: case, accents (NFD, marks
 * stripped), punctuation, spacing and word order. Extra or missing names (a middle name) still count as a mismatch.
 */
import type { PaymentStatusData } from './catalog.js';

export interface SenderNameCheck {
  /** The normalised names are equal. Computed even when skipped. */
  match: boolean;
  /** The check does not apply (a `business` source account): decide with `match || skipped`. */
  skipped: boolean;
  reason: 'names_match' | 'names_differ' | 'missing_sender_name' | 'business_account';
  normalizedSender: string;
  normalizedExpected: string;
}

/** `"Ọlá  O'Brien-Adé"` → `"ade obrien ola"`: lower case, no accents, letters and digits only, words sorted. */
export function normalizeName(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’‘`.]/g, '') // O'Brien = OBrien, J.R. = JR
    .replace(/[^\p{L}\p{N}]+/gu, ' ') // hyphens, commas, runs of spaces
    .trim()
    .split(' ')
    .filter(Boolean)
    .sort()
    .join(' ');
}

export function checkSenderName(
  data: Pick<PaymentStatusData, 'senderAccountName' | 'sourceAccountType'>,
  verifiedName: string,
): SenderNameCheck {
  const normalizedSender = normalizeName(data.senderAccountName ?? '');
  const normalizedExpected = normalizeName(verifiedName);
  const match = normalizedSender !== '' && normalizedSender === normalizedExpected;
  const skipped = data.sourceAccountType?.trim().toLowerCase() === 'business';
  const reason = skipped ? 'business_account' : !normalizedSender ? 'missing_sender_name' : match ? 'names_match' : 'names_differ';
  return { match, skipped, reason, normalizedSender, normalizedExpected };
}
