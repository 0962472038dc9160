import { EVENT_HAS_NO_DELIVERY, pruneAttempts, pruneDeliveries, pruneIdleLanes } from '../delivery/queue.js';
import { DEFAULT_SAMPLE_RETENTION_MS, pruneAttemptRollups, pruneQueueSamples } from '../delivery/stats.js';
import type { Deps } from '../payments/context.js';

/**
 * Prunes what is older than the retention age (default 30 days), a batch at a time so that no statement holds
 * many locks or runs long beside delivery: attempts, then finished deliveries, then events with no delivery left, then
 * lanes with nothing pending and nothing to remember; and queue-depth samples and the attempt log's per-minute counts
 * older than their own retention (`samplesRetentionMs`, CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS, default 7 days).
 * Pending deliveries (retrying, or held for a disabled endpoint) and their events are kept whatever their age.
 */
export async function pruneOnce(deps: Pick<Deps, 'db' | 'clock'>, retentionMs: number, batch = 1000, samplesRetentionMs = DEFAULT_SAMPLE_RETENTION_MS): Promise<{ attempts: number; deliveries: number; events: number; lanes: number; samples: number; rollups: number }> {
  const cutoff = new Date(deps.clock.now().getTime() - retentionMs);
  const total = { attempts: 0, deliveries: 0, events: 0, lanes: 0, samples: 0, rollups: 0 };
  const loop = async (sql: string): Promise<number> => {
    let n = 0;
    for (;;) {
      const r = await deps.db.query(sql, [cutoff, batch]);
      n += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < batch) return n;
    }
  };
  const each = async (fn: (db: Deps['db'], cutoff: Date, batch: number) => Promise<number>): Promise<number> => {
    let n = 0;
    for (;;) {
      const k = await fn(deps.db, cutoff, batch);
      n += k;
      if (k < batch) return n;
    }
  };
  total.attempts = await each(pruneAttempts);
  total.deliveries = await each(pruneDeliveries);
  total.events = await loop(
    `DELETE FROM events WHERE ctid = ANY (ARRAY(
       SELECT e.ctid FROM events e
        WHERE e.created_at < $1
          AND ${EVENT_HAS_NO_DELIVERY}
        LIMIT $2))`,
  );
  total.lanes = await each((db, _cutoff, n) => pruneIdleLanes(db, n));
  const samplesCutoff = new Date(deps.clock.now().getTime() - samplesRetentionMs);
  total.samples = await each((db, _cutoff, n) => pruneQueueSamples(db, samplesCutoff, n));
  // The attempt log's per-minute counts (charts) are kept as long as the samples beside them.
  total.rollups = await each((db, _cutoff, n) => pruneAttemptRollups(db, samplesCutoff, n, deps.clock.now()));
  return total;
}
