import { DEFAULT_PAYLOAD_VERSION, renderData, type EventRecord } from '@cashwire/webhooks';
import { errors } from '../../domain/errors.js';
import { withTx } from '../../db/pool.js';
import { deliveriesOf, deliveryById, eventHasDeliveryIn, resendDeliveries, retryDeliveryNow, signingOf, type AttemptRow, type DeliveryRow } from '../../delivery/queue.js';
import { renderRequest, type RequestView } from '../../delivery/request-view.js';
import type { EventRow } from '../../store/events.js';
import type { Caller, Deps } from '../context.js';
import { pageFilter } from '../pagination.js';

export function publicEvent(e: EventRow) {
  return { id: e.id, type: e.type, intent_id: e.intent_id, created_at: e.created_at.toISOString(), data: renderData(e as EventRecord, DEFAULT_PAYLOAD_VERSION) };
}

/**
 * GET /events and the dashboard's events list, newest first. Test events (delivery/test-event.ts) are left out unless
 * `opts.includeTest`, which only the dashboard passes: an integration listing events must not take a fake approved
 * deposit for a real one, while the operator who sent the test wants to find it. An option apart from `q`, which
 * GET /events fills from its query string, so that no query parameter can turn it on.
 */
export async function listEvents(
  deps: Deps,
  caller: Caller,
  q: { type?: string; intent_id?: string; delivery_status?: string; cursor?: string; limit?: number; 'created_at.after'?: string; 'created_at.before'?: string },
  opts: { includeTest?: boolean } = {},
) {
  const limit = q.limit ?? 25;
  const params: unknown[] = [caller.operatorId, caller.environment];
  // Events are ordered by their insertion sequence, so two events of one instant keep their order.
  let where = pageFilter({ after: q['created_at.after'], before: q['created_at.before'] }, params);
  if (!opts.includeTest) where += ' AND NOT test';
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
  // `test` only where test events can be in the list (the dashboard's): the API's shape is unchanged.
  return { data: data.map((e) => (opts.includeTest ? { ...publicEvent(e), test: e.test } : publicEvent(e))), next_cursor: more ? String(data[data.length - 1]!.seq) : null };
}

/** What an object's events are filed under (see insertEvents and insertTenantEvent). */
export type EventsOf =
  /** An intent's own events and those filed under it (refund.*, dispute.*, user.limits_request* from its page); `typePrefix` keeps one family. */
  | { intentId: string; typePrefix?: string }
  /** A user's own events: user.* (limit requests), whose data carries the user_id. */
  | { userId: string; since: Date }
  /**
   * A Sendcash transfer's Payment.Status event, which carries its reference (paymentReference): written once, in the
   * transaction that completes or fails it (settleTransfer; a resend is a new delivery of the same event), so at its
   * completed_at. `since` and `until` bound the search to a window around that time, which events_created finds.
   */
  | { paymentReference: string; since: Date; until: Date };

/**
 * The newest `limit` events of one object (the dashboard's detail pages), newest first, and whether there are more.
 * An intent's are found by the events_intent index; a user's and a transfer's by their data (not indexed), within
 * the tenant's events since the user was made, or in the few minutes around the transfer's completion.
 */
export async function eventsOf(deps: Deps, caller: Caller, of: EventsOf, limit = 50) {
  const params: unknown[] = [caller.operatorId, caller.environment];
  let where: string;
  if ('intentId' in of) {
    where = `intent_id = $${params.push(of.intentId)}`;
    if (of.typePrefix) where += ` AND starts_with(type, $${params.push(of.typePrefix)})`;
  } else if ('userId' in of) {
    where = `starts_with(type, 'user.') AND data->>'user_id' = $${params.push(of.userId)} AND created_at >= $${params.push(of.since)}`;
  } else {
    where = `type = 'Payment.Status' AND data->>'paymentReference' = $${params.push(of.paymentReference)}
             AND created_at BETWEEN $${params.push(of.since)} AND $${params.push(of.until)}`;
  }
  const { rows } = await deps.db.query<EventRow>(
    `SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND ${where} ORDER BY seq DESC LIMIT ${limit + 1}`,
    params,
  );
  return { data: rows.slice(0, limit).map(publicEvent), more: rows.length > limit };
}

/**
 * One event by its id, test events included: GET /events/{id} and the dashboard's event page (which the events list
 * links to) answer a test event too. Its id is known only to whoever sent it, so answering it leaks nothing into a feed.
 */
async function loadEvent(deps: Deps, caller: Caller, id: string): Promise<EventRow> {
  const { rows } = await deps.db.query<EventRow>('SELECT * FROM events WHERE operator_id = $1 AND environment = $2 AND id = $3', [caller.operatorId, caller.environment, id]);
  if (!rows[0]) throw errors.notFound('event', id);
  return rows[0];
}

