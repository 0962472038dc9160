/**
 * The queue: every statement on `deliveries` and `delivery_attempts` is here, and every delivery row is created by
 * one statement shape ({@link enqueueSql}), which resolves the endpoint (current URL, format, payload version, hold
 * state), the secret and the operator's schedule overrides. Each function is one round trip.
 */
import { DEFAULT_PAYLOAD_VERSION, type EventRecord, type Format, type PayloadVersion } from '@cashwire/webhooks';
import { afterCommit, type Db, type Queryable } from '../db/pool.js';
import { grant, laneKey, lanesToTry, type AdmissionOptions, type LaneGrant, type LaneState, type LaneView } from './admission.js';
import type { RetrySchedule, ScheduleName } from '../domain/retry.js';

/**
 * Far in the future: where a delivery answered with 410 waits (its endpoint is disabled right after, and enabling it
 * makes the delivery due). Other deliveries of a disabled endpoint keep their due time: the claim skips the lane of a
 * disabled endpoint (admission.ts), so disabling and enabling an endpoint rewrite none of its deliveries.
 */
export const HELD = new Date('9999-12-31T00:00:00Z');
const HELD_SQL = `'9999-12-31T00:00:00Z'::timestamptz`;

/**
 * An endpoint (alias `x`) that holds its deliveries at `now` (a SQL expression): disabled, or behind an open circuit
 * whose wait is not over (once it is, one probe at a time goes; admission.ts). The hold is the lane's: no delivery row
 * moves when an endpoint is disabled, enabled, or its circuit opens and closes.
 */
export function endpointHolds(x: string, now: string): string {
  return `(${x}.status = 'disabled' OR (${x}.circuit_state = 'open' AND ${x}.circuit_retry_at > ${now}))`;
}

export const DELIVERY_CHANNEL = 'cashwire_deliveries';

/**
 * Wakes sleeping workers, once what `q` wrote has committed, if one is asleep (see migration 005). A worker marks
 * itself asleep (a committed row) before its last look at the queue. The check runs after the producer's COMMIT, with
 * a snapshot of its own: either it sees the mark and notifies, or the mark committed after it, hence after the
 * producer's COMMIT, and the worker's last look (later still) sees what the producer wrote. Checked inside the
 * producing statement instead, at that statement's snapshot, a mark made between the statement and the COMMIT would be
 * missed, and the worker would sleep through the work.
 */
export function wakeAfterCommit(q: Queryable): void {
  afterCommit(q, 'wake', (c) => c.query(WAKE_SQL));
}
const WAKE_SQL = `SELECT pg_notify('${DELIVERY_CHANNEL}', '') FROM idle_workers LIMIT 1`;

/**
 * For a producing statement: NOTIFY (sent by PostgreSQL at COMMIT) if a worker is asleep at the statement's snapshot;
 * true if so. The common case costs the producer nothing more than its own commit; when it is false, the producer
 * calls {@link wakeAfterCommit}, which covers a worker that marks itself asleep between the statement and the COMMIT
 * (a read of its own, with no commit to wait for).
 */
export const NOTIFY_IF_IDLE = `(CASE WHEN EXISTS (SELECT 1 FROM idle_workers) THEN (SELECT true FROM pg_notify('${DELIVERY_CHANNEL}', '')) ELSE false END)`;

/** Claims since the last recorded outcome after which a delivery is dead-lettered instead of sent. */
export const MAX_STALLS = 5;

// ---------------------------------------------------------------------------------------------------------------
// Into the queue

/**
 * The one way into the queue: an INSERT of one delivery per row of `targets`, a SQL relation aliased `t` with the
 * columns `op, env, event_id, endpoint_id, url, secret, id, due`:
 * - `endpoint_id` set: a registered endpoint's delivery. Its URL, format and payload version are the endpoint's (the
 *   worker reads them again at each claim, so a delivery always goes to the current URL, signed with the current
 *   secret); a disabled endpoint's delivery is held, one behind an open circuit waits for the probe, both by their
 *   lane ({@link endpointHolds}), not by its due time. A deleted endpoint gets nothing.
 * - `endpoint_id` NULL: a payment's own `webhook_url` (`url`), format `pushcash`, signed with `secret` (sealed).
 * `due` is when it may first be sent; `id` its id (a conflict on it inserts nothing, so derived ids deliver once).
 * The operator's `retry_schedules` are kept with the row, and its lane (migration 007): the endpoint, or the
 * origin of the payment's URL. RETURNING each row's operator and endpoint; the caller wakes sleeping workers if any is
 * claimable ({@link claimableIn}, {@link wakeAfterCommit}).
 */
export function enqueueSql(targets: string, now: string): string {
  return `
       INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, secret, schedule, next_attempt_at, created_at)
       SELECT t.op, t.id, t.env, t.event_id, e.id, cw_lane(e.id, t.env, coalesce(e.url, t.url)), coalesce(e.url, t.url), coalesce(e.format, 'pushcash'),
              coalesce(e.payload_version, o.settings->>'payload_version', '${DEFAULT_PAYLOAD_VERSION}'),
              CASE WHEN e.id IS NULL THEN t.secret END,
              o.settings->'retry_schedules',
              t.due,
              ${now}
         FROM ${targets}
         JOIN operators o ON o.id = t.op
         LEFT JOIN endpoints e ON e.operator_id = t.op AND e.id = t.endpoint_id AND e.deleted_at IS NULL
        WHERE (t.endpoint_id IS NULL AND t.url IS NOT NULL) OR e.id IS NOT NULL
       ON CONFLICT DO NOTHING
       RETURNING operator_id, endpoint_id`;
}

/**
 * For a statement that made deliveries with {@link enqueueSql} (`made`, a CTE): whether any of them can be sent,
 * so that a sleeping worker should be woken. A disabled endpoint's deliveries wait for it to be enabled (which wakes
 * the workers), so a commit that made only those wakes no one.
 */
export function claimableIn(made: string): string {
  return `EXISTS (SELECT 1 FROM ${made} m LEFT JOIN endpoints x ON x.operator_id = m.operator_id AND x.id = m.endpoint_id
                   WHERE m.endpoint_id IS NULL OR x.status = 'enabled')`;
}

/**
 * Fan-out targets for {@link enqueueSql}: each event of `source` (a relation aliased `s` with `op, env, id, type, url`)
 * whose payment names no webhook_url goes to every registered endpoint of its operator and environment subscribed to
 * its type, one delivery each, its id derived from the event and the endpoint (so the pair is delivered once).
 */
export function fanoutTargets(source: string, now: string): string {
  return `(SELECT s.op, s.env, s.id AS event_id, x.id AS endpoint_id, NULL::text AS url, NULL::text AS secret,
                  'dlv_' || substr(s.id, 5) || '_' || substr(x.id, 4) AS id, ${now} AS due
             FROM ${source}
             JOIN endpoints x ON x.operator_id = s.op AND x.environment = s.env AND x.deleted_at IS NULL
                             AND (s.type = ANY (x.events) OR '*' = ANY (x.events))
            WHERE s.url IS NULL) AS t`;
}

/**
 * POST /events/{id}/resend (also "retry now"): every destination the event had whose latest delivery is not pending
 * gets a new delivery (through the one insert: signed, current URL, held for a disabled endpoint); pending deliveries
 * that wait for a retry are due now (behind an open circuit they still wait for its probe, as its lane does; a disabled
 * endpoint's are left to its enabling). Returns how
 * many deliveries were made and how many were pulled.
 */
