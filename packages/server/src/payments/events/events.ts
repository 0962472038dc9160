import { DEFAULT_PAYLOAD_VERSION, renderData, type EventRecord } from '@cashwire/webhooks';
import { errors } from '../../domain/errors.js';
import { deliveriesOf, eventHasDeliveryIn, resendDeliveries } from '../../delivery/queue.js';
import type { EventRow } from '../../store/events.js';
import type { Caller, Deps } from '../context.js';
import { pageFilter } from '../pagination.js';

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
    where += ` AND ${eventHasDeliveryIn(`$${params.push(q.delivery_status)}`)}`;
  }
  const { rows } = await deps.db.query<EventRow>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 ${where} ORDER BY seq DESC LIMIT ${limit + 1}`,
    params,
  );
  const more = rows.length > limit;
  const data = more ? rows.slice(0, limit) : rows;
  return { data: data.map(publicEvent), next_cursor: more ? String(data[data.length - 1]!.seq) : null };
}

async function loadEvent(deps: Deps, caller: Caller, id: string): Promise<EventRow> {
  const { rows } = await deps.db.query<EventRow>('SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('event', id);
  return rows[0];
}

/** One event with its deliveries, each with its attempts, oldest first. */
export async function getEvent(deps: Deps, caller: Caller, id: string) {
  const event = await loadEvent(deps, caller, id);
  const { deliveries, attempts } = await deliveriesOf(deps.db, caller.operatorId, id);
  return {
    ...publicEvent(event),
    deliveries: deliveries.map((r) => ({
      id: r.id, endpoint_id: r.endpoint_id, url: r.url, format: r.format, payload_version: r.payload_version, status: r.status, attempts: r.attempts,
      next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
      held: r.held,
      last_status: r.last_status, last_error: r.last_error, created_at: r.created_at.toISOString(),
      completed_at: r.completed_at?.toISOString() ?? null,
      attempt_log: attempts.filter((x) => x.delivery_id === r.id).map((x) => ({
        attempt: x.attempt, started_at: x.started_at.toISOString(), latency_ms: x.latency_ms, status_code: x.status_code,
        error_code: x.error_code,
        // The answer's first bytes as text, invalid UTF-8 replaced (U+FFFD); response_bytes is how many bytes were kept.
        response: x.response_excerpt ? x.response_excerpt.toString('utf8') : null,
        response_bytes: x.response_excerpt ? x.response_excerpt.length : null,
        outcome: x.outcome,
      })),
    })),
  };
}

/**
 * POST /events/{id}/resend, also "retry now": a new delivery, same event id (so receivers can de-duplicate), to each
 * destination the event had whose latest delivery is not pending (succeeded, failed, expired or dead); a pending
 * delivery waiting for its retry is due now instead, so that no destination gets two deliveries at once. Registered
 * endpoints get theirs signed, at their current URL, held while disabled and behind an open circuit until its probe.
 * An event that never had a destination has nothing to resend (409).
 */
export async function resendEvent(deps: Deps, caller: Caller, id: string) {
  await loadEvent(deps, caller, id);
  const r = await resendDeliveries(deps.db, { operator_id: caller.operatorId, event_id: id }, caller.environment, deps.clock.now(), () => deps.ids.next('dlv_'));
  const after = await getEvent(deps, caller, id);
  if (after.deliveries.length === 0) throw errors.conflict('nothing_to_resend', `event ${id} has no webhook destination to resend to`);
  return { ...after, resend: r };
}
