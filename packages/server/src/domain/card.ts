/**
 * Card numbers, expiry and CVV as a card form or POST /tokenize sends them: the checks a card network would make
 * before anything is stored, and what is kept of a card (never its PAN or CVV). Pure; `now` comes from the clock.
 */
import type { ErrorCode } from './errors.js';

export type CardBrand = 'visa' | 'mastercard' | 'amex' | 'discover' | 'unknown';
export type Funding = 'debit' | 'credit';

/** The sandbox's test cards (the README lists them). Any other card that passes the checks is a debit card. */
export const TEST_CARDS = {
  /** Approves (the documented sandbox card). */
  approve: '5555555555554444',
  /** Always requires authentication: POST /authorize answers 202 with a step-up page. */
  stepUp: '4000000000003220',
  /** A credit card: deposits only (card_only_credit). */
  credit: '4111111111111111',
} as const;

export interface CardInput { pan: string; cvv: string; exp_month: string; exp_year: string }

export interface Card {
  /** Digits only; used for the fingerprint and thrown away. */
  pan: string;
  last4: string;
  bin: string;
  brand: CardBrand;
  funding: Funding;
  expMonth: number;
  /** Four digits. */
  expYear: number;
}

export interface CardProblem { field: keyof CardInput; code: ErrorCode; message: string }

export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function brandOf(pan: string): CardBrand {
  if (/^4/.test(pan)) return 'visa';
  const p4 = Number(pan.slice(0, 4));
  if (/^5[1-5]/.test(pan) || (p4 >= 2221 && p4 <= 2720)) return 'mastercard';
  if (/^3[47]/.test(pan)) return 'amex';
  if (/^(6011|65|64[4-9])/.test(pan)) return 'discover';
  return 'unknown';
}

export const BRAND_NAME: Record<CardBrand, string> = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', unknown: 'Card' };

/** The card, or the first problem with it. Spaces and dashes between the digits of the number are allowed. */
export function checkCard(input: CardInput, now: Date): { card: Card } | { problem: CardProblem } {
  const pan = input.pan.replace(/[\s-]/g, '');
  if (!/^\d{12,19}$/.test(pan) || !luhn(pan)) {
    return { problem: { field: 'pan', code: 'invalid_card_number', message: 'pan must be a card number of 12 to 19 digits that passes the Luhn check' } };
  }
  const brand = brandOf(pan);
  const m = input.exp_month.trim();
  const y = input.exp_year.trim();
  if (!/^\d{1,2}$/.test(m) || +m < 1 || +m > 12) return { problem: { field: 'exp_month', code: 'invalid_expiry', message: 'exp_month must be a month from 1 to 12, e.g. "07"' } };
  if (!/^(\d{2}|\d{4})$/.test(y)) return { problem: { field: 'exp_year', code: 'invalid_expiry', message: 'exp_year must be 2 or 4 digits, e.g. "28" or "2028"' } };
  const expYear = y.length === 2 ? 2000 + +y : +y;
  const expMonth = +m;
  // A card is good through the last day of its expiry month (UTC).
  const endOfMonth = Date.UTC(expYear, expMonth, 1);
  if (endOfMonth <= now.getTime()) return { problem: { field: 'exp_year', code: 'card_expired', message: `the card expired at the end of ${String(expMonth).padStart(2, '0')}/${expYear}` } };
  if (expYear > now.getUTCFullYear() + 20) return { problem: { field: 'exp_year', code: 'invalid_expiry', message: 'exp_year is more than 20 years away' } };
  const cvvLength = brand === 'amex' ? 4 : 3;
  if (!new RegExp(`^\\d{${cvvLength}}$`).test(input.cvv.trim())) {
    return { problem: { field: 'cvv', code: 'invalid_cvv', message: `cvv must be ${cvvLength} digits for this card` } };
  }
  return { card: { pan, last4: pan.slice(-4), bin: pan.slice(0, 8), brand, funding: pan === TEST_CARDS.credit ? 'credit' : 'debit', expMonth, expYear } };
}