export async function resendDeliveries(db: Queryable, key: { operator_id: string; event_id: string }, env: string, now: Date, newIds: () => string): Promise<{ created: number; pulled: number }> {
  // Per destination: the latest delivery's URL and secret, and whether any of its deliveries is still pending (then
  // it is pulled, not doubled). Deliveries of one instant have no order between them, so "any pending" decides.
  const latest = await db.query<{ endpoint_id: string | null; url: string; secret: string | null; pending: boolean }>(
    `SELECT DISTINCT ON (coalesce(endpoint_id, 'url:' || url)) endpoint_id, url, secret,
            bool_or(status = 'pending') OVER (PARTITION BY coalesce(endpoint_id, 'url:' || url)) AS pending
       FROM deliveries WHERE operator_id = $1 AND event_id = $2 AND lane IS DISTINCT FROM 'cli' -- a listen's forwards are the CLI's, not the engine's
      ORDER BY coalesce(endpoint_id, 'url:' || url), created_at DESC, id DESC`,
    [key.operator_id, key.event_id],
  );
  const again = latest.rows.filter((r) => !r.pending);
  const { rows } = await db.query<{ created: number; pulled: number }>(
    `WITH made AS (${enqueueSql(`(SELECT $1::text AS op, $3::text AS env, $2::text AS event_id, u.endpoint_id, u.url, u.secret, u.id, $4::timestamptz AS due
                                FROM unnest($5::text[], $6::text[], $7::text[], $8::text[]) AS u(endpoint_id, url, secret, id)) AS t`, '$4::timestamptz')}
     ), pulled AS (
       UPDATE deliveries d SET next_attempt_at = $4::timestamptz
         FROM deliveries d0 LEFT JOIN endpoints e ON e.operator_id = d0.operator_id AND e.id = d0.endpoint_id
        WHERE d0.operator_id = $1 AND d0.event_id = $2 AND d0.status = 'pending' AND d0.leased_by IS NULL AND d0.next_attempt_at > $4
          AND (e.id IS NULL OR e.status = 'enabled')
          AND d.operator_id = d0.operator_id AND d.id = d0.id
       RETURNING 1
     )
     SELECT (SELECT count(*)::int FROM made) AS created, (SELECT count(*)::int FROM pulled) AS pulled`,
    [key.operator_id, key.event_id, env, now, again.map((r) => r.endpoint_id), again.map((r) => r.url), again.map((r) => r.secret), again.map(() => newIds())],
  );
  if (rows[0]!.created + rows[0]!.pulled > 0) wakeAfterCommit(db);
  return { created: rows[0]!.created, pulled: rows[0]!.pulled };
}

/**
 * POST /webhook/endpoints/{id}/recover: every event in [since, until) whose latest delivery to this endpoint failed,
 * expired or went dead gets a new delivery (same event id), through the one insert.
 */
