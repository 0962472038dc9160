/**
 * Retry schedules and the meaning of each attempt's outcome. Pure: the worker hands in what happened and the
 * clock's time, and gets back what to do next.
 */
import type { Format } from '@cashwire/webhooks';
import type { Environment } from './decision.js';

export interface RetrySchedule {
  /** Total attempts, the first included. */
  maxAttempts: number;
  /** Delay after the first failed attempt. */
  firstDelayMs: number;
  /** Each further delay is the previous one times this (1 = a fixed interval). */
  factor: number;
  /** No delay is longer than this. */
  maxDelayMs: number;
  /** No attempt starts later than this after the event. */
  maxAgeMs: number;
  /** Each delay is moved by up to ± this fraction, at random, so that retries of a burst spread out. */
  jitter: number;
  /** A 410 never disables the destination (Sendcash: "continue to send the same webhook"). */
  retryEveryFailure?: boolean;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/**
 * The defaults, documented in the README:
 * - sandbox: 3 attempts: at once, after 1 min, after 10 min; then expired.
 * - production: 40 attempts over about 3 days: 5 s, doubling, capped at 2 h 25 min; then expired.
 * - sendcash: every 5 minutes until a 2xx, for at most 3 days; then expired.
 */
export const DEFAULT_SCHEDULES = {
  sandbox: { maxAttempts: 3, firstDelayMs: MIN, factor: 10, maxDelayMs: 10 * MIN, maxAgeMs: DAY, jitter: 0.1 },
  production: { maxAttempts: 40, firstDelayMs: 5_000, factor: 2, maxDelayMs: 145 * MIN, maxAgeMs: 3 * DAY, jitter: 0.1 },
  sendcash: { maxAttempts: 1000, firstDelayMs: 5 * MIN, factor: 1, maxDelayMs: 5 * MIN, maxAgeMs: 3 * DAY, jitter: 0.1, retryEveryFailure: true },
} satisfies Record<string, RetrySchedule>;

export type ScheduleName = keyof typeof DEFAULT_SCHEDULES;

/** Sendcash deliveries resend every few minutes in both environments; the rest follow the environment. */
export function scheduleNameFor(environment: Environment, format: Format): ScheduleName {
  if (format === 'sendcash') return 'sendcash';
  return environment;
}

/** The delay after the `attempt`-th attempt (1-based) failed, before jitter. */
export function baseDelay(s: RetrySchedule, attempt: number): number {
  return Math.min(s.maxDelayMs, s.firstDelayMs * s.factor ** (attempt - 1));
}

/** `random` in [0, 1). */
export function delayAfter(s: RetrySchedule, attempt: number, random: number): number {
  const base = baseDelay(s, attempt);
  return Math.max(0, Math.round(base * (1 + s.jitter * (2 * random - 1))));
}

/** Longest wait a receiver can ask for with Retry-After. */
export const RETRY_AFTER_CAP_MS = HOUR;

export interface AttemptResult {
  /** HTTP status, absent for a network error or timeout. */
  status?: number;
  /** Retry-After, already parsed to milliseconds. */
  retryAfterMs?: number;
}

export type Next =
  | { kind: 'succeeded' }
  /** A registered pushcash or standard endpoint answered 410: it is disabled, and the delivery waits for it (held). */
  | { kind: 'held'; reason: 'gone' }
  | { kind: 'retry'; at: Date }
  | { kind: 'expired' };

/** Where a delivery goes: a registered endpoint, or the `webhook_url` of one payment. */
export interface Destination {
  registered: boolean;
  format: Format;
}

/**
 * Whether a 410 disables the destination and holds the delivery, rather than being retried like any failure. Only
 * registered `pushcash` and `standard` endpoints: an operator re-enables them and nothing is lost. A payment's own
 * `webhook_url` is retried until it answers 2xx (the Push Cash contract), and so is a `sendcash` endpoint ("continue to
 * send the same webhook").
 */
export function goneHolds(d: Destination, schedule: RetrySchedule): boolean {
  return d.registered && d.format !== 'sendcash' && !schedule.retryEveryFailure;
}

/** Answers that mean "overloaded": without Retry-After, they wait at least twice the schedule's next step. */
export const SLOW_DOWN_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * What happens after an attempt. The status line alone decides. 2xx succeeds. A 410 from a registered pushcash or
 * standard endpoint holds the delivery (the endpoint is disabled). Everything else, 3xx, 410 elsewhere and 413
 * included, and every network error or timeout, is retried on the schedule; a 429 or 503 with Retry-After waits
 * at least that long (capped at an hour); 429, 502, 503 and 504 without it wait at least twice the schedule's step.
 * Past the attempt count or the age limit, the delivery expires.
 */
export function nextStep(input: {
  schedule: RetrySchedule;
  result: AttemptResult;
  attempt: number;
  createdAt: Date;
  now: Date;
  random: number;
  destination: Destination;
}): Next {
  const { status, retryAfterMs } = input.result;
  if (status !== undefined && status >= 200 && status < 300) return { kind: 'succeeded' };
  if (status === 410 && goneHolds(input.destination, input.schedule)) return { kind: 'held', reason: 'gone' };
  if (input.attempt >= input.schedule.maxAttempts) return { kind: 'expired' };
  let delay = delayAfter(input.schedule, input.attempt, input.random);
  if ((status === 429 || status === 503) && retryAfterMs !== undefined) {
    delay = Math.max(delay, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS));
  } else if (status !== undefined && SLOW_DOWN_STATUSES.has(status)) {
    delay *= 2;
  }
  const at = new Date(input.now.getTime() + delay);
  if (at.getTime() > input.createdAt.getTime() + input.schedule.maxAgeMs) return { kind: 'expired' };
  return { kind: 'retry', at };
}

/**
 * The schedule in force for a delivery: the default of its name, with the operator's overrides of that name as they
 * were when the delivery was made (`overrides` is the operator's `retry_schedules` setting, keyed by name).
 */
export function scheduleFor(environment: Environment, format: Format, overrides: Partial<Record<ScheduleName, Partial<RetrySchedule>>> | null): RetrySchedule {
  const name = scheduleNameFor(environment, format);
  return { ...DEFAULT_SCHEDULES[name], ...(overrides?.[name] ?? {}) };
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/** The whole default schedule as offsets from the first attempt, for the README and the tests. */
export function offsets(s: RetrySchedule): number[] {
  const out = [0];
  for (let a = 1; a < s.maxAttempts; a++) {
    const next = out[a - 1]! + baseDelay(s, a);
    if (next > s.maxAgeMs) break;
    out.push(next);
  }
  return out;
}
