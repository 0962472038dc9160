import type { Deps } from '../payments/context.js';

/**
 * Prunes what is older than the retention age (default 30 days), a batch at a time so that no statement holds
 * many locks or runs long beside delivery: attempts, then finished deliveries, then events with no delivery left.
 * Pending deliveries (retrying, or held for a disabled endpoint) and their events are kept whatever their age.
 */
export async function pruneOnce(deps: Pick<Deps, 'db' | 'clock'>, retentionMs: number, batch = 1000): Promise<{ attempts: number; deliveries: number; events: number }> {
  const cutoff = new Date(deps.clock.now().getTime() - retentionMs);
  const total = { attempts: 0, deliveries: 0, events: 0 };
  const loop = async (sql: string): Promise<number> => {
    let n = 0;
    for (;;) {
      const r = await deps.db.query(sql, [cutoff, batch]);
      n += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < batch) return n;
    }
  };
  total.attempts = await loop(
    `DELETE FROM delivery_attempts WHERE ctid = ANY (ARRAY(SELECT ctid FROM delivery_attempts WHERE started_at < $1 LIMIT $2))`,
  );
  total.deliveries = await loop(
    `WITH old AS (
       SELECT operator_id, id FROM deliveries WHERE created_at < $1 AND status <> 'pending' LIMIT $2
     ), a AS (
       DELETE FROM delivery_attempts x USING old WHERE x.operator_id = old.operator_id AND x.delivery_id = old.id
     )
     DELETE FROM deliveries d USING old WHERE d.operator_id = old.operator_id AND d.id = old.id`,
  );
  total.events = await loop(
    `DELETE FROM events WHERE ctid = ANY (ARRAY(
       SELECT e.ctid FROM events e
        WHERE e.created_at < $1
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = e.operator_id AND d.event_id = e.id)
        LIMIT $2))`,
  );
  return total;
}
