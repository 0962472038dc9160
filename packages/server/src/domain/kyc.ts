/** Field-by-field rules for a user's KYC record beyond what the JSON schema says. Pure. */
import type { ErrorCode } from './errors.js';

export const US_STATES = new Set(
  ('AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA ' +
    'RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP').split(' '),
);

export interface FieldProblem { field: string; code: ErrorCode; message: string }

export interface KycInput {
  email: string;
  date_of_birth: string;
  address: { administrative_area: string; postal_code: string; country: string };
  government_id: { type: string; last4: string; state?: string };
  identity_verified: boolean;
  phone_number?: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const POSTAL = /^\d{5}(-\d{4})?$/;

/** `YYYY-MM-DD` that names a real calendar day. */
export function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  // setUTCFullYear, not Date.UTC: Date.UTC reads the years 0 to 99 as 1900 to 1999.
  const d = new Date(0);
  d.setUTCFullYear(+m[1]!, +m[2]! - 1, +m[3]!);
  return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
}

/**
 * A phone number in E.164 form, or undefined when it is not one. Accepted: E.164 itself (`+12125550123`,
 * `+442071838750`), and NANP numbers in the usual notations, with or without a leading 1 or +1: `(555) 681-3485`,
 * `555-681-3485`, `555.681.3485`, `555 681 3485`, `5556813485`, `+1 (555) 681-3485`. This checks syntax (NANP: area
 * code and exchange start with 2 to 9), not whether the number is assigned: `555` numbers are accepted.
 */
export function e164Phone(raw: string): string | undefined {
  const s = raw.trim();
  const nanp = /^(?:\+?1[\s.-]?)?(?:\(\s*([2-9]\d{2})\s*\)|([2-9]\d{2}))[\s.-]?([2-9]\d{2})[\s.-]?(\d{4})$/.exec(s);
  if (nanp) return `+1${nanp[1] ?? nanp[2]}${nanp[3]}${nanp[4]}`;
  if (!/^\+[1-9][\d\s.-]{5,20}\d$/.test(s)) return undefined;
  const digits = s.slice(1).replace(/[\s.-]/g, '');
  // +1 is NANP: the rule above already said no to this one.
  if (digits.startsWith('1') || digits.length < 7 || digits.length > 15) return undefined;
  return `+${digits}`;
}

/** Returns the first problem, or undefined. `today` comes from the injected clock. */
export function checkKyc(u: KycInput, today: Date): FieldProblem | undefined {
  if (!EMAIL.test(u.email)) return { field: 'email', code: 'invalid_email', message: 'email must be an email address' };
  if (!US_STATES.has(u.address.administrative_area)) {
    return { field: 'address.administrative_area', code: 'invalid_state', message: 'administrative_area must be a 2-letter US state code, e.g. "NY"' };
  }
  if (!POSTAL.test(u.address.postal_code)) {
    return { field: 'address.postal_code', code: 'invalid_postal_code', message: 'postal_code must be 5 digits or 5+4 digits ("12345" or "12345-6789")' };
  }
  if (u.address.country !== 'US') return { field: 'address.country', code: 'unsupported_country', message: 'country must be "US"' };
  if (!isCalendarDate(u.date_of_birth)) {
    return { field: 'date_of_birth', code: 'invalid_date', message: 'date_of_birth must be a real date as YYYY-MM-DD' };
  }
  // No lower bound: real clients register users born in 1899.
  const dob = new Date(0);
  dob.setUTCFullYear(+u.date_of_birth.slice(0, 4), +u.date_of_birth.slice(5, 7) - 1, +u.date_of_birth.slice(8, 10));
  const adult = new Date(Date.UTC(today.getUTCFullYear() - 18, today.getUTCMonth(), today.getUTCDate()));
  if (dob > adult) return { field: 'date_of_birth', code: 'underage', message: 'the user must be at least 18 years old' };
  const gid = u.government_id;
  if (!/^\d{4}$/.test(gid.last4) && !(gid.type === 'passport' && /^[A-Z0-9]{4}$/.test(gid.last4))) {
    return { field: 'government_id.last4', code: 'invalid_last4', message: 'last4 must be the last 4 digits of the id (passports: 4 letters or digits)' };
  }
  const needsState = gid.type === 'drivers_license' || gid.type === 'state_id';
  if (needsState && gid.state === undefined) {
    return { field: 'government_id.state', code: 'state_required', message: `government_id.state is required for ${gid.type}` };
  }
  if (!needsState && gid.state !== undefined) {
    return { field: 'government_id.state', code: 'state_not_allowed', message: `government_id.state applies only to drivers_license and state_id, not ${gid.type}` };
  }
  if (needsState && !US_STATES.has(gid.state!)) {
    return { field: 'government_id.state', code: 'invalid_state', message: 'government_id.state must be a 2-letter US state code' };
  }
  if (u.identity_verified !== true) {
    return { field: 'identity_verified', code: 'identity_not_verified', message: 'identity_verified must be true: register users only after your KYC check passed' };
  }
  if (u.phone_number !== undefined && e164Phone(u.phone_number) === undefined) {
    return {
      field: 'phone_number', code: 'invalid_phone_number',
      message: 'phone_number must be a US number such as "(555) 681-3485" or "555-681-3485", or E.164 such as "+12125550123"',
    };
  }
  return undefined;
}