/** A delivery as the API shows it (GET /events/{id}, POST /webhook/deliveries/{id}/retry), without its attempts. */
export function publicDelivery(r: DeliveryRow) {
  return {
    id: r.id, endpoint_id: r.endpoint_id, url: r.url, format: r.format, payload_version: r.payload_version, status: r.status, attempts: r.attempts,
    next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
    held: r.held,
    last_status: r.last_status, last_error: r.last_error, created_at: r.created_at.toISOString(),
    completed_at: r.completed_at?.toISOString() ?? null,
  };
}

/** One event with its deliveries, each with its attempts, oldest first. */
export async function getEvent(deps: Deps, caller: Caller, id: string) {
  const event = await loadEvent(deps, caller, id);
  const { deliveries, attempts } = await deliveriesOf(deps.db, caller.operatorId, id);
  return shapeEvent(event, deliveries, attempts);
}

function shapeEvent(event: EventRow, deliveries: DeliveryRow[], attempts: AttemptRow[]) {
  return {
    ...publicEvent(event),
    deliveries: deliveries.map((r) => ({
      ...publicDelivery(r),
      attempt_log: attempts.filter((x) => x.delivery_id === r.id).map((x) => ({
        attempt: x.attempt, started_at: x.started_at.toISOString(), latency_ms: x.latency_ms, status_code: x.status_code,
        error_code: x.error_code,
        // The answer's first bytes as text, invalid UTF-8 replaced (U+FFFD); response_bytes is how many bytes were kept.
        response: x.response_excerpt ? x.response_excerpt.toString('utf8') : null,
        response_bytes: x.response_excerpt ? x.response_excerpt.length : null,
        // A non-2xx answer's headers (bounded: 32 headers, 4 KiB); null for a success or when no answer came.
        response_headers: x.response_headers ?? null,
        outcome: x.outcome,
      })),
    })),
  };
}

/** The key of one attempt in {@link eventDetail}'s maps. */
export const attemptKey = (deliveryId: string, attempt: number) => `${deliveryId}#${attempt}`;

/**
 * For the dashboard's event page: the event as GET /events/{id} shows it, and per attempt its answer's raw bytes
 * (the page says when they are not UTF-8) and its request rendered again as it was sent (delivery/request-view.ts).
 */
export async function eventDetail(deps: Deps, caller: Caller, id: string): Promise<{
  event: ReturnType<typeof shapeEvent>; excerpts: Map<string, Buffer | null>; requests: Map<string, RequestView>;
}> {
  const row = await loadEvent(deps, caller, id);
  const [{ deliveries, attempts }, signing] = await Promise.all([deliveriesOf(deps.db, caller.operatorId, id), signingOf(deps.db, caller.operatorId, id)]);
  const record = { id: row.id, type: row.type, data: row.data } as EventRecord;
  const byId = new Map(signing.map((s) => [s.id, s]));
  const excerpts = new Map<string, Buffer | null>();
  const requests = new Map<string, RequestView>();
  for (const a of attempts) {
    const k = attemptKey(a.delivery_id, a.attempt);
    excerpts.set(k, a.response_excerpt);
    const s = byId.get(a.delivery_id);
    if (s) requests.set(k, renderRequest(s, record, a.started_at, deps.secrets));
  }
  return { event: shapeEvent(row, deliveries, attempts), excerpts, requests };
}

/**
 * POST /webhook/deliveries/{id}/retry and the dashboard's "Retry now": one pending delivery is due now and the
 * workers are woken (delivery/queue.ts retryDeliveryNow says what is refused, and why an open circuit is probed).
 * Scoped to the caller's operator and environment: another environment's delivery is not found.
 */
export async function retryDelivery(deps: Deps, caller: Caller, id: string) {
  const key = { operator_id: caller.operatorId, environment: caller.environment, id };
  const refused = await withTx(deps.db, (tx) => retryDeliveryNow(tx, key, deps.clock.now()));
  if (refused === 'not_found') throw errors.notFound('delivery', id);
  const d = await deliveryById(deps.db, key);
  if (!d) throw errors.notFound('delivery', id);
  if (refused === 'not_pending') throw errors.conflict('delivery_not_pending', `delivery ${id} is ${d.status}, not pending: resend its event to send it again`);
  if (refused === 'in_flight') throw errors.conflict('delivery_in_flight', `delivery ${id} is being sent right now`);
  if (refused === 'disabled') throw errors.conflict('endpoint_disabled', `delivery ${id} is held by its disabled endpoint ${d.endpoint_id}: enable the endpoint to send it`);
  return { ...publicDelivery(d), event_id: d.event_id };
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