export async function recoverDeliveries(db: Queryable, e: { operator_id: string; id: string; environment: string }, since: Date, until: Date, now: Date, newIds: () => string): Promise<number> {
  // An event is recovered when none of its deliveries to this endpoint is pending or succeeded: its latest one failed,
  // expired or went dead (deliveries of one instant have no order between them, so this is decided over all of them).
  const candidates = await db.query<{ event_id: string }>(
    `SELECT d.event_id
       FROM deliveries d JOIN events ev ON ev.operator_id = d.operator_id AND ev.id = d.event_id
      WHERE d.operator_id = $1 AND d.endpoint_id = $2 AND ev.created_at >= $3 AND ev.created_at < $4
      GROUP BY d.event_id
     HAVING NOT bool_or(d.status IN ('pending', 'succeeded'))`,
    [e.operator_id, e.id, since, until],
  );
  const failed = candidates.rows;
  if (failed.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>(
    `WITH made AS (${enqueueSql(`(SELECT $1::text AS op, $3::text AS env, u.event_id, $2::text AS endpoint_id, NULL::text AS url, NULL::text AS secret, u.id, $6::timestamptz AS due
                                FROM unnest($4::text[], $5::text[]) AS u(event_id, id)) AS t`, '$6::timestamptz')})
     SELECT count(*)::int AS n FROM made`,
    [e.operator_id, e.id, e.environment, failed.map((r) => r.event_id), failed.map(() => newIds()), now],
  );
  if (rows[0]!.n > 0) wakeAfterCommit(db);
  return rows[0]!.n;
}

/** Why a delivery was not made due by {@link retryDeliveryNow}. */
export type RetryRefusal = 'not_found' | 'not_pending' | 'in_flight' | 'disabled';

/**
 * "Retry now" of one pending delivery (the dashboard's button, POST /webhook/deliveries/{id}/retry): it is due at
 * `now`, and sleeping workers are woken after the commit. Refused (nothing written) when the delivery is not the
 * operator's in `env`, not pending, in flight (leased and its lease not run out: its worker is sending it), or held
 * by a disabled endpoint (enabling the endpoint sends it: a retry of one delivery must not bypass the disable).
 * Behind an open circuit (the endpoint's, or for a payment's own URL its origin's) it is a manual probe: the circuit's
 * wait ends now, so the lane lets one probe through at once (admission.ts); the probe is this delivery unless an older
 * one of the lane is due too. A success closes the circuit and the rest follow; a failure opens it again. In the
 * caller's transaction; returns the refusal, or null when done.
 */
export async function retryDeliveryNow(tx: Queryable, key: { operator_id: string; environment: string; id: string }, now: Date): Promise<RetryRefusal | null> {
  const { rows } = await tx.query<{ status: DeliveryStatus; in_flight: boolean; endpoint_id: string | null; lane: string; disabled: boolean; circuit_open: boolean }>(
    `SELECT d.status, (d.leased_by IS NOT NULL AND d.next_attempt_at > $4) AS in_flight, d.endpoint_id, d.lane,
            coalesce(e.status = 'disabled', false) AS disabled,
            coalesce(CASE WHEN d.endpoint_id IS NULL THEN l.circuit_state = 'open' AND l.circuit_retry_at > $4
                          ELSE e.circuit_state = 'open' AND e.circuit_retry_at > $4 END, false) AS circuit_open
       FROM deliveries d
       LEFT JOIN endpoints e ON e.operator_id = d.operator_id AND e.id = d.endpoint_id
       LEFT JOIN delivery_lanes l ON l.operator_id = d.operator_id AND l.lane = d.lane
      WHERE d.operator_id = $1 AND d.environment = $2 AND d.id = $3
        FOR UPDATE OF d`,
    [key.operator_id, key.environment, key.id, now],
  );
  const d = rows[0];
  if (!d) return 'not_found';
  if (d.status !== 'pending') return 'not_pending';
  if (d.in_flight) return 'in_flight';
  if (d.disabled) return 'disabled';
  await tx.query(
    `UPDATE deliveries SET next_attempt_at = $3 WHERE operator_id = $1 AND id = $2 AND status = 'pending' AND next_attempt_at > $3`,
    [key.operator_id, key.id, now],
  );
  if (d.circuit_open) {
    if (d.endpoint_id) {
      await tx.query(`UPDATE endpoints SET circuit_retry_at = $3 WHERE operator_id = $1 AND id = $2 AND circuit_state = 'open' AND circuit_retry_at > $3`, [key.operator_id, d.endpoint_id, now]);
    } else {
      await tx.query(`UPDATE delivery_lanes SET circuit_retry_at = $3 WHERE operator_id = $1 AND lane = $2 AND circuit_state = 'open' AND circuit_retry_at > $3`, [key.operator_id, d.lane, now]);
    }
  }
  wakeAfterCommit(tx);
  return null;
}

/** One delivery of the operator in `env`, as deliveriesOf reads them, with its event id; null if there is none. */
export async function deliveryById(db: Queryable, key: { operator_id: string; environment: string; id: string }): Promise<(DeliveryRow & { event_id: string }) | null> {
  const { rows } = await db.query<DeliveryRow & { event_id: string }>(
    `SELECT id, event_id, endpoint_id, url, format, payload_version, status, attempts, next_attempt_at, last_status, last_error, created_at, completed_at, reclaims,
            status = 'pending' AND (next_attempt_at >= ${HELD_SQL} OR ${HELD_BY_ENDPOINT}) AS held
       FROM deliveries d WHERE operator_id = $1 AND environment = $2 AND id = $3`,
    [key.operator_id, key.environment, key.id],
  );
  return rows[0] ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Endpoints' queues: hold, release, end

/**
 * An enabled endpoint: every retry it was waiting for (and a delivery answered with 410) is due now; leased rows are
 * left to their worker. Its held deliveries were never moved (the claim skipped its lane): they are due as they were.
 * The lane index reads only the deliveries due later than now.
 */
export async function releaseEndpoint(tx: Queryable, e: { operator_id: string; id: string }, now: Date): Promise<void> {
  await tx.query(
    `UPDATE deliveries SET next_attempt_at = $3 WHERE operator_id = $1 AND lane = 'ep:' || $2 AND endpoint_id = $2 AND status = 'pending' AND leased_by IS NULL AND next_attempt_at > $3`,
    [e.operator_id, e.id, now],
  );
  wakeAfterCommit(tx);
}

/** A deleted endpoint: its queued deliveries end as failed, with their attempt logs kept. */
export async function failEndpointDeliveries(tx: Queryable, e: { operator_id: string; id: string }, now: Date): Promise<void> {
  await tx.query(
    `UPDATE deliveries SET status = 'failed', last_error = 'endpoint_deleted', completed_at = $3, leased_by = NULL
      WHERE operator_id = $1 AND lane = 'ep:' || $2 AND endpoint_id = $2 AND status = 'pending'`,
    [e.operator_id, e.id, now],
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The worker's statements

export interface Claimed {
  operator_id: string;
  id: string;
  /**
   * The claim's COMMIT (claimBatch sends it without waiting, so that the rows go out at once). An outcome must not be
   * written before it is in: complete() would read the row as it was before the claim (attempts one lower) and match
   * nothing, so a failure's schedule and error were lost and the delivery waited for its lease instead (seen with a
   * proxy refusing a CONNECT in 2 ms). The outcome writer waits for it; it is almost always in long before.
   */
  committed?: Promise<void>;
  /** Its lane (migration 007): `ep:<endpoint id>` or `url:<environment>:<origin>`. */
  lane: string;
  environment: 'sandbox' | 'production';
  url: string;
  format: Format;
  payload_version: PayloadVersion;
  secret: string | null;
  /** The operator's `retry_schedules` when the delivery was made. */
  schedule: Partial<Record<ScheduleName, Partial<RetrySchedule>>> | null;
  attempts: number;
  /** Claims since the last recorded outcome, this one included. */
  stalls: number;
  created_at: Date;
  event: EventRecord;
  /** Set for a registered endpoint's delivery: its current settings (url, format, secret are its own). The circuit
   * and its failures are the endpoint's, or for a payment's own URL its origin's (the lane's). */
  endpoint_id: string | null;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  max_concurrency: number | null;
  rate_limit_per_s: number | null;
  circuit_state: 'closed' | 'open';
  circuit_retry_at: Date | null;
  consecutive_failures: number;
  endpoint_status: 'enabled' | 'disabled' | null;
  /** The W3C traceparent of the API request that wrote the event (null when tracing was off). */
  trace_context: string | null;
}

/** What a claim took, and when (ms, by the claim's clock) something not taken now can be taken; undefined if nothing waits. */
export interface ClaimResult {
  rows: Claimed[];
  wakeAt: number | undefined;
  /** Settles when the claim's COMMIT is done (rejects if it failed: the rows were then not leased). */
  committed: Promise<void>;
}

/** Claims up to `limit` due deliveries: {@link claimBatch} without the wake-up time. */
export async function claim(db: Db, worker: string, now: Date, leaseMs: number, limit: number, o: AdmissionOptions = { destinationConcurrency: 32 }): Promise<Claimed[]> {
  const r = await claimBatch(db, worker, now, leaseMs, limit, o);
  await r.committed;
  return r.rows;
}

/**
 * Claims up to `limit` due deliveries, lane by lane (admission.ts decides which lanes and how many of each):
 * 1. Finds the lanes with pending work, each with the time its head comes due: one index descent per lane (a loose
 *    index scan of deliveries_lane), whatever the size of the backlog. Outside any transaction.
 * 2. In a transaction, locks the rows of the lanes to try (FOR UPDATE SKIP LOCKED: a lane another worker is claiming
 *    from is left to it), making the ones that have none yet.
 * 3. Counts each locked lane's attempts in flight (its unexpired leases), in a statement that starts after the locks
 *    are held, so it sees every lease another worker committed before: a lane's cap holds across all workers.
 * 4. Takes from each lane what admission granted, in due order (a fifo lane: its oldest delivery, if due), counts the
 *    attempt and the claim, moves next_attempt_at one lease ahead, and marks the lanes served (round robin) and
 *    their rate-limit buckets spent.
 * A claim whose row already had a lease holder is a reclaim: that holder died or overran its lease.
 */
export async function claimBatch(db: Db, worker: string, now: Date, leaseMs: number, limit: number, o: AdmissionOptions): Promise<ClaimResult> {
  const t = now.getTime();
  if (limit <= 0) return { rows: [], wakeAt: undefined, committed: Promise.resolve() };
  // Three round trips: the lanes are read on one connection while the transaction begins on another, then the lanes
  // are locked and their leases counted in one statement, then the deliveries are taken. The COMMIT is not waited for:
  // the rows go out at once (a lost COMMIT only means they can be claimed again, as after a worker's crash).
  const client = await db.connect();
  let committed: Promise<void> | undefined;
  const finish = (sql: 'COMMIT' | 'ROLLBACK') => {
    committed = client.query(sql).then(() => client.release(), (err: Error) => {
      client.release(err);
      if (sql === 'COMMIT') throw err;
    });
    committed.catch(() => {}); // the loop does not wait for it; claim() and tick() do
  };
  try {
    const [lanes] = await Promise.all([findLanes(db), client.query('BEGIN')]);
    const { order, wakeAt: later } = lanesToTry(lanes, t, limit);
    let wakeAt = later;
    const soon = (ms: number) => {
      wakeAt = Math.min(wakeAt ?? Infinity, t + ms);
    };
    let rows: Claimed[] = [];
    if (order.length > 0) {
      const { state, live } = await lockLanes(client, order, now);
      // Lanes another worker is claiming from (or just claimed from, after this statement's snapshot): look again shortly.
      if (state.size < order.length) soon(50);
      const locked = order.filter((v) => state.has(laneKey(v)));
      const { grants, wakeAt: refill } = grant(locked, state, live, t, limit, o);
      if (refill !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, refill);
      // A lane that gives nothing now (at its cap: its own worker's next claim serves it): look again within a second.
      if (grants.length < locked.length) soon(1_000);
      if (grants.length > 0) rows = await takeFromLanes(client, worker, now, leaseMs, grants);
    }
    finish('COMMIT');
    for (const r of rows) r.committed = committed;
    return { rows, wakeAt, committed: committed! };
  } catch (err) {
    if (!committed) finish('ROLLBACK');
    throw err;
  }
}

/**
 * `heads`: every lane with a pending delivery, by a loose index scan of deliveries_lane (one descent per lane,
 * whatever the backlog).
 */
const LANES_WITH_WORK = `WITH RECURSIVE heads AS (
       (SELECT operator_id, lane FROM deliveries WHERE status = 'pending' ORDER BY operator_id, lane LIMIT 1)
       UNION ALL
       SELECT n.operator_id, n.lane FROM heads h CROSS JOIN LATERAL (
         SELECT operator_id, lane FROM deliveries
          WHERE status = 'pending' AND (operator_id, lane) > (h.operator_id, h.lane)
          ORDER BY operator_id, lane LIMIT 1
       ) n
     )`;

/** Step 1 of the claim: every lane with pending work, its head's due time, and what admission needs of it. */
async function findLanes(db: Queryable): Promise<LaneView[]> {
  const { rows } = await db.query<LaneView>({
    name: 'cw_find_lanes_v4',
    text: `${LANES_WITH_WORK}
     SELECT h.operator_id, h.lane,
            CASE WHEN e.ordering = 'fifo'
                 THEN (SELECT f.next_attempt_at FROM deliveries f WHERE f.operator_id = h.operator_id AND f.lane = h.lane AND f.status = 'pending'
                        ORDER BY f.created_at, f.seq NULLS FIRST, f.id LIMIT 1)
                 ELSE (SELECT d.next_attempt_at FROM deliveries d WHERE d.operator_id = h.operator_id AND d.lane = h.lane AND d.status = 'pending'
                        ORDER BY d.next_attempt_at LIMIT 1) END AS head,
            l.served, e.max_concurrency, e.rate_limit_per_s, coalesce(e.ordering = 'fifo', false) AS fifo, coalesce(e.status = 'disabled', false) AS held,
            coalesce(e.circuit_state, l.circuit_state) AS circuit_state, CASE WHEN e.id IS NOT NULL THEN e.circuit_retry_at ELSE l.circuit_retry_at END AS circuit_retry_at
       FROM heads h
       LEFT JOIN delivery_lanes l ON l.operator_id = h.operator_id AND l.lane = h.lane
       LEFT JOIN endpoints e ON starts_with(h.lane, 'ep:') AND e.operator_id = h.operator_id AND e.id = substr(h.lane, 4)
      WHERE h.lane IS NOT NULL`,
  });
  return rows.filter((r) => r.head && r.head < HELD).map((r) => ({ ...r, served: r.served === null ? null : Number(r.served) }));
}

/**
 * Step 2: locks the lanes' rows (skipping those another claim holds), making missing ones, and counts each one's
 * attempts in flight (pending, leased, lease not run out). One statement, one snapshot, taken before the locks: a claim
 * that committed leases on a lane after that snapshot also moved the lane's `served`, and the lock reads the row as it
 * is now, so a lane whose `served` differs from the snapshot's may have leases this count misses. Such a lane is left
 * out (as if locked by another worker) and tried again at the next claim.
 */
async function lockLanes(tx: Queryable, lanes: LaneView[], now: Date): Promise<{ state: Map<string, LaneState>; live: Map<string, number> }> {
  const { rows } = await tx.query<LaneState & { stale: boolean; live: number }>({
    name: 'cw_lock_lanes_v2',
    text: `WITH w AS (SELECT * FROM unnest($1::text[], $2::text[]) AS w(op, lane)),
     locked AS (
       SELECT l.operator_id, l.lane, l.tokens, l.tokens_at, l.circuit_state, l.circuit_retry_at, l.served
         FROM delivery_lanes l JOIN w ON l.operator_id = w.op AND l.lane = w.lane
          FOR UPDATE OF l SKIP LOCKED
     ), made AS (
       INSERT INTO delivery_lanes (operator_id, lane) SELECT op, lane FROM w ON CONFLICT DO NOTHING
       RETURNING operator_id, lane, tokens, tokens_at, circuit_state, circuit_retry_at, served
     )
     SELECT k.operator_id, k.lane, k.tokens, k.tokens_at, k.circuit_state, k.circuit_retry_at,
            k.served IS DISTINCT FROM (SELECT s.served FROM delivery_lanes s WHERE s.operator_id = k.operator_id AND s.lane = k.lane) AS stale,
            (SELECT count(*)::int FROM deliveries d WHERE d.operator_id = k.operator_id AND d.lane = k.lane AND d.status = 'pending'
                AND d.leased_by IS NOT NULL AND d.next_attempt_at > $3) AS live
       FROM (SELECT * FROM locked UNION ALL SELECT * FROM made) k`,
    values: [lanes.map((v) => v.operator_id), lanes.map((v) => v.lane), now],
  });
  const state = new Map<string, LaneState>();
  const live = new Map<string, number>();
  for (const r of rows) {
    if (r.stale) continue;
    const { stale: _stale, live: n, ...st } = r;
    state.set(laneKey(r), st);
    live.set(laneKey(r), n);
  }
  return { state, live };
}

/** Step 4: takes the granted deliveries and marks the lanes served. */
async function takeFromLanes(tx: Queryable, worker: string, now: Date, leaseMs: number, grants: LaneGrant[]): Promise<Claimed[]> {
  const { rows } = await tx.query<Claimed & { event_type: EventRecord['type']; event_data: EventRecord['data']; event_id: string }>({
    // Not a named statement: a cached generic plan (made without the lanes and the time) reads lanes worse than a
    // plan made for them. The event and the endpoint are fetched by primary key per claimed row (LATERAL ... LIMIT 1
    // keeps the planner from turning them into joins over whole tables).
    text: `WITH w AS (
       -- Read again at this statement's snapshot: an endpoint disabled, or whose circuit opened, since the lanes were
       -- read gives nothing (its deliveries stay where they are, rather than being claimed and given back).
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bool[], $5::float8[]) AS w(op, lane, n, fifo, tokens)
        WHERE NOT EXISTS (SELECT 1 FROM endpoints z WHERE starts_with(w.lane, 'ep:') AND z.operator_id = w.op AND z.id = substr(w.lane, 4)
                            AND ${endpointHolds('z', '$6')})
     ), due AS (
       -- LIMIT $9 (all that was granted): with it the planner knows how few rows come, and updates them by primary key.
       SELECT * FROM (
       SELECT x.operator_id, x.id, x.event_id, x.endpoint_id, x.lane FROM w CROSS JOIN LATERAL (
         SELECT d.operator_id, d.id, d.event_id, d.endpoint_id, d.lane FROM deliveries d
          WHERE d.operator_id = w.op AND d.lane = w.lane AND d.status = 'pending' AND d.next_attempt_at <= $6 AND NOT w.fifo
          ORDER BY d.next_attempt_at LIMIT w.n
          FOR UPDATE SKIP LOCKED
       ) x
       UNION ALL
       SELECT x.operator_id, x.id, x.event_id, x.endpoint_id, x.lane FROM w CROSS JOIN LATERAL (
         -- In order: the oldest pending delivery, whether or not it is due (then nothing is taken), never skipped.
         SELECT d.operator_id, d.id, d.event_id, d.endpoint_id, d.lane, d.next_attempt_at FROM deliveries d
          WHERE d.operator_id = w.op AND d.lane = w.lane AND d.status = 'pending' AND w.fifo
          ORDER BY d.created_at, d.seq NULLS FIRST, d.id LIMIT 1
          FOR UPDATE
       ) x WHERE x.next_attempt_at <= $6
       ) u LIMIT $9
     ), claimed AS (
       UPDATE deliveries d
          SET attempts = d.attempts + 1,
              stalls = d.stalls + 1,
              next_attempt_at = $6::timestamptz + make_interval(secs => $7::double precision / 1000),
              reclaims = d.reclaims + (d.leased_by IS NOT NULL)::int,
              leased_by = $8
         FROM due
         CROSS JOIN LATERAL (SELECT ev.id, ev.type, ev.data, ev.trace_context FROM events ev WHERE ev.operator_id = due.operator_id AND ev.id = due.event_id LIMIT 1) e
         LEFT JOIN LATERAL (
           SELECT x.url, x.format, x.payload_version, x.secret, x.previous_secret, x.previous_expires_at, x.max_concurrency, x.rate_limit_per_s,
                  x.circuit_state, x.circuit_retry_at, x.consecutive_failures, x.status
             FROM endpoints x WHERE x.operator_id = due.operator_id AND x.id = due.endpoint_id LIMIT 1
         ) ep ON true
         LEFT JOIN LATERAL (
           SELECT y.circuit_state, y.circuit_retry_at, y.consecutive_failures FROM delivery_lanes y
            WHERE due.endpoint_id IS NULL AND y.operator_id = due.operator_id AND y.lane = due.lane LIMIT 1
         ) ln ON true
        WHERE d.operator_id = due.operator_id AND d.id = due.id
       RETURNING d.operator_id, d.id, d.environment, d.lane, coalesce(ep.url, d.url) AS url, coalesce(ep.format, d.format) AS format,
                 coalesce(ep.payload_version, d.payload_version) AS payload_version, coalesce(ep.secret, d.secret) AS secret,
                 d.schedule, d.attempts, d.stalls, d.created_at, d.endpoint_id,
                 ep.previous_secret, ep.previous_expires_at, ep.max_concurrency, ep.rate_limit_per_s,
                 coalesce(ep.circuit_state, ln.circuit_state, 'closed') AS circuit_state, coalesce(ep.circuit_retry_at, ln.circuit_retry_at) AS circuit_retry_at,
                 coalesce(ep.consecutive_failures, ln.consecutive_failures, 0) AS consecutive_failures, ep.status AS endpoint_status, e.id AS event_id, e.type AS event_type, e.data AS event_data,
                 e.trace_context
     ), served AS (
       UPDATE delivery_lanes l
          SET served = nextval('delivery_lanes_served'),
              tokens = CASE WHEN w.tokens IS NULL THEN NULL ELSE w.tokens - c.n END,
              tokens_at = CASE WHEN w.tokens IS NULL THEN NULL ELSE $6::timestamptz END
         FROM (SELECT operator_id, lane, count(*)::int AS n FROM claimed GROUP BY operator_id, lane) c
         JOIN w ON w.op = c.operator_id AND w.lane = c.lane
        WHERE l.operator_id = c.operator_id AND l.lane = c.lane
     )
     SELECT * FROM claimed`,
    values: [grants.map((g) => g.operator_id), grants.map((g) => g.lane), grants.map((g) => g.n), grants.map((g) => g.fifo), grants.map((g) => g.tokens), now, leaseMs, worker,
      grants.reduce((n, g) => n + g.n, 0)],
  });
  return rows.map((r) => {
    const { event_id, event_type, event_data, ...rest } = r;
    return { ...rest, event: { id: event_id, type: event_type, data: event_data } as EventRecord };
  });
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'expired' | 'dead';
export type AttemptOutcomeKind = 'succeeded' | 'retry' | 'expired' | 'held';

export interface Completion {
  operator_id: string;
  id: string;
  /** The claim's attempt number. */
  attempt: number;
  status: DeliveryStatus;
  /** The attempt row's outcome; null when no attempt reached the receiver (a dead letter): no attempt row is written. */
  outcome: AttemptOutcomeKind | null;
  next_attempt_at: Date;
  started_at: Date;
  latency_ms: number;
  status_code: number | null;
  error_code: string | null;
  /** The first bytes of the answer, exactly as received. */
  excerpt: Buffer | null;
  /** A non-2xx answer's headers, bounded (sender.ts boundHeaders); absent or null otherwise. */
  response_headers?: Record<string, string> | null;
}

/** complete()'s statement, with or without the failures' response headers (built once). */
const completeSql = (withHeaders: boolean) => `WITH u AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::int[], $10::text[], $11::bytea[]${withHeaders ? ', $13::text[]' : ''})
         AS u(op, id, attempt, status, outcome, next_at, started, latency, code, err, excerpt${withHeaders ? ', headers' : ''})
     ), a AS (
       INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, error_code, response_excerpt, outcome${withHeaders ? ', response_headers' : ''})
       SELECT op, id, attempt, $12, started, latency, code, err, excerpt, outcome${withHeaders ? ', headers::jsonb' : ''} FROM u WHERE outcome IS NOT NULL
       ON CONFLICT DO NOTHING
     ), one AS (
       SELECT DISTINCT ON (op, id) * FROM u ORDER BY op, id, (status = 'succeeded') DESC, attempt DESC
     )
     UPDATE deliveries d
        SET status = one.status,
            next_attempt_at = one.next_at,
            leased_by = NULL,
            stalls = 0,
            last_status = one.code,
            last_error = one.err,
            completed_at = CASE WHEN one.status = 'pending' THEN NULL ELSE one.started END
       FROM one
      WHERE d.operator_id = one.op AND d.id = one.id AND d.status = 'pending'
        AND (d.attempts = one.attempt OR one.status = 'succeeded')
     RETURNING d.operator_id, d.id, d.status`;
const COMPLETE_SQL = completeSql(false);
const COMPLETE_WITH_HEADERS_SQL = completeSql(true);

/**
 * Records a batch of attempts and moves each delivery on, in one statement. A delivery reclaimed by another worker
 * since (its attempt count moved on) keeps the newer claim's schedule, but a success always ends it. Two outcomes of
 * one delivery in the batch resolve deterministically: a success wins, then the later attempt. Returns the deliveries
 * that the statement moved on, with their new status.
 */
export async function complete(db: Queryable, worker: string, batch: Completion[]): Promise<{ operator_id: string; id: string; status: DeliveryStatus }[]> {
  if (batch.length === 0) return [];
  const col = <K extends keyof Completion>(k: K) => batch.map((b) => b[k]);
  // A batch of successes (the hot path) runs the statement without the headers column at all; only a batch with a
  // failure's headers (migration 018) carries them, as JSON text (pg's array literal would not keep objects as jsonb[]).
  const withHeaders = batch.some((b) => b.response_headers);
  const { rows } = await db.query<{ operator_id: string; id: string; status: DeliveryStatus }>({
    name: withHeaders ? 'cw_complete_h1' : 'cw_complete_v2',
    text: withHeaders ? COMPLETE_WITH_HEADERS_SQL : COMPLETE_SQL,
    values: [col('operator_id'), col('id'), col('attempt'), col('status'), col('outcome'), col('next_attempt_at'), col('started_at'),
      col('latency_ms'), col('status_code'), col('error_code'), col('excerpt'), worker,
      ...(withHeaders ? [batch.map((b) => (b.response_headers ? JSON.stringify(b.response_headers) : null))] : [])],
  });
  return rows;
}

/**
 * Gives back claims this worker will not send: due again at `at`, the uncounted attempt taken back. A give-back or a
 * shutdown also gives the claim back; a fault of the worker's own (`fault: true`) keeps it counted toward dead-lettering.
 */
export async function release(db: Queryable, worker: string, keys: { operator_id: string; id: string; attempt: number; at: Date; fault?: boolean }[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query({
    name: 'cw_release_v2',
    text: `UPDATE deliveries d SET next_attempt_at = u.at, leased_by = NULL, attempts = d.attempts - 1, stalls = greatest(0, d.stalls - (NOT u.fault)::int),
              last_error = CASE WHEN u.fault THEN 'worker_fault' ELSE d.last_error END
       FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::bool[]) AS u(op, id, attempt, at, fault)
      WHERE d.operator_id = u.op AND d.id = u.id AND d.status = 'pending' AND d.attempts = u.attempt AND d.leased_by = $6`,
    values: [keys.map((k) => k.operator_id), keys.map((k) => k.id), keys.map((k) => k.attempt), keys.map((k) => k.at), keys.map((k) => k.fault ?? false), worker],
  });
}

/**
 * How long deliveries have been waiting with nothing moving them (for /readyz): the earliest due time among the lanes
 * that are due and have no attempt in flight, no open circuit and are not held. A lane with attempts in flight is
 * being served (a slow endpoint at its cap is not a stall), and an open circuit waits on purpose. One descent per lane.
 */
export async function oldestWaiting(db: Queryable, now: Date): Promise<Date | null> {
  const { rows } = await db.query<{ at: Date | null }>(
    `${LANES_WITH_WORK}
     SELECT min(x.head) AS at
       FROM heads h
       CROSS JOIN LATERAL (
         SELECT d.next_attempt_at AS head FROM deliveries d WHERE d.operator_id = h.operator_id AND d.lane = h.lane AND d.status = 'pending'
          ORDER BY d.next_attempt_at LIMIT 1
       ) x
      WHERE h.lane IS NOT NULL AND x.head <= $1
        AND NOT EXISTS (SELECT 1 FROM deliveries f WHERE f.operator_id = h.operator_id AND f.lane = h.lane AND f.status = 'pending' AND f.leased_by IS NOT NULL AND f.next_attempt_at > $1)
        AND NOT EXISTS (SELECT 1 FROM delivery_lanes z WHERE z.operator_id = h.operator_id AND z.lane = h.lane AND z.circuit_state = 'open')
        AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE starts_with(h.lane, 'ep:') AND e.operator_id = h.operator_id AND e.id = substr(h.lane, 4)
                           AND (e.circuit_state = 'open' OR e.status = 'disabled'))`,
    [now],
  );
  return rows[0]?.at ?? null;
}

/** Up to `limit` sealed secrets in use (endpoints', and pending per-payment deliveries'), to check the worker's key. */
export async function sampleSecrets(db: Queryable, limit = 3): Promise<{ where: string; secret: string }[]> {
  const { rows } = await db.query<{ where: string; secret: string }>(
    `(SELECT 'endpoint ' || id AS where, secret FROM endpoints WHERE deleted_at IS NULL AND secret LIKE 'enc:%' ORDER BY updated_at DESC LIMIT $1)
     UNION ALL
     (SELECT 'delivery ' || id, secret FROM deliveries WHERE status = 'pending' AND endpoint_id IS NULL AND secret LIKE 'enc:%' LIMIT $1)`,
    [limit],
  );
  return rows;
}

/** A fifo endpoint's oldest pending delivery: what the rest of its queue waits on. */
export interface FifoHead {
  id: string;
  event_id: string;
  attempts: number;
  in_flight: boolean;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  /** Pending deliveries behind it. */
  behind: number;
}

export async function fifoHead(db: Queryable, e: { operator_id: string; id: string }, now: Date): Promise<FifoHead | null> {
  const { rows } = await db.query<FifoHead>(
    `SELECT h.id, h.event_id, h.attempts, (h.leased_by IS NOT NULL AND h.next_attempt_at > $3) AS in_flight, h.next_attempt_at, h.last_status, h.last_error,
            (SELECT count(*)::int FROM deliveries b WHERE b.operator_id = $1 AND b.lane = 'ep:' || $2 AND b.status = 'pending') - 1 AS behind
       FROM (SELECT * FROM deliveries WHERE operator_id = $1 AND lane = 'ep:' || $2 AND status = 'pending'
              ORDER BY created_at, seq NULLS FIRST, id LIMIT 1) h`,
    [e.operator_id, e.id, now],
  );
  return rows[0] ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Lanes' own health: the circuit of a per-payment origin

export interface LaneHealthRow {
  circuit_state: 'closed' | 'open';
  circuit_retry_at: Date | null;
  consecutive_failures: number;
  failing_since: Date | null;
}

/** A lane's circuit, its row locked for the caller's transaction (made if missing). */
export async function lockLaneHealth(tx: Queryable, key: { operator_id: string; lane: string }): Promise<LaneHealthRow> {
  await tx.query('INSERT INTO delivery_lanes (operator_id, lane) VALUES ($1, $2) ON CONFLICT DO NOTHING', [key.operator_id, key.lane]);
  const { rows } = await tx.query<LaneHealthRow>(
    'SELECT circuit_state, circuit_retry_at, consecutive_failures, failing_since FROM delivery_lanes WHERE operator_id = $1 AND lane = $2 FOR UPDATE',
    [key.operator_id, key.lane],
  );
  return rows[0]!;
}

export async function setLaneHealth(tx: Queryable, key: { operator_id: string; lane: string }, h: LaneHealthRow): Promise<void> {
  await tx.query(
    `UPDATE delivery_lanes SET circuit_state = $3, circuit_retry_at = $4, consecutive_failures = $5, failing_since = $6 WHERE operator_id = $1 AND lane = $2`,
    [key.operator_id, key.lane, h.circuit_state, h.circuit_retry_at, h.consecutive_failures, h.failing_since],
  );
}

/** The lanes whose circuit is open, for the API and metrics. */
export async function openLanes(db: Queryable, operatorId?: string): Promise<{ operator_id: string; lane: string; circuit_retry_at: Date | null; consecutive_failures: number }[]> {
  const { rows } = await db.query<{ operator_id: string; lane: string; circuit_retry_at: Date | null; consecutive_failures: number }>(
    `SELECT operator_id, lane, circuit_retry_at, consecutive_failures FROM delivery_lanes WHERE circuit_state = 'open' AND ($1::text IS NULL OR operator_id = $1) ORDER BY operator_id, lane`,
    [operatorId ?? null],
  );
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading: the events API, metrics, retention

export interface DeliveryRow {
  id: string; endpoint_id: string | null; url: string; format: string; payload_version: string; status: DeliveryStatus; attempts: number;
  next_attempt_at: Date; last_status: number | null; last_error: string | null; created_at: Date; completed_at: Date | null; reclaims: number;
  /** Pending and waiting for its endpoint to be enabled. */
  held: boolean;
}
export interface AttemptRow {
  delivery_id: string; attempt: number; started_at: Date; latency_ms: number; status_code: number | null; error_code: string | null;
  response_excerpt: Buffer | null; outcome: string;
  /** A non-2xx answer's headers (migration 018); null for successes, network errors and older attempts. */
  response_headers: Record<string, string> | null;
}

/** An event's deliveries, oldest first, and all their attempts. */
export async function deliveriesOf(db: Queryable, operatorId: string, eventId: string): Promise<{ deliveries: DeliveryRow[]; attempts: AttemptRow[] }> {
  const [d, a] = await Promise.all([
    db.query<DeliveryRow>(
      `SELECT id, endpoint_id, url, format, payload_version, status, attempts, next_attempt_at, last_status, last_error, created_at, completed_at, reclaims,
              status = 'pending' AND (next_attempt_at >= ${HELD_SQL} OR ${HELD_BY_ENDPOINT}) AS held
         FROM deliveries d WHERE operator_id = $1 AND event_id = $2 ORDER BY created_at, id`,
      [operatorId, eventId],
    ),
    db.query<AttemptRow>(
      `SELECT a.delivery_id, a.attempt, a.started_at, a.latency_ms, a.status_code, a.error_code, a.response_excerpt, a.outcome, a.response_headers
         FROM delivery_attempts a JOIN deliveries d ON d.operator_id = a.operator_id AND d.id = a.delivery_id
        WHERE d.operator_id = $1 AND d.event_id = $2 ORDER BY a.attempt`,
      [operatorId, eventId],
    ),
  ]);
  return { deliveries: d.rows, attempts: a.rows };
}

/**
 * What signed an event's deliveries, for rendering their attempts' requests again (request-view.ts): the delivery's
 * own URL, format, payload version and sealed secret, and for a registered endpoint its current ones (the worker
 * signs with the endpoint's at each claim) with when they last changed (migration 018). Secrets stay sealed here.
 */
export interface SigningRow {
  id: string; lane: string; url: string; format: Format; payload_version: PayloadVersion; secret: string | null;
  endpoint_id: string | null; ep_url: string | null; ep_format: Format | null; ep_payload_version: PayloadVersion | null; ep_secret: string | null;
  previous_secret: string | null; previous_expires_at: Date | null; secret_rotated_at: Date | null; signing_changed_at: Date | null;
}
export async function signingOf(db: Queryable, operatorId: string, eventId: string): Promise<SigningRow[]> {
  const { rows } = await db.query<SigningRow>(
    `SELECT d.id, d.lane, d.url, d.format, d.payload_version, d.secret, d.endpoint_id, x.url AS ep_url, x.format AS ep_format, x.payload_version AS ep_payload_version,
            x.secret AS ep_secret, x.previous_secret, x.previous_expires_at, x.secret_rotated_at, x.signing_changed_at
       FROM deliveries d LEFT JOIN endpoints x ON x.operator_id = d.operator_id AND x.id = d.endpoint_id
      WHERE d.operator_id = $1 AND d.event_id = $2`,
    [operatorId, eventId],
  );
  return rows;
}

/** A WHERE fragment for the events list: events with a delivery in this status (`$n` is its parameter). */
export function eventHasDeliveryIn(param: string): string {
  return `EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = events.operator_id AND d.event_id = events.id AND d.status = ${param})`;
}

/** A delivery `d` whose endpoint is disabled: held, whatever its due time says. */
const HELD_BY_ENDPOINT = `EXISTS (SELECT 1 FROM endpoints x WHERE x.operator_id = d.operator_id AND x.id = d.endpoint_id AND x.status = 'disabled')`;
/** A delivery `d` its endpoint holds back at `now` ($1). */
const WAITING_ON_ENDPOINT = `EXISTS (SELECT 1 FROM endpoints x WHERE x.operator_id = d.operator_id AND x.id = d.endpoint_id AND ${endpointHolds('x', '$1')})`;

/** Queue gauges for /metrics. */
export async function queueGauges(db: Queryable, now: Date): Promise<{ due: number; pending: number; dead: number; oldestDue: Date | null }> {
  const { rows } = await db.query<{ due: number; pending: number; dead: number; oldest: Date | null }>(
    `SELECT (SELECT count(*)::int FROM deliveries d WHERE status = 'pending' AND next_attempt_at <= $1 AND NOT ${WAITING_ON_ENDPOINT}) AS due,
            (SELECT count(*)::int FROM deliveries WHERE status = 'pending') AS pending,
            (SELECT count(*)::int FROM deliveries WHERE status = 'dead') AS dead,
            (SELECT min(created_at) FROM deliveries d WHERE status = 'pending' AND next_attempt_at <= $1 AND NOT ${WAITING_ON_ENDPOINT}) AS oldest`,
    [now],
  );
  return { due: rows[0]!.due, pending: rows[0]!.pending, dead: rows[0]!.dead, oldestDue: rows[0]!.oldest };
}

/** Retention: deletes up to `batch` attempts started before `cutoff`. */
export async function pruneAttempts(db: Queryable, cutoff: Date, batch: number): Promise<number> {
  const r = await db.query(`DELETE FROM delivery_attempts WHERE ctid = ANY (ARRAY(SELECT ctid FROM delivery_attempts WHERE started_at < $1 LIMIT $2))`, [cutoff, batch]);
  return r.rowCount ?? 0;
}

/** Retention: deletes up to `batch` finished deliveries made before `cutoff`, with their attempts. Pending ones stay. */
export async function pruneDeliveries(db: Queryable, cutoff: Date, batch: number): Promise<number> {
  const r = await db.query(
    `WITH old AS (
       SELECT operator_id, id FROM deliveries WHERE created_at < $1 AND status <> 'pending' LIMIT $2
     ), a AS (
       DELETE FROM delivery_attempts x USING old WHERE x.operator_id = old.operator_id AND x.delivery_id = old.id
     )
     DELETE FROM deliveries d USING old WHERE d.operator_id = old.operator_id AND d.id = old.id`,
    [cutoff, batch],
  );
  return r.rowCount ?? 0;
}

/**
 * Retention: deletes up to `batch` lane rows with nothing pending and nothing to remember (a closed circuit without
 * failures): a payment URL's origin seen once must not keep a row forever. A lane that gets work again gets a row
 * again at its next claim (and counts as never served, so it goes first once).
 */
export async function pruneIdleLanes(db: Queryable, batch: number): Promise<number> {
  const r = await db.query(
    `DELETE FROM delivery_lanes l WHERE (l.operator_id, l.lane) IN (
       SELECT x.operator_id, x.lane FROM delivery_lanes x
        WHERE x.circuit_state = 'closed' AND x.consecutive_failures = 0
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = x.operator_id AND d.lane = x.lane AND d.status = 'pending')
        LIMIT $1 FOR UPDATE SKIP LOCKED)`,
    [batch],
  );
  return r.rowCount ?? 0;
}

/** A WHERE fragment for retention of events: the event `e` has no delivery left. */
export const EVENT_HAS_NO_DELIVERY = `NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = e.operator_id AND d.event_id = e.id)`;

// ---------------------------------------------------------------------------------------------------------------
// Test clocks (sandbox only: payments/clock/clock.ts)

/**
 * A test clock's advance (POST /sandbox/clock/advance): the operator's pending deliveries of `env` come due `seconds`
 * earlier, as if that much time had passed, in the caller's transaction:
 * - `next_attempt_at` moves, so a retry due in 10 minutes is due now after a 10-minute advance; except a delivery in
 *   flight (leased, its lease not run out at `now`: moving it would let another worker take it while it is being
 *   sent) and one held by a 410 ({@link HELD}: it waits for its endpoint to be enabled, not for a time).
 * - `created_at` moves for every pending one: the schedule's age limit counts from it (retry.ts nextStep), so expiries
 *   come as early too, and a fifo lane keeps its order (all of its pending deliveries move alike).
 * - An open circuit whose wait is not over at `now` (a payment URL's origin in `delivery_lanes`, a registered
 *   endpoint's in `endpoints`) comes to its probe as early, and a rotated endpoint secret's grace period ends as early.
 * Fairness is untouched: a lane's head is read from its deliveries at each claim (no lane row caches a due time),
 * round robin (`served`) is a sequence, not a clock, and rate-limit buckets refill by the worker's clock. Signatures
 * and body timestamps are the worker's own clock at each attempt: nothing here changes them. Every lock is taken with
 * SKIP LOCKED, so the advance never waits on (or deadlocks with) a claim: a row a claim holds at that instant is being
 * taken now anyway and is left as it is. Wakes sleeping workers after the commit when a due time moved.
 */
export async function advanceOperatorDeliveries(
  tx: Queryable, operatorId: string, env: 'sandbox' | 'production', seconds: number, now: Date,
): Promise<{ deliveries: number; circuits: number; secret_rotations: number }> {
  const iv = `($3::double precision * interval '1 second')`;
  const { rows } = await tx.query<{ deliveries: number; circuits: number; secret_rotations: number }>(
    `WITH lanes AS (
       UPDATE delivery_lanes l SET circuit_retry_at = l.circuit_retry_at - ${iv}
         FROM (SELECT operator_id, lane FROM delivery_lanes
                WHERE operator_id = $1 AND starts_with(lane, 'url:' || $2 || ':') AND circuit_state = 'open' AND circuit_retry_at > $4
                  FOR UPDATE SKIP LOCKED) k
        WHERE l.operator_id = k.operator_id AND l.lane = k.lane
       RETURNING 1
     ), eps AS (
       UPDATE endpoints e
          SET circuit_retry_at = CASE WHEN k.circuit THEN e.circuit_retry_at - ${iv} ELSE e.circuit_retry_at END,
              previous_expires_at = CASE WHEN k.rotation THEN e.previous_expires_at - ${iv} ELSE e.previous_expires_at END
         FROM (SELECT operator_id, id, coalesce(circuit_state = 'open' AND circuit_retry_at > $4, false) AS circuit,
                      coalesce(previous_expires_at > $4, false) AS rotation
                 FROM endpoints
                WHERE operator_id = $1 AND environment = $2 AND deleted_at IS NULL
                  AND ((circuit_state = 'open' AND circuit_retry_at > $4) OR previous_expires_at > $4)
                  FOR UPDATE SKIP LOCKED) k
        WHERE e.operator_id = k.operator_id AND e.id = k.id
       RETURNING k.circuit, k.rotation
     ), moved AS (
       UPDATE deliveries d
          SET created_at = d.created_at - ${iv},
              next_attempt_at = CASE WHEN k.due_moves THEN d.next_attempt_at - ${iv} ELSE d.next_attempt_at END
         FROM (SELECT operator_id, id, (next_attempt_at < ${HELD_SQL} AND NOT (leased_by IS NOT NULL AND next_attempt_at > $4)) AS due_moves
                 FROM deliveries
                WHERE operator_id = $1 AND environment = $2 AND status = 'pending'
                  FOR UPDATE SKIP LOCKED) k
        WHERE d.operator_id = k.operator_id AND d.id = k.id
       RETURNING k.due_moves
     )
     SELECT (SELECT count(*) FILTER (WHERE due_moves)::int FROM moved) AS deliveries,
            (SELECT count(*)::int FROM lanes) + (SELECT count(*) FILTER (WHERE circuit)::int FROM eps) AS circuits,
            (SELECT count(*) FILTER (WHERE rotation)::int FROM eps) AS secret_rotations`,
    [operatorId, env, seconds, now],
  );
  const r = rows[0]!;
  if (r.deliveries + r.circuits > 0) wakeAfterCommit(tx);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Attempts made outside the engine

/**
 * Records an attempt that something other than a worker made (`cashwire listen` forwarding an event to a developer's
 * machine): one delivery of the event to `url` (endpoint_id NULL, the lane `lane`, e.g. 'cli'), written already ended
 * (`succeeded` for a 2xx status, else `failed`) with its one attempt row, in one statement. Never pending, so no
 * worker ever claims, retries or dead-letters it; GET /events/{id} shows it with its attempt. The event must be the
 * operator's and of `environment`: otherwise nothing is written and null is returned. Idempotent on `id`: a repeat
 * (the caller retrying after a lost answer) writes nothing and returns the delivery made first (`made: false`).
 */
export async function recordExternalAttempt(db: Queryable, a: {
  operator_id: string; environment: string; event_id: string; id: string; lane: string; worker: string; url: string; format: Format;
  payload_version: PayloadVersion; status_code: number | null; error_code: string | null; latency_ms: number; started_at: Date; ended_at: Date;
}): Promise<{ id: string; status: 'succeeded' | 'failed'; made: boolean } | null> {
  const status = a.status_code !== null && a.status_code >= 200 && a.status_code < 300 ? 'succeeded' : 'failed';
  const { rows } = await db.query<{ id: string; status: 'succeeded' | 'failed'; made: boolean }>(
    `WITH d AS (
       INSERT INTO deliveries (operator_id, id, environment, event_id, endpoint_id, lane, url, format, payload_version, secret, schedule, status, attempts,
                               next_attempt_at, last_status, last_error, created_at, completed_at)
       SELECT ev.operator_id, $2, ev.environment, ev.id, NULL, $4, $5, $6, $7, NULL, NULL, $8, 1, $12, $9, $10, $11, $12
         FROM events ev WHERE ev.operator_id = $1 AND ev.id = $3 AND ev.environment = $13
       ON CONFLICT DO NOTHING
       RETURNING operator_id, id, status
     ), att AS (
       INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, error_code, response_excerpt, outcome)
       SELECT operator_id, id, 1, $14, $11, $15, $9, $10, NULL, $8 FROM d
     )
     SELECT id, status, true AS made FROM d
     UNION ALL
     SELECT x.id, x.status, false FROM deliveries x
      WHERE x.operator_id = $1 AND x.id = $2 AND x.event_id = $3 AND x.environment = $13 AND x.lane = $4 AND NOT EXISTS (SELECT 1 FROM d)`,
    [a.operator_id, a.id, a.event_id, a.lane, a.url, a.format, a.payload_version, status, a.status_code, a.error_code, a.started_at, a.ended_at,
      a.environment, a.worker, a.latency_ms],
  );
  return rows[0] ? { id: rows[0].id, status: rows[0].status, made: rows[0].made } : null;
}

/** How many deliveries of each of these events are in each status: the dashboard's events list shows it per row. */
export async function deliveryStatusCounts(db: Queryable, operatorId: string, eventIds: string[]): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (eventIds.length === 0) return out;
  const { rows } = await db.query<{ event_id: string; status: string; n: number }>(
    `SELECT event_id, status, count(*)::int AS n FROM deliveries WHERE operator_id = $1 AND event_id = ANY($2::text[]) GROUP BY event_id, status`,
    [operatorId, eventIds],
  );
  for (const r of rows) {
    const m = out.get(r.event_id) ?? {};
    m[r.status] = r.n;
    out.set(r.event_id, m);
  }
  return out;
}
