/**
 * Prometheus metrics (prom-client), one registry per Cashwire instance. Counters and the latency histogram count
 * what this process did; the gauges (queue depth, oldest pending age, circuit states) read the database at each
 * scrape, so any process shows the whole system's queue.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Clock } from './clock.js';
import type { Queryable } from './db/pool.js';
import { readiness, type ReadinessOptions } from './delivery/heartbeat.js';
import { queueGauges } from './delivery/queue.js';

export interface Metrics {
  registry: Registry;
  deliveries: Counter<'outcome'>;
  attemptSeconds: Histogram<'result'>;
}

/** With `ready` (the /readyz thresholds: config.readyMaxLagMs, readyWorkerMs), also the `cashwire_ready` gauge. */
export function createMetrics(db: Queryable, clock: Clock, ready?: ReadinessOptions): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cashwire_process_' });
  const deliveries = new Counter({
    name: 'cashwire_delivery_attempts_total',
    help: 'Delivery outcomes: succeeded, retry, held (a 410 from a registered endpoint, now disabled), expired, dead (dead-lettered)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const attemptSeconds = new Histogram({
    name: 'cashwire_delivery_attempt_duration_seconds',
    help: 'Time from sending a webhook to its answer (or error), by result class: 2xx, 3xx, 4xx, 5xx, error',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers: [registry],
  });
  // One query per scrape for the queue's gauges, shared by the four of them.
  let gauges: Promise<Awaited<ReturnType<typeof queueGauges>>> | undefined;
  const read = () => (gauges ??= queueGauges(db, clock.now()).finally(() => setTimeout(() => (gauges = undefined), 0)));
  new Gauge({
    name: 'cashwire_queue_depth',
    help: 'Pending deliveries that are due now (not held, not waiting for a retry)',
    registers: [registry],
    async collect() {
      this.set((await read()).due);
    },
  });
  new Gauge({
    name: 'cashwire_queue_pending',
    help: 'All pending deliveries: due, waiting for a retry, or held for a disabled endpoint',
    registers: [registry],
    async collect() {
      this.set((await read()).pending);
    },
  });
  new Gauge({
    name: 'cashwire_deliveries_dead',
    help: 'Dead-lettered deliveries (listed by GET /events?delivery_status=dead, replayable with resend)',
    registers: [registry],
    async collect() {
      this.set((await read()).dead);
    },
  });
  new Gauge({
    name: 'cashwire_oldest_pending_age_seconds',
    help: 'Age of the oldest delivery that is due and not yet delivered (0 when none)',
    registers: [registry],
    async collect() {
      const oldest = (await read()).oldestDue;
      this.set(oldest ? Math.max(0, (clock.now().getTime() - oldest.getTime()) / 1000) : 0);
    },
  });
  new Gauge({
    name: 'cashwire_endpoints',
    help: 'Registered endpoints by state: closed (healthy), open (circuit open), disabled',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const { rows } = await db.query<{ state: string; n: number }>(
        `SELECT CASE WHEN status = 'disabled' THEN 'disabled' ELSE circuit_state END AS state, count(*)::int AS n
           FROM endpoints WHERE deleted_at IS NULL GROUP BY 1`,
      );
      this.reset();
      for (const s of ['closed', 'open', 'disabled']) this.set({ state: s }, rows.find((r) => r.state === s)?.n ?? 0);
    },
  });
  if (ready) {
    new Gauge({
      name: 'cashwire_ready',
      help: 'What GET /readyz says: 1 when deliveries flow (a worker beat recently, the oldest due delivery is within the lag threshold), else 0',
      registers: [registry],
      async collect() {
        this.set(await readiness(db, clock.now(), ready).then((r) => (r.ready ? 1 : 0), () => 0));
      },
    });
  }
  return { registry, deliveries, attemptSeconds };
}

export function resultClass(status: number | undefined): string {
  if (status === undefined) return 'error';
  return `${Math.floor(status / 100)}xx`;
}
