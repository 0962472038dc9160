import { DEFAULT_PAYLOAD_VERSION, renderData, type EventRecord } from '@cashwire/webhooks';
import { errors } from '../api/errors.js';
import { WAKE_IF_IDLE, type EventRow } from '../store/events.js';
import type { Caller, Deps } from './context.js';
import { pageFilter } from './pagination.js';

export function publicEvent(e: EventRow) {
  return { id: e.id, type: e.type, intent_id: e.intent_id, created_at: e.created_at.toISOString(), data: renderData(e as EventRecord, DEFAULT_PAYLOAD_VERSION) };
}

export async function listEvents(
  deps: Deps,
  caller: Caller,
  q: { type?: string; intent_id?: string; delivery_status?: string; cursor?: string; limit?: number; 'created_at.after'?: string; 'created_at.before'?: string },
) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  // Events are ordered by their insertion sequence, so two events of one instant keep their order.
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'] }, params);
  if (q.cursor) {
    const seq = /^[0-9]{1,18}$/.test(q.cursor) ? q.cursor : undefined;
    if (!seq) throw errors.validation('cursor', 'cursor is not one this API returned', 'invalid_cursor');
    where += ` AND seq < $${params.push(seq)}`;
  }
  if (q.type) where += ` AND type = $${params.push(q.type)}`;
  if (q.intent_id) where += ` AND intent_id = $${params.push(q.intent_id)}`;
  if (q.delivery_status) {
    where += ` AND EXISTS (SELECT 1 FROM deliveries d WHERE d.operator_id = events.operator_id AND d.event_id = events.id AND d.status = $${params.push(q.delivery_status)})`;
  }
  const { rows } = await deps.db.query<EventRow>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY seq DESC LIMIT ${limit + 1}`,
    params,
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data: data.map(publicEvent), next_cursor: more ? String(data[data.length - 1]!.seq) : null };
}

interface DeliveryRow {
  id: string; url: string; format: string; payload_version: string; status: string; attempts: number; next_attempt_at: Date;
  last_status: number | null; last_error: string | null; created_at: Date; completed_at: Date | null; reclaims: number;
}
interface AttemptRow {
  delivery_id: string; attempt: number; started_at: Date; latency_ms: number; status_code: number | null; error_code: string | null;
  response_excerpt: string | null; outcome: string;
}

async function loadEvent(deps: Deps, caller: Caller, id: string): Promise<EventRow> {
  const { rows } = await deps.db.query<EventRow>('SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('event', id);
  return rows[0];
}

/** One event with its deliveries, each with its attempts, oldest first. */
export async function getEvent(deps: Deps, caller: Caller, id: string) {
  const event = await loadEvent(deps, caller, id);
  const [d, a] = await Promise.all([
    deps.db.query<DeliveryRow>(
      `SELECT id, url, format, payload_version, status, attempts, next_attempt_at, last_status, last_error, created_at, completed_at, reclaims
         FROM deliveries WHERE operator_id = $1 AND event_id = $2 ORDER BY created_at, id`,
      [caller.operatorId, id],
    ),
    deps.db.query<AttemptRow>(
      `SELECT a.delivery_id, a.attempt, a.started_at, a.latency_ms, a.status_code, a.error_code, a.response_excerpt, a.outcome
         FROM delivery_attempts a JOIN deliveries d ON d.operator_id = a.operator_id AND d.id = a.delivery_id
        WHERE d.operator_id = $1 AND d.event_id = $2 ORDER BY a.attempt`,
      [caller.operatorId, id],
    ),
  ]);
  return {
    ...publicEvent(event),
    deliveries: d.rows.map((r) => ({
      id: r.id, url: r.url, format: r.format, payload_version: r.payload_version, status: r.status, attempts: r.attempts,
      next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
      last_status: r.last_status, last_error: r.last_error, created_at: r.created_at.toISOString(),
      completed_at: r.completed_at?.toISOString() ?? null,
      attempt_log: a.rows.filter((x) => x.delivery_id === r.id).map((x) => ({
        attempt: x.attempt, started_at: x.started_at.toISOString(), latency_ms: x.latency_ms, status_code: x.status_code,
        error_code: x.error_code, response: x.response_excerpt, outcome: x.outcome,
      })),
    })),
  };
}

/**
 * POST /events/{id}/resend: a new delivery to each destination the event had, with fresh attempts and the same
 * event id (so receivers can de-duplicate). An event that never had a destination has nothing to resend.
 */
export async function resendEvent(deps: Deps, caller: Caller, id: string) {
  await loadEvent(deps, caller, id);
  const now = deps.clock.now();
  const dest = await deps.db.query<{ url: string; format: string }>(
    'SELECT DISTINCT url, format FROM deliveries WHERE operator_id = $1 AND event_id = $2',
    [caller.operatorId, id],
  );
  const { rows } = await deps.db.query<{ id: string }>(
    `WITH dest AS (
       SELECT DISTINCT ON (d.url, d.format) d.url, d.format, d.payload_version, d.secret, d.schedule_name, d.schedule, t.new_id
         FROM deliveries d JOIN unnest($5::text[], $6::text[], $7::text[]) AS t(url, format, new_id) ON t.url = d.url AND t.format = d.format
        WHERE d.operator_id = $1 AND d.event_id = $2 ORDER BY d.url, d.format, d.created_at DESC
     ), ins AS (
       INSERT INTO deliveries (operator_id, id, environment, event_id, url, format, payload_version, secret, schedule_name, schedule, next_attempt_at, created_at)
       SELECT $1, new_id, $3, $2, url, format, payload_version, secret, schedule_name, schedule, $4, $4 FROM dest
       RETURNING id
     )
     SELECT id, ${WAKE_IF_IDLE} FROM ins`,
    [caller.operatorId, id, caller.environment, now, dest.rows.map((r) => r.url), dest.rows.map((r) => r.format), dest.rows.map(() => deps.ids.next('dlv_'))],
  );
  if (rows.length === 0) throw errors.conflict('nothing_to_resend', `event ${id} has no webhook destination to resend to`);
  return getEvent(deps, caller, id);
}
