/** The queue's SQL: claim a batch, complete a batch, release a batch. Each is one round trip. */
import type { EventRecord, Format, PayloadVersion } from '@cashwire/webhooks';
import type { Queryable } from '../db/pool.js';
import type { RetrySchedule, ScheduleName } from '../domain/retry.js';

export interface Claimed {
  operator_id: string;
  id: string;
  environment: string;
  url: string;
  format: Format;
  payload_version: PayloadVersion;
  secret: string | null;
  schedule_name: ScheduleName;
  schedule: Partial<RetrySchedule> | null;
  attempts: number;
  created_at: Date;
  event: EventRecord;
  /** Set for a registered endpoint's delivery: its current settings and health (url, format, secret are its own). */
  endpoint_id: string | null;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  max_concurrency: number | null;
  rate_limit_per_s: number | null;
  circuit_state: 'closed' | 'open' | null;
  circuit_retry_at: Date | null;
  consecutive_failures: number | null;
  endpoint_status: 'enabled' | 'disabled' | null;
}

/**
 * Claims up to `limit` due deliveries: locks them with SKIP LOCKED (so concurrent workers take different rows),
 * counts the attempt, and moves next_attempt_at one lease ahead. A claim whose row already had a lease holder
 * is a reclaim: that holder died or overran its lease.
 */
export async function claim(db: Queryable, worker: string, now: Date, leaseMs: number, limit: number): Promise<Claimed[]> {
  const { rows } = await db.query<Claimed & { event_type: EventRecord['type']; event_data: EventRecord['data']; event_id: string }>({
    // Not a named statement: a cached generic plan reads the queue head worse than a plan made for the actual time.
    // The event and the endpoint are fetched by primary key per claimed row (LATERAL ... LIMIT 1 keeps the planner
    // from turning them into joins over whole tables), and the queue head is read in next_attempt_at order from the
    // partial index of pending rows.
    text: `WITH due AS (
       SELECT operator_id, id, event_id, endpoint_id FROM deliveries
        WHERE status = 'pending' AND next_attempt_at <= $1
        ORDER BY next_attempt_at
        LIMIT $4
        FOR UPDATE SKIP LOCKED
     )
     UPDATE deliveries d
        SET attempts = d.attempts + 1,
            next_attempt_at = $1::timestamptz + make_interval(secs => $2::double precision / 1000),
            reclaims = d.reclaims + (d.leased_by IS NOT NULL)::int,
            leased_by = $3
       FROM due
       CROSS JOIN LATERAL (SELECT ev.id, ev.type, ev.data FROM events ev WHERE ev.operator_id = due.operator_id AND ev.id = due.event_id LIMIT 1) e
       LEFT JOIN LATERAL (
         SELECT x.url, x.format, x.payload_version, x.secret, x.previous_secret, x.previous_expires_at, x.max_concurrency, x.rate_limit_per_s,
                x.circuit_state, x.circuit_retry_at, x.consecutive_failures, x.status
           FROM endpoints x WHERE x.operator_id = due.operator_id AND x.id = due.endpoint_id LIMIT 1
       ) ep ON true
      WHERE d.operator_id = due.operator_id AND d.id = due.id
     RETURNING d.operator_id, d.id, d.environment, coalesce(ep.url, d.url) AS url, coalesce(ep.format, d.format) AS format,
               coalesce(ep.payload_version, d.payload_version) AS payload_version, coalesce(ep.secret, d.secret) AS secret,
               d.schedule_name, d.schedule, d.attempts, d.created_at, d.endpoint_id,
               ep.previous_secret, ep.previous_expires_at, ep.max_concurrency, ep.rate_limit_per_s, ep.circuit_state, ep.circuit_retry_at,
               ep.consecutive_failures, ep.status AS endpoint_status, e.id AS event_id, e.type AS event_type, e.data AS event_data`,
    values: [now, leaseMs, worker, limit],
  });
  return rows.map((r) => {
    const { event_id, event_type, event_data, ...rest } = r;
    return { ...rest, event: { id: event_id, type: event_type, data: event_data } as EventRecord };
  });
}

export interface Completion {
  operator_id: string;
  id: string;
  attempt: number;
  status: 'pending' | 'succeeded' | 'failed' | 'expired';
  outcome: 'succeeded' | 'retry' | 'failed' | 'expired';
  next_attempt_at: Date;
  started_at: Date;
  latency_ms: number;
  status_code: number | null;
  error_code: string | null;
  excerpt: string | null;
}

/**
 * Records a batch of attempts and moves each delivery on, in one statement. A delivery reclaimed by another
 * worker since (its attempt count moved on) keeps the newer claim's schedule, but a success always ends it.
 */
export async function complete(db: Queryable, worker: string, batch: Completion[]): Promise<void> {
  if (batch.length === 0) return;
  const col = <K extends keyof Completion>(k: K) => batch.map((b) => b[k]);
  await db.query({
    name: 'cw_complete',
    text: `WITH u AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::int[], $10::text[], $11::text[])
         AS u(op, id, attempt, status, outcome, next_at, started, latency, code, err, excerpt)
     ), a AS (
       INSERT INTO delivery_attempts (operator_id, delivery_id, attempt, worker, started_at, latency_ms, status_code, error_code, response_excerpt, outcome)
       SELECT op, id, attempt, $12, started, latency, code, err, excerpt, outcome FROM u
       ON CONFLICT DO NOTHING
     )
     UPDATE deliveries d
        SET status = u.status,
            next_attempt_at = u.next_at,
            leased_by = NULL,
            last_status = u.code,
            last_error = u.err,
            completed_at = CASE WHEN u.status = 'pending' THEN NULL ELSE u.started END
       FROM u
      WHERE d.operator_id = u.op AND d.id = u.id AND d.status = 'pending'
        AND (d.attempts = u.attempt OR u.status = 'succeeded')`,
    values: [col('operator_id'), col('id'), col('attempt'), col('status'), col('outcome'), col('next_attempt_at'), col('started_at'),
      col('latency_ms'), col('status_code'), col('error_code'), col('excerpt'), worker],
  });
}

/**
 * Gives back claims this worker will not send (shutdown, or a destination at its concurrency cap, rate limit or
 * circuit probe): due again at `at`, the uncounted attempt taken back.
 */
export async function release(db: Queryable, worker: string, keys: { operator_id: string; id: string; attempt: number; at: Date }[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query(
    `UPDATE deliveries d SET next_attempt_at = u.at, leased_by = NULL, attempts = d.attempts - 1
       FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[]) AS u(op, id, attempt, at)
      WHERE d.operator_id = u.op AND d.id = u.id AND d.status = 'pending' AND d.attempts = u.attempt AND d.leased_by = $5`,
    [keys.map((k) => k.operator_id), keys.map((k) => k.id), keys.map((k) => k.attempt), keys.map((k) => k.at), worker],
  );
}

/** A 410 means the URL is gone: the operator's other pending, unclaimed deliveries to it fail too. */
export async function failGone(db: Queryable, operatorId: string, url: string, now: Date): Promise<number> {
  const r = await db.query(
    `UPDATE deliveries SET status = 'failed', last_error = 'url_gone', completed_at = $3, next_attempt_at = $3
      WHERE operator_id = $1 AND url = $2 AND status = 'pending' AND leased_by IS NULL`,
    [operatorId, url, now],
  );
  return r.rowCount ?? 0;
}
