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
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
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
  const dob = new Date(`${u.date_of_birth}T00:00:00Z`);
  const adult = new Date(Date.UTC(today.getUTCFullYear() - 18, today.getUTCMonth(), today.getUTCDate()));
  if (dob > adult) return { field: 'date_of_birth', code: 'underage', message: 'the user must be at least 18 years old' };
  if (dob.getUTCFullYear() < 1900) return { field: 'date_of_birth', code: 'invalid_date', message: 'date_of_birth is before 1900' };
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
  if (u.phone_number !== undefined && !/^\+?[1-9]\d{6,14}$/.test(u.phone_number)) {
    return { field: 'phone_number', code: 'invalid_phone_number', message: 'phone_number must be in E.164 form, e.g. "+12125550123"' };
  }
  return undefined;
}
