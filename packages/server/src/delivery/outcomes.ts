/**
 * The outcome writer: records attempts in batches (one statement, or one transaction when a delivery ends without
 * success, so that its delivery.exhausted is written with it). Nothing a receiver sent can stop it: the excerpt is
 * stored as bytes, a batch whose write fails on its data is written again row by row, and a row that still cannot be
 * written is dead-lettered, so every other outcome lands. A database that is down keeps the batch queued and tried
 * again with backoff, while new outcomes queue behind it (the leases cover the deliveries meanwhile).
 */
import { OPERATIONAL_EVENT_TYPES, type DeliveryExhaustedData } from '@cashwire/webhooks';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { withTx, type Db, type Queryable } from '../db/pool.js';
import { insertTenantEvents } from '../store/events.js';
import { complete, type Claimed, type Completion, type DeliveryStatus } from './queue.js';

export interface Written {
  completion: Completion;
  claimed: Claimed;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref?.());

/** A statement that failed on what it was given (not on the connection): trying it again as it is cannot help. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|42|54)[0-9A-Z]{3}$/.test(code);
}

const ENDED_BADLY: ReadonlySet<DeliveryStatus> = new Set(['failed', 'expired', 'dead']);
const OPERATIONAL: ReadonlySet<string> = new Set(OPERATIONAL_EVENT_TYPES);

/**
 * Whether an ended delivery is announced with delivery.exhausted: every event but the operational ones (no loops),
 * intent events and Sendcash's Payment.Status alike.
 */
export function announcesExhaustion(d: Pick<Claimed, 'event'>): boolean {
  return !OPERATIONAL.has(d.event.type);
}

/** The deterministic id of a delivery's delivery.exhausted: written once, however often the write is tried. */
export function exhaustedEventId(deliveryId: string): string {
  return `evt_exh_${deliveryId.replace(/^dlv_/, '')}`;
}

/**
 * A dead letter: the delivery ends `dead` with `reason` (its `last_error`) at `at`, with no attempt row. `from` is the
 * outcome that could not be written, if there was one: its status and latency are kept.
 */
export function deadLetter(claimed: Claimed, reason: string, at: Date, from?: Completion): Written {
  return {
    claimed,
    completion: {
      operator_id: claimed.operator_id, id: claimed.id, attempt: claimed.attempts, status: 'dead', outcome: null,
      next_attempt_at: at, started_at: from?.started_at ?? at, latency_ms: from?.latency_ms ?? 0,
      status_code: from?.status_code ?? null, error_code: reason, excerpt: null, response_headers: null,
    },
  };
}

