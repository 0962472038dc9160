/**
 * The wake-up: how a sleeping worker learns that work is due. LISTEN on the delivery channel (re-established after a
 * lost connection), an idle mark in `idle_workers` so that committing producers NOTIFY only while someone sleeps, and
 * the fallback poll.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Db } from '../db/pool.js';
import { DELIVERY_CHANNEL } from './queue.js';

export function createWakeup(deps: { db: Db; log: Logger; worker: string }, o: { listen: boolean; pollMs: number; connectionString?: string }) {
  let wake: (() => void) | undefined;
  // Set when a wake-up came while the loop was busy, so that it claims again instead of sleeping through it.
  let woken = false;
  let idle = false;
  let stopped = false;
  let listener: pg.Client | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  function poke() {
    const w = wake;
    wake = undefined;
    if (w) w();
    else woken = true;
  }

  async function listen(): Promise<void> {
    if (!o.listen || stopped) return;
    const cs = o.connectionString ?? (deps.db as unknown as { options: { connectionString: string } }).options.connectionString;
    // TCP keepalive: a LISTEN connection dropped by a NAT or a proxy without a FIN is noticed and re-established.
    const client = new pg.Client({ connectionString: cs, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    client.on('notification', () => poke());
    const retry = () => {
      if (stopped || retryTimer) return;
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        void listen();
      }, 500);
      retryTimer.unref();
    };
    client.on('error', () => {
      client.end().catch(() => {});
      retry();
    });
    client.on('end', retry);
    try {
      await client.connect();
      await client.query(`LISTEN ${DELIVERY_CHANNEL}`);
      listener = client;
      poke(); // anything committed while we were not listening
    } catch {
      client.end().catch(() => {});
      retry();
    }
  }

  return {
    poke,
    start: listen,
    get idle() {
      return idle;
    },
    /** Takes a wake-up that came while the loop was busy. */
    takeWoken(): boolean {
      const w = woken;
      woken = false;
      return w;
    },
    /** Marks this worker asleep (producers then NOTIFY) or awake. A failure leaves it unmarked: polling still finds the work. */
    async markIdle(on: boolean): Promise<void> {
      try {
        // The database's own clock: the job that removes the marks of dead workers compares with it (hosts' clocks may differ).
        if (on) await deps.db.query('INSERT INTO idle_workers (worker, since) VALUES ($1, now()) ON CONFLICT (worker) DO UPDATE SET since = EXCLUDED.since', [deps.worker]);
        else await deps.db.query('DELETE FROM idle_workers WHERE worker = $1', [deps.worker]);
        idle = on;
      } catch {
        idle = false;
      }
    },
    /**
     * Sleeps until poked, or the poll interval (if any) passes, or `dueInMs` (when the last claim said something can be
     * taken), whichever comes first: a retry, a probe or a lease that comes due while nothing is committed is never slept through, even
     * with polling off.
     */
    sleep(dueInMs?: number): Promise<void> {
      return new Promise<void>((resolve) => {
        wake = resolve;
        const waits = [o.pollMs > 0 ? o.pollMs : Infinity, dueInMs === undefined ? Infinity : Math.max(10, Math.ceil(dueInMs))];
        const ms = Math.min(...waits);
        if (Number.isFinite(ms)) setTimeout(poke, Math.min(ms, 2_147_000_000)).unref();
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      poke();
      if (retryTimer) clearTimeout(retryTimer);
      await listener?.end().catch(() => {});
      if (idle) await this.markIdle(false);
    },
  };
}

export type Wakeup = ReturnType<typeof createWakeup>;
