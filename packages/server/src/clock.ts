import { randomBytes } from 'node:crypto';

/** The one source of time. Tests move a ManualClock instead of sleeping. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export class ManualClock implements Clock {
  /** Moved by hand: never corrected against the database's clock (db/clock-sync.ts). */
  readonly manual = true;
  private t: number;
  constructor(start: Date | number = Date.UTC(2026, 0, 15, 12, 0, 0)) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(at: Date | number): void {
    this.t = typeof at === 'number' ? at : at.getTime();
  }
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The one id generator: `prefix` + 22 random base62 characters (about 131 bits). */
export interface IdGenerator {
  next(prefix: string): string;
  secret(bytes?: number): string;
}

export const randomIds: IdGenerator = {
  next(prefix: string): string {
    const bytes = randomBytes(22);
    let out = prefix;
    for (let i = 0; i < 22; i++) out += ALPHABET[bytes[i]! % 62];
    return out;
  },
  secret(bytes = 24): string {
    return randomBytes(bytes).toString('base64url');
  },
};