export function createOutcomeWriter(
  deps: { db: Db; clock: Clock; log: Logger; worker: string },
  o: { batchSize: number; flushMs: number },
  onWritten: (items: Written[]) => void,
) {
  const { db, log } = deps;
  let pending: Written[] = [];
  /** Cancels the scheduled write, if one is scheduled. */
  let cancel: (() => void) | undefined;
  let running: Promise<void> | undefined;
  let backoff = 100;
  let failures = 0;
  /** At shutdown: give up after this many failed tries in a row instead of retrying for ever. */
  let giveUpAfter = Infinity;

  async function writeBatch(items: Written[]): Promise<void> {
    // Not before the claims' COMMITs (see Claimed.committed). One that failed took no claim: the statement then matches
    // nothing for it, as for a delivery claimed again since.
    const commits = new Set(items.map((i) => i.claimed.committed).filter((c) => c !== undefined));
    if (commits.size > 0) await Promise.all([...commits].map((c) => c.catch(() => {})));
    const completions = items.map((i) => i.completion);
    if (!items.some((i) => ENDED_BADLY.has(i.completion.status))) {
      await complete(db, deps.worker, completions);
    } else {
      await withTx(db, async (tx) => {
        const applied = await complete(tx, deps.worker, completions);
        await announce(tx, items, applied);
      });
    }
  }

  /** delivery.exhausted for each delivery that this write ended without success, in the same transaction. */
  async function announce(tx: Queryable, items: Written[], applied: { operator_id: string; id: string; status: DeliveryStatus }[]) {
    const ended = new Map(applied.filter((a) => ENDED_BADLY.has(a.status)).map((a) => [`${a.operator_id}/${a.id}`, a.status]));
    const events = [];
    const seen = new Set<string>();
    for (const { claimed: d, completion: c } of items) {
      const key = `${d.operator_id}/${d.id}`;
      const status = ended.get(key);
      if (!status || seen.has(key) || c.status !== status) continue;
      seen.add(key);
      log.warn({ delivery: d.id, event: d.event.id, endpoint: d.endpoint_id, status, last_status: c.status_code, error: c.error_code }, 'delivery ended without success');
      if (!announcesExhaustion(d)) continue;
      const data: DeliveryExhaustedData = {
        delivery_id: d.id, event_id: d.event.id, event_type: d.event.type, endpoint_id: d.endpoint_id, url: d.url,
        status: status as DeliveryExhaustedData['status'], attempts: d.attempts, last_status: c.status_code, last_error: c.error_code,
      };
      events.push({ operator_id: d.operator_id, environment: d.environment, id: exhaustedEventId(d.id), type: 'delivery.exhausted', data });
    }
    await insertTenantEvents(tx, deps.clock.now(), events);
  }

  /** Writes `batch`; returns what must be tried again later (the database was unreachable). Never throws. */
  async function writeSafely(batch: Written[]): Promise<Written[]> {
    try {
      await writeBatch(batch);
      onWritten(batch);
      return [];
    } catch (err) {
      if (!isDataError(err)) {
        if (failures === 0) log.warn({ err: (err as Error).message, size: batch.length }, 'recording outcomes failed; retrying');
        return batch;
      }
      log.error({ err: (err as Error).message, size: batch.length }, 'a batch of outcomes could not be written; writing them one by one');
    }
    const again: Written[] = [];
    for (const item of batch) {
      try {
        await writeBatch([item]);
        onWritten([item]);
        continue;
      } catch (err) {
        if (!isDataError(err)) {
          again.push(item);
          continue;
        }
        log.error({ err: (err as Error).message, delivery: item.claimed.id }, 'an outcome could not be written; the delivery is dead-lettered');
      }
      const dead = deadLetter(item.claimed, 'unwritable', deps.clock.now(), item.completion);
      try {
        await writeBatch([dead]);
      } catch (err) {
        if (!isDataError(err)) again.push(dead);
        else log.error({ err: (err as Error).message, delivery: item.claimed.id }, 'could not dead-letter a delivery; its lease will expire');
      }
    }
    return again;
  }

  async function run(): Promise<void> {
    while (pending.length) {
      const batch = pending.splice(0, o.batchSize);
      const again = await writeSafely(batch);
      if (again.length === 0) {
        failures = 0;
        backoff = 100;
        continue;
      }
      failures++;
      if (failures >= giveUpAfter) {
        log.error({ size: again.length + pending.length }, 'could not record outcomes; their leases will expire and they will be sent again');
        pending = [];
        return;
      }
      pending.unshift(...again);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 2_000);
    }
  }

  function start(): Promise<void> {
    cancel?.();
    cancel = undefined;
    running ??= run().finally(() => {
      running = undefined;
      if (pending.length) schedule();
    });
    return running;
  }

  function schedule() {
    if (running) return;
    if (pending.length >= o.batchSize) void start();
    // flushMs 0: at the end of this turn of the event loop, with every outcome that came in during it; while that
    // write runs, the next batch gathers (a lease ends only once its outcome is written: waiting longer holds it).
    else if (!cancel) {
      if (o.flushMs > 0) {
        const t = setTimeout(() => void start(), o.flushMs);
        cancel = () => clearTimeout(t);
      } else {
        const i = setImmediate(() => void start());
        cancel = () => clearImmediate(i);
      }
    }
  }

  return {
    push(item: Written): void {
      pending.push(item);
      schedule();
    },
    /** Resolves when everything pushed so far is written (or, after `stop`-time give-up, dropped). */
    async flush(): Promise<void> {
      while (pending.length || running) await start();
    },
    /** From now on a write that keeps failing is given up after `tries` tries (shutdown). */
    giveUpAfter(tries: number): void {
      giveUpAfter = tries;
    },
    get queued(): number {
      return pending.length;
    },
  };
}

export type OutcomeWriter = ReturnType<typeof createOutcomeWriter>;
