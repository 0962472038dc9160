/**
 * Endpoint health after outcomes: circuit, auto-disable, and the operational events. Kept off the outcome write's
 * path: the writer hands over what it wrote, and the recorder applies it in the background, one endpoint at a time,
 * retrying on database errors without holding up any outcome.
 */
import type { Logger } from 'pino';
import type { Clock, IdGenerator } from '../clock.js';
import { withTx, type Db } from '../db/pool.js';
import { applyOutcomes, sameHealth, type Health, type HealthPolicy, type Outcome } from '../domain/health.js';
import { disableRow, type EndpointRow } from './endpoints.js';
import { insertOperationalEvent } from '../store/events.js';
import { lockLaneHealth, setLaneHealth, wakeAfterCommit } from './queue.js';

export async function recordHealth(
  deps: { db: Db; clock: Clock; ids: IdGenerator },
  endpoint: { operator_id: string; id: string },
  outcomes: Outcome[],
  policy: HealthPolicy,
): Promise<void> {
  await withTx(deps.db, async (tx) => {
    const { rows } = await tx.query<EndpointRow>('SELECT * FROM endpoints WHERE operator_id = $1 AND id = $2 FOR UPDATE', [endpoint.operator_id, endpoint.id]);
    const e = rows[0];
    if (!e || e.status === 'disabled') return; // disabled or deleted meanwhile: nothing to learn
    const current: Health = { circuit: e.circuit_state, retryAt: e.circuit_retry_at, consecutiveFailures: e.consecutive_failures, failingSince: e.failing_since };
    const change = applyOutcomes(current, outcomes, policy);
    const now = deps.clock.now();
    if (!sameHealth(current, change.next)) {
      await tx.query(
        `UPDATE endpoints SET circuit_state = $3, circuit_retry_at = $4, consecutive_failures = $5, failing_since = $6, updated_at = $7
          WHERE operator_id = $1 AND id = $2`,
        [e.operator_id, e.id, change.next.circuit, change.next.retryAt, change.next.consecutiveFailures, change.next.failingSince, now],
      );
    }
    if (change.disable) {
      await disableRow(deps, tx, e, change.disable, now);
      return;
    }
    // An open circuit holds its lane, not its rows: the claim takes nothing from the lane until the probe time, then
    // one probe at a time (admission.ts), so opening and closing it rewrite none of the endpoint's deliveries (they
    // were parked at the probe time and brought back: a backlog's worth of row updates at each end of an outage).
    if (change.recovered) {
      wakeAfterCommit(tx);
      await insertOperationalEvent(tx, deps, e, 'endpoint.recovered', { endpoint_id: e.id, url: e.url, at: now.toISOString() });
    }
  });
}

/**
 * The circuit of a payment's own URL's origin (a lane of its own): the same policy as an endpoint's circuit, but an
 * origin is never disabled (it is not registered: every payment names its URL), and a 410 is a failure like others.
 * While open, the claim takes nothing from the lane; once its wait is over, one probe at a time.
 */
export async function recordLaneHealth(
  deps: { db: Db; log?: Logger },
  lane: { operator_id: string; lane: string },
  outcomes: Outcome[],
  policy: HealthPolicy,
): Promise<void> {
  await withTx(deps.db, async (tx) => {
    const row = await lockLaneHealth(tx, lane);
    const current: Health = { circuit: row.circuit_state, retryAt: row.circuit_retry_at, consecutiveFailures: row.consecutive_failures, failingSince: row.failing_since };
    const change = applyOutcomes(current, outcomes.map((o) => ({ ...o, gone: false })), { ...policy, disableAfterMs: Infinity });
    if (sameHealth(current, change.next)) return;
    const h = change.next;
    await setLaneHealth(tx, lane, { circuit_state: h.circuit, circuit_retry_at: h.retryAt, consecutive_failures: h.consecutiveFailures, failing_since: h.failingSince });
    if (change.opened) deps.log?.warn({ operator: lane.operator_id, lane: lane.lane, until: h.retryAt }, "a payment URL's origin keeps failing: its circuit is open");
    if (change.recovered) {
      deps.log?.info({ operator: lane.operator_id, lane: lane.lane }, "a payment URL's origin answered again: its circuit is closed");
      wakeAfterCommit(tx);
    }
  });
}

interface Pending {
  key: { operator_id: string; id: string | null; lane: string };
  outcomes: Outcome[];
}

/** What the recorder needs of an outcome: whose it was, and whether it changes anything for a healthy destination. */
export interface HealthInput {
  operator_id: string;
  /** A registered endpoint's outcome, or null for a payment's own URL (then `lane` is its origin's lane). */
  endpoint_id: string | null;
  lane: string;
  outcome: Outcome;
  /** The destination was healthy at the claim (closed, no failures) and this was a success: nothing to write. */
  nothingNew: boolean;
}

export function createHealthRecorder(deps: { db: Db; clock: Clock; ids: IdGenerator; log: Logger }, policy: HealthPolicy) {
  const queue = new Map<string, Pending>();
  let running: Promise<void> | undefined;
  let backoff = 100;

  async function run(): Promise<void> {
    while (queue.size) {
      const [k, p] = queue.entries().next().value as [string, Pending];
      queue.delete(k);
      try {
        if (p.key.id) await recordHealth(deps, { operator_id: p.key.operator_id, id: p.key.id }, p.outcomes, policy);
        else await recordLaneHealth(deps, p.key, p.outcomes, policy);
        backoff = 100;
      } catch (err) {
        // Put them back in front of anything newer for this endpoint, and wait a little.
        const newer = queue.get(k);
        queue.set(k, { key: p.key, outcomes: [...p.outcomes, ...(newer?.outcomes ?? [])] });
        deps.log.warn({ err: (err as Error).message, endpoint: p.key.id }, 'recording endpoint health failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  return {
    record(items: HealthInput[]): void {
      for (const i of items) {
        const k = `${i.operator_id}/${i.endpoint_id ?? i.lane}`;
        const p = queue.get(k);
        if (!p && i.nothingNew) continue;
        if (p) p.outcomes.push(i.outcome);
        else queue.set(k, { key: { operator_id: i.operator_id, id: i.endpoint_id, lane: i.lane }, outcomes: [i.outcome] });
      }
      if (queue.size) running ??= run().finally(() => (running = undefined));
    },
    /** Resolves when everything recorded so far is applied. */
    async drain(): Promise<void> {
      while (running) await running;
    },
  };
}
