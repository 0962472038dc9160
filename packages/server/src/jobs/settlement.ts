import { withTx } from '../db/pool.js';
import { pruneHeartbeats } from '../delivery/heartbeat.js';
import type { Deps } from '../payments/context.js';
import { settleRows } from '../payments/intents/intents.js';
import type { IntentRow } from '../store/rows.js';
import { pruneOnce } from './retention.js';

/**
 * The periodic job. Settles approved intents whose settle_at has passed, in batches claimed with FOR UPDATE SKIP LOCKED so that
 * several processes share the work. Also prunes expired idempotency keys, old rate-limit windows, heartbeats of workers
 * gone for an hour, and (hourly) events and attempts past the retention age.
 */
export function createSettlementJob(deps: Deps, opts: { batchSize?: number } = {}) {
  const batchSize = opts.batchSize ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  let lastPrune = 0;

  async function runOnce(): Promise<number> {
    const now = deps.clock.now();
    let total = 0;
    for (;;) {
      const n = await withTx(deps.db, async (tx) => {
        const { rows } = await tx.query<IntentRow>(
          `SELECT * FROM intents WHERE status = 'approved' AND settled_at IS NULL AND settle_at <= $1
            ORDER BY settle_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [now, batchSize],
        );
        await settleRows(deps, tx, rows);
        return rows.length;
      });
      total += n;
      if (n < batchSize || stopped) break;
    }
    await deps.db.query('DELETE FROM idempotency_keys WHERE expires_at < $1', [now]);
    // Marks of workers that died asleep (a live idle worker refreshes its mark every 20 s), by the wall clock.
    await deps.db.query("DELETE FROM idle_workers WHERE since < now() - interval '2 minutes'");
    // Heartbeats of workers that died without forgetting theirs (a live one beats every few seconds), by the clock.
    await pruneHeartbeats(deps.db, new Date(now.getTime() - 3_600_000));
    // Retention: at most once an hour per process.
    if (now.getTime() - lastPrune >= 3_600_000) {
      lastPrune = now.getTime();
      const pruned = await pruneOnce(deps, deps.config.retentionMs, undefined, deps.config.queueSamples.retentionMs);
      if (pruned.events || pruned.attempts) deps.log.info({ pruned }, 'retention: pruned old events and attempts');
    }
    await deps.db.query('DELETE FROM rate_counters WHERE window_start < $1', [Math.floor(now.getTime() / 1000) - 7200]);
    return total;
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err) => deps.log.warn({ err }, 'settlement run failed; retrying on the next tick'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, deps.config.settlePollMs);
    timer.unref();
  }

  return {
    runOnce,
    start() {
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
