import { describe, expect, it } from 'vitest';
import type { Format } from '@cashwire/webhooks';
import { DEFAULT_SCHEDULES, delayAfter, nextStep, offsets, parseRetryAfter, scheduleFor, scheduleNameFor } from '../src/domain/retry.js';

const created = new Date('2026-01-01T00:00:00Z');
type Extra = { retryAfterMs?: number; schedule?: keyof typeof DEFAULT_SCHEDULES; now?: Date; registered?: boolean; format?: Format };
const step = (status: number | undefined, attempt = 1, extra: Extra = {}) =>
  nextStep({
    schedule: DEFAULT_SCHEDULES[extra.schedule ?? 'production'], result: { status, retryAfterMs: extra.retryAfterMs }, attempt, createdAt: created,
    now: extra.now ?? created, random: 0.5,
    destination: { registered: extra.registered ?? false, format: extra.format ?? (extra.schedule === 'sendcash' ? 'sendcash' : 'pushcash') },
  });

describe('retry rules', () => {
  it('succeeds on any 2xx; a payment webhook_url is retried on 410 and 413 like any failure, until it expires', () => {
    for (const s of [200, 201, 204, 299]) expect(step(s).kind).toBe('succeeded');
    expect(step(410).kind).toBe('retry');
    expect(step(413).kind).toBe('retry');
    expect(step(410, 40).kind).toBe('expired');
  });
  it('holds on 410 from a registered pushcash or standard endpoint (it is disabled), whatever the attempt; 413 is retried', () => {
    expect(step(410, 1, { registered: true })).toEqual({ kind: 'held', reason: 'gone' });
    expect(step(410, 40, { registered: true, format: 'standard' })).toEqual({ kind: 'held', reason: 'gone' });
    expect(step(413, 1, { registered: true }).kind).toBe('retry');
  });
  it('resends Sendcash webhooks on every non-2xx, 410 and 413 included, registered or not', () => {
    expect(step(410, 1, { schedule: 'sendcash', registered: true }).kind).toBe('retry');
    expect(step(413, 1, { schedule: 'sendcash', registered: true }).kind).toBe('retry');
    expect(step(200, 1, { schedule: 'sendcash' }).kind).toBe('succeeded');
  });
  it('retries 3xx, 4xx, 5xx and network errors', () => {
    for (const s of [301, 302, 400, 401, 404, 429, 500, 502, 503, undefined]) expect(step(s).kind).toBe('retry');
  });
  it('waits twice the step after 429, 502, 503 and 504 without Retry-After', () => {
    for (const s of [429, 502, 503, 504]) expect(step(s, 1)).toEqual({ kind: 'retry', at: new Date(created.getTime() + 10_000) });
    expect(step(500, 1)).toEqual({ kind: 'retry', at: new Date(created.getTime() + 5_000) });
    expect(step(undefined, 1)).toEqual({ kind: 'retry', at: new Date(created.getTime() + 5_000) });
  });
  it('takes the schedule from the environment and the format, with the operator\'s overrides of that schedule', () => {
    expect(scheduleFor('sandbox', 'pushcash', null)).toEqual(DEFAULT_SCHEDULES.sandbox);
    expect(scheduleFor('sandbox', 'sendcash', { sandbox: { maxAttempts: 9 } })).toEqual(DEFAULT_SCHEDULES.sendcash);
    expect(scheduleFor('production', 'standard', { production: { maxAttempts: 9 } })).toEqual({ ...DEFAULT_SCHEDULES.production, maxAttempts: 9 });
  });
  it('honours Retry-After on 429 and 503 only, capped at an hour, never shorter than the schedule', () => {
    expect(step(429, 1, { retryAfterMs: 120_000 })).toEqual({ kind: 'retry', at: new Date(created.getTime() + 120_000) });
    expect(step(503, 1, { retryAfterMs: 99 * 3_600_000 })).toEqual({ kind: 'retry', at: new Date(created.getTime() + 3_600_000) });
    expect(step(503, 1, { retryAfterMs: 1 })).toEqual({ kind: 'retry', at: new Date(created.getTime() + 5_000) });
    expect(step(500, 1, { retryAfterMs: 120_000 })).toEqual({ kind: 'retry', at: new Date(created.getTime() + 5_000) });
  });
  it('expires after the last attempt or past the age limit', () => {
    expect(step(500, 40).kind).toBe('expired');
    expect(step(500, 3, { schedule: 'sandbox' }).kind).toBe('expired');
    expect(step(500, 2, { schedule: 'sendcash', now: new Date(created.getTime() + 3 * 86_400_000 - 1000) }).kind).toBe('expired');
  });
  it('jitters within ±10%', () => {
    const s = DEFAULT_SCHEDULES.production;
    expect(delayAfter(s, 1, 0)).toBe(4_500);
    expect(delayAfter(s, 1, 0.5)).toBe(5_000);
    expect(delayAfter(s, 1, 0.999999)).toBe(5_500);
  });
  it('has the documented default schedules', () => {
    expect(offsets(DEFAULT_SCHEDULES.sandbox)).toEqual([0, 60_000, 660_000]);
    const prod = offsets(DEFAULT_SCHEDULES.production);
    expect(prod).toHaveLength(40);
    expect(prod[39]! / 3_600_000).toBeCloseTo(70.5, 0);
    const sendcash = offsets(DEFAULT_SCHEDULES.sendcash);
    expect(sendcash.slice(0, 3)).toEqual([0, 300_000, 600_000]);
    expect(sendcash[sendcash.length - 1]).toBe(3 * 86_400_000);
    expect(scheduleNameFor('sandbox', 'sendcash')).toBe('sendcash');
    expect(scheduleNameFor('production', 'pushcash')).toBe('production');
  });
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
