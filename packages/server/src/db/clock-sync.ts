/**
 * The database's clock, as seen from this process: the injected clock corrected by an offset measured against
 * PostgreSQL's clock_timestamp(). Workers claim, lease and schedule by it, so that hosts whose clocks disagree still
 * agree on when a lease runs out: a worker ahead by more than the lease margin (lease − total timeout, 15 s by
 * default) would otherwise take leases that are still live, and one behind would leave due work waiting.
 *
 * The offset is the median of a few samples, each read at the midpoint of its round trip: its error is at most half
 * the round trip of the sample used (well under a millisecond on a local network), plus the drift between two
 * measurements (it is measured again every `everyMs`). A manual clock (tests) is never corrected: tests move it.
 */
import type { Clock } from '../clock.js';
import type { Queryable } from './pool.js';

export interface SyncedClock extends Clock {
  /** Database time minus this clock, in ms (0 until measured). */
  readonly offsetMs: number;
  /** Measures the offset now. Never rejects: a failure keeps the last offset. */
  sync(): Promise<void>;
  /** Measures now and then every `everyMs`, until stop(). */
  start(everyMs?: number): Promise<void>;
  stop(): void;
}

/** Whether a clock is one that tests move by hand (never corrected). */
export function isManual(clock: Clock): boolean {
  return (clock as { manual?: boolean }).manual === true;
}

/** One sample: the database's clock minus the midpoint of the round trip, and the round trip. */
async function sample(db: Queryable, clock: Clock): Promise<{ offset: number; rtt: number }> {
  const t0 = clock.now().getTime();
  const { rows } = await db.query<{ t: Date }>('SELECT clock_timestamp() AS t');
  const t1 = clock.now().getTime();
  return { offset: rows[0]!.t.getTime() - (t0 + t1) / 2, rtt: t1 - t0 };
}

export function syncedClock(db: Queryable, base: Clock, onError?: (err: unknown) => void): SyncedClock {
  let offset = 0;
  let timer: NodeJS.Timeout | undefined;
  const manual = isManual(base);
  const self: SyncedClock = {
    get offsetMs() {
      return offset;
    },
    now: () => (offset === 0 ? base.now() : new Date(base.now().getTime() + offset)),
    async sync() {
      if (manual) return;
      try {
        const samples: { offset: number; rtt: number }[] = [];
        for (let i = 0; i < 5; i++) samples.push(await sample(db, base));
        // The samples with the shortest round trips bound the offset tightest; their median resists a stray one.
        samples.sort((a, b) => a.rtt - b.rtt);
        const best = samples.slice(0, 3).map((s) => s.offset).sort((a, b) => a - b);
        offset = Math.round(best[1]!);
      } catch (err) {
        onError?.(err);
      }
    },
    async start(everyMs = 30_000) {
      if (manual) return;
      await self.sync();
      timer = setInterval(() => void self.sync(), everyMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return self;
}
