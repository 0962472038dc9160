/**
 * Worker heartbeats and readiness: every statement on `worker_heartbeats` is here (migration 009), and the one read
 * behind GET /readyz (and the `cashwire_ready` gauge). A delivery worker beats through {@link createHeartbeat}: after
 * every claim statement, and from its idle keepalive, at most once per `everyMs`. Times are the callers' clocks
 * (`deps.clock`): a worker's beat and the API's `now` are compared as they are, so a worker beats with the clock its
 * claims use.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import { oldestWaiting } from './queue.js';

/** Records that `worker` is alive at `at` (and, with `claimed`, that it ran a claim statement then). One upsert. */
export async function beat(db: Queryable, worker: string, at: Date, claimed: boolean): Promise<void> {
  await db.query(
    `INSERT INTO worker_heartbeats (worker, beat_at, claimed_at) VALUES ($1, $2, CASE WHEN $3::boolean THEN $2::timestamptz END)
     ON CONFLICT (worker) DO UPDATE SET beat_at = EXCLUDED.beat_at, claimed_at = coalesce(EXCLUDED.claimed_at, worker_heartbeats.claimed_at)`,
    [worker, at, claimed],
  );
}

/** Removes `worker`'s heartbeat (it stopped): it no longer counts as alive. */
export async function forget(db: Queryable, worker: string): Promise<void> {
  await db.query('DELETE FROM worker_heartbeats WHERE worker = $1', [worker]);
}

/** Deletes the heartbeats of workers last seen before `olderThan` (they died without forgetting). Returns how many. */
export async function pruneHeartbeats(db: Queryable, olderThan: Date): Promise<number> {
  const r = await db.query('DELETE FROM worker_heartbeats WHERE beat_at < $1', [olderThan]);
  return r.rowCount ?? 0;
}

export interface ReadinessOptions {
  /** The oldest due delivery may have been due this long, at most. */
  maxLagMs: number;
  /** A worker is alive when it beat within this window before now. */
  workerMs: number;
}

/** The checks of GET /readyz, as they are answered (JSON). */
export interface ReadinessChecks {
  delivery_lag: {
    ok: boolean;
    /** How long ago the oldest due pending delivery (held ones aside) became due; 0 when none is due. */
    lag_ms: number;
    max_lag_ms: number;
    oldest_due_at: string | null;
  };
  workers: {
    ok: boolean;
    /** Workers that beat within the window. */
    seen: number;
    /** Age of the newest heartbeat; null when there is none; negative when a worker's clock is ahead of this one's. */
    newest_beat_age_ms: number | null;
    window_ms: number;
  };
}

export interface Readiness {
  ready: boolean;
  /** Why not ready: no live worker first (nothing delivers at all), then lag. */
  failing: 'no_worker' | 'delivery_lagging' | null;
  checks: ReadinessChecks;
}

/**
 * Whether deliveries are flowing, at `now`: the oldest due delivery has waited at most `maxLagMs`, and some worker
 * beat within `workerMs`. The waiting deliveries are read lane by lane (queue.ts oldestWaiting: lanes with attempts in
 * flight or an open circuit are moving, or paused on purpose), and the heartbeats table
 * (one row per worker). Rejects when the database does.
 */
export async function readiness(db: Queryable, now: Date, opts: ReadinessOptions): Promise<Readiness> {
  const [oldest, { rows }] = await Promise.all([
    oldestWaiting(db, now),
    db.query<{ newest_beat: Date | null; seen: number }>(
      `SELECT (SELECT max(beat_at) FROM worker_heartbeats) AS newest_beat,
              (SELECT count(*)::int FROM worker_heartbeats WHERE beat_at >= $1) AS seen`,
      [new Date(now.getTime() - opts.workerMs)],
    ),
  ]);
  const r = { ...rows[0]!, oldest_due: oldest };
  const lagMs = r.oldest_due ? Math.max(0, now.getTime() - r.oldest_due.getTime()) : 0;
  const checks: ReadinessChecks = {
    delivery_lag: { ok: lagMs <= opts.maxLagMs, lag_ms: lagMs, max_lag_ms: opts.maxLagMs, oldest_due_at: r.oldest_due ? r.oldest_due.toISOString() : null },
    workers: { ok: r.seen > 0, seen: r.seen, newest_beat_age_ms: r.newest_beat ? now.getTime() - r.newest_beat.getTime() : null, window_ms: opts.workerMs },
  };
  const failing = !checks.workers.ok ? 'no_worker' : !checks.delivery_lag.ok ? 'delivery_lagging' : null;
  return { ready: failing === null, failing, checks };
}

export interface Heartbeat {
  /**
   * A claim statement ran (whatever it returned), or the idle keepalive fired: writes a beat unless one was written
   * less than `everyMs` ago or is still in flight. Never throws, never waits. `claimed: false` records only that the
   * worker is alive (claimed_at is left as it was); a claim seen between two writes is carried to the next one.
   */
  onClaim(claimed?: boolean): void;
  /** No more beats; waits for the one in flight, then forgets this worker. Never rejects. */
  stop(): Promise<void>;
}

/**
 * A worker's heartbeat, throttled to one write per `everyMs` (by `deps.clock`; a clock that moved back writes at
 * once). Writes are fire-and-forget: a failure is logged at debug (when a logger is given) and the next call after
 * `everyMs` tries again.
 */
export function createHeartbeat(deps: { db: Queryable; clock: Clock; worker: string; log?: Pick<Logger, 'debug'> }, everyMs = 5000): Heartbeat {
  let last = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | undefined;
  let stopped = false;
  let claimSeen = false;

  return {
    onClaim(claimed = true) {
      if (stopped) return;
      if (claimed) claimSeen = true;
      if (inflight) return;
      try {
        const now = deps.clock.now();
        const elapsed = now.getTime() - last;
        if (elapsed >= 0 && elapsed < everyMs) return;
        last = now.getTime();
        const c = claimSeen;
        claimSeen = false;
        inflight = Promise.resolve()
          .then(() => beat(deps.db, deps.worker, now, c))
          .catch((err: unknown) => deps.log?.debug({ err, worker: deps.worker }, 'heartbeat not written'))
          .finally(() => {
            inflight = undefined;
          });
      } catch (err) {
        deps.log?.debug({ err, worker: deps.worker }, 'heartbeat not written');
      }
    },
    async stop() {
      stopped = true;
      await inflight;
      await forget(deps.db, deps.worker).catch((err: unknown) => deps.log?.debug({ err, worker: deps.worker }, 'heartbeat not forgotten'));
    },
  };
}
