/**
 * The worker sends a claimed batch before the claim's COMMIT is in (claimBatch does not wait for it). A receiver that
 * answers faster than that COMMIT used to lose the failure's outcome: complete() read the delivery as it was before
 * the claim (attempts one lower), matched nothing, and the delivery kept its lease instead of its retry schedule and
 * its error (seen in egress-proxy.test.ts, a proxy refusing a CONNECT in 2 ms). Here every COMMIT of the worker's
 * claims is held back 300 ms, so the answer (a 500, at once) always comes first.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/pool.js';
import { createWorker, type DeliveryWorker } from '../src/delivery/worker.js';
import { client, newOperator, newUser, payThroughPage, startTestServer, type TestServer } from './helpers.js';
import { startReceiver } from './receiver.js';

let s: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let worker: DeliveryWorker | undefined;

beforeAll(async () => {
  s = await startTestServer();
  rx = await startReceiver();
});
afterAll(async () => {
  await worker?.stop();
  await rx?.close();
  await s?.stop();
});

/** The pool, with every COMMIT sent on a connection it hands out delayed by `ms`. */
function slowCommits(db: Db, ms: number): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'connect') {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      }
      return async () => {
        const c = await target.connect();
        return new Proxy(c, {
          get(t, p) {
            if (p === 'query') {
              return (q: unknown, ...rest: unknown[]) => (q === 'COMMIT'
                ? sleep(ms).then(() => (t.query as (...a: unknown[]) => unknown)(q, ...rest))
                : (t.query as (...a: unknown[]) => unknown).call(t, q, ...rest));
            }
            const v = Reflect.get(t, p);
            return typeof v === 'function' ? v.bind(t) : v;
          },
        });
      };
    },
  }) as Db;
}

describe('an answer that comes before the claim commits', () => {
  it("still records the failure: the delivery gets its retry schedule and error, not its lease's end", async () => {
    const keys = await newOperator(s);
    const api = client(s.url, keys.sandbox);
    const userId = await newUser(api);
    rx.setResponder(() => ({ status: 500, body: 'down' }));
    const { intent } = await payThroughPage(s, api, { direction: 'cash_in', user_id: userId, amount: 1500, webhook_url: `${rx.url}/fast` });
    const ev = (await api.get(`/events?intent_id=${intent.id}`)).body.data[0];
    const d = s.running.deps;
    const leaseMs = 45_000; // not a step of the retry schedule (its first is a minute)
    worker = createWorker(
      { db: slowCommits(d.db, 300), clock: s.clock, ids: d.ids, log: pino({ level: 'silent' }), random: () => 0.5, secrets: d.secrets, metrics: d.metrics },
      { connectTimeoutMs: 300, totalTimeoutMs: 600, leaseMs, pollMs: 20, listen: false, drainMs: 300, connectionString: s.running.database.url },
    );
    await worker.start();
    await expect.poll(() => rx.received.length, { timeout: 10_000, interval: 20 }).toBe(1);
    // The outcome is written once the COMMIT is in (300 ms), and applies.
    await expect.poll(async () => (await api.get(`/events/${ev.id}`)).body.deliveries[0].last_status, { timeout: 10_000, interval: 50 }).toBe(500);
    const dl = (await api.get(`/events/${ev.id}`)).body.deliveries[0];
    expect(dl).toMatchObject({ status: 'pending', attempts: 1, last_status: 500 });
    expect(dl.attempt_log).toHaveLength(1);
    // The retry schedule's first step (seconds to minutes), not the lease's end (45 s after the claim).
    const claimedAt = s.clock.now().getTime();
    expect(new Date(dl.next_attempt_at).getTime()).not.toBe(claimedAt + leaseMs);
    const { rows } = await d.db.query<{ leased_by: string | null }>('SELECT leased_by FROM deliveries WHERE id = $1', [dl.id]);
    expect(rows[0]!.leased_by).toBeNull();
    await worker.stop();
    worker = undefined;
  });
});
