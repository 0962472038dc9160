/**
 * Test clocks (sandbox only): an operator advances its own sandbox clock by a duration (POST /sandbox/clock/advance,
 * `cashwire clock advance 2m`), and everything of its sandbox that waits for a time comes due as if that time had
 * passed. There is no per-operator "now": the operator's pending due times move earlier by the duration, in one
 * transaction, so every reader (the delivery workers, the settlement job, the widget, token checks) keeps using its
 * one real clock, and production, the other operators and the default schedules are untouched by construction.
 *
 * What moves (pending rows of the operator's sandbox only):
 * - deliveries: the next attempt and the creation time the schedule's age limit counts from (delivery/queue.ts,
 *   advanceOperatorDeliveries), the circuits of its lanes and endpoints, a rotated endpoint secret's grace period;
 * - settlements: approved, unsettled intents' `settle_at`;
 * - widget sessions: unspent, unexpired nonces' `expires_at`;
 * - tokens: unexpired tokens' `expires_at`;
 * - idempotency keys: unexpired keys' `expires_at` (a key then answers a repeat for as much less time).
 * What does not: anything already past (an expired nonce stays expired, a due retry stays due), created_at of objects
 * other than pending deliveries, the event feed, signatures and body timestamps (the worker's clock at each attempt).
 *
 * The running total per operator is kept in `sandbox_clocks` (migration 016) and shown by GET /sandbox/clock.
 */
import { withTx } from '../../db/pool.js';
import { advanceOperatorDeliveries } from '../../delivery/queue.js';
import { DomainError, errors } from '../../domain/errors.js';
import type { Caller, Deps } from '../context.js';

/** The largest advance at once: 365 days. */
export const MAX_ADVANCE_SECONDS = 31_536_000;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/**
 * A duration: whole seconds ("90") or one or more whole numbers with a unit, largest first or not ("90s", "2m",
 * "1h30m", "1d"). Returns seconds, or null when it is not one (or not within 1 s .. 365 days).
 */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  let seconds: number;
  if (/^\d{1,9}$/.test(t)) seconds = Number(t);
  else {
    if (!/^(\d{1,9}[smhd])+$/.test(t)) return null;
    seconds = 0;
    for (const m of t.matchAll(/(\d+)([smhd])/g)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  }
  return Number.isSafeInteger(seconds) && seconds >= 1 && seconds <= MAX_ADVANCE_SECONDS ? seconds : null;
}

export interface ClockAdvance {
  advanced_by_seconds: number;
  moved: { deliveries: number; settlements: number; widget_sessions: number; tokens: number; idempotency_keys: number; circuits: number; secret_rotations: number };
  total_advanced_seconds: number;
  advanced_at: string;
}

export interface ClockState {
  total_advanced_seconds: number;
  advances: number;
  last_advanced_at: string | null;
}

/** The seconds of a request body `{seconds}` or `{duration}` (exactly one). */
export function secondsOf(body: { seconds?: number; duration?: string }): number {
  const hasSeconds = body.seconds !== undefined;
  const hasDuration = body.duration !== undefined;
  if (hasSeconds === hasDuration) throw new DomainError('seconds_or_duration');
  if (hasSeconds) return body.seconds!; // the route's schema holds it to an integer in 1 .. MAX_ADVANCE_SECONDS
  const s = parseDuration(body.duration!);
  if (s === null) {
    throw errors.validation('duration', `duration ${JSON.stringify(body.duration)} is not a duration: use whole seconds ("90") or "90s", "2m", "1h", "1d" (at most 365 days)`, 'invalid_duration');
  }
  return s;
}

/** POST /sandbox/clock/advance: moves the caller's pending sandbox due times `seconds` earlier, in one transaction. */
export async function advanceClock(deps: Deps, caller: Caller, seconds: number): Promise<ClockAdvance> {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  const op = caller.operatorId;
  const env = caller.environment;
  const now = deps.clock.now();
  return withTx(deps.db, async (tx) => {
    // The engine's rows first: it takes its locks with SKIP LOCKED, so it never waits on a claim.
    const d = await advanceOperatorDeliveries(tx, op, env, seconds, now);
    const iv = `($3::double precision * interval '1 second')`;
    const { rows } = await tx.query<{ settlements: number; widget_sessions: number; tokens: number; idempotency_keys: number; total: number }>(
      `WITH settlements AS (
         UPDATE intents SET settle_at = settle_at - ${iv}
          WHERE operator_id = $1 AND environment = $2 AND status = 'approved' AND settled_at IS NULL AND settle_at > $4
         RETURNING 1
       ), nonces AS (
         UPDATE nonces SET expires_at = expires_at - ${iv}
          WHERE operator_id = $1 AND environment = $2 AND spent_at IS NULL AND expires_at > $4
         RETURNING 1
       ), tokens AS (
         UPDATE tokens SET expires_at = expires_at - ${iv}
          WHERE operator_id = $1 AND environment = $2 AND expires_at > $4
         RETURNING 1
       ), idem AS (
         UPDATE idempotency_keys SET expires_at = expires_at - ${iv}
          WHERE operator_id = $1 AND environment = $2 AND expires_at > $4
         RETURNING 1
       ), total AS (
         INSERT INTO sandbox_clocks (operator_id, advanced_seconds, advances, updated_at) VALUES ($1, $3, 1, $4)
         ON CONFLICT (operator_id) DO UPDATE
           SET advanced_seconds = sandbox_clocks.advanced_seconds + EXCLUDED.advanced_seconds, advances = sandbox_clocks.advances + 1, updated_at = EXCLUDED.updated_at
         RETURNING advanced_seconds
       )
       SELECT (SELECT count(*)::int FROM settlements) AS settlements, (SELECT count(*)::int FROM nonces) AS widget_sessions,
              (SELECT count(*)::int FROM tokens) AS tokens, (SELECT count(*)::int FROM idem) AS idempotency_keys,
              (SELECT advanced_seconds FROM total) AS total`,
      [op, env, seconds, now],
    );
    const r = rows[0]!;
    deps.log.info({ operator_id: op, seconds, moved: { ...d, ...r, total: undefined } }, 'sandbox clock advanced');
    return {
      advanced_by_seconds: seconds,
      moved: {
        deliveries: d.deliveries, settlements: r.settlements, widget_sessions: r.widget_sessions, tokens: r.tokens, idempotency_keys: r.idempotency_keys,
        circuits: d.circuits, secret_rotations: d.secret_rotations,
      },
      total_advanced_seconds: Number(r.total),
      advanced_at: now.toISOString(),
    };
  });
}

/** GET /sandbox/clock: how far the caller's sandbox clock has been advanced in all. */
export async function clockState(deps: Deps, caller: Caller): Promise<ClockState> {
  if (caller.environment !== 'sandbox') throw errors.sandboxOnly();
  const { rows } = await deps.db.query<{ advanced_seconds: number; advances: number; updated_at: Date }>(
    'SELECT advanced_seconds, advances, updated_at FROM sandbox_clocks WHERE operator_id = $1',
    [caller.operatorId],
  );
  const r = rows[0];
  return { total_advanced_seconds: r ? Number(r.advanced_seconds) : 0, advances: r?.advances ?? 0, last_advanced_at: r ? r.updated_at.toISOString() : null };
}
